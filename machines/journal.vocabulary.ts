// The one place where the journal's domain vocabulary (contracts/journal-event.codec.ts) meets the
// machine's own events, both ways:
// - `journalEventOf`: the machine event that caused a transition → the v2 event the journal keeps
//   (the transition recorder, and the display of a v1 journal);
// - `machineEventOf`: a v2 event → the machine event that replays it (the fold);
// - `fromV1`: a v1 cause, which is XState's event as it was, → the v2 event it means.
// Only this module knows that XState names a step's outcome `xstate.done.actor.<invoke id>`.
import type { MachineState } from "../contracts/deployment-state.codec.js";
import { DecodeError, decode } from "../contracts/decode.js";
import { DomainEvent, isDomainEventType, type DomainEventOf, type DomainEventType, type JournalCause, type JournalCauseV1, type Step } from "../contracts/journal-event.codec.js";
import { notReadyOf, restartOf, retryAfter, undatedErrorTime, type DeploymentContext, type DeploymentEvent, type RetryStep } from "./deployment.machine.js";
import type { RemoveAllOutput, StartOutput, StepDone, StopOutput, VerifyOutput } from "./deployment.steps.js";
import { servicesNeedingRepair } from "./upgrade.plan.js";

/** A step actor's outcome as XState delivers it to the machine (`actorId` is XState's; the machine reads none). */
type Done<Id extends string, O> = { type: `xstate.done.actor.${Id}`; output: O; actorId?: string };
type Thrown<Id extends string> = { type: `xstate.error.actor.${Id}`; error: unknown; actorId?: string };

/** Every event the deployment machine takes: the agent's, and its step actors' outcomes. */
export type MachineEvent =
  | DeploymentEvent
  | Done<"pull", StepDone>
  | Done<"stopOld", StopOutput>
  | Done<"startNew", StartOutput>
  | Done<"removeAll", RemoveAllOutput>
  | Done<"verify", VerifyOutput>
  | Done<"deadline", StepDone>
  | Done<"retry", StepDone>
  | Thrown<"pull" | "stopOld" | "startNew" | "removeAll" | "verify">;

/** Machine event type → the domain type that journals it. */
const DOMAIN_TYPE = {
  UPDATE: "desired.updated",
  REJECT: "desired.rejected",
  DELETE: "desired.deleted",
  TICK: "liveness.repair",
  "xstate.done.actor.pull": "pull.done",
  "xstate.error.actor.pull": "pull.failed",
  "xstate.done.actor.stopOld": "stop.done",
  "xstate.error.actor.stopOld": "stop.failed",
  "xstate.done.actor.startNew": "start.done",
  "xstate.error.actor.startNew": "start.failed",
  "xstate.done.actor.removeAll": "remove.done",
  "xstate.error.actor.removeAll": "remove.failed",
  "xstate.done.actor.deadline": "step.timed_out",
  // A readiness step that found a service not ready is `verify.failed` (journalEventOf).
  "xstate.done.actor.verify": "verify.done",
  "xstate.error.actor.verify": "verify.failed",
  "xstate.done.actor.retry": "step.retried",
  SERVICE_EXITED: "service.exited",
  SERVICE_UNHEALTHY: "service.unhealthy",
  SERVICE_HEALTHY: "service.healthy",
  SERVICE_RESTARTED: "service.restarted",
} as const satisfies Record<MachineEvent["type"], DomainEventType>;

/** The step each state runs. */
const STEP_OF_STATE: Readonly<Record<string, Step>> = { pulling: "pull", stoppingOld: "stop", startingNew: "start", verifying: "verify", removing: "remove" };
/** The steps a failure of which is retried forward (docs/design.md, "Service health"). */
const RETRIED: Readonly<Partial<Record<Step, RetryStep>>> = { pull: "pull", start: "start", verify: "verify" };
const stepOf = (state: unknown): Step | undefined => (typeof state === "string" && Object.hasOwn(STEP_OF_STATE, state) ? STEP_OF_STATE[state] : undefined);

export const isMachineEvent = (e: { type: string }): e is MachineEvent => Object.hasOwn(DOMAIN_TYPE, e.type);

/** The domain name of a machine event type (`xstate.done.actor.stopOld` → `stop.done`), or null for none. */
export function domainTypeOf(machineType: string): DomainEventType | null {
  const e = { type: machineType };
  return isMachineEvent(e) ? DOMAIN_TYPE[e.type] : null;
}

/** True in a state that runs a step: a deployment restored there re-runs it (and journals `agent.resumed`). */
export const isStepState = (state: string): boolean => stepOf(state) !== undefined;

/** What the translation needs of the snapshot a machine event was taken in. */
export interface Before {
  value: unknown;
  context: DeploymentContext;
}

/**
 * The journal's name for the machine event that caused a transition, with its payload. `before` is
 * the snapshot the event was taken in: it says which images a pull fetched, which services a tick
 * repairs, which step timed out, and dates an error that carries no time of its own.
 */
