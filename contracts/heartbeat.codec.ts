// `device-heartbeat/<device>`: written each tick; its age tells operators a device is alive.
import * as t from "io-ts";
import { dict, nullable, refine, struct } from "./decode.js";
import { IsoTime, Phase, Seq } from "./deployment-state.codec.js";
import { DeploymentName, DeviceId } from "./names.js";
import { ReportSignature } from "./report-signature.js";

/** The last state-dir fault the agent met: where, what, and what it did about it. */
export const StorageFaultReport = struct("StorageFault", {
  at: IsoTime,
  path: t.string,
  fault: t.string,
  action: t.string,
});

/**
 * What the agent's state dir has cost it since the agent started (docs/design.md, "Storage
 * faults"): a card that tears lines or fails writes shows here before anything is lost.
 */
export const StorageReport = struct("StorageReport", {
  /** Journal lines cut at the end of a file: a write a power cut or crash left half done. */
  torn_lines: Seq,
  /** Journal, checkpoint or score files that did not read back; each was moved aside. */
  corrupt_files: Seq,
  /** Full scores the state dir lacked when a recovery or a step needed them. */
  missing_scores: Seq,
  /** Writes (journal, checkpoint, score, lock) that failed; each is retried. */
  write_failures: Seq,
  last_fault: nullable(StorageFaultReport),
});
export type StorageReport = t.TypeOf<typeof StorageReport>;

export const Heartbeat = struct("Heartbeat", {
  device: DeviceId,
  agent_version: t.string,
  at: IsoTime,
  /** deployment → its phase at this tick. */
  deployments: dict("DeploymentPhases", DeploymentName, Phase),
}, {
  /** The agent's tick in seconds: a heartbeat is late by the device's own tick, not a guess (absent from older agents). */
  tick_secs: refine(t.number, "TickSecs", (n) => (Number.isFinite(n) && n > 0 ? null : `expected a positive number of seconds, got ${n}`), { minimum: 0 }),
  /** State-dir faults since the agent started (absent from older agents). */
  storage: StorageReport,
  /** The device's own signature of this report (docs/design.md, "Report signatures"). */
  signed: ReportSignature,
});
export type Heartbeat = t.TypeOf<typeof Heartbeat>;
