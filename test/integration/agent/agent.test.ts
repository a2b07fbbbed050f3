// The agent's wiring against the real NATS server, run twice: with FakeRuntime and with real Podman.
// Desired state in, journal and reports out, restarts and recovery.
import { expect } from "chai";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { startAgent, type RunningAgent } from "../../../agent/agent.js";
import { readStreamEvents } from "../../../fleet/stream.reader.js";
import { silentLogger } from "../../../agent/logger.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import type { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_STATE, deploymentKey } from "../../../contracts/wire-names.js";
import { foldJournal } from "../../../machines/journal.fold.js";
import { snapshotView } from "../../../machines/transition.recorder.js";
import type { ContainerRuntime } from "../../../runtime/container-runtime.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";
import { startPodmanEnv, TEST_IMAGES, type PodmanTestEnv } from "../../support/podman.env.js";
import { RecordingRuntime } from "../../support/recording.runtime.js";
import { SHARED_NATS, cleanupDevice, connectTest, tempDir, uniqueDevice, waitFor, deploymentStateOf, waitForState } from "../../support/nats.js";

interface RuntimeUnderTest {
  name: string;
  setup(): Promise<void>;
  make(device: string): ContainerRuntime;
  teardown(): Promise<void>;
  images: { v1: string; v2: string; db: string };
}

let podman: PodmanTestEnv;
const runtimes: RuntimeUnderTest[] = [
  { name: "FakeRuntime", setup: async () => {}, make: (device) => new FakeRuntime({ device }), teardown: async () => {}, images: { v1: "img/web:1", v2: "img/web:2", db: "img/db:1" } },
  {
    name: "real Podman",
    setup: async () => {
      podman = await startPodmanEnv();
    },
    make: (device) => podman.runtime(device),
    teardown: async () => podman?.cleanup(),
    images: { v1: TEST_IMAGES.v1, v2: TEST_IMAGES.v2, db: TEST_IMAGES.v3 },
  },
];

