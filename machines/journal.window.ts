// One page of a deployment's journal as the visualiser steps through it, without folding the whole
// history (a long-lived deployment has 100,000s of events, and the machine's fold costs ~0.04 ms
// each). What each step shows is what the journal itself establishes, and no more:
// - from, to, the event and its payload: journaled facts;
// - the container ids after each step: every change of a recorded id is in an event's payload
//   (start.done's `started` and failure id, stop.done's `stopped`, remove.done, service.restarted),
//   so from the deployment's first event they are exact; on a later page they are known from the
//   first change the page shows on, and before it from the agent's own report (device-state) when
//   that report is of this page's last event; anything else is marked unknown, never guessed;
// - at each desired.updated, what changed per service against the previous desired score.
import { decode } from "../contracts/decode.js";
import type { JournalEvent } from "../contracts/journal-event.codec.js";
import { PodmanV0Score } from "../contracts/score.codec.js";
import { domainEvent, eventSummary, type DomainEvent } from "./journal.words.js";
import { scoreChanges, type ServiceChange } from "./score.diff.js";

export interface WindowInput {
  /** Consecutive events of one deployment, oldest first. */
  events: readonly JournalEvent[];
  /** The page begins with the deployment's first event: nothing was recorded before it. */
  fromOrigin: boolean;
  /**
   * The score of the last desired.updated before the page: null when there was none (or the
   * deployment was removed since), undefined when it is not known.
   */
  previousScore?: PodmanV0Score | null;
  /** The agent's report (device-state), when its `last_event_seq` is this page's last event. */
  anchor?: { container_ids: Record<string, string>; last_error: string | null };
  /** When the event after the page happened (a newer page exists), for the last step's stay. */
  nextAt?: string | null;
}

export interface WindowStep {
  n: number;
  at: string;
  from: string;
  to: string;
  /** The domain name (`pull.done`) and a one-line reading of what it carried. */
  name: string;
  summary: string;
  /** The event as journaled (env values were redacted by the agent). */
  event: Record<string, unknown>;
  /** At a desired.updated: per service, what changed against the previous desired score; null when that is not known. */
  changes: ServiceChange[] | null;
  /** Why `changes` is null at a desired.updated. */
  changes_note?: string;
  /** Container ids known after this step. */
  container_ids: Record<string, string>;
  /** Services with a recorded container whose id at this step the journal here does not establish. */
  unknown_services: string[];
  /** Other services may have containers recorded before this page (the set is not known). */
  containers_partial: boolean;
  last_error: string | null;
  /** Whether last_error is known at this step. */
  last_error_known: boolean;
  /** Time in `to` until the next event; null while it is still there. */
  spent_ms: number | null;
}

export interface JournalWindow {
  steps: WindowStep[];
  time_in_state: Record<string, number>;
}

/** What an event does to the recorded container ids, read off its payload. */
interface IdEffect {
  set: Array<[string, string]>;
  cleared: string[];
  /** Ids removed (remove.done names ids, not services). */
  removedIds: string[];
  /** Every container was removed: the set is empty and known. */
  all: boolean;
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u);
const strings = (u: unknown): string[] => (Array.isArray(u) ? u.filter((x): x is string => typeof x === "string") : []);
const failure = (p: Record<string, unknown>): { service: string; message: string; id: string | null } | null =>
  isRecord(p["failure"]) && typeof p["failure"]["service"] === "string"
    ? { service: p["failure"]["service"], message: String(p["failure"]["message"] ?? ""), id: typeof p["failure"]["id"] === "string" ? p["failure"]["id"] : null }
    : null;

function idEffect(e: DomainEvent): IdEffect {
  const p = e.payload;
  const out: IdEffect = { set: [], cleared: [], removedIds: [], all: false };
  if (e.name === "start.done") {
    if (isRecord(p["started"])) for (const [s, id] of Object.entries(p["started"])) if (typeof id === "string") out.set.push([s, id]);
    const f = failure(p);
    if (f?.id) out.set.push([f.service, f.id]);
  } else if (e.name === "stop.done") {
    out.cleared.push(...strings(p["stopped"]));
  } else if (e.name === "remove.done") {
    if (failure(p)) out.removedIds.push(...strings(p["removed"]));
    else out.all = true;
  } else if (e.name === "service.restarted" && typeof p["service"] === "string" && typeof p["id"] === "string") {
    out.set.push([p["service"], p["id"]]);
  }
  return out;
}

/**
 * The last error after the event, as the machine records it; undefined: the event leaves it as it
 * was. `from` is the state the event left (the machine names a timed-out step by its state).
 */