export function journalEventOf(event: MachineEvent, before: Before): DomainEvent {
  switch (event.type) {
    case "UPDATE":
      // The same score again while failed is the operator's retry (the only way it changes anything there).
      if (before.value === "failed" && event.hash === before.context.desiredHash) return { type: "desired.retried", at: event.at, hash: event.hash, revision: event.revision };
      return { type: "desired.updated", at: event.at, hash: event.hash, revision: event.revision, score: event.score, ...(event.signedAt ? { signed_at: event.signedAt } : {}) };
    case "REJECT":
      return { type: "desired.rejected", at: event.at, revision: event.revision, error: event.error };
    case "DELETE":
      return { type: "desired.deleted", at: event.at, revision: event.revision };
    case "TICK": {
      const ctx = before.context;
      return {
        type: "liveness.repair",
        at: event.at,
        services: servicesNeedingRepair(ctx.applied, ctx.containerIds, event.containers),
        observed: event.containers.map((c) => ({ service: c.service, id: c.id, state: c.state })),
      };
    }
    case "SERVICE_RESTARTED":
      return { type: "service.restarted", at: event.at, service: event.service, id: event.id, restarts: event.restarts, by: event.by };
    case "xstate.done.actor.pull":
      return { type: "pull.done", at: event.output.at, images: [...(before.context.plan?.pull ?? [])] };
    case "xstate.done.actor.stopOld": {
      const o = event.output;
      return { type: "stop.done", at: o.at, stopped: o.stopped, swept: o.swept ?? [], ...(o.failure ? { failure: failureOf(o.failure) } : {}) };
    }
    case "xstate.done.actor.startNew": {
      const o = event.output;
      const failure = o.failure ? { ...failureOf(o.failure), ...(o.failure.id !== undefined ? { id: o.failure.id } : {}) } : undefined;
      return { type: "start.done", at: o.at, started: o.started, ...(failure ? { failure, retry_at: retryAt(before, "start", o.at) } : {}) };
    }
    case "xstate.done.actor.verify": {
      const o = event.output;
      if (!o.failure) return { type: "verify.done", at: o.at, ready: o.ready };
      return { type: "verify.failed", at: o.at, service: o.failure.service, reason: o.failure.reason, retry_at: retryAt(before, "verify", o.at) };
    }
    case "xstate.error.actor.verify": {
      const at = timeOf(event.error) ?? undatedErrorTime(before.context);
      return { type: "verify.failed", at, ...notReadyOf(before.context, event.error), retry_at: retryAt(before, "verify", at) };
    }
    case "xstate.done.actor.retry": {
      const step = before.context.retry?.step;
      if (!step) throw new Error("a forward retry came due with none armed");
      return { type: "step.retried", at: event.output.at, step };
    }
    case "SERVICE_EXITED":
      return {
        type: "service.exited",
        at: event.at,
        service: event.service,
        exit_code: event.exitCode,
        restart_at: restartOf(before.context, event.service, event.at, {}).services?.[event.service]?.restartAt ?? null,
      };
    case "SERVICE_UNHEALTHY":
      return { type: "service.unhealthy", at: event.at, service: event.service, output: event.output };
    case "SERVICE_HEALTHY":
      return { type: "service.healthy", at: event.at, service: event.service, output: event.output };
    case "xstate.done.actor.removeAll": {
      const o = event.output;
      return { type: "remove.done", at: o.at, removed: o.removed, ...(o.failure ? { failure: failureOf(o.failure) } : {}) };
    }
    case "xstate.done.actor.deadline": {
      const step = stepOf(before.value);
      if (!step) throw new Error(`a step deadline fired in ${String(before.value)}, which runs no step`);
      const retried = RETRIED[step];
      return { type: "step.timed_out", at: event.output.at, step, ...(retried ? { retry_at: retryAt(before, retried, event.output.at) } : {}) };
    }
    case "xstate.error.actor.pull":
    case "xstate.error.actor.startNew": {
      const at = timeOf(event.error) ?? undatedErrorTime(before.context);
      return { type: DOMAIN_TYPE[event.type], at, error: messageOf(event.error), retry_at: retryAt(before, event.type === "xstate.error.actor.pull" ? "pull" : "start", at) };
    }
    case "xstate.error.actor.stopOld":
    case "xstate.error.actor.removeAll": {
      return { type: DOMAIN_TYPE[event.type], at: timeOf(event.error) ?? undatedErrorTime(before.context), error: messageOf(event.error) };
    }
  }
}

/**
 * The machine event that replays a journaled one, taken in `before`; null for those the machine does
 * not take (`agent.resumed`, `liveness.repair` of nothing).
 */
