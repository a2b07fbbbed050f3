import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalHash } from "../../contracts/canonical-json.js";
import type { DeploymentState } from "../../contracts/deployment-state.codec.js";
import type { ReconcileScore } from "../../contracts/score.codec.js";
import { DeploymentSupervisor } from "../../agent/deployments/supervisor.js";
import { EventJournal } from "../../agent/journal/journal.js";
import type { JournalEvent } from "../../contracts/journal-event.codec.js";
import { CheckpointStore } from "../../agent/journal/checkpoint.js";
import { silentLogger } from "../../agent/logger.js";
import { ScoreStore } from "../../agent/deployments/score.store.js";
import { FakeRuntime } from "../../runtime/fake.runtime.js";
import { MACHINE_VERSION } from "../../machines/deployment.machine.js";
import { foldJournal } from "../../machines/journal.fold.js";
import { snapshotView } from "../../machines/transition.recorder.js";
import { v1View } from "../support/v1.view.js";

/** Resolves once `pred` holds: for what changes in the runtime without a machine event (a restart). */
async function until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
import { FIXTURE_DIR, fixtureDeployments } from "../support/journal-v1.fixture.js";

const score = (image: string, env: Record<string, string> = { TOKEN: "hunter2" }): ReconcileScore => ({
  type: "PodmanV0",
  // min_ready_secs 0: started is ready (no readiness step), so each upgrade is the four steps counted below.
  data: { services: [{ name: "web", image, env }, { name: "db", image: "img/db:1" }], lifecycle: { grace_period_secs: 3, min_ready_secs: 0 } },
});

