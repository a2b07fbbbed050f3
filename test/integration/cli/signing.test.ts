// fleetctl's side of signing, on the real NATS server with in-process agents (FakeRuntime):
// `key create`, `deploy --signing-key`, an agent with operator keys refusing what no key of its
// signed, `device add` recording the device's key, and status/history showing what the checks say
// (docs/design.md, "Signed desired state" and "Report signatures").
import { expect } from "chai";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { startAgent, type RunningAgent } from "../../../agent/agent.js";
import { memoryLogger } from "../../../agent/logger.js";
import { EXIT } from "../../../cli/main.js";
import { canonicalHash } from "../../../contracts/canonical-json.js";
import { decodeJson } from "../../../contracts/decode.js";
import type { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { DeviceInfo } from "../../../contracts/device-info.codec.js";
import { newUserKey } from "../../../contracts/nkey.js";
import { ReconcileScore } from "../../../contracts/score.codec.js";
import { DesiredValue, signatureRefusal } from "../../../contracts/signed-score.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_INFO, BUCKET_DEVICE_STATE, deploymentKey } from "../../../contracts/wire-names.js";
import { Fleet } from "../../../fleet/fleet.client.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";
import { SHARED_NATS, cleanupDevice, connectTest, tempDir, uniqueDevice, waitFor, waitForState } from "../../support/nats.js";
import { ScoreFiles, fleetctl, scoreJson } from "./cli.helpers.js";

describe("fleetctl signing (real NATS, agents on FakeRuntime)", function () {
  let nc: NatsConnection;
  let desired: KV;
  let states: KV;
  let device: string;
  let files: ScoreFiles;
  let dir: string;
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    nc = await connectTest();
    await ensureFleetResources(nc);
    desired = await new Kvm(nc).open(BUCKET_DESIRED_STATE);
    states = await new Kvm(nc).open(BUCKET_DEVICE_STATE);
  });
  after(async () => {
    await nc.close();
  });
  beforeEach(() => {
    device = uniqueDevice();
    files = new ScoreFiles();
    dir = tempDir("fleetctl-keys-");
  });
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
    await cleanupDevice(nc, device);
    await (await new Kvm(nc).open("device-keys")).purge(device).catch(() => undefined);
    files.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  const keyCreate = async (name: string) => {
    const file = join(dir, name);
    const r = await fleetctl(["key", "create", "--seed-out", file]);
    expect(r.code, r.err).to.equal(EXIT.OK);
    return { file, publicKey: r.out.trim() };
  };
  const agentWith = async (o: { operatorKeys?: string[]; nkeyFile?: string }) => {
    const stateDir = tempDir("fleetctl-signing-agent-");
    const mem = memoryLogger();
    const agent: RunningAgent = await startAgent(
      {
        deviceId: device,
        natsServers: [SHARED_NATS],
        stateDir,
        tickSecs: 3600,
        logLevel: "silent",
        containerHost: undefined,
        ...(o.operatorKeys ? { operatorKeys: o.operatorKeys } : {}),
        ...(o.nkeyFile ? { auth: { nkeyFile: o.nkeyFile } } : {}),
      },
      { runtime: new FakeRuntime({ device }), logger: mem.logger },
    );
    stops.push(async () => {
      await agent.stop(5000);
      rmSync(stateDir, { recursive: true, force: true });
    });
    await agent.online;
    return { agent, records: mem.records };
  };
  const waitState = (pred: (s: DeploymentState) => boolean, what: string) => waitForState(states, device, "app", pred, what);
  const stored = async () => {
    const r = decodeJson(DesiredValue, (await desired.get(deploymentKey(device, "app")))!.string());
    if (!r.ok) throw new Error(r.errors.join("; "));
    return r.value;
  };

  it("key create writes the seed 0600, prints the public key, never overwrites, and needs --seed-out", async () => {
    const k = await keyCreate("op.seed");
    expect(k.publicKey).to.match(/^U[A-Z2-7]{55}$/);
    expect(statSync(k.file).mode & 0o777).to.equal(0o600);
    expect(readFileSync(k.file, "utf8")).to.match(/^SU[A-Z2-7]{56}\n$/);
    const again = await fleetctl(["key", "create", "--seed-out", k.file]);
    expect(again.code).to.equal(EXIT.FAILED);
    expect(again.err).to.include("EEXIST");
    expect((await fleetctl(["key", "create"])).code).to.equal(EXIT.USAGE);
    expect((await fleetctl(["key", "--help"])).out).to.include("--operator-keys");
  });

  it("deploy --signing-key signs for the device and deployment; the same key again is no change, another key rewrites it", async () => {
    const k1 = await keyCreate("k1.seed");
    const k2 = await keyCreate("k2.seed");
    const file = files.write(scoreJson("img/web:1"));
    const r = await fleetctl(["deploy", device, "app", "-f", file, "--signing-key", k1.file, "--new-device"]);
    expect(r.code, r.err).to.equal(EXIT.OK);
    const v = await stored();
    expect(v.signed).to.include({ by: k1.publicKey, device, deployment: "app" });
    expect(signatureRefusal(v, { device, deployment: "app" }, [k1.publicKey])).to.equal(null);
    const score = decodeJson(ReconcileScore, scoreJson("img/web:1"));
    expect(score.ok && canonicalHash(v.score) === canonicalHash(score.value)).to.equal(true);

    const same = await fleetctl(["deploy", device, "app", "-f", file, "--new-device"], { env: { FLEET_NATS_URL: SHARED_NATS, FLEET_SIGNING_KEY: k1.file } });
    expect(same.out).to.include("no change");
    const rotated = await fleetctl(["deploy", device, "app", "-f", file, "--signing-key", k2.file, "--json", "--new-device"]);
    expect(JSON.parse(rotated.out)).to.include({ written: true, signed_by: k2.publicKey });
    expect((await stored()).signed?.by).to.equal(k2.publicKey);

    const unsigned = await fleetctl(["deploy", device, "app", "-f", files.write(scoreJson("img/web:2")), "--new-device"]);
    expect(unsigned.code).to.equal(EXIT.OK);
    expect(unsigned.err).to.include("written unsigned");
    expect((await stored()).signed).to.equal(null);

    const badKey = join(dir, "bad.seed");
    writeFileSync(badKey, "not a seed\n");
    const bad = await fleetctl(["deploy", device, "app", "-f", file, "--signing-key", badKey, "--new-device"]);
    expect(bad.code).to.equal(EXIT.USAGE);
    expect(bad.err).to.include(`--signing-key ${JSON.stringify(badKey)}: no nkey user seed (SU...) in it`);
  });

  it("an agent with operator keys refuses an unsigned deploy (Failed, nothing run) and applies a signed one; device-info says signing on", async () => {
    const k = await keyCreate("op.seed");
    const { agent, records } = await agentWith({ operatorKeys: [k.publicKey] });
    const file = files.write(scoreJson("img/web:1"));
    expect((await fleetctl(["deploy", device, "app", "-f", file])).code).to.equal(EXIT.OK);
    const refused = await waitState((s) => s.phase === "Failed", "the unsigned value refused");
    expect(refused.last_error).to.equal("signed: missing: this device applies only desired states signed by one of its operator keys");
    expect(refused.container_ids).to.deep.equal({});

    expect((await fleetctl(["deploy", device, "app", "-f", file, "--signing-key", k.file])).code).to.equal(EXIT.OK);
    const running = await waitState((s) => s.phase === "Running", "the signed value Running");
    expect(Object.keys(running.container_ids).sort()).to.deep.equal(["db", "web"]);
    expect(agent.supervisor.snapshot("app")!.context.signedAt).to.equal((await stored()).signed!.at);

    const info = await waitFor("device-info", async () => {
      const e = await (await new Kvm(nc).open(BUCKET_DEVICE_INFO)).get(device);
      const r = e ? decodeJson(DeviceInfo, e.string()) : null;
      return r?.ok ? r.value : undefined;
    });
    expect(info).to.include({ signing: "on" });
    expect(info.operator_keys).to.deep.equal([k.publicKey]);
    expect(records.some((l) => l["level"] === 40 && String(l["msg"]).startsWith("signing is off"))).to.equal(false);
  });

  it("device add records the key; the agent signs with its seed; status and history show verified, UNSIGNED without operator keys", async () => {
    const seed = join(dir, "dev.seed");
    const add = await fleetctl(["device", "add", device, "--seed-out", seed]);
    expect(add.code, add.err).to.equal(EXIT.OK);
    const publicKey = /public key (U[A-Z2-7]{55})/.exec(add.err)?.[1];
    expect(add.err).to.include("recorded in device-keys");
    const fleet = await Fleet.open(nc);
    expect(await fleet.deviceKey(device)).to.equal(publicKey);

    const { agent, records } = await agentWith({ nkeyFile: seed });
    expect(records.some((l) => l["level"] === 40 && String(l["msg"]).startsWith("signing is off"))).to.equal(true);
    expect((await fleetctl(["deploy", device, "app", "-f", files.write(scoreJson("img/web:1"))])).code).to.equal(EXIT.OK);
    await waitState((s) => s.phase === "Running", "Running");
    await agent.tick();
    await agent.publisher.idle(10_000);
    await agent.reporter.flush(10_000);

    const j = await fleetctl(["status", device, "--json"]);
    const [row] = JSON.parse(j.out) as Array<{ signing: string; device_key: string; checks: unknown }>;
    expect(row!.signing).to.equal("off");
    expect(row!.device_key).to.equal(publicKey);
    expect(row!.checks).to.deep.equal({ info: { verdict: "verified" }, heartbeat: { verdict: "verified" }, deployments: { app: { verdict: "verified" } } });
    const table = await fleetctl(["status", device]);
    expect(table.out).to.not.include("TRUST");
    expect(table.err).to.equal(`UNSIGNED: ${device}: they apply desired states nobody signed (started without --operator-keys)\n`);
    const wide = await fleetctl(["status", device, "-o", "wide"]);
    expect(wide.out.split("\n")[0]).to.match(/\sTRUST\s+LAST ERROR$/);
    expect(wide.out.split("\n").find((l) => l.startsWith(device))).to.match(/\sUNSIGNED\s+-$/);

    const h = await fleetctl(["history", device, "app"]);
    expect(h.code, h.err).to.equal(EXIT.OK);
    const n = agent.journal.lastN("app");
    expect(h.out).to.include(`signatures: all ${n} events signed by the device\n`);

    // A device-state written by anything but the device: FORGED in the table.
    await states.put(deploymentKey(device, "app"), JSON.stringify({ ...(await fleet.deploymentState(device, "app")), signed: undefined, phase: "Failed" }));
    const forged = await fleetctl(["status", device]);
    expect(forged.err).to.include(`FORGED: ${device} (state app): reports their device did not sign`);
    const forgedWide = await fleetctl(["status", device, "-o", "wide"]);
    expect(forgedWide.out.split("\n").find((l) => l.startsWith(device))).to.match(/\sUNSIGNED, FORGED state\s+-$/);
    const described = await fleetctl(["describe", device]);
    expect(described.out).to.match(/\nSigning\s+OFF: applies desired states nobody signed/).and.match(/\nReports\s+FORGED state \(device key U/);
  });

  it("device add --offline touches no NATS; record-key records a key made elsewhere", async () => {
    const add = await fleetctl(["device", "add", device, "--offline", "--nats", "nats://127.0.0.1:1"]);
    expect(add.code, add.err).to.equal(EXIT.OK);
    expect(add.err).to.include(`fleetctl device record-key ${device} U`);
    const k = newUserKey().publicKey;
    const r = await fleetctl(["device", "record-key", device, k]);
    expect(r.code, r.err).to.equal(EXIT.OK);
    expect(await (await Fleet.open(nc)).deviceKey(device)).to.equal(k);
    expect((await fleetctl(["device", "record-key", device, "UABC"])).code).to.equal(EXIT.USAGE);
    const unreachable = await fleetctl(["device", "add", device, "--seed-out", join(dir, "x.seed"), "--nats", "nats://127.0.0.1:1"]);
    expect(unreachable.code).to.equal(EXIT.FAILED);
    expect(() => statSync(join(dir, "x.seed")), "no seed left behind").to.throw();
  });
});
