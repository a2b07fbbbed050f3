// Full desired scores (with their env values) kept by canonical hash, since the journal is
// redacted: `<stateDir>/scores/<hex>.json`, mode 0600, fsynced, written atomically. A file that
// does not read back (emptied, truncated, bit rot) is moved aside and reported, never trusted:
// the score is then taken back from the desired-state history (docs/design.md, "Storage faults").
import { mkdir, readdir, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { canonicalHash } from "../../contracts/canonical-json.js";
import { decodeJson } from "../../contracts/decode.js";
import { ReconcileScore } from "../../contracts/score.codec.js";
import { fsyncDir, removeStaleTemps, StorageError, writeFileDurably } from "../journal/durable-file.js";
import type { StorageHealth } from "../journal/storage.health.js";

const HASH = /^sha256:([0-9a-f]{64})$/;

export class ScoreStore {
  private constructor(readonly dir: string, private readonly health?: StorageHealth) {}

  static async open(stateDir: string, health?: StorageHealth): Promise<ScoreStore> {
    const dir = join(stateDir, "scores");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    removeStaleTemps(dir);
    return new ScoreStore(dir, health);
  }

  fileOf(hash: string) {
    const m = HASH.exec(hash);
    if (!m) throw new Error(`not a score hash: ${JSON.stringify(hash.slice(0, 80))}`);
    return join(this.dir, `${m[1]}.json`);
  }

  /**
   * Stores `score` under `hash`, which must be its canonical hash. Idempotent: a score already on
   * disk intact is not written again (so a full disk does not stop a value seen before). A failed
   * write throws a StorageError naming the file and leaves no temp file.
   */
  async put(hash: string, score: ReconcileScore): Promise<void> {
    const actual = canonicalHash(score);
    if (actual !== hash) throw new Error(`score hash mismatch: given ${hash}, the score hashes to ${actual}`);
    if (await this.get(hash)) return;
    const file = this.fileOf(hash);
    try {
      await writeFileDurably(file, JSON.stringify(ReconcileScore.encode(score)), "writing score");
    } catch (e) {
      const err = StorageError.of("writing score", file, e);
      this.health?.note({ kind: "write_failures", path: file, fault: err.message, action: "the desired value waits; the write is retried" });
      throw err;
    }
  }

  /**
   * The score stored under `hash`, or null when there is none. A file that does not decode to a
   * score of that hash is moved aside (`<hex>.json.corrupt`) and reported: null as well.
   */
  async get(hash: string): Promise<ReconcileScore | null> {
    const file = this.fileOf(hash);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      await this.damaged(file, `unreadable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return null;
    }
    const r = decodeJson(ReconcileScore, text);
    if (!r.ok) {
      await this.damaged(file, text.length === 0 ? "empty file" : `does not decode: ${r.errors[0]}`);
      return null;
    }
    if (canonicalHash(r.value) !== hash) {
      await this.damaged(file, "holds a score of another hash");
      return null;
    }
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

  /** Moves a damaged file out of the way (a rename needs no free space) and reports it. */
  private async damaged(file: string, fault: string) {
    const aside = `${file}.corrupt`;
    const moved = await rename(file, aside).then(
      () => true,
      () => false,
    );
    this.health?.note({
      kind: "corrupt_files",
      path: file,
      fault: `score file ${fault}`,
      action: moved ? `moved to ${aside}; the score is taken back from the desired-state history` : "could not be moved aside; the score is taken back from the desired-state history",
    });
  }
}
