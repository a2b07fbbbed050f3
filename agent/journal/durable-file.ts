// Writes that survive a power cut, and fail cleanly when they can't be made: what the state
// directory's stores share. A failed write leaves the file as it was and no temp file behind, and
// says which path failed with which errno (docs/design.md, "Storage faults").
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, readdirSync, rmSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";

/** A write of the state directory that failed: which one, where, and the errno. */
export class StorageError extends Error {
  constructor(
    /** What was being written, in the domain's words ("journal append", "score", "checkpoint", "lock"). */
    readonly what: string,
    readonly path: string,
    /** The errno name (`ENOSPC`, `EIO`, `EROFS`…), or `EUNKNOWN`. */
    readonly code: string,
    cause: string,
  ) {
    super(`${what} ${path}: ${code}: ${cause}`);
    this.name = "StorageError";
  }

  /** Wraps a failed fs call; a StorageError passes through unchanged. */
  static of(what: string, path: string, e: unknown): StorageError {
    if (e instanceof StorageError) return e;
    const code = (e as NodeJS.ErrnoException | undefined)?.code ?? "EUNKNOWN";
    // Node's message is "CODE: description, syscall 'path'": keep the description only.
    const raw = e instanceof Error ? e.message : String(e);
    return new StorageError(what, path, code, raw.replace(/^[A-Z0-9_]+: /, "").split(", ")[0]!);
  }
}

/** Makes a directory's entries (a new or renamed file) durable. */
export function fsyncDir(dir: string) {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some file systems refuse fsync on a directory; the file itself is synced.
  }
}

/**
 * Replaces `file` atomically (temp file, fsync, rename, fsync of the directory), mode 0600. On any
 * failure the temp file is removed, `file` keeps its old content, and a StorageError naming `file`
 * is thrown.
 */
export async function writeFileDurably(file: string, text: string, what = "write"): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  let created = false;
  try {
    const fh = await open(tmp, "wx", 0o600);
    created = true;
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    created = false;
  } catch (e) {
    // Unlinking frees space, so it works on a full disk too.
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    throw StorageError.of(what, file, e);
  }
  fsyncDir(dirname(file));
}

/**
 * Removes the temp files a write interrupted by a crash or power cut left in `dir` (a failed write
 * removes its own). Called when a store opens: one agent holds the state dir, so none is in use.
 */
export function removeStaleTemps(dir: string): string[] {
  const removed: string[] = [];
  for (const f of readdirSync(dir)) {
    if (!/\.[0-9a-f]{12}\.tmp$/.test(f)) continue;
    rmSync(join(dir, f), { force: true });
    removed.push(f);
  }
  return removed;
}