export function machineEventOf(e: DomainEvent, before: Before): MachineEvent | null {
  switch (e.type) {
    case "desired.updated":
      return { type: "UPDATE", score: e.score, hash: e.hash, revision: e.revision, at: e.at, ...(e.signed_at ? { signedAt: e.signed_at } : {}) };
    case "desired.retried": {
      // The same score as the target: the journal keeps its hash only.
      const target = before.context.target;
      return target && target.hash === e.hash ? { type: "UPDATE", score: target.score, hash: e.hash, revision: e.revision, at: e.at } : null;
    }
    case "verify.done":
      return { type: "xstate.done.actor.verify", output: { ready: e.ready, at: e.at } };
    case "verify.failed":
      return { type: "xstate.done.actor.verify", output: { ready: [], failure: { service: e.service, reason: e.reason }, at: e.at } };
    case "step.retried":
      return { type: "xstate.done.actor.retry", output: { at: e.at } };
    case "service.exited":
      return { type: "SERVICE_EXITED", service: e.service, exitCode: e.exit_code, at: e.at };
    case "service.unhealthy":
      return { type: "SERVICE_UNHEALTHY", service: e.service, output: e.output, at: e.at };
    case "service.healthy":
      return { type: "SERVICE_HEALTHY", service: e.service, output: e.output, at: e.at };
    case "service.restarted":
      return { type: "SERVICE_RESTARTED", service: e.service, id: e.id, restarts: e.restarts, by: e.by ?? "agent", at: e.at };
    case "desired.rejected":
      return { type: "REJECT", error: e.error, revision: e.revision, at: e.at };
    case "desired.deleted":
      return { type: "DELETE", revision: e.revision, at: e.at };
    case "liveness.repair":
      return { type: "TICK", containers: e.observed.map((c) => ({ id: c.id, service: c.service, state: c.state })), at: e.at };
    case "pull.done":
      return { type: "xstate.done.actor.pull", output: { at: e.at } };
    case "stop.done":
      return { type: "xstate.done.actor.stopOld", output: { stopped: e.stopped, ...(e.swept.length ? { swept: e.swept } : {}), ...(e.failure ? { failure: e.failure } : {}), at: e.at } };
    case "start.done":
      return { type: "xstate.done.actor.startNew", output: { started: e.started, ...(e.failure ? { failure: e.failure } : {}), at: e.at } };
    case "remove.done":
      return { type: "xstate.done.actor.removeAll", output: { removed: e.removed, ...(e.failure ? { failure: e.failure } : {}), at: e.at } };
    case "step.timed_out":
      return { type: "xstate.done.actor.deadline", output: { at: e.at } };
    case "pull.failed":
      return { type: "xstate.error.actor.pull", error: { message: e.error, at: e.at } };
    case "stop.failed":
      return { type: "xstate.error.actor.stopOld", error: { message: e.error, at: e.at } };
    case "start.failed":
      return { type: "xstate.error.actor.startNew", error: { message: e.error, at: e.at } };
    case "remove.failed":
      return { type: "xstate.error.actor.removeAll", error: { message: e.error, at: e.at } };
    // A recovery is not a transition.
    case "agent.resumed":
      return null;
  }
}

/** True for a v2 cause (a name of the vocabulary); anything else was written by a v1 journal, in XState's names. */
export const isDomainCause = (c: JournalCause): c is DomainEvent => isDomainEventType(c.type);

/** A journaled cause of either version as the v2 event it is, or means. `before` as for `journalEventOf`. */
export function domainEventOf(c: JournalCause, before: Before): DomainEvent {
  return isDomainCause(c) ? c : fromV1(c, before);
}

/**
 * A v1 cause as the v2 event it means, decoded exactly (a damaged v1 event is an error naming what
 * is wrong, not a silent wrong fold). `before` as for `journalEventOf`.
 */
export function fromV1(cause: JournalCauseV1, before: Before): DomainEvent {
  const what = `v1 journal event ${JSON.stringify(cause.type.slice(0, 60))}`;
  if (!isMachineEvent(cause)) throw new DecodeError(what, ["type: not an event of the deployment machine"]);
  let candidate: DomainEvent;
  try {
    candidate = journalEventOf(cause, before);
  } catch (e) {
    throw new DecodeError(what, [(e as Error).message]);
  }
  // A v1 agent did not retry a failed step: its events say nothing of when a retry would be.
  if ("retry_at" in candidate) {
    const { retry_at: _, ...rest } = candidate;
    candidate = rest as DomainEvent;
  }
  const r = decode(DomainEvent, candidate);
  if (!r.ok) throw new DecodeError(what, r.errors);
  return r.value;
}

/** The event the agent journals when it restores a deployment caught mid-step (a no-op to the fold). */
export function resumedEvent(state: MachineState, at: number): DomainEventOf<"agent.resumed"> {
  return { type: "agent.resumed", at, state };
}

function failureOf(f: { service: string; message: string }) {
  return { service: f.service, message: f.message };
}

function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === "object" && e !== null && "message" in e && typeof e.message === "string") return e.message;
  return String(e);
}

/** When a failure at `at` in `before` is tried again: the machine's own decision, from the same values. */
function retryAt(before: Before, step: RetryStep, at: number): number {
  return retryAfter(before.context, step, at).at;
}


function timeOf(e: unknown): number | undefined {
  return typeof e === "object" && e !== null && "at" in e && typeof e.at === "number" ? e.at : undefined;
}