for (const rt of runtimes) describe(`agent with ${rt.name} on real NATS`, function () {
  this.timeout(120_000);
  let nc: NatsConnection;
  let desired: KV;
  let states: KV;
  let device: string;
  let stateDir: string;
  let fake: RecordingRuntime;
  let agent: RunningAgent | null = null;
  // Podman's store is shared and container names are <deployment>.<service>: names must not repeat.
  let app = "app";
  const score = (webImage: string, extra = "") =>
    `{"type":"PodmanV0","data":{"services":[{"name":"web","image":"${webImage}","env":{"SECRET":"s3cr3t-value"}${extra}},{"name":"db","image":"${rt.images.db}"}],"lifecycle":{"grace_period_secs":2}}}`;

  before(async function () {
    this.timeout(15 * 60_000);
    await rt.setup();
    nc = await connectTest();
    await ensureFleetResources(nc);
    const kvm = new Kvm(nc);
    desired = await kvm.open(BUCKET_DESIRED_STATE);
    states = await kvm.open(BUCKET_DEVICE_STATE);
  });
  after(async () => {
    await nc.close();
    await rt.teardown();
  });
  beforeEach(async () => {
    device = uniqueDevice();
    stateDir = tempDir("fleet-agent-");
    fake = new RecordingRuntime(rt.make(device));
    app = `app-${device}`;
  });
  afterEach(async () => {
    await agent?.stop(5000);
    agent = null;
    await cleanupDevice(nc, device);
    for (const c of await fake.inner.list()) await fake.inner.remove(c.id);
    rmSync(stateDir, { recursive: true, force: true });
  });

  const start = async (checkpointEvery?: number) => {
    agent = await startAgent(
      { deviceId: device, natsServers: [SHARED_NATS], stateDir, tickSecs: 3600, logLevel: "silent", containerHost: undefined },
      { runtime: fake, logger: silentLogger(), budgets: { stopSlackSecs: 15 }, ...(checkpointEvery ? { checkpointEvery } : {}) },
    );
    await agent.online;
    return agent;
  };
  /** Stops the agent once its journal is published and starts it again, on a wiped state dir if asked. */
  const restart = async (opts: { wipeStateDir?: boolean; checkpointEvery?: number } = {}) => {
    await agent!.publisher.idle(10_000);
    await agent!.stop(5000);
    agent = null;
    if (opts.wipeStateDir) rmSync(stateDir, { recursive: true, force: true });
    fake.clear();
    return start(opts.checkpointEvery);
  };
  const waitState = (deployment: string, pred: (s: DeploymentState) => boolean, what: string) => waitForState(states, device, deployment, pred, what);
  const streamEvents = (deployment: string) => readStreamEvents(jetstream(nc), device, deployment);

  it("put desired → Running with one container id per service; events n = 1.. contiguous; fold = live", async () => {
    const a = await start();
    const t0 = Date.now();
    await desired.put(deploymentKey(device, app), score(rt.images.v1));
    const s = await waitState(app, (x) => x.phase === "Running", "Running");
    const elapsed = Date.now() - t0;
    console.log(`      put → Running in device-state: ${elapsed} ms (${rt.name})`);
    expect(Object.keys(s.container_ids).sort()).to.deep.equal(["db", "web"]);
    for (const [svc, id] of Object.entries(s.container_ids)) expect((await fake.inner.status(id))!.service).to.equal(svc);
    await a.publisher.idle(10_000);
    const events = await streamEvents(app);
    expect(events.map((e) => e.n)).to.deep.equal([1, 2, 3, 4]);
    expect(s.last_event_seq).to.equal(4);
    expect(JSON.stringify(events)).to.not.include("s3cr3t-value");
    // The stream's redacted events fold to the live snapshot once the store gives back the env.
    const live = a.supervisor.snapshot(app)!;
    // A fresh agent journals version 2 only, in the domain vocabulary: in the stream and in its state dir.
    expect(events.every((e) => e.v === 2 && !e.event.type.startsWith("xstate."))).to.equal(true);
    expect(events.map((e) => e.event.type)).to.deep.equal(["desired.updated", "pull.done", "stop.done", "start.done"]);
    const local = readFileSync(join(stateDir, "journal", `${app}.jsonl`), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { v: number; event: { type: string } });
    expect(local.map((e) => [e.v, e.event.type])).to.deep.equal(events.map((e) => [2, e.event.type]));
    const folded = foldJournal({ device, deployment: app }, events.map((e) => (e.event.type === "desired.updated" ? { ...e.event, score: live.context.target!.score } : e.event)));
    expect(snapshotView(folded)).to.equal(snapshotView(live));
    const hb = await new Kvm(nc).open(BUCKET_DEVICE_HEARTBEAT).then((kv) => kv.get(device));
    expect(hb?.json<{ device: string }>().device).to.equal(device);
  });

  it("a changed service is replaced alone; the same score reordered is a no-op; delete removes all", async () => {
    const a = await start();
    await desired.put(deploymentKey(device, app), score(rt.images.v1));
    const s1 = await waitState(app, (x) => x.phase === "Running", "Running v1");
    await desired.put(deploymentKey(device, app), score(rt.images.v2));
    const s2 = await waitState(app, (x) => x.phase === "Running" && x.container_ids["web"] !== s1.container_ids["web"], "Running v2");
    expect(s2.container_ids["db"]).to.equal(s1.container_ids["db"]);
    const stopIdx = fake.calls.findIndex((c) => c.op === "stop" && c.id === s1.container_ids["web"]);
    const startIdx = fake.calls.findIndex((c, i) => i > stopIdx && c.op === "startService" && c.name === `${app}.web`);
    expect(stopIdx).to.be.greaterThan(-1);
    expect(startIdx).to.be.greaterThan(stopIdx);

    await a.publisher.idle(10_000);
    const n = (await streamEvents(app)).length;
    fake.clear();
    const reordered = JSON.stringify({ data: { lifecycle: { grace_period_secs: 2 }, services: [{ env: { SECRET: "s3cr3t-value" }, image: rt.images.v2, name: "web" }, { image: rt.images.db, name: "db" }] }, type: "PodmanV0" });
    await desired.put(deploymentKey(device, app), reordered);
    await new Promise((r) => setTimeout(r, 500));
    await a.publisher.idle(10_000);
    expect((await streamEvents(app)).length, "no event for the same score").to.equal(n);
    expect(fake.calls).to.deep.equal([]);

    await desired.delete(deploymentKey(device, app));
    await waitState(app, (x) => x.state === "removed", "removed");
    expect(await fake.inner.list()).to.deep.equal([]);
  });

  it("a restarted agent recreates nothing, continues the journal at n+1 and keeps its state", async () => {
    let a = await start();
    await desired.put(deploymentKey(device, app), score(rt.images.v1));
    const before = await waitState(app, (x) => x.phase === "Running", "Running");
    a = await restart();
    await a.tick();
    await new Promise((r) => setTimeout(r, 300));
    expect(fake.mutations()).to.deep.equal([]);
    expect(a.supervisor.snapshot(app)!.context.containerIds).to.deep.equal(before.container_ids);
    await desired.put(deploymentKey(device, app), score(rt.images.v2));
    const after = await waitState(app, (x) => x.phase === "Running" && x.container_ids["web"] !== before.container_ids["web"], "Running v2");
    expect(after.last_event_seq).to.equal(8);
    await a.publisher.idle(10_000);
    expect((await streamEvents(app)).map((e) => e.n)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("the local journal drops what is both published and checkpointed; a restart resumes from the checkpoint", async () => {
    let a = await start(4);
    await desired.put(deploymentKey(device, app), score(rt.images.v1));
    const v1 = await waitState(app, (x) => x.phase === "Running", "Running");
    await a.publisher.idle(10_000);
    await desired.put(deploymentKey(device, app), score(rt.images.v2));
    const v2 = await waitState(app, (x) => x.phase === "Running" && x.score_hash !== v1.score_hash, "Running v2");
    await a.publisher.idle(10_000);
    // The checkpoint at n=8 found at least n=4 in the stream.
    await waitFor("the journal compacted", () => a.journal.base(app) >= 4);
    const firstInFile = JSON.parse(readFileSync(a.journal.fileOf(app), "utf8").split("\n")[0]!) as { n: number };
    expect(firstInFile.n).to.equal(a.journal.base(app) + 1);
    a = await restart({ checkpointEvery: 4 });
    expect(a.supervisor.snapshot(app)!.context.containerIds).to.deep.equal(v2.container_ids);
    await a.tick();
    await new Promise((r) => setTimeout(r, 300));
    expect(fake.mutations(), "nothing recreated").to.deep.equal([]);
    await desired.put(deploymentKey(device, app), score(rt.images.v1));
    const v3 = await waitState(app, (x) => x.phase === "Running" && x.score_hash === v1.score_hash, "Running v1 again");
    expect(v3.last_event_seq).to.equal(12);
    await a.publisher.idle(10_000);
    expect((await streamEvents(app)).map((e) => e.n)).to.deep.equal(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it("with its state dir wiped, the agent takes the history back from the stream: nothing recreated, numbering continues", async () => {
    let a = await start();
    await desired.put(deploymentKey(device, app), score(rt.images.v1));
    const before = await waitState(app, (x) => x.phase === "Running", "Running");
    a = await restart({ wipeStateDir: true });
    await waitFor("the deployment resumed from the stream", () => a.supervisor.snapshot(app)?.value === "running");
    await a.tick();
    await new Promise((r) => setTimeout(r, 300));
    expect(fake.mutations(), "nothing recreated").to.deep.equal([]);
    expect(a.supervisor.snapshot(app)!.context.containerIds).to.deep.equal(before.container_ids);
    await desired.put(deploymentKey(device, app), score(rt.images.v2));
    const after = await waitState(app, (x) => x.phase === "Running" && x.score_hash !== before.score_hash, "Running v2");
    expect(after.last_event_seq).to.equal(8);
    await a.publisher.idle(10_000);
    expect((await streamEvents(app)).map((e) => e.n)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("a malformed desired value → Failed with the decode message; containers untouched; heartbeats go on", async () => {
    const a = await start();
    await desired.put(deploymentKey(device, app), score(rt.images.v1));
    const ok = await waitState(app, (x) => x.phase === "Running", "Running");
    fake.clear();
    await desired.put(deploymentKey(device, app), score(rt.images.v2, `,"ports":[{"host_port":"80","container_port":80}]`));
    const bad = await waitState(app, (x) => x.phase === "Failed", "Failed");
    expect(bad.last_error).to.equal('data.services[0].ports[0].host_port: expected number, got "80"');
    expect(bad.container_ids).to.deep.equal(ok.container_ids);
    expect(fake.mutations()).to.deep.equal([]);
    await desired.put(deploymentKey(device, app), "{not json");
    const bad2 = await waitState(app, (x) => x.phase === "Failed" && x.last_error !== bad.last_error, "Failed (malformed)");
    expect(bad2.last_error).to.match(/^\(root\): malformed JSON/);
    const hbKv = await new Kvm(nc).open(BUCKET_DEVICE_HEARTBEAT);
    const rev1 = (await hbKv.get(device))!.revision;
    await a.tick();
    await waitFor("a new heartbeat", async () => ((await hbKv.get(device))!.revision > rev1 ? true : undefined));
    expect((await fake.inner.list()).every((c) => c.state === "running")).to.equal(true);
  });
});
