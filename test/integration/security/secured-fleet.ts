// A secured fleet on a nats-server of the test's own, configured with exactly what `fleetctl device
// add` and `fleetctl device accounts` print (README: Securing a fleet): the operator's account, the
// accounts holding the streams, one account per device. Agents run with their device's seed and a
// FakeRuntime (these suites are about NATS; Podman is not involved).
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, nkeys, type NatsConnection } from "@nats-io/transport-node";
import { startAgent, type RunningAgent } from "../../../agent/agent.js";
import { parseConfig } from "../../../agent/config.js";
import { memoryLogger } from "../../../agent/logger.js";
import { run } from "../../../cli/main.js";
import { natsConnectOptions } from "../../../fleet/auth.js";
import { deviceInboxPrefix } from "../../../fleet/device.permissions.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import type { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_STATE } from "../../../contracts/wire-names.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";
import { ConfiguredNats, tempDir, waitForState } from "../../support/nats.js";

export const OPERATOR = { user: "operator", password: "op-pass-not-a-secret-of-devices" };

/** fleetctl, in process: its exit code and what it printed. */
export async function fleetctlRun(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await run(argv, { out: (s) => void (out += s), err: (s) => void (err += s), env: {} });
  return { code, out, err };
}

export interface DeviceAgent {
  /** The running agent, or null once stopped. */
  agent: RunningAgent | null;
  runtime: FakeRuntime;
  stateDir: string;
  /** Its log records, across restarts. */
  records: Array<Record<string, unknown>>;
  logger: ReturnType<typeof memoryLogger>["logger"];
}

export class SecuredFleet {
  readonly agents = new Map<string, DeviceAgent>();
  desired!: KV;
  states!: KV;
  heartbeats!: KV;
  op!: NatsConnection;
  /** The `device add` output of each device: its account and the operator's import of its commands. */
  readonly added = new Map<string, string>();

  private constructor(
    readonly dir: string,
    readonly server: ConfiguredNats,
  ) {}

  /** Creates each device with `fleetctl device add`, then the server from `fleetctl device accounts`. */
  static async start(devices: string[]): Promise<SecuredFleet> {
    const dir = tempDir("fleet-secured-");
    const keys: string[] = [];
    const added = new Map<string, string>();
    for (const id of devices) {
      const r = await fleetctlRun(["device", "add", id, "--seed-out", join(dir, `${id}.seed`)]);
      if (r.code !== 0) throw new Error(`fleetctl device add ${id}: ${r.err}`);
      added.set(id, r.out);
      const seed = readFileSync(join(dir, `${id}.seed`), "utf8").trim();
      keys.push("--device", `${id}=${nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey()}`);
    }
    const accounts = await fleetctlRun(["device", "accounts", "--operator-user", OPERATOR.user, "--operator-password", OPERATOR.password, ...keys]);
    if (accounts.code !== 0) throw new Error(`fleetctl device accounts: ${accounts.err}`);
    const fleet = new SecuredFleet(dir, await ConfiguredNats.withConfig(accounts.out));
    for (const [id, out] of added) fleet.added.set(id, out);
    fleet.op = await connect({ servers: fleet.server.url, user: OPERATOR.user, pass: OPERATOR.password, name: "test-operator" });
    // The operator creates the buckets and the stream, through its account's imports.
    const created = await ensureFleetResources(fleet.op);
    if (created !== "ok") throw new Error(`the operator could not create the fleet's resources: ${created}`);
    const kvm = new Kvm(fleet.op);
    fleet.desired = await kvm.open(BUCKET_DESIRED_STATE);
    fleet.states = await kvm.open(BUCKET_DEVICE_STATE);
    fleet.heartbeats = await kvm.open(BUCKET_DEVICE_HEARTBEAT);
    return fleet;
  }

  seedFile(id: string): string {
    return join(this.dir, `${id}.seed`);
  }

  /** A raw connection as device `id`: its seed, its inbox prefix, as an attacker holding the seed has. */
  connectAs(id: string): Promise<NatsConnection> {
    return connect({ servers: this.server.url, ...natsConnectOptions({ nkeyFile: this.seedFile(id) }), inboxPrefix: deviceInboxPrefix(id), name: `test-as-${id}` });
  }

  /** Starts (or restarts, keeping its runtime, state dir and log) device `id`'s agent. */
  async startAgent(id: string): Promise<RunningAgent> {
    let a = this.agents.get(id);
    if (!a) {
      const mem = memoryLogger("debug");
      a = { agent: null, runtime: new FakeRuntime({ device: id }), stateDir: join(this.dir, `state-${id}`), records: mem.records, logger: mem.logger };
      this.agents.set(id, a);
    }
    if (a.agent) return a.agent;
    const r = parseConfig(["--device-id", id, "--nats", this.server.url, "--state-dir", a.stateDir, "--nkey", this.seedFile(id), "--tick-secs", "3600"], {});
    if (!("ok" in r) || !r.ok) throw new Error(JSON.stringify(r));
    a.agent = await startAgent(r.config, { runtime: a.runtime, logger: a.logger });
    await a.agent.online;
    return a.agent;
  }

  device(id: string): DeviceAgent {
    const a = this.agents.get(id);
    if (!a) throw new Error(`no agent of ${id} was started`);
    return a;
  }

  async stopAgent(id: string): Promise<void> {
    const a = this.agents.get(id);
    const agent = a?.agent;
    if (!a || !agent) return;
    a.agent = null;
    await agent.stop(5000);
  }

  waitState(device: string, deployment: string, pred: (s: DeploymentState) => boolean, what: string): Promise<DeploymentState> {
    return waitForState(this.states, device, deployment, pred, what);
  }

  async stop(): Promise<void> {
    for (const id of this.agents.keys()) await this.stopAgent(id).catch(() => undefined);
    await this.op?.close();
    await this.server.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
