// The agent on a state dir that fills up (a real tmpfs) and on one that lost files, against the real
// NATS server, with FakeRuntime: no desired change is lost, every failed write is reported with its
// path and errno, nothing is left behind, and it converges once the disk takes writes again, without
// a restart. Podman's side of the same faults is the e2e suite's (test/e2e/storage.test.ts).
import { expect } from "chai";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { startAgent, type RunningAgent } from "../../../agent/agent.js";
import { memoryLogger } from "../../../agent/logger.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { Heartbeat } from "../../../contracts/heartbeat.codec.js";
import { decodeJson } from "../../../contracts/decode.js";
import { canonicalHash } from "../../../contracts/canonical-json.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_STATE, deploymentKey } from "../../../contracts/wire-names.js";
import { EventJournal } from "../../../agent/journal/journal.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";
import { RecordingRuntime } from "../../support/recording.runtime.js";
import { mountSmallDisk, type SmallDisk } from "../../support/tmpfs.js";
import { SHARED_NATS, cleanupDevice, connectTest, uniqueDevice, waitFor, waitForState } from "../../support/nats.js";

const score = (image: string, env: Record<string, string> = { TOKEN: "t0k3n" }) => ({
  type: "PodmanV0",
  data: { services: [{ name: "web", image, env }, { name: "db", image: "img/db:1", env: { DATA: "/data" } }], lifecycle: { grace_period_secs: 1 } },
});
const hashOf = (s: unknown) => canonicalHash(s);
/** An env whose redacted journal line alone is bigger than a page: its append needs a fresh page of the disk. */
const bulky = () => Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`SETTING_${String(i).padStart(2, "0")}_${"X".repeat(120)}`, `v${i}`]));

