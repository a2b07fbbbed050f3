// A deployment's journal as a timeline: each transition with the snapshot it led to (folded through
// the machine's pure transition, so the container ids at each step are the machine's own), and how
// long the deployment stayed in the state it entered. fleetctl history and the visualiser share it.
import type { AnyEventObject } from "xstate";
import { phaseOf, type MachineState, type Phase } from "../contracts/deployment-state.codec.js";
import type { JournalEvent } from "../contracts/journal-event.codec.js";
import { foldSteps } from "./journal.fold.js";

export interface TimelineStep {
  n: number;
  at: string;
  from: MachineState;
  to: MachineState;
  /** The event that caused the transition, as journaled (env values already redacted by the agent). */
  event: Record<string, unknown>;
  /** A one-line reading of the event. */
  label: string;
  /** From the folded snapshot after this event. */
  state: string;
  phase: Phase;
  container_ids: Record<string, string>;
  last_error: string | null;
  score_hash: string | null;
  /** Time spent in `to` until the next event; null for the last step (still there). */
  spent_ms: number | null;
}

export interface Timeline {
  device: string;
  deployment: string;
  steps: TimelineStep[];
  /** Total time per state over the closed steps. */
  time_in_state: Record<string, number>;
}

/** `xstate.done.actor.pull` → `pull done`; UPDATE → `UPDATE sha256:1a2b… (rev 12)`. */
export function eventLabel(e: Record<string, unknown>): string {
  const type = String(e["type"]);
  const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(type);
  if (m) {
    const err = (e["error"] as { message?: unknown } | undefined)?.message;
    const failure = (e["output"] as { failure?: { service?: unknown; message?: unknown } } | undefined)?.failure;
    if (m[1] === "error") return `${m[2]} error${typeof err === "string" ? `: ${err}` : ""}`;
    return `${m[2]} done${failure ? ` (failed ${String(failure.service)}: ${String(failure.message)})` : ""}`;
  }
  if (type === "UPDATE") return `UPDATE ${String(e["hash"]).slice(0, 15)}… (rev ${String(e["revision"])})`;
  if (type === "REJECT") return `REJECT (rev ${String(e["revision"])}): ${String(e["error"])}`;
  if (type === "DELETE") return `DELETE (rev ${String(e["revision"])})`;
  if (type === "SERVICE_RESTARTED") return `${String(e["service"])} restarted by ${String(e["by"])} (restart ${String(e["restarts"])})`;
  return type;
}

export function buildTimeline(device: string, deployment: string, events: readonly JournalEvent[]): Timeline {
  const snapshots = foldSteps({ device, deployment }, events.map((e) => e.event as AnyEventObject));
  const steps: TimelineStep[] = events.map((e, i) => {
    const s = snapshots[i]!;
    const next = events[i + 1];
    const state = String(s.value);
    return {
      n: e.n,
      at: e.at,
      from: e.from,
      to: e.to,
      event: e.event,
      label: eventLabel(e.event),
      state,
      phase: phaseOf(state as MachineState),
      container_ids: { ...s.context.containerIds },
      last_error: s.context.lastError,
      score_hash: s.context.target?.hash ?? null,
      spent_ms: next ? Date.parse(next.at) - Date.parse(e.at) : null,
    };
  });
  const time_in_state: Record<string, number> = {};
  for (const s of steps) if (s.spent_ms !== null) time_in_state[s.to] = (time_in_state[s.to] ?? 0) + s.spent_ms;
  return { device, deployment, steps, time_in_state };
}