function errorAfter(e: DomainEvent, from: string): string | null | undefined {
  const p = e.payload;
  const f = failure(p);
  switch (e.name) {
    case "desired.updated":
    case "desired.retried":
      return null;
    case "desired.rejected":
      return typeof p["error"] === "string" ? p["error"] : "rejected";
    case "stop.done":
      return f ? `stop ${f.service}: ${f.message}` : undefined;
    case "start.done":
      return f ? `start ${f.service}: ${f.message}` : null;
    case "remove.done":
      return f ? `remove ${f.service}: ${f.message}` : null;
    case "step.timed_out":
      return `${from} timed out`;
    case "verify.failed":
      return `verify ${String(p["service"] ?? "")}: ${String(p["reason"] ?? "")}`;
    default:
      return e.name.endsWith(".failed") && typeof p["error"] === "string" ? p["error"] : undefined;
  }
}

export function foldWindow(input: WindowInput): JournalWindow {
  const events = input.events;
  const domain = events.map((e) => domainEvent(e.event, e.from));
  const effects = domain.map(idEffect);

  // Forward: from the page's first event (exact from the deployment's origin).
  const fwd: Array<{ ids: Map<string, string>; absent: Set<string>; complete: boolean; error: string | null | undefined }> = [];
  {
    let ids = new Map<string, string>();
    let absent = new Set<string>();
    let complete = input.fromOrigin;
    let error: string | null | undefined = input.fromOrigin ? null : undefined;
    for (const [i, fx] of effects.entries()) {
      if (fx.all) {
        ids = new Map();
        absent = new Set();
        complete = true;
      }
      for (const s of fx.cleared) (ids.delete(s), absent.add(s));
      for (const id of fx.removedIds) for (const [s, v] of ids) if (v === id) (ids.delete(s), absent.add(s));
      for (const [s, id] of fx.set) (ids.set(s, id), absent.delete(s));
      const err = errorAfter(domain[i]!, events[i]!.from);
      if (err !== undefined) error = err;
      fwd.push({ ids: new Map(ids), absent: new Set(absent), complete, error });
    }
  }

  // Backward: from the agent's report of the last step, undoing each change as an unknown.
  const back: Array<{ ids: Map<string, string>; unknown: Set<string>; complete: boolean } | null> = events.map(() => null);
  if (input.anchor && events.length) {
    const ids = new Map(Object.entries(input.anchor.container_ids));
    const unknown = new Set<string>();
    let complete = true;
    for (let i = events.length - 1; i >= 0; i--) {
      back[i] = { ids: new Map(ids), unknown: new Set(unknown), complete };
      const fx = effects[i]!;
      for (const [s] of fx.set) (ids.delete(s), unknown.add(s));
      for (const s of fx.cleared) unknown.add(s);
      if (fx.all || fx.removedIds.length) complete = false;
    }
  }

  let previous: PodmanV0Score | null | undefined = input.fromOrigin ? null : input.previousScore;
  const steps: WindowStep[] = events.map((e, i) => {
    const d = domain[i]!;
    const f = fwd[i]!;
    const b = back[i];
    const ids = new Map(b?.ids ?? []);
    for (const [s, id] of f.ids) ids.set(s, id);
    const unknown = f.complete ? [] : [...(b?.unknown ?? [])].filter((s) => !f.ids.has(s) && !f.absent.has(s));
    const partial = !f.complete && !(b?.complete ?? false);
    let changes: ServiceChange[] | null = null;
    let changes_note: string | undefined;
    if (d.name === "desired.updated") {
      const r = decode(PodmanV0Score, d.payload["score"]);
      if (!r.ok) changes_note = `the journaled score does not decode: ${r.errors.join("; ")}`;
      else if (previous === undefined) changes_note = "the desired state before it is older than the history read";
      else changes = scoreChanges(previous, r.value);
      previous = r.ok ? r.value : undefined;
    } else if (effects[i]!.all) {
      previous = null;
    }
    const last = i === events.length - 1;
    const errorKnown = f.error !== undefined || (last && input.anchor !== undefined);
    const next = events[i + 1]?.at ?? (last ? input.nextAt ?? null : null);
    return {
      n: e.n,
      at: e.at,
      from: e.from,
      to: e.to,
      name: d.name,
      summary: eventSummary(d),
      event: e.event,
      changes,
      ...(changes_note ? { changes_note } : {}),
      container_ids: Object.fromEntries([...ids].sort(([a], [b]) => a.localeCompare(b))),
      unknown_services: unknown.sort(),
      containers_partial: partial,
      last_error: f.error !== undefined ? f.error : last && input.anchor ? input.anchor.last_error : null,
      last_error_known: errorKnown,
      spent_ms: next ? Date.parse(next) - Date.parse(e.at) : null,
    };
  });
  const time_in_state: Record<string, number> = {};
  for (const s of steps) if (s.spent_ms !== null) time_in_state[s.to] = (time_in_state[s.to] ?? 0) + s.spent_ms;
  return { steps, time_in_state };
}
