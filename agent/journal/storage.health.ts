// What the state directory's stores found wrong with the disk since the agent started: damaged files
// (a torn journal line, a checkpoint or score that does not read back), scores the state dir lacked,
// writes that failed. Each is logged once, with what, where and what was done, and counted for the
// heartbeat, so a failing SD card shows on the operator's side (docs/design.md, "Storage faults").
import type { Logger } from "pino";
import type { StorageReport } from "../../contracts/heartbeat.codec.js";

export type StorageFaultKind = "torn_lines" | "corrupt_files" | "missing_scores" | "write_failures";

export interface StorageFault {
  kind: StorageFaultKind;
  path: string;
  /** What is wrong, e.g. "torn last line (37 bytes)" or "ENOSPC: no space left on device". */
  fault: string;
  /** What the agent did about it. */
  action: string;
}

export class StorageHealth {
  private readonly counts: Record<StorageFaultKind, number> = { torn_lines: 0, corrupt_files: 0, missing_scores: 0, write_failures: 0 };
  private last: StorageReport["last_fault"] = null;
  private readonly log: Logger;

  constructor(logger: Logger, private readonly now: () => number = Date.now) {
    this.log = logger.child({ component: "storage" });
  }

  /** Counts and logs one fault. A failed write is an error (work waits on it); damage found and dealt with, a warning. */
  note(f: StorageFault): void {
    this.counts[f.kind] += 1;
    this.last = { at: new Date(this.now()).toISOString(), path: f.path, fault: f.fault, action: f.action };
    const fields = { kind: f.kind, path: f.path, fault: f.fault, action: f.action, count: this.counts[f.kind] };
    if (f.kind === "write_failures") this.log.error(fields, "state dir write failed");
    else this.log.warn(fields, "state dir damage found");
  }

  /** The heartbeat's `storage` field. */
  report(): StorageReport {
    return { ...this.counts, last_fault: this.last };
  }
}
