// e2e: the device's state dir fails under the compiled agent, as a bad SD card would: it fills up (a
// real tmpfs), its score files are emptied and deleted, its checkpoint is garbage, its journal's
// last line is torn by a power cut, and the whole of it is lost after each of the crash matrix's
// histories. Each case converges without a restart of the agent beyond the one that found the
// damage; healthy, unchanged containers keep their ids; the fault is logged and counted in the
// heartbeat; and the next upgrade of one service touches only that service.
import { expect } from "chai";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DeploymentState } from "../../contracts/deployment-state.codec.js";
import { TEST_IMAGES } from "../support/podman.env.js";
import { mountSmallDisk, type SmallDisk } from "../support/tmpfs.js";
import { CRASH_HISTORIES, hashOf, waitUntil, withSide } from "./support/crash.histories.js";
import { startsSeen, useScenario, waitFor, type ContainerEvent, type Scenario } from "./support/scenario.js";

/** Podman events that create, start, stop or remove a container (not health checks or execs). */
const TOUCHING = new Set(["create", "init", "start", "died", "stop", "kill", "remove", "cleanup"]);
const touched = (events: readonly ContainerEvent[], from: number) => events.slice(from).filter((e) => TOUCHING.has(e.action));

type Lifecycle = Parameters<typeof withSide>[1];
const lifecycleOf = (score: unknown): Lifecycle => (score as { data: { lifecycle: Lifecycle } }).data.lifecycle;

/** The next upgrade changes web's image only: side keeps its container, and Podman sees web alone touched. */
async function upgradeWebOnly(s: Scenario, events: ContainerEvent[], lifecycle: Lifecycle): Promise<number> {
  const before = (await s.state("app"))!;
  const web = (await s.containersOf("app")).find((c) => c.Labels?.["io.fleet.service"] === "web")!;
  const image = web.Image.endsWith(":v1") ? TEST_IMAGES.v2 : TEST_IMAGES.v1;
  const next = withSide({ name: "web", image }, lifecycle);
  const mark = events.length;
  const t0 = Date.now();
  await s.put("app", next);
  const after = await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(next), "Running on an upgrade of web alone", 60_000);
  const ms = Date.now() - t0;
  expect(after.container_ids["side"], "the unchanged service keeps its container").to.equal(before.container_ids["side"]);
  expect(after.container_ids["web"]).to.not.equal(before.container_ids["web"]);
  await startsSeen(events, [after.container_ids["web"]!]);
  const other = touched(events, mark).filter((e) => e.service !== "web");
  expect(other.map((e) => `${e.action} ${e.name}`), "nothing but web touched by the upgrade").to.deep.equal([]);
  return ms;
}

/** Waits for `ticks` more heartbeats (the agent's own signal that its ticks ran) and returns the last. */
async function heartbeats(s: Scenario, ticks: number) {
  let last = (await s.heartbeat())?.at ?? "";
  for (let i = 0; i < ticks; i++) {
    last = await waitFor("a newer heartbeat", async () => {
      const at = (await s.heartbeat())?.at;
      return at && at > last ? at : undefined;
    });
  }
  return (await s.heartbeat())!;
}

