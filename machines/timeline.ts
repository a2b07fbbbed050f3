// A deployment's journal as a timeline: each transition with the snapshot it led to (folded through
// the machine's pure transition, so the container ids at each step are the machine's own), and how
// long the deployment stayed in the state it entered. fleetctl history and the visualiser share it.
// Every cause is shown in the journal's vocabulary, a v1 journal's XState events translated.
import type { MachineState, Phase } from "../contracts/deployment-state.codec.js";
import { phaseAt } from "./deployment.report.js";
import type { DomainEvent, JournalEvent } from "../contracts/journal-event.codec.js";
import { foldSteps } from "./journal.fold.js";

export interface TimelineStep {
  n: number;
  at: string;
  from: MachineState;
  to: MachineState;
  /** The event that caused the transition, in the vocabulary (env values already redacted by the agent). */
  event: DomainEvent;
  /** The journal line's version: 1 for an event written in XState's names (shown translated). */
  v: 1 | 2;
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

/** A one-line reading: `desired.updated sha256:1a2b… (rev 12)`, `stop.done (failed web: …)`. */
export function eventLabel(e: DomainEvent): string {
  const failed = (f: { service: string; message: string } | undefined) => (f ? ` (failed ${f.service}: ${f.message})` : "");
  const time = (ms: number) => new Date(ms).toISOString().slice(11, 23);
  const retry = (x: { retry_at?: number }) => (x.retry_at === undefined ? "" : `; retry at ${time(x.retry_at)}`);
  const list = (xs: readonly string[]) => (xs.length ? `: ${xs.join(", ")}` : "");
  switch (e.type) {
    case "desired.updated":
    case "desired.retried":
      return `${e.type} ${e.hash.slice(0, 15)}… (rev ${e.revision})`;
    case "desired.rejected":
      return `${e.type} (rev ${e.revision}): ${e.error}`;
    case "desired.deleted":
      return `${e.type} (rev ${e.revision})`;
    case "pull.done":
      return `${e.type}${list(e.images)}`;
    case "stop.done":
      return `${e.type}${failed(e.failure)}`;
    case "start.done":
      return `${e.type}${failed(e.failure)}${retry(e)}`;
    case "remove.done":
      return `${e.type}${failed(e.failure)}`;
    case "verify.done":
      return `${e.type}${list(e.ready)}`;
    case "verify.failed":
      return `${e.type} ${e.service}: ${e.reason}${retry(e)}`;
    case "pull.failed":
    case "start.failed":
      return `${e.type}: ${e.error}${retry(e)}`;
    case "stop.failed":
    case "remove.failed":
      return `${e.type}: ${e.error}`;
    case "step.timed_out":
      return `${e.type}: ${e.step}${retry(e)}`;
    case "step.retried":
      return `${e.type}: ${e.step}`;
    case "liveness.repair":
      return `${e.type}${list(e.services)}`;
    case "service.exited":
      return `${e.type} ${e.service}${e.exit_code === null ? "" : ` (code ${e.exit_code})`}${e.restart_at === null ? "" : e.restart_at <= e.at ? "; restart now" : `; restart at ${time(e.restart_at)}`}`;
    case "service.restarted":
      return `${e.type} ${e.service} (${e.restarts} restarts${e.by ? `, by ${e.by}` : ""})`;
    case "service.unhealthy":
    case "service.healthy":
      return `${e.type} ${e.service}${e.output ? `: ${e.output.slice(0, 80)}` : ""}`;
    case "agent.resumed":
      return `${e.type} in ${e.state}`;
  }
}

export function buildTimeline(device: string, deployment: string, events: readonly JournalEvent[]): Timeline {
  const folded = foldSteps({ device, deployment }, events.map((e) => e.event));
  const steps: TimelineStep[] = events.map((e, i) => {
    const { snapshot: s, event } = folded[i]!;
    const next = events[i + 1];
    const state = String(s.value);
    return {
      n: e.n,
      at: e.at,
      from: e.from,
      to: e.to,
      event,
      v: e.v,
      label: eventLabel(event),
      state,
      phase: phaseAt(s, event.at),
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