describe("agent on a state dir that fills up or loses files (real tmpfs, real NATS, FakeRuntime)", function () {
  this.timeout(120_000);
  let nc: NatsConnection;
  let desired: KV;
  let states: KV;
  let device: string;
  let disk: SmallDisk;
  let agent: RunningAgent | null = null;
  let fake: RecordingRuntime;
  let inner: FakeRuntime;
  let logs: ReturnType<typeof memoryLogger>;

  before(async () => {
    nc = await connectTest();
    await ensureFleetResources(nc);
    const kvm = new Kvm(nc);
    desired = await kvm.open(BUCKET_DESIRED_STATE);
    states = await kvm.open(BUCKET_DEVICE_STATE);
  });
  after(async () => {
    await nc.close();
  });
  beforeEach(async () => {
    device = uniqueDevice();
    disk = await mountSmallDisk(1024);
    inner = new FakeRuntime({ device });
    fake = new RecordingRuntime(inner);
    logs = memoryLogger();
  });
  afterEach(async () => {
    disk.free();
    await agent?.stop(5000);
    agent = null;
    await cleanupDevice(nc, device);
    await disk.unmount();
  });

  const start = async () => {
    agent = await startAgent(
      { deviceId: device, natsServers: [SHARED_NATS], stateDir: join(disk.dir, "state"), tickSecs: 3600, logLevel: "debug", containerHost: undefined },
      { runtime: fake, logger: logs.logger, storageRetry: { firstMs: 100, maxMs: 400 } },
    );
    await agent.online;
    return agent;
  };
  const put = (s: unknown) => desired.put(deploymentKey(device, "app"), JSON.stringify(s));
  const heartbeat = async () => {
    await agent!.tick();
    await agent!.reporter.flush(5000);
    const e = await (await new Kvm(nc).open(BUCKET_DEVICE_HEARTBEAT)).get(device);
    const r = decodeJson(Heartbeat, e!.string());
    if (!r.ok) throw new Error(r.errors.join("; "));
    return r.value;
  };

  it("a put while the disk is full is reported (path, errno, pending revision) and applied once space is back, with no restart and no temp file", async () => {
    const a = await start();
    const v1 = score("img/web:1");
    await put(v1);
    const r1 = await waitForState(states, device, "app", (x) => x.phase === "Running" && x.score_hash === hashOf(v1), "v1 Running");
    fake.clear();
    disk.fill();
    const v2 = score("img/web:2");
    const rev2 = await put(v2);
    const waiting = await waitForState(states, device, "app", (x) => x.pending_change?.revision === rev2, "v2 reported pending");
    const scoreFile = join(disk.dir, "state", "scores", `${hashOf(v2).slice(7)}.json`);
    expect(waiting.last_error).to.equal(`writing score ${scoreFile}: ENOSPC: no space left on device; desired revision ${rev2} waits, retried in ${waiting.last_error!.match(/retried in (\d+) s/)![1]} s`);
    expect(waiting).to.deep.include({ phase: "Running", state: "running", score_hash: hashOf(v1), container_ids: r1.container_ids });
    expect(fake.mutations(), "nothing touched while the value waits").to.deep.equal([]);
    expect(disk.tempFiles(), "no temp file left by the failed writes").to.deep.equal([]);
    const hb = await heartbeat();
    expect(hb.storage!.write_failures).to.be.greaterThan(0);
    expect(hb.storage!.last_fault).to.deep.include({ path: scoreFile });
    // Still waiting after several retries: never lost, never a loop that floods (backoff).
    await waitFor("a few retries", () => logs.records.filter((l) => l["msg"] === "desired change waits for the state dir").length >= 3);
    const t0 = Date.now();
    disk.free();
    const r2 = await waitForState(states, device, "app", (x) => x.phase === "Running" && x.score_hash === hashOf(v2) && x.pending_change === undefined, "v2 Running");
    console.log(`      space freed → Running on the waiting value: ${Date.now() - t0} ms`);
    expect(r2.last_error).to.equal(null);
    expect(r2.desired_revision).to.equal(rev2);
    expect(r2.container_ids["db"], "the unchanged service kept").to.equal(r1.container_ids["db"]);
    expect(disk.tempFiles()).to.deep.equal([]);
    expect(logs.records.filter((l) => l["msg"] === "applying a desired change failed")).to.deep.equal([]);
    expect(a.supervisor.pending("app")).to.equal(null);
  });

  it("a journal append the full disk refuses is retried in order: the upgrade is recorded once space is back, the journal file intact", async () => {
    const a = await start();
    const v1 = score("img/web:1", bulky());
    const v2 = score("img/web:2", bulky());
    await put(v1);
    await waitForState(states, device, "app", (x) => x.phase === "Running" && x.score_hash === hashOf(v1), "v1 Running");
    await put(v2);
    const r2 = await waitForState(states, device, "app", (x) => x.phase === "Running" && x.score_hash === hashOf(v2), "v2 Running");
    disk.fill();
    // v1 again: its score is on disk already, so the value reaches the machine and its journal line does not fit.
    const rev3 = await put(v1);
    const journalFile = join(disk.dir, "state", "journal", "app.jsonl");
    const faulted = await waitForState(states, device, "app", (x) => (x.last_error ?? "").includes("ENOSPC"), "the journal fault reported");
    expect(faulted.last_error).to.match(new RegExp(`^journal append \\(event ${r2.last_event_seq + 1}\\) ${journalFile.replace(/[.]/g, "\\.")}: ENOSPC: no space left on device`));
    expect(faulted.last_event_seq, "the report stays on the last event on disk").to.equal(r2.last_event_seq);
    expect(disk.tempFiles()).to.deep.equal([]);
    disk.free();
    const r3 = await waitForState(states, device, "app", (x) => x.phase === "Running" && x.score_hash === hashOf(v1) && x.last_error === null, "v1 Running again");
    expect(r3.desired_revision).to.equal(rev3);
    expect(r3.last_event_seq).to.equal(r2.last_event_seq + 4);
    await a.supervisor.idle();
    // The file reads back whole: no torn or doubled line from the failed attempts.
    const reread = EventJournal.open(join(disk.dir, "state"), device);
    expect(reread.read("app").map((e) => e.n)).to.deep.equal(Array.from({ length: r3.last_event_seq }, (_, i) => i + 1));
    expect(readFileSync(journalFile, "utf8").split("\n").filter(Boolean)).to.have.length(r3.last_event_seq);
  });

  it("an emptied score file is moved aside, taken back from the desired-state history by hash at start and written back; counted in the heartbeat", async () => {
    let a = await start();
    const v1 = score("img/web:1");
    await put(v1);
    await waitForState(states, device, "app", (x) => x.phase === "Running", "v1 Running");
    await a.publisher.idle(10_000);
    await a.stop(5000);
    const scores = join(disk.dir, "state", "scores");
    const file = join(scores, `${hashOf(v1).slice(7)}.json`);
    writeFileSync(file, "");
    a = await start();
    // Recovered before NATS is in reach (offline first), then filled from KV once it is.
    const snap = a.supervisor.snapshot("app")!;
    expect(snap.context.applied["web"]!.service.env).to.deep.equal({ TOKEN: "t0k3n" });
    expect(snap.context.target!.score.services[0]!.env).to.deep.equal({ TOKEN: "t0k3n" });
    expect(JSON.parse(readFileSync(file, "utf8"))).to.deep.equal(v1);
    expect(readFileSync(`${file}.corrupt`, "utf8")).to.equal("");
    const hb = await heartbeat();
    expect(hb.storage).to.deep.include({ corrupt_files: 1, missing_scores: 1 });
    expect(hb.storage!.last_fault!.action).to.equal("taken back from the desired-state history; written back");
    expect(logs.records.filter((l) => l["msg"] === "state dir damage found").map((l) => [l["kind"], l["path"]])).to.deep.equal([
      ["corrupt_files", file],
      ["missing_scores", file],
    ]);
  });

  it("a deployment whose env is nowhere on record is repaired by writing its desired value again", async () => {
    let a = await start();
    const v1 = score("img/web:1");
    await put(v1);
    const r1 = await waitForState(states, device, "app", (x) => x.phase === "Running", "v1 Running");
    // Five values that fail to pull push v1 out of the key's KV history (5 revisions are kept).
    for (let i = 0; i < 5; i++) {
      const bad = score(`img/absent:${i}`, { TOKEN: `other-${i}` });
      inner.failPull(`img/absent:${i}`);
      await put(bad);
      await waitForState(states, device, "app", (x) => x.phase === "Failed" && x.score_hash === hashOf(bad), `bad ${i} Failed`);
    }
    await a.publisher.idle(10_000);
    await a.stop(5000);
    rmSync(join(disk.dir, "state", "scores"), { recursive: true });
    a = await start();
    await a.supervisor.idle();
    expect(a.supervisor.snapshot("app")!.context.applied["db"]!.service.env, "v1's env is nowhere: kept redacted").to.deep.equal({ DATA: "<redacted>" });
    expect(a.supervisor.snapshot("app")!.context.target!.score.services[0]!.env, "the current value's env is back").to.deep.equal({ TOKEN: "other-4" });
    const hb = await heartbeat();
    expect(hb.storage!.missing_scores).to.be.greaterThan(0);
    expect(hb.storage!.last_fault!.action).to.equal("kept redacted: the running containers are left alone, but they can't be recreated until the desired value is written again");
    inner.vanish(r1.container_ids["db"]!);
    fake.clear();
    await put(v1);
    await waitForState(states, device, "app", (x) => x.phase === "Running" && x.score_hash === hashOf(v1), "v1 Running again");
    await a.tick();
    const repaired = await waitForState(states, device, "app", (x) => x.phase === "Running" && x.container_ids["db"] !== r1.container_ids["db"], "db recreated");
    expect(repaired.container_ids["web"], "web untouched").to.equal(r1.container_ids["web"]);
    const starts = fake.calls.filter((c) => c.op === "startService");
    expect(starts.map((c) => [c.name, c.op === "startService" ? c.env : null])).to.deep.equal([["app.db", { DATA: "/data" }]]);
  });
});