describe("deployment supervisor (FakeRuntime, real journal files)", () => {
  let dir: string;
  let fake: FakeRuntime;
  let reports: DeploymentState[];
  let rev = 0;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "fleet-sup-"));
    fake = new FakeRuntime({ device: "dev1" });
    reports = [];
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const supervisor = async (journal = EventJournal.open(dir, "dev1"), checkpointEvery?: number, published?: (deployment: string) => number) =>
    new DeploymentSupervisor({
      device: "dev1",
      runtime: fake,
      journal,
      ...(checkpointEvery ? { checkpoints: CheckpointStore.open(dir), checkpointEvery } : {}),
      ...(published ? { published } : {}),
      scores: await ScoreStore.open(dir),
      sink: { deploymentState: (s) => reports.push(s) },
      logger: silentLogger(),
    });
  const update = (s: ReconcileScore) => ({ kind: "update" as const, deployment: "app", score: s, hash: canonicalHash(s), revision: ++rev });

  it("journals every transition with contiguous n, redacted, and reports after each", async () => {
    const sup = await supervisor();
    await sup.apply(update(score("img/web:1")));
    await sup.idle();
    await sup.shutdown(1000);
    const events = EventJournal.open(dir, "dev1").read("app");
    expect(events.map((e) => e.n)).to.deep.equal([1, 2, 3, 4]);
    expect(events.map((e) => `${e.from}→${e.to}`)).to.deep.equal(["pending→pulling", "pulling→stoppingOld", "stoppingOld→startingNew", "startingNew→running"]);
    expect(JSON.stringify(events)).to.not.include("hunter2");
    const last = reports.at(-1)!;
    expect(last).to.include({ phase: "Running", state: "running", last_event_seq: 4, desired_revision: rev });
    expect(Object.keys(last.container_ids)).to.deep.equal(["web", "db"]);
  });

  it("resumes a deployment killed in stoppingOld: the upgrade completes, one container per service", async () => {
    const journal = EventJournal.open(dir, "dev1");
    const first = await supervisor(journal);
    await first.apply(update(score("img/web:1")));
    await first.idle();
    const gate = fake.hold("stopAndRemove");
    await first.apply(update(score("img/web:2")));
    await gate.reached;
    expect(String(first.snapshot("app")!.value)).to.equal("stoppingOld");
    // The process dies here, once the transition into stoppingOld is on disk: its actors vanish
    // without settling, and the stop it had begun completes behind its back.
    await journal.settled();
    (first as unknown as { actors: Map<string, { stop(): void }> }).actors.forEach((a) => a.stop());
    gate();

    const second = await supervisor();
    expect(await second.recover()).to.deep.equal(["app"]);
    await second.idle();
    const snap = second.snapshot("app")!;
    expect(snap.value).to.equal("running");
    const web = fake.snapshot().filter((c) => c.service === "web");
    expect(web.map((c) => c.image)).to.deep.equal(["img/web:2"]);
    expect(web[0]!.id).to.equal(snap.context.containerIds["web"]);
    expect(fake.snapshot()).to.have.length(2);
    await second.shutdown(1000);

    const ns = EventJournal.open(dir, "dev1").read("app").map((e) => e.n);
    expect(ns).to.deep.equal(ns.map((_, i) => i + 1));
  });

  it("recovery restores full env from the score store and the fold equals the live snapshot", async () => {
    const first = await supervisor();
    await first.apply(update(score("img/web:1")));
    await first.idle();
    const live = first.snapshot("app")!;
    await first.shutdown(1000);

    const second = await supervisor();
    await second.recover();
    const restored = second.snapshot("app")!;
    expect(snapshotView(restored)).to.equal(snapshotView(live));
    expect(restored.context.target!.score.services[0]!.env).to.deep.equal({ TOKEN: "hunter2" });
    fake.clearCalls();
    await second.tick();
    await second.idle();
    expect(fake.mutations(), "no container recreated after a restart").to.deep.equal([]);
    await second.shutdown(1000);
  });

  it("without the full score, recovery refuses to start a container with a placeholder secret", async () => {
    const first = await supervisor();
    await first.apply(update(score("img/web:1")));
    await first.idle();
    const ids = first.snapshot("app")!.context.containerIds;
    await first.shutdown(1000);
    rmSync(join(dir, "scores"), { recursive: true });

    const second = await supervisor();
    await second.recover();
    fake.clearCalls();
    fake.vanish(ids["web"]!);
    await second.tick();
    await second.idle();
    const s = second.snapshot("app")!;
    // Its death is on record and a restart decided, but the restart creates nothing from "<redacted>".
    expect(s.context.services["web"]).to.deep.include({ restarts: 1 });
    await until("the restart looked at web", () => fake.calls.some((c) => c.op === "status" && c.arg === ids["web"]));
    expect(fake.snapshot().some((c) => c.service === "web")).to.equal(false);
    expect(fake.calls.filter((c) => c.op === "startService")).to.deep.equal([]);
    expect(second.phases()).to.deep.equal({ app: "Degraded" });
    await second.shutdown(1000);
  });

  it("a desired change for an invalid deployment name spawns nothing: no actor, no journal, heartbeat phases stay valid", async () => {
    const sup = await supervisor();
    for (const deployment of ["-web", "_web", "web=1", "web.v2"]) {
      await sup.apply({ kind: "reject", deployment, revision: ++rev, error: `key "dev1.${deployment}": invalid deployment name` });
      await sup.apply({ ...update(score("img/web:1")), deployment });
    }
    await sup.apply(update(score("img/web:1")));
    await sup.idle();
    expect(sup.deployments()).to.deep.equal(["app"]);
    expect(Object.keys(sup.phases())).to.deep.equal(["app"]);
    expect(EventJournal.open(dir, "dev1").deployments()).to.deep.equal(["app"]);
    expect(reports.every((r) => r.deployment === "app")).to.equal(true);
    await sup.shutdown(1000);
  });

  it("recovers from a checkpoint plus the journal's tail to the same snapshot as the whole fold", async () => {
    const first = await supervisor(undefined, 3);
    await first.apply(update(score("img/web:1")));
    await first.idle();
    await first.apply(update(score("img/web:2")));
    await first.idle();
    const live = first.snapshot("app")!;
    await first.shutdown(1000);
    const events = EventJournal.open(dir, "dev1").read("app");
    expect(events).to.have.length(8);
    const cp = CheckpointStore.open(dir).get("dev1", "app")!;
    expect(cp.n).to.equal(6);
    expect(snapshotView(foldJournal({ device: "dev1", deployment: "app" }, events.slice(6).map((e) => e.event), cp.snapshot))).to.equal(snapshotView(live));

    const second = await supervisor(undefined, 3);
    await second.recover();
    expect(snapshotView(second.snapshot("app")!)).to.equal(snapshotView(live));
    await second.shutdown(1000);

    // A checkpoint that can't be read is ignored: the whole journal is folded.
    writeFileSync(join(dir, "checkpoints", "app.json"), "{torn");
    const third = await supervisor(undefined, 3);
    await third.recover();
    expect(snapshotView(third.snapshot("app")!)).to.equal(snapshotView(live));
    await third.shutdown(1000);
  });

  it("compacts the journal through what is both checkpointed and published, and recovers from it to the same snapshot", async () => {
    let published = 0;
    const journal = EventJournal.open(dir, "dev1");
    const first = await supervisor(journal, 4, () => published);
    await first.apply(update(score("img/web:1")));
    await first.idle();
    // Nothing published yet: the checkpoint at n=4 compacts nothing.
    expect(journal.base("app")).to.equal(0);
    published = 6;
    for (const image of ["img/web:2", "img/web:3"]) {
      await first.apply(update(score(image)));
      await first.idle();
    }
    const live = first.snapshot("app")!;
    await first.shutdown(1000);
    // Checkpoint at n=12, published through 6: events 1–6 are gone from the file and from memory.
    expect(journal.lastN("app")).to.equal(12);
    expect(journal.base("app")).to.equal(6);
    expect(journal.read("app").map((e) => e.n)).to.deep.equal([7, 8, 9, 10, 11, 12]);
    const reopened = EventJournal.open(dir, "dev1");
    expect(reopened.read("app").map((e) => e.n)).to.deep.equal([7, 8, 9, 10, 11, 12]);

    const second = await supervisor(reopened, 4, () => published);
    await second.recover();
    expect(snapshotView(second.snapshot("app")!)).to.equal(snapshotView(live));
    fake.clearCalls();
    await second.tick();
    await second.idle();
    expect(fake.mutations()).to.deep.equal([]);
    // Numbering goes on after the compacted part.
    await second.apply(update(score("img/web:4")));
    await second.idle();
    expect(reopened.read("app").at(-1)!.n).to.equal(16);
    await second.shutdown(1000);
  });

  it("a compacted journal whose checkpoint is gone is not resumed from a wrong fold: its first desired value rebuilds it from the stream", async () => {
    const journal = EventJournal.open(dir, "dev1");
    const stream: JournalEvent[] = [];
    journal.onAppend((e) => stream.push(e));
    const first = await supervisor(journal, 4, () => Number.MAX_SAFE_INTEGER);
    const v2 = update(score("img/web:2"));
    await first.apply(update(score("img/web:1")));
    await first.idle();
    await first.apply(v2);
    await first.idle();
    const live = first.snapshot("app")!;
    await first.shutdown(1000);
    expect(journal.base("app")).to.equal(7);
    rmSync(join(dir, "checkpoints", "app.json"));

    const second = new DeploymentSupervisor({
      device: "dev1",
      runtime: fake,
      journal: EventJournal.open(dir, "dev1"),
      scores: await ScoreStore.open(dir),
      sink: { deploymentState: (s) => reports.push(s) },
      logger: silentLogger(),
      streamHistory: async () => stream,
    });
    expect(await second.recover()).to.deep.equal([]);
    expect(second.snapshot("app")).to.equal(undefined);
    fake.clearCalls();
    await second.apply({ ...v2, revision: ++rev });
    await second.idle();
    expect(snapshotView(second.snapshot("app")!)).to.equal(snapshotView(live));
    expect(fake.mutations(), "the same score again changes nothing").to.deep.equal([]);
    await second.shutdown(1000);
  });

  it("journals version 2 only, in the domain vocabulary: none of XState's names, in the file or in memory", async () => {
    const sup = await supervisor();
    await sup.apply(update(score("img/web:1")));
    await sup.idle();
    fake.crash(sup.snapshot("app")!.context.containerIds["web"]!);
    await sup.tick();
    await sup.idle();
    await sup.apply({ kind: "reject", deployment: "app", revision: ++rev, error: "bad score" });
    await sup.apply({ kind: "delete", deployment: "app", revision: ++rev });
    await sup.idle();
    await sup.shutdown(1000);
    const lines = readFileSync(join(dir, "journal", "app.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { v: number; event: { type: string } });
    expect(lines.every((l) => l.v === 2)).to.equal(true);
    expect(lines.map((l) => l.event.type)).to.deep.equal([
      "desired.updated", "pull.done", "stop.done", "start.done", "service.exited", "desired.rejected", "desired.deleted", "remove.done",
    ]);
    expect(EventJournal.open(dir, "dev1").read("app").some((e) => e.event.type.startsWith("xstate."))).to.equal(false);
    expect(foldJournal({ device: "dev1", deployment: "app" }, EventJournal.open(dir, "dev1").read("app").map((e) => e.event)).value).to.equal("removed");
  });

  it("a deployment restored mid-step journals agent.resumed before the re-run step's outcome; the fold takes it as a no-op", async () => {
    const journal = EventJournal.open(dir, "dev1");
    const first = await supervisor(journal);
    await first.apply(update(score("img/web:1")));
    await first.idle();
    const gate = fake.hold("stopAndRemove");
    await first.apply(update(score("img/web:2")));
    await gate.reached;
    await journal.settled();
    (first as unknown as { actors: Map<string, { stop(): void }> }).actors.forEach((a) => a.stop());
    gate();
    const before = journal.lastN("app");

    const second = await supervisor();
    await second.recover();
    await second.idle();
    const live = second.snapshot("app")!;
    await second.shutdown(1000);
    const events = EventJournal.open(dir, "dev1").read("app");
    const resumed = events[before]!;
    expect(resumed).to.deep.include({ n: before + 1, from: "stoppingOld", to: "stoppingOld" });
    expect(resumed.event).to.deep.include({ type: "agent.resumed", state: "stoppingOld" });
    expect(events.slice(before + 1).map((e) => e.event.type)).to.deep.equal(["stop.done", "start.done"]);
    expect(reports.find((r) => r.last_event_seq === before + 1), "reported with its seq").to.include({ state: "stoppingOld" });
    // Recovered again (settled, not mid-step): no second resumed event; the fold equals the live snapshot.
    const third = await supervisor();
    await third.recover();
    expect(snapshotView(third.snapshot("app")!)).to.equal(snapshotView(live));
    await third.shutdown(1000);
    expect(EventJournal.open(dir, "dev1").read("app").filter((e) => e.event.type === "agent.resumed")).to.have.length(1);
  });

  it("a checkpoint of another machine version is ignored: the journal is folded instead", async () => {
    const first = await supervisor(undefined, 3);
    await first.apply(update(score("img/web:1")));
    await first.idle();
    await first.apply(update(score("img/web:2")));
    await first.idle();
    const live = first.snapshot("app")!;
    await first.shutdown(1000);
    const file = join(dir, "checkpoints", "app.json");
    const cp = JSON.parse(readFileSync(file, "utf8")) as { machine: number; n: number; context: { lastError: string | null } };
    expect(cp.machine).to.equal(MACHINE_VERSION);
    expect(CheckpointStore.open(dir).get("dev1", "app")?.n).to.equal(6);
    // Another version's checkpoint (here one that would mislead the fold) is not restored.
    writeFileSync(file, JSON.stringify({ ...cp, machine: MACHINE_VERSION + 1, context: { ...cp.context, lastError: "from another machine" } }));
    expect(CheckpointStore.open(dir).get("dev1", "app")).to.equal(null);
    const { machine: _, ...unversioned } = cp;
    writeFileSync(file, JSON.stringify(unversioned));
    expect(CheckpointStore.open(dir).get("dev1", "app"), "a checkpoint without a version").to.equal(null);
    writeFileSync(file, JSON.stringify({ ...cp, machine: MACHINE_VERSION + 1, context: { ...cp.context, lastError: "from another machine" } }));
    const second = await supervisor(undefined, 3);
    await second.recover();
    expect(snapshotView(second.snapshot("app")!)).to.equal(snapshotView(live));
    await second.shutdown(1000);
  });

  it("upgraded in place: a state dir with a v1 journal (the committed fixture) recovers to its snapshot and goes on in v2", async () => {
    const fixture = FIXTURE_DIR;
    const [expected] = fixtureDeployments();
    const journal = EventJournal.open(dir, "dev1");
    writeFileSync(journal.fileOf("app"), readFileSync(join(fixture, "app.jsonl")));
    const store = await ScoreStore.open(dir);
    for (const [hash, s] of Object.entries(JSON.parse(readFileSync(join(fixture, "scores.json"), "utf8")) as Record<string, ReconcileScore>)) await store.put(hash, s);
    const sup = await supervisor(journal);
    expect(await sup.recover()).to.deep.equal(["app"]);
    expect(v1View(sup.snapshot("app")!)).to.equal(v1View(expected!.view));
    // Its containers are not in this FakeRuntime: the next upgrade starts them afresh, journaled in v2.
    await sup.apply(update(score("img/web:20")));
    await sup.idle();
    const live = sup.snapshot("app")!;
    await sup.shutdown(1000);
    const events = EventJournal.open(dir, "dev1").read("app");
    expect(events.map((e) => e.n)).to.deep.equal(events.map((_, i) => i + 1));
    expect([...new Set(events.map((e) => e.v))]).to.deep.equal([1, 2]);
    expect(events.slice(49).every((e) => e.v === 2)).to.equal(true);
    const again = await supervisor();
    await again.recover();
    expect(snapshotView(again.snapshot("app")!)).to.equal(snapshotView(live));
    await again.shutdown(1000);
  });

  it("a tick makes one list call for all deployments", async () => {
    const sup = await supervisor();
    for (const d of ["a", "b", "c"]) {
      const s = score("img/web:1");
      await sup.apply({ kind: "update", deployment: d, score: s, hash: canonicalHash(s), revision: ++rev });
    }
    await sup.idle();
    fake.clearCalls();
    await sup.tick();
    await sup.idle();
    expect(fake.calls.map((c) => c.op)).to.deep.equal(["list"]);
    await sup.shutdown(1000);
  });

  it("a removed deployment is dropped, and its journal folds to removed", async () => {
    const sup = await supervisor();
    await sup.apply(update(score("img/web:1")));
    await sup.idle();
    await sup.apply({ kind: "delete", deployment: "app", revision: ++rev });
    await new Promise((r) => setTimeout(r, 50));
    expect(sup.deployments()).to.deep.equal([]);
    expect(fake.snapshot()).to.deep.equal([]);
    await sup.shutdown(1000);
    const events = EventJournal.open(dir, "dev1").read("app");
    expect(foldJournal({ device: "dev1", deployment: "app" }, events.map((e) => e.event)).value).to.equal("removed");
    expect(reports.at(-1)).to.include({ state: "removed", phase: "Pending" });
  });

  describe("signed values: a replayed old one is refused (docs/design.md, Signed desired state)", () => {
    const T1 = "2026-12-01T10:00:00.000Z";
    const T2 = "2026-12-01T11:00:00.000Z";
    const T3 = "2026-12-01T12:00:00.000Z";
    const signed = (s: ReconcileScore, signedAt: string) => ({ ...update(s), signedAt });
    const view = () => EventJournal.open(dir, "dev1").read("app");

    it("refuses a different score signed before the one accepted, touching nothing, also after a restart and from a checkpoint", async () => {
      const first = await supervisor(undefined, 3);
      await first.apply(signed(score("img/web:1"), T1));
      await first.idle();
      await first.apply(signed(score("img/web:2"), T2));
      await first.idle();
      const ids = first.snapshot("app")!.context.containerIds;
      expect(first.snapshot("app")!.context.signedAt).to.equal(T2);
      fake.clearCalls();

      await first.apply(signed(score("img/web:1"), T1));
      await first.idle();
      const refused = first.snapshot("app")!;
      expect(refused.value).to.equal("failed");
      expect(refused.context.lastError).to.match(new RegExp(`^signed\\.at: ${T1} is older than ${T2}, .*a replayed old desired state$`));
      expect(reports.at(-1)).to.include({ phase: "Failed", last_error: refused.context.lastError });
      expect(fake.mutations(), "no container touched").to.deep.equal([]);
      expect(refused.context.containerIds).to.deep.equal(ids);
      const live = first.snapshot("app")!;
      await first.shutdown(1000);

      // The signature time is in the journal and the checkpoint: the replay of the journal is the
      // live snapshot, and a restart still refuses the replay.
      expect(CheckpointStore.open(dir).get("dev1", "app")).to.not.equal(null);
      const second = await supervisor(undefined, 3);
      await second.recover();
      expect(snapshotView(second.snapshot("app")!)).to.equal(snapshotView(live));
      const n = view().length;
      await second.apply(signed(score("img/web:1"), "2026-12-01T10:30:00.000Z"));
      await second.idle();
      expect(second.snapshot("app")!.context.lastError).to.match(/a replayed old desired state$/);
      expect(view().length, "the refusal is journaled").to.equal(n + 1);
      expect(fake.mutations()).to.deep.equal([]);

      // A newer signature rolls forward, whatever the score.
      await second.apply(signed(score("img/web:1"), T3));
      await second.idle();
      expect(second.snapshot("app")!.value).to.equal("running");
      expect(second.snapshot("app")!.context.signedAt).to.equal(T3);
      await second.shutdown(1000);
    });

    it("the same score signed again, earlier or later, is no change: nothing journaled, nothing touched (invariant 4)", async () => {
      const sup = await supervisor();
      await sup.apply(signed(score("img/web:1"), T2));
      await sup.idle();
      const n = view().length;
      fake.clearCalls();
      await sup.apply(signed(score("img/web:1"), T3));
      await sup.apply(signed(score("img/web:1"), T1));
      await sup.idle();
      expect(view().length).to.equal(n);
      expect(fake.mutations()).to.deep.equal([]);
      expect(sup.snapshot("app")!.value).to.equal("running");
      await sup.shutdown(1000);
    });

    it("mid-upgrade, a replay is judged against the value queued too", async () => {
      const sup = await supervisor();
      await sup.apply(signed(score("img/web:1"), T1));
      await sup.idle();
      const gate = fake.hold("stopAndRemove");
      await sup.apply(signed(score("img/web:2"), T2));
      await gate.reached;
      await sup.apply(signed(score("img/web:3"), T3));
      // Older than the queued web:3 though newer than the web:2 in flight.
      await sup.apply(signed(score("img/web:4"), "2026-12-01T11:30:00.000Z"));
      expect(sup.snapshot("app")!.context.next).to.include({ kind: "reject" });
      gate();
      await sup.idle();
      expect(sup.snapshot("app")!.context.lastError).to.match(/a replayed old desired state$/);
      await sup.shutdown(1000);
    });
  });
});
