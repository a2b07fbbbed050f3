// Full desired scores (with their env values) kept by canonical hash, since the journal is
// redacted: `<stateDir>/scores/<hex>.json`, mode 0600, fsynced, written atomically.
import { mkdir, readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { canonicalHash } from "../../contracts/canonical-json.js";
import { decodeJson } from "../../contracts/decode.js";
import { ReconcileScore } from "../../contracts/score.codec.js";
import { fsyncDir, writeFileDurably } from "../journal/durable-file.js";

const HASH = /^sha256:([0-9a-f]{64})$/;

export class ScoreStore {
  private constructor(readonly dir: string) {}

  static async open(stateDir: string): Promise<ScoreStore> {
    const dir = join(stateDir, "scores");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new ScoreStore(dir);
  }

  private fileOf(hash: string) {
    const m = HASH.exec(hash);
    if (!m) throw new Error(`not a score hash: ${JSON.stringify(hash.slice(0, 80))}`);
    return join(this.dir, `${m[1]}.json`);
  }

  /** Stores `score` under `hash`, which must be its canonical hash. Idempotent. */
  async put(hash: string, score: ReconcileScore): Promise<void> {
    const actual = canonicalHash(score);
    if (actual !== hash) throw new Error(`score hash mismatch: given ${hash}, the score hashes to ${actual}`);
    await writeFileDurably(this.fileOf(hash), JSON.stringify(ReconcileScore.encode(score)));
  }

  /** The score stored under `hash`, or null when there is none (or it no longer decodes). */
  async get(hash: string): Promise<ReconcileScore | null> {
    let text: string;
    try {
      text = await readFile(this.fileOf(hash), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw e;
    }
    const r = decodeJson(ReconcileScore, text);
    if (!r.ok || canonicalHash(r.value) !== hash) return null;
    return r.value;
  }

  /** Hashes of every stored score. */
  async hashes(): Promise<string[]> {
    const out: string[] = [];
    for (const f of await readdir(this.dir)) {
      const m = /^([0-9a-f]{64})\.json$/.exec(f);
      if (m) out.push(`sha256:${m[1]}`);
    }
    return out.sort();
  }

  /** Deletes every score not in `keep` ; returns the hashes removed. */
  async prune(keep: Iterable<string>): Promise<string[]> {
    const keepSet = new Set(keep);
    const removed: string[] = [];
    for (const f of await readdir(this.dir)) {
      const m = /^([0-9a-f]{64})\.json$/.exec(f);
      if (m && keepSet.has(`sha256:${m[1]}`)) continue;
      if (!m) continue;
      await unlink(join(this.dir, f)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
      if (m) removed.push(`sha256:${m[1]}`);
    }
    if (removed.length) fsyncDir(this.dir);
    return removed.sort();
  }
}
