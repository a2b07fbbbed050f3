// Reports and journal events signed with the device's nkey, read back by the operator's side
// (fleet/fleet.client.ts) and checked against the key recorded in device-keys (docs/design.md,
// "Report signatures"): the device's own are verified, anything else written under its keys is forged.
import { expect } from "chai";
import { rmSync } from "node:fs";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { EventJournal } from "../../../agent/journal/journal.js";
import { JournalPublisher } from "../../../agent/journal/publisher.js";
import { memoryLogger } from "../../../agent/logger.js";
import { StateReporter } from "../../../agent/nats/state.reporter.js";
import type { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { newUserKey, signingKeyFromText, type SigningKey } from "../../../contracts/nkey.js";
import { signReport } from "../../../contracts/report-signature.js";
import { BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_STATE, deploymentKey, eventSubject } from "../../../contracts/wire-names.js";
import { Fleet } from "../../../fleet/fleet.client.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { cleanupDevice, connectTest, tempDir, uniqueDevice, waitFor } from "../../support/nats.js";

const keyOf = (seed: string): SigningKey => {
  const r = signingKeyFromText(seed);
  if (!r.ok) throw new Error(r.error);
  return r.key;
};

const state = (device: string, deployment: string, seq: number): DeploymentState => ({
  device,
  deployment,
  phase: "Running",
  state: "running",
  score_hash: `sha256:${"b".repeat(64)}`,
  desired_revision: seq,
  container_ids: { web: "1f8a" },
  last_error: null,
  last_event_seq: seq,
  last_event_at: "2026-12-01T10:00:00.000Z",
});

describe("report signatures (shared NATS)", function () {
  this.timeout(60_000);
  let nc: NatsConnection;
  let fleet: Fleet;
  const devices: string[] = [];
  const cleanups: Array<() => Promise<void> | void> = [];

  before(async () => {
    nc = await connectTest();
    await ensureFleetResources(nc);
    fleet = await Fleet.open(nc);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  after(async () => {
    for (const d of devices) {
      await cleanupDevice(nc, d);
    }
    await nc.close();
  });

  const device = () => {
    const d = uniqueDevice();
    devices.push(d);
    return d;
  };
  const reporter = (d: string, key?: SigningKey) => {
    const r = new StateReporter({ device: d, nc, logger: memoryLogger().logger, ...(key ? { signingKey: key } : {}) });
    cleanups.push(() => r.stop());
    return r;
  };
  const reportAll = async (r: StateReporter, d: string) => {
    r.reportDeployment(state(d, "web", 3));
    r.reportHeartbeat({ device: d, agent_version: "0.1.0", at: new Date().toISOString(), deployments: { web: "Running" } });
    r.reportDeviceInfo({ device: d, hostname: "h", arch: "x64", podman_version: null, agent_version: "0.1.0", signing: "off" });
    await r.flush();
  };
  const checksOf = async (d: string) => (await fleet.summary({ device: d, tickSecs: 30 }))[0]!.checks;

  it("a device's signed device-state, heartbeat and info are verified against its recorded key", async () => {
    const d = device();
    const k = keyOf(newUserKey().seed);
    await fleet.recordDeviceKey(d, k.publicKey);
    await reportAll(reporter(d, k), d);
    const [summary] = await fleet.summary({ device: d, tickSecs: 30 });
    expect(summary!.deviceKey).to.equal(k.publicKey);
    expect(summary!.signing).to.equal("off");
    expect(summary!.checks).to.deep.equal({ info: { verdict: "verified" }, heartbeat: { verdict: "verified" }, deployments: { web: { verdict: "verified" } } });
    expect(await fleet.deploymentState(d, "web")).to.deep.include(state(d, "web", 3));
  });

  it("forged: a value written under the device's keys by anyone else (unsigned, another key, a copy of another device's)", async () => {
    const d = device();
    const k = keyOf(newUserKey().seed);
    await fleet.recordDeviceKey(d, k.publicKey);
    await reportAll(reporter(d, k), d);
    const kvm = new Kvm(nc);
    const states = await kvm.open(BUCKET_DEVICE_STATE);
    const heartbeats = await kvm.open(BUCKET_DEVICE_HEARTBEAT);

    await states.put(deploymentKey(d, "web"), JSON.stringify({ ...state(d, "web", 9), phase: "Failed", state: "failed" }));
    const other = keyOf(newUserKey().seed);
    const hb = { device: d, agent_version: "0.1.0", at: new Date().toISOString(), deployments: {} };
    await heartbeats.put(d, JSON.stringify({ ...hb, signed: signReport("device-heartbeat", hb, other) }));
    let checks = await checksOf(d);
    expect(checks.deployments["web"]).to.deep.equal({ verdict: "forged", why: "unsigned" });
    expect(checks.heartbeat?.verdict).to.equal("forged");
    expect(checks.info).to.deep.equal({ verdict: "verified" });

    // Another device's own, validly signed state, copied under this device's key.
    const e = device();
    const ek = keyOf(newUserKey().seed);
    await fleet.recordDeviceKey(e, ek.publicKey);
    const copy = state(e, "web", 4);
    await states.put(deploymentKey(d, "web"), JSON.stringify({ ...copy, signed: signReport("device-state", copy, ek) }));
    checks = await checksOf(d);
    expect(checks.deployments["web"]).to.deep.equal({ verdict: "forged", why: `filed under device ${JSON.stringify(d)} but names ${JSON.stringify(e)}` });

    // The device's own state for "web", copied under its key for "db".
    const own = state(d, "web", 5);
    await states.put(deploymentKey(d, "db"), JSON.stringify({ ...own, signed: signReport("device-state", own, k) }));
    checks = await checksOf(d);
    expect(checks.deployments).to.have.property("web");
    const db = Object.values(checks.deployments).find((c) => c.verdict === "forged" && c.why.includes('filed under deployment "db"'));
    expect(db, JSON.stringify(checks.deployments)).to.not.equal(undefined);
  });

  it("unverified without a recorded key; unsigned reports of a device with a key are forged", async () => {
    const d = device();
    await reportAll(reporter(d), d);
    expect(await checksOf(d)).to.deep.equal({
      info: { verdict: "unverified", why: `no key recorded for device ${JSON.stringify(d)} (fleetctl device add records it)` },
      heartbeat: { verdict: "unverified", why: `no key recorded for device ${JSON.stringify(d)} (fleetctl device add records it)` },
      deployments: { web: { verdict: "unverified", why: `no key recorded for device ${JSON.stringify(d)} (fleetctl device add records it)` } },
    });
    await fleet.recordDeviceKey(d, newUserKey().publicKey);
    const checks = await checksOf(d);
    expect([checks.info?.verdict, checks.heartbeat?.verdict, checks.deployments["web"]?.verdict]).to.deep.equal(["forged", "forged", "forged"]);
  });

  it("journal events are published with the device's signature in headers: verified; one published by anything else is forged", async () => {
    const d = device();
    const k = keyOf(newUserKey().seed);
    await fleet.recordDeviceKey(d, k.publicKey);
    const dir = tempDir("signed-journal-");
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const journal = EventJournal.open(dir, d);
    const p = new JournalPublisher({ journal, nc, logger: memoryLogger().logger, retryMs: 100, signingKey: k });
    cleanups.push(() => p.stop());
    p.start();
    for (let i = 1; i <= 3; i++) await journal.append("app", { at: new Date(Date.UTC(2026, 11, 1, 0, 0, i)).toISOString(), event: { type: "desired.deleted", at: Date.UTC(2026, 11, 1, 0, 0, i), revision: i }, from: "pending", to: "pulling" });
    await p.idle(10_000);
    const checked = await fleet.checkedJournal(d, "app");
    expect(checked.map((c) => [c.event.n, c.check.verdict])).to.deep.equal([[1, "verified"], [2, "verified"], [3, "verified"]]);
    // The event itself is what the journal holds: the signature is beside it, in the headers.
    expect(checked.map((c) => c.event)).to.deep.equal(journal.read("app"));

    // Someone else publishes the next event on the device's subject.
    const forged = { v: 2, device: d, deployment: "app", n: 4, at: "2026-12-01T00:00:09.000Z", event: { type: "desired.deleted", at: Date.UTC(2026, 11, 1, 0, 0, 9), revision: 4 }, from: "pending", to: "pulling" };
    await nc.request(eventSubject(d, "app"), JSON.stringify(forged));
    const after = await waitFor("the forged event in the stream", async () => {
      const c = await fleet.checkedJournal(d, "app");
      return c.length === 4 ? c : undefined;
    });
    expect(after[3]!.check).to.deep.equal({ verdict: "forged", why: "unsigned" });
  });
});
