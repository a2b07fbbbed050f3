// One agent per state directory: two would append to the same journals with clashing event numbers.
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { sleep } from "../fleet/sleep.js";
import { StorageError } from "./journal/durable-file.js";
import { retryDelayMs } from "./journal/journal.js";
import type { StorageHealth } from "./journal/storage.health.js";

/** Dirs locked by this process (in-process agents in tests share a pid). */
const held = new Set<string>();

export class StateDirBusyError extends Error {
  constructor(readonly dir: string, readonly pid: number) {
    super(`state dir ${dir} is in use by another fleet-agent (pid ${pid})`);
    this.name = "StateDirBusyError";
  }
}

export interface LockOptions {
  health?: StorageHealth;
  /** Backoff while the lock can't be written (ms); default 1,000 doubling to 30,000. */
  retry?: { firstMs: number; maxMs: number };
  /** Gives up waiting for a writable state dir (a stopping agent). */
  signal?: AbortSignal;
}

/**
 * Takes `<dir>/agent.lock` (a pid file); a lock whose process is gone is taken over. Returns the
 * release. A lock that can't be written (a full or failing disk) is removed again, reported and
 * retried with backoff: the agent does not start on a state dir it can't lock, nor give up on it.
 */
export async function lockStateDir(dir: string, o: LockOptions = {}): Promise<() => void> {
  const file = join(dir, "agent.lock");
  for (let attempt = 1; ; attempt++) {
    try {
      return takeLock(dir, file);
    } catch (e) {
      if (!(e instanceof StorageError) || o.signal?.aborted) throw e;
      const wait = retryDelayMs(attempt, o.retry ?? { firstMs: 1000, maxMs: 30_000 });
      o.health?.note({ kind: "write_failures", path: file, fault: e.message, action: `the agent waits for its state dir; retried in ${wait} ms (attempt ${attempt})` });
      await sleep(wait, o.signal);
    }
  }
}

function takeLock(dir: string, file: string): () => void {
  if (held.has(file)) throw new StateDirBusyError(dir, process.pid);
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, "wx", 0o600);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") throw StorageError.of("writing lock", file, e);
      const pid = Number.parseInt(readFileSync(file, "utf8"), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw new StateDirBusyError(dir, pid);
      rmSync(file, { force: true }); // stale: its agent died (SIGKILL, power loss)
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } catch (e) {
      // An empty lock would read as stale to the next agent: it goes, and the write is tried again.
      closeSync(fd);
      rmSync(file, { force: true });
      throw StorageError.of("writing lock", file, e);
    }
    closeSync(fd);
    held.add(file);
    return () => {
      held.delete(file);
      rmSync(file, { force: true });
    };
  }
  throw new Error(`cannot take ${file}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
