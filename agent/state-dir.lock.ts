// One agent per state directory: two would append to the same journals with clashing event numbers.
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Dirs locked by this process (in-process agents in tests share a pid). */
const held = new Set<string>();

export class StateDirBusyError extends Error {
  constructor(readonly dir: string, readonly pid: number) {
    super(`state dir ${dir} is in use by another fleet-agent (pid ${pid})`);
    this.name = "StateDirBusyError";
  }
}

/** Takes `<dir>/agent.lock` (a pid file); a lock whose process is gone is taken over. Returns the release. */
export function lockStateDir(dir: string): () => void {
  const file = join(dir, "agent.lock");
  if (held.has(file)) throw new StateDirBusyError(dir, process.pid);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      held.add(file);
      return () => {
        held.delete(file);
        rmSync(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = Number.parseInt(readFileSync(file, "utf8"), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw new StateDirBusyError(dir, pid);
      rmSync(file, { force: true }); // stale: its agent died (SIGKILL, power loss)
    }
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