describe("e2e: storage faults (a full disk, lost and damaged files, a lost state dir)", function () {
  const sc = useScenario();
  let disk: SmallDisk | null = null;
  // The small disk is unmounted whatever the outcome.
  after(async () => {
    await disk?.unmount();
  });

  it("11. full disk — a put while the state dir's tmpfs is full is reported (path, errno, pending revision) and applied once space is freed, with no restart and no temp file left", async () => {
    const s = sc.current;
    disk = await mountSmallDisk(4096);
    s.useStateDir(join(disk.dir, "state"));
    const events = await s.podmanEvents();
    s.startAgent();
    const v1 = withSide({ name: "web", image: TEST_IMAGES.v1 });
    await s.put("app", v1);
    const r1 = await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v1), "v1 Running");
    await s.caughtUp(["app"]);
    await startsSeen(events, Object.values(r1.container_ids));
    const mark = events.length;
    disk.fill();
    const v2 = withSide({ name: "web", image: TEST_IMAGES.v2 });
    const rev = await s.put("app", v2);
    const waiting = await s.waitState("app", (x) => x.pending_change?.revision === rev, "v2 reported waiting");
    const scoreFile = join(s.stateDir, "scores", `${hashOf(v2).slice(7)}.json`);
    expect(waiting.last_error).to.match(new RegExp(`^writing score ${scoreFile}: ENOSPC: no space left on device; desired revision ${rev} waits, retried in \\d+ s$`));
    expect(waiting).to.deep.include({ phase: "Running", state: "running", score_hash: hashOf(v1), container_ids: r1.container_ids });
    // Retried with backoff, never lost, never a tight loop.
    await waitUntil(() => s.agent!.logs("desired change waits for the state dir").length >= 3, "three retries", 30_000);
    const retries = s.agent!.logs("desired change waits for the state dir").length;
    expect(touched(events, mark), "no container touched while the value waits").to.deep.equal([]);
    expect(disk.tempFiles(), "no temp file left by the failed writes").to.deep.equal([]);
    const hb = (await heartbeats(s, 1)).storage!;
    expect(hb.write_failures).to.be.at.least(3);
    expect(hb.last_fault).to.deep.include({ path: scoreFile });
    const pid = s.agent!.pid;
    const t0 = Date.now();
    disk.free();
    const r2 = await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v2) && x.pending_change === undefined, "v2 Running once space is back", 60_000);
    s.recoveryMs = Date.now() - t0;
    s.recoveryWhat = "space freed → Running on the value that waited (no restart)";
    expect(r2.last_error).to.equal(null);
    expect(r2.desired_revision).to.equal(rev);
    expect(s.agent!.running && s.agent!.pid === pid, "the same agent process").to.equal(true);
    expect(s.agent!.logs("fleet-agent started")).to.have.length(1);
    expect(r2.container_ids["side"]).to.equal(r1.container_ids["side"]);
    expect(disk.tempFiles()).to.deep.equal([]);
    s.notes.push(`${retries} retries while full; write_failures ${hb.write_failures}`);
    await s.verify(["app"]);
  });

  it("12. lost score files — emptied score files are moved aside and taken back from the desired-state history; deleted ones too when a container must be recreated; nothing healthy is touched", async () => {
    const s = sc.current;
    const events = await s.podmanEvents();
    s.startAgent();
    const v1 = withSide({ name: "web", image: TEST_IMAGES.v1, env: { WEB_TOKEN: "w3b-s3cret" } });
    await s.put("app", v1);
    const r1 = await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
    await s.caughtUp(["app"]);
    expect((await s.agent!.stop()).code).to.equal(0);
    const scores = join(s.stateDir, "scores");
    const files = readdirSync(scores).filter((f) => f.endsWith(".json"));
    expect(files).to.have.length(1);
    for (const f of files) writeFileSync(join(scores, f), "");
    await startsSeen(events, Object.values(r1.container_ids));
    const mark = events.length;
    const t0 = Date.now();
    s.startAgent();
    const storage = await waitFor("the heartbeat counts the emptied score and its recall", async () => {
      const st = (await s.heartbeat())?.storage;
      return st && st.corrupt_files >= 1 && st.missing_scores >= 1 ? st : undefined;
    }, 30_000);
    s.recoveryMs = Date.now() - t0;
    s.recoveryWhat = "restart → score taken back from KV (heartbeat counts it)";
    expect(storage.last_fault!.action).to.equal("taken back from the desired-state history; written back");
    const damage = s.agent!.logs("state dir damage found");
    expect(damage.map((l) => l["kind"])).to.deep.equal(["corrupt_files", "missing_scores"]);
    expect(String(damage[0]!["fault"])).to.equal("score file empty file");
    expect(JSON.parse(readFileSync(join(scores, files[0]!), "utf8"))).to.deep.equal(v1);
    expect(existsSync(join(scores, `${files[0]}.corrupt`))).to.equal(true);
    // Deleted now, and side's container removed behind the agent's back: recreated with its env.
    rmSync(join(scores, files[0]!));
    await s.podman.client.remove(r1.container_ids["side"]!, { force: true, timeout: 0 });
    const r2 = await s.waitState("app", (x) => x.phase === "Running" && x.container_ids["side"] !== r1.container_ids["side"], "side recreated", 30_000);
    const env = (await s.podman.podman(["inspect", "--format", "{{json .Config.Env}}", r2.container_ids["side"]!])).stdout;
    expect(JSON.parse(env) as string[]).to.include("SIDE_TOKEN=s1de-s3cret");
    expect(r2.container_ids["web"], "healthy web untouched").to.equal(r1.container_ids["web"]);
    expect(touched(events, mark).filter((e) => e.service === "web")).to.deep.equal([]);
    s.notes.push(`web upgrade alone after it: ${await upgradeWebOnly(s, events, lifecycleOf(v1))} ms`);
    await s.verify(["app"]);
  });

  it("13. garbage checkpoint — a checkpoint that does not read back is moved aside and reported; the deployment is folded from its journal, nothing recreated", async () => {
    const s = sc.current;
    const events = await s.podmanEvents();
    s.startAgent();
    const v1 = withSide({ name: "web", image: TEST_IMAGES.v1 });
    await s.put("app", v1);
    const r1 = await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
    await s.caughtUp(["app"]);
    expect((await s.agent!.stop()).code).to.equal(0);
    const cp = join(s.stateDir, "checkpoints", "app.json");
    mkdirSync(join(s.stateDir, "checkpoints"), { recursive: true });
    writeFileSync(cp, '{"machine":2,"n":4,"value":"running","context":{"device":\u0000\u0017\u00ff');
    await startsSeen(events, Object.values(r1.container_ids));
    const mark = events.length;
    const t0 = Date.now();
    s.startAgent();
    const line = await s.agent!.waitLog("the checkpoint reported", (l) => l.msg === "state dir damage found" && l["path"] === cp);
    await s.agent!.waitLog("resumed from its journal", (l) => l.msg === "resuming deployment from its journal");
    s.recoveryMs = Date.now() - t0;
    s.recoveryWhat = "restart → resumed from the journal past the garbage checkpoint";
    expect(line).to.deep.include({ kind: "corrupt_files", fault: "checkpoint malformed JSON", action: `moved to ${cp}.corrupt; the deployment is folded from its journal (or the stream) instead` });
    expect((await heartbeats(s, 2)).storage!.corrupt_files).to.equal(1);
    expect(touched(events, mark), "nothing recreated").to.deep.equal([]);
    expect((await s.state("app"))!.container_ids).to.deep.equal(r1.container_ids);
    s.notes.push(`web upgrade alone after it: ${await upgradeWebOnly(s, events, lifecycleOf(v1))} ms`);
    await s.verify(["app"]);
  });

  it("14. torn journal line — a power cut mid-append: the half line is cut, logged and counted; nothing recreated, numbering goes on", async () => {
    const s = sc.current;
    const events = await s.podmanEvents();
    s.startAgent();
    const v1 = withSide({ name: "web", image: TEST_IMAGES.v1 });
    await s.put("app", v1);
    const r1 = await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
    await s.caughtUp(["app"]);
    await s.agent!.kill();
    const file = join(s.stateDir, "journal", "app.jsonl");
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    const half = lines.at(-1)!.replace(`"n":${lines.length}`, `"n":${lines.length + 1}`).slice(0, 70);
    appendFileSync(file, half);
    await startsSeen(events, Object.values(r1.container_ids));
    const mark = events.length;
    const t0 = Date.now();
    s.startAgent();
    const line = await s.agent!.waitLog("the torn line reported", (l) => l.msg === "state dir damage found" && l["kind"] === "torn_lines");
    s.recoveryMs = Date.now() - t0;
    s.recoveryWhat = "restart → torn line cut and reported";
    expect(line).to.deep.include({ path: file, fault: `torn last line (${half.length} bytes after event ${lines.length}): a write cut short by a crash or power cut`, action: `cut off; the journal goes on at event ${lines.length + 1}` });
    expect((await heartbeats(s, 2)).storage!.torn_lines).to.equal(1);
    expect(touched(events, mark)).to.deep.equal([]);
    s.notes.push(`web upgrade alone after it: ${await upgradeWebOnly(s, events, lifecycleOf(v1))} ms`);
    await s.verify(["app"]);
  });

  it("16. issue 13's history — a liveness repair, a failed upgrade rolled forward, then failing values that push every applied score out of the KV history, and the state dir lost: rebuilt exactly from the stream and the containers; the next upgrade touches web alone", async () => {
    const s = sc.current;
    const events = await s.podmanEvents();
    s.startAgent();
    const v1 = withSide({ name: "web", image: TEST_IMAGES.v1, env: { WEB_TOKEN: "one" } });
    await s.put("app", v1);
    const r1 = await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
    // A liveness repair: side vanishes and the tick recreates it.
    await s.podman.client.remove(r1.container_ids["side"]!, { force: true, timeout: 0 });
    const r2 = await s.waitState("app", (x) => x.phase === "Running" && x.container_ids["side"] !== r1.container_ids["side"], "side repaired");
    // A failed upgrade, then a roll forward that changes web alone.
    const absent = (i: number) => s.w.registry.ref(`absent/${s.device}`, `v${i}`);
    await s.put("app", withSide({ name: "web", image: absent(0), env: { WEB_TOKEN: "two" } }));
    await s.waitState("app", (x) => x.phase === "Failed", "v2 Failed");
    const v3 = withSide({ name: "web", image: TEST_IMAGES.v3, env: { WEB_TOKEN: "three" } });
    await s.put("app", v3);
    const r3 = await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v3), "v3 Running");
    expect(r3.container_ids["side"]).to.equal(r2.container_ids["side"]);
    // Five values that fail to pull: the key's KV history (5 revisions) holds no applied score any more.
    for (let i = 1; i <= 5; i++) {
      const bad = withSide({ name: "web", image: absent(i), env: { WEB_TOKEN: `bad-${i}` } });
      await s.put("app", bad);
      await s.waitState("app", (x) => x.phase === "Failed" && x.score_hash === hashOf(bad), `bad value ${i} Failed`);
    }
    await s.verify(["app"]);
    const before = (await s.state("app"))!;
    expect((await s.agent!.stop()).code).to.equal(0);
    const mark = events.length;
    rmSync(s.stateDir, { recursive: true, force: true });
    const t0 = Date.now();
    s.startAgent();
    await s.agent!.waitLog("the deployment taken back from the stream", (l) => l.msg === "no local journal: resumed from the stream's history", 60_000);
    const filled = await s.agent!.waitLog("env values put back", (l) => l.msg === "env values put back into the recovered deployment");
    s.recoveryMs = Date.now() - t0;
    s.recoveryWhat = "state dir wiped, applied scores out of KV → rebuilt from the stream and the containers";
    expect(filled["filledFrom"]).to.equal("scores by hash, running witnesses and the containers' env");
    expect(s.agent!.logs("state dir damage found").filter((l) => l["kind"] === "missing_scores" && String(l["action"]).startsWith("kept redacted")), "nothing applied is unknown").to.deep.equal([]);
    expect((await s.state("app"))!.container_ids).to.deep.equal(before.container_ids);
    await heartbeats(s, 2);
    expect(touched(events, mark), "nothing recreated after the wipe").to.deep.equal([]);
    // The roll forward from Failed changes web alone: side (env from its container) is left alone.
    const ms = await upgradeWebOnly(s, events, lifecycleOf(v1));
    s.notes.push(`web upgrade alone after the wipe: ${ms} ms`);
    await s.verify(["app"]);
  });

  for (const h of CRASH_HISTORIES) {
    it(`15${h.id.slice(1)}. wiped state dir after crash history ${h.id} — containers running, the dir lost: the deployment is taken back from the stream, nothing recreated, the next upgrade touches web alone`, async () => {
      const s = sc.current;
      const end = await h.run(s);
      await s.verify(["app"]);
      const crashMs = s.recoveryMs;
      const events = await s.podmanEvents();
      const before: DeploymentState = (await s.state("app"))!;
      expect((await s.agent!.stop()).code).to.equal(0);
      const mark = events.length;
      rmSync(s.stateDir, { recursive: true, force: true });
      const t0 = Date.now();
      s.startAgent();
      await s.agent!.waitLog("the deployment taken back from the stream", (l) => l.msg === "no local journal: resumed from the stream's history", 60_000);
      s.recoveryMs = Date.now() - t0;
      s.recoveryWhat = `state dir wiped after ${h.id} → resumed from the stream`;
      const after = await s.waitState("app", (x) => x.phase === "Running", "Running after the wipe");
      expect(after.container_ids, "every container kept").to.deep.equal(before.container_ids);
      expect(after.score_hash).to.equal(before.score_hash);
      // Two ticks' worth of liveness on the rebuilt deployment: still nothing touched.
      await heartbeats(s, 2);
      expect(touched(events, mark), "nothing recreated after the wipe").to.deep.equal([]);
      const upgradeMs = await upgradeWebOnly(s, events, lifecycleOf(end));
      s.notes.push(`crash history ${h.id} recovered in ${crashMs} ms; web upgrade alone after the wipe: ${upgradeMs} ms`);
      await s.verify(["app"]);
    });
  }
});
