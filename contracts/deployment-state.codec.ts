// What the agent reports for each deployment in `device-state`.
import * as t from "io-ts";
import { dict, nullable, refine, struct } from "./decode.js";
import { DeploymentName, DeviceId, ServiceName } from "./names.js";
import { ReportSignature } from "./report-signature.js";

export const MACHINE_STATES = ["pending", "pulling", "stoppingOld", "startingNew", "verifying", "running", "failed", "removing", "removed"] as const;
export type MachineState = (typeof MACHINE_STATES)[number];
export const MachineState = t.keyof(Object.fromEntries(MACHINE_STATES.map((s) => [s, null])) as Record<MachineState, null>, "MachineState");

/** Degraded: running, but a service waits to be restarted or keeps failing (docs/design.md, "Service health"). */
export const Phase = t.keyof({ Pending: null, Running: null, Degraded: null, Failed: null }, "Phase");
export type Phase = t.TypeOf<typeof Phase>;

/** running → Running, failed → Failed, every other state → Pending. */
export const phaseOf = (state: MachineState): Phase => (state === "running" ? "Running" : state === "failed" ? "Failed" : "Pending");

const Seq = refine(t.number, "Seq", (n) => (Number.isInteger(n) && n >= 0 ? null : `expected a non-negative integer, got ${n}`));
const ScoreHash = refine(t.string, "ScoreHash", (s) => (/^sha256:[0-9a-f]{64}$/.test(s) ? null : `expected sha256:<64 hex>, got ${JSON.stringify(s.slice(0, 80))}`));
// Date.parse alone takes "1" or "2026" (V8 reads them as years): require the ISO-8601 shape too.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
const IsoTime = refine(
  t.string,
  "IsoTime",
  (s) => (ISO_TIME.test(s) && !Number.isNaN(Date.parse(s)) ? null : `expected an ISO-8601 time, got ${JSON.stringify(s.slice(0, 40))}`),
  { pattern: ISO_TIME.source },
);

const ExitCode = refine(t.number, "ExitCode", (n) => (Number.isInteger(n) ? null : `expected an integer, got ${n}`), { integer: true });

/** One service as the agent last saw it. */
export const ServiceStatus = struct("ServiceStatus", {
  container_id: nullable(t.string),
  image: t.string,
  state: t.keyof({ running: null, exited: null, missing: null, starting: null }, "ServiceRunState"),
  health: t.keyof({ healthy: null, unhealthy: null, starting: null, none: null }, "ServiceHealth"),
  restarts: Seq,
  last_exit_code: nullable(ExitCode),
  restart_at: nullable(IsoTime),
});
export type ServiceStatus = t.TypeOf<typeof ServiceStatus>;

export const DeploymentState = struct("DeploymentState", {
  device: DeviceId,
  deployment: DeploymentName,
  phase: Phase,
  state: MachineState,
  score_hash: nullable(ScoreHash),
  desired_revision: nullable(Seq),
  container_ids: dict("ContainerIds", ServiceName, t.string),
  last_error: nullable(t.string),
  last_event_seq: Seq,
  last_event_at: nullable(IsoTime),
}, {
  // Written by agents with service health; absent from older agents' reports.
  retry_at: nullable(IsoTime),
  services: dict("ServiceStatuses", ServiceName, ServiceStatus),
  /** The device's own signature of this report (docs/design.md, "Report signatures"). */
  signed: ReportSignature,
});
export type DeploymentState = t.TypeOf<typeof DeploymentState>;

export { IsoTime, ScoreHash, Seq };
