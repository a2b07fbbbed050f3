// Shared by every test that talks to NATS: unique ids, a private nats-server that can be stopped and
// restarted on the same store, clean-up of what a test wrote to the shared server, and reading what
// an agent reported.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { FLEET_BUCKETS } from "../../fleet/resources.js";
import { decodeJson } from "../../contracts/decode.js";
import { DeploymentState } from "../../contracts/deployment-state.codec.js";
import { STREAM_FLEET_EVENTS, deploymentKey, deviceEventSubjects, deviceKeys } from "../../contracts/wire-names.js";

export const SHARED_NATS = "nats://127.0.0.1:4222";
export const uniqueDevice = () => `t-${randomBytes(5).toString("hex")}`;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * The nats-server binary private servers run: Debian's 2.9.10, or the one FLEET_TEST_NATS_SERVER
 * names (the security suite is run against a current server that way, README: Securing a fleet).
 */
export const NATS_SERVER_BIN = process.env["FLEET_TEST_NATS_SERVER"] || "/usr/sbin/nats-server";

/**
 * Starts the nats-server with `args` and resolves once it is ready; everything it writes to
 * stderr goes to `onLog` too (permission violations and panics are logged there).
 */
export async function spawnNatsServer(args: string[], onLog: (text: string) => void = () => {}): Promise<ChildProcess> {
  const proc = spawn(NATS_SERVER_BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr?.on("data", (d: Buffer) => {
    log += d.toString();
    onLog(d.toString());
  });
  const until = Date.now() + 10_000;
  while (!/Server is ready/.test(log)) {
    if (proc.exitCode !== null) throw new Error(`nats-server exited: ${log}`);
    if (Date.now() > until) {
      proc.kill("SIGKILL");
      throw new Error(`nats-server did not start: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return proc;
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
export async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once("exit", () => r()));
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(t);
}

/** A nats-server of the test's own, on a free loopback port, with a temp store it can restart on. */
export class PrivateNats {
  private proc: ChildProcess | null = null;
  readonly storeDir = mkdtempSync(join(tmpdir(), "nats-store-"));
  protected constructor(readonly port: number) {}

  static async start(): Promise<PrivateNats> {
    const s = new PrivateNats(await freePort());
    await s.start();
    return s;
  }

  /** A server whose port and store are chosen but which is not running yet. */
  static async createStopped(): Promise<PrivateNats> {
    return new PrivateNats(await freePort());
  }

  get url() {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.proc) return;
    this.proc = await this.spawn();
  }

  /** Loopback, this port, JetStream on the store. */
  protected spawn(): Promise<ChildProcess> {
    return spawnNatsServer(["-a", "127.0.0.1", "-p", String(this.port), "-js", "-sd", this.storeDir]);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (p) await stopProcess(p);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

/** A private nats-server started from a config file (accounts, TLS), whose log the test can read. */
export class ConfiguredNats extends PrivateNats {
  /** Everything the server wrote to stderr, across restarts. */
  log = "";
  private constructor(
    port: number,
    private readonly body: string,
  ) {
    super(port);
  }

  /** `body` is the config without `listen` and `jetstream`, which are added here. */
  static async withConfig(body: string): Promise<ConfiguredNats> {
    const s = new ConfiguredNats(await freePort(), body);
    await s.start();
    return s;
  }

  get configFile() {
    return join(this.storeDir, "nats-server.conf");
  }

  protected override spawn(): Promise<ChildProcess> {
    writeFileSync(this.configFile, `listen: "127.0.0.1:${this.port}"\njetstream { store_dir: ${JSON.stringify(join(this.storeDir, "store"))} }\n${this.body}\n`);
    return spawnNatsServer(["-c", this.configFile], (text) => (this.log += text));
  }

  /** The server's "Permissions Violation" lines since `from` (an offset into `log`). */
  violations(from = 0): string[] {
    return this.log.slice(from).split("\n").filter((l) => /Violation/.test(l));
  }

  /** True once the server has panicked (it then exits). */
  get panicked(): boolean {
    return /panic:/.test(this.log);
  }
}

export const connectTest = (servers = SHARED_NATS) => connect({ servers, name: "fleet-agent-test" });

/** Removes every key of `device` from the fleet buckets (markers included) and purges its event subjects. */
export async function cleanupDevice(nc: NatsConnection, device: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const b of FLEET_BUCKETS) {
    await jsm.streams.purge(`KV_${b}`, { filter: `$KV.${b}.${device}` });
    await jsm.streams.purge(`KV_${b}`, { filter: `$KV.${b}.${deviceKeys(device)}` });
  }
  await jsm.streams.purge(STREAM_FLEET_EVENTS, { filter: deviceEventSubjects(device) });
}

export async function waitFor<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

/** A deployment's DeploymentState in `device-state` (decoded: a bad value fails the test), or null. */
export async function deploymentStateOf(states: KV, device: string, deployment: string): Promise<DeploymentState | null> {
  const e = await states.get(deploymentKey(device, deployment));
  if (!e || e.operation !== "PUT") return null;
  const r = decodeJson(DeploymentState, e.string());
  if (!r.ok) throw new Error(r.errors.join("; "));
  return r.value;
}

/** Waits until the deployment's reported state satisfies `pred`, and returns it. */
export const waitForState = (states: KV, device: string, deployment: string, pred: (s: DeploymentState) => boolean, what: string) =>
  waitFor(what, async () => {
    const s = await deploymentStateOf(states, device, deployment);
    return s && pred(s) ? s : undefined;
  });
