import { expect } from "chai";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalHash } from "../../../contracts/canonical-json.js";
import type { ReconcileScore } from "../../../contracts/score.codec.js";
import { ScoreStore } from "../../../agent/deployments/score.store.js";
import { CheckpointStore } from "../../../agent/journal/checkpoint.js";
import { StorageHealth } from "../../../agent/journal/storage.health.js";
import { memoryLogger } from "../../../agent/logger.js";
import { initialTransition } from "xstate";
import { deploymentMachine, MACHINE_VERSION } from "../../../machines/deployment.machine.js";

const score = (tag: string): ReconcileScore => ({ type: "PodmanV0", data: { services: [{ name: "web", image: `localhost/app:${tag}`, env: { SECRET: "x" } }] } });

describe("ScoreStore", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "scores-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("puts, gets (with env intact), prunes unreferenced scores", async () => {
    const s = await ScoreStore.open(dir);
    const a = score("a");
    const b = score("b");
    const ha = canonicalHash(a);
    const hb = canonicalHash(b);
    await s.put(ha, a);
    await s.put(ha, a);
    await s.put(hb, b);
    const file = join(dir, "scores", `${ha.slice("sha256:".length)}.json`);
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    expect(await s.get(ha)).to.deep.equal(a);
    expect(await s.get(canonicalHash(score("c")))).to.equal(null);
    expect(await s.hashes()).to.deep.equal([ha, hb].sort());
    expect(await s.prune([hb])).to.deep.equal([ha]);
    expect(await s.get(ha)).to.equal(null);
    expect(await s.get(hb)).to.deep.equal(b);
  });

  it("refuses a hash that is not the score's; moves a damaged file aside and reports it, then stores the score again", async () => {
    const health = new StorageHealth(memoryLogger().logger);
    const s = await ScoreStore.open(dir, health);
    let e: unknown;
    await s.put(canonicalHash(score("b")), score("a")).catch((x: unknown) => (e = x));
    expect(String(e)).to.match(/score hash mismatch/);
    const h = canonicalHash(score("a"));
    const file = join(dir, "scores", `${h.slice(7)}.json`);
    for (const [text, fault] of [["", "score file empty file"], ["{", "score file does not decode: (root): malformed JSON"], [JSON.stringify(score("b")), "score file holds a score of another hash"]] as const) {
      writeFileSync(file, text);
      expect(await s.get(h)).to.equal(null);
      expect(readFileSync(`${file}.corrupt`, "utf8")).to.equal(text);
      expect(health.report().last_fault).to.deep.include({ path: file, action: `moved to ${file}.corrupt; the score is taken back from the desired-state history` });
      expect(health.report().last_fault!.fault.startsWith(fault)).to.equal(true);
    }
    expect(health.report().corrupt_files).to.equal(3);
    await s.put(h, score("a"));
    expect(await s.get(h)).to.deep.equal(score("a"));
  });

  it("does not write a score it holds intact again, and clears the temp files a crash left", async () => {
    const s = await ScoreStore.open(dir);
    const h = canonicalHash(score("a"));
    await s.put(h, score("a"));
    const before = statSync(s.fileOf(h)).mtimeMs;
    writeFileSync(join(dir, "scores", `${h.slice(7)}.json.0123456789ab.tmp`), "half");
    await new Promise((r) => setTimeout(r, 20));
    await s.put(h, score("a"));
    expect(statSync(s.fileOf(h)).mtimeMs).to.equal(before);
    await ScoreStore.open(dir);
    expect(readdirSync(join(dir, "scores")).filter((f) => f.endsWith(".tmp"))).to.deep.equal([]);
  });
});

describe("CheckpointStore", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "checkpoints-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("moves a checkpoint that does not read back aside and reports it; one of another machine version is ignored quietly", async () => {
    const health = new StorageHealth(memoryLogger().logger);
    const store = CheckpointStore.open(dir, health);
    const [snap] = initialTransition(deploymentMachine, { device: "d1", deployment: "app" });
    await store.put("app", 4, snap);
    expect(store.get("d1", "app")?.n).to.equal(4);
    const file = join(dir, "checkpoints", "app.json");
    writeFileSync(file, '{"machine":2,"n":4,"value":"running","context":{"de');
    expect(store.get("d1", "app")).to.equal(null);
    expect(existsSync(`${file}.corrupt`)).to.equal(true);
    expect(health.report()).to.deep.include({ corrupt_files: 1 });
    expect(health.report().last_fault).to.deep.include({ path: file, fault: "checkpoint malformed JSON" });
    writeFileSync(file, JSON.stringify({ machine: MACHINE_VERSION + 1, n: 4, value: "running", context: snap.context }));
    expect(store.get("d1", "app")).to.equal(null);
    expect(health.report().corrupt_files, "another version is not damage").to.equal(1);
    writeFileSync(file, JSON.stringify({ machine: MACHINE_VERSION, n: 4, value: "running", context: { ...snap.context, deployment: "other" } }));
    expect(store.get("d1", "app")).to.equal(null);
    expect(health.report().last_fault!.fault).to.equal("checkpoint not a checkpoint of this deployment");
  });
});
