// The abstract model of a deployment for model-based testing: no invocations, no timers. Its events
// are the outcomes of the world (a step succeeds, fails, times out, a container crashes or turns
// unhealthy and the liveness says so, a backoff passes, an update arrives mid-step), its context
// the little the outcomes depend on: which spec each service's recorded container runs, which of
// them are down or unhealthy, which wait for a restart, the target and desired score, the queued
// value, the plan of the step in flight and the forward retry armed. The transitions come from one
// pure function, `next`, so the model reads as a table of rules rather than as a second copy of the
// machine's config.
import { assign, setup, type SnapshotFrom } from "xstate";
import type { SpecId } from "./world.js";

export type ScoreId = 1 | 2 | 3;
/** Three scores: S2 replaces web and adds db; S3 drops web and keeps db unchanged. */
export const MODEL_SCORES: Record<ScoreId, SpecId[]> = { 1: ["w1"], 2: ["w2", "d1"], 3: ["d1"] };
const serviceOf = (spec: SpecId) => (spec.startsWith("w") ? "web" : spec.startsWith("d") ? "db" : "cache");

export type Queued = { k: "u"; s: ScoreId } | { k: "d" } | { k: "r" } | null;
export interface MPlan {
  pull: boolean;
  /** Replaced and removed services, in the real planner's order. */
  stop: string[];
  /** Services to start and their specs, in order. */
  start: [string, SpecId][];
}
/** The step a failed deployment tries again: the pull, or the start (a failed start or readiness). */
export type MRetry = "pull" | "start" | null;
export interface MCtx {
  applied: Record<string, SpecId>;
  down: string[];
  /** Services the machine took as unhealthy and has heard no pass of since. */
  sick: string[];
  /** Services with a restart decided and not carried out yet (it waits for its backoff). */
  pending: string[];
  /** Services whose recorded container is gone (not just exited). */
  vanished: string[];
  target: ScoreId | null;
  desired: ScoreId | null;
  next: Queued;
  plan: MPlan | null;
  retry: MRetry;
}
export type MState = "pending" | "pulling" | "stoppingOld" | "startingNew" | "verifying" | "running" | "failed" | "removing" | "removed";

export type MEvent =
  | { type: "UPDATE"; s: ScoreId }
  | { type: "UPDATE_MIDSTEP"; s: ScoreId }
  | { type: "UPDATE_SAME" }
  /** The same score at a newer revision while failed: the operator's retry. */
  | { type: "UPDATE_RETRY" }
  | { type: "REJECT" }
  | { type: "DELETE" }
  | { type: "TICK" }
  | { type: "CRASH_TICK" }
  | { type: "VANISH_TICK" }
  /** A running service dies and the liveness tells the machine (SERVICE_EXITED). */
  | { type: "EXIT" }
  /** A running service's container is removed behind the agent's back; the liveness tells. */
  | { type: "VANISH" }
  | { type: "UNHEALTHY" }
  | { type: "HEALTHY" }
  /** Time passes until every restart decided is due: the restarts actor carries them out. */
  | { type: "RESTARTS_DUE" }
  /** The forward retry's time comes. */
  | { type: "RETRY_DUE" }
  | { type: "PULL_OK" }
  | { type: "PULL_FAIL" }
  | { type: "STOP_OK" }
  | { type: "STOP_FAIL" }
  | { type: "REMOVE_FAIL" }
  | { type: "START_OK" }
  | { type: "START_FAIL" }
  | { type: "VERIFY_OK" }
  | { type: "VERIFY_FAIL" }
  | { type: "REMOVE_OK" }
  | { type: "LIST_FAIL" }
  | { type: "STEP_THROW" }
  | { type: "TIMEOUT" };
export const EVENT_TYPES: MEvent["type"][] = [
  "UPDATE", "UPDATE_MIDSTEP", "UPDATE_SAME", "UPDATE_RETRY", "REJECT", "DELETE", "TICK", "CRASH_TICK", "VANISH_TICK", "EXIT", "VANISH",
  "UNHEALTHY", "HEALTHY", "RESTARTS_DUE", "RETRY_DUE", "PULL_OK", "PULL_FAIL", "STOP_OK", "STOP_FAIL", "REMOVE_FAIL", "START_OK",
  "START_FAIL", "VERIFY_OK", "VERIFY_FAIL", "REMOVE_OK", "LIST_FAIL", "STEP_THROW", "TIMEOUT",
];

export function planOf(applied: Record<string, SpecId>, s: ScoreId): MPlan {
  const actions: Record<string, string> = {};
  const start: [string, SpecId][] = [];
  for (const spec of MODEL_SCORES[s]) {
    const svc = serviceOf(spec);
    const old = applied[svc];
    const a = !old ? "add" : old === spec ? "unchanged" : "replace";
    actions[svc] = a;
    if (a !== "unchanged") start.push([svc, spec]);
  }
  for (const svc of Object.keys(applied)) if (!(svc in actions)) actions[svc] = "remove";
  return { pull: start.length > 0, stop: Object.keys(actions).filter((n) => actions[n] === "replace" || actions[n] === "remove"), start };
}

type R = { state: MState; ctx: MCtx } | null;
const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();
const without = (xs: readonly string[], drop: readonly string[]) => xs.filter((x) => !drop.includes(x));
const accept = (c: MCtx, s: ScoreId): MCtx => ({ ...c, target: s, desired: s, plan: planOf(c.applied, s), next: null, retry: null });
const up = (c: MCtx) => Object.keys(c.applied).filter((s) => !c.down.includes(s));
/** A recorded container of the target's own spec: the restarts actor may create it again. */
const recreatable = (c: MCtx, svc: string) => c.target !== null && MODEL_SCORES[c.target].includes(c.applied[svc]!);
/** Started (or created) again by a step: no restart of them waits any more, and none is gone. */
const fresh = (c: MCtx, names: readonly string[]): MCtx => ({ ...c, pending: without(c.pending, names), vanished: without(c.vanished, names) });
const live = (state: MState) => state === "running" || state === "failed";
/** Stopped and removed: no longer recorded, nothing about them pending. */
const gone = (c: MCtx, names: readonly string[]): MCtx => {
  const applied = { ...c.applied };
  for (const s of names) delete applied[s];
  return { ...fresh(c, names), applied, down: without(c.down, names), sick: without(c.sick, names) };
};

/** The eventless rules of running and failed: a queued value is taken once a step has settled. */
function settle(state: MState, c: MCtx): { state: MState; ctx: MCtx } {
  if (state === "failed" && c.retry === null) c = { ...c, plan: null };
  if (state !== "running" && state !== "failed") return { state, ctx: c };
  const q = c.next;
  if (q?.k === "u") return { state: "pulling", ctx: accept(c, q.s) };
  if (q?.k === "d") return { state: "removing", ctx: { ...c, desired: null, plan: null, next: null, retry: null } };
  if (q?.k === "r") return { state: "failed", ctx: { ...c, desired: null, plan: null, next: null, retry: null } };
  return { state, ctx: c };
}
/** Failed; retried forward when `retry` says so (a pull, a start, readiness), else not. */
const fail = (c: MCtx, retry: MRetry = null) => settle("failed", { ...c, retry });

/** Queues a value that arrived mid-step (the newest wins; the target's own hash cancels). */
function midstep(state: MState, c: MCtx, e: MEvent): R {
  if (e.type === "UPDATE_MIDSTEP") return { state, ctx: { ...c, next: state !== "removing" && e.s === c.desired ? null : { k: "u", s: e.s } } };
  if (e.type === "REJECT") return { state, ctx: { ...c, next: { k: "r" } } };
  if (e.type === "DELETE") return { state, ctx: { ...c, next: state === "removing" ? null : { k: "d" } } };
  return null;
}

/** The service EXIT, VANISH, UNHEALTHY and a v1 tick's crash act on: the first running one with nothing pending and no sickness. */
const target1 = (c: MCtx) => up(c).filter((s) => !c.sick.includes(s) && !c.pending.includes(s))[0];

/**
 * What the liveness tells a running or failed deployment, and the restarts that follow. One service
 * at a time is in trouble (dead, gone or unhealthy), which keeps the model's states few; the
 * property suite plays crash loops and flapping health over several services.
 */
function liveness(state: MState, c: MCtx, e: MEvent): R {
  const calm = c.pending.length === 0 && c.sick.length === 0;
  const svc = calm ? target1(c) : undefined;
  switch (e.type) {
    case "EXIT":
      return svc ? { state, ctx: { ...c, down: sorted([...c.down, svc]), pending: sorted([...c.pending, svc]) } } : null;
    case "VANISH":
      return svc ? { state, ctx: { ...c, down: sorted([...c.down, svc]), pending: sorted([...c.pending, svc]), vanished: sorted([...c.vanished, svc]) } } : null;
    case "UNHEALTHY":
      return svc ? { state, ctx: { ...c, sick: sorted([...c.sick, svc]), pending: sorted([...c.pending, svc]) } } : null;
    case "HEALTHY": {
      const sick = c.sick[0];
      // A pass before its restart was due: the restart is not needed any more.
      return sick ? { state, ctx: { ...c, sick: without(c.sick, [sick]), pending: without(c.pending, [sick]) } } : null;
    }
    case "RESTARTS_DUE": {
      if (!c.pending.length) return null;
      // A dead one is started again; a gone one is created again only from the target's own spec.
      const stays = c.pending.filter((s) => c.vanished.includes(s) && !recreatable(c, s));
      const back = without(c.pending, stays);
      return { state, ctx: { ...c, down: without(c.down, back), pending: [], vanished: without(c.vanished, back) } };
    }
  }
  return null;
}

/** The model's rules: the outcome of `e` in `state`, or null when `e` cannot happen there. */
export function next(state: MState, c: MCtx, e: MEvent): R {
  if (live(state)) {
    const r = liveness(state, c, e);
    if (r) return r;
  }
  switch (state) {
    case "pending":
      if (e.type === "UPDATE") return { state: "pulling", ctx: accept(c, e.s) };
      if (e.type === "REJECT") return { state: "failed", ctx: { ...c, desired: null } };
      if (e.type === "DELETE") return { state: "removing", ctx: { ...c, desired: null } };
      return null;
    case "pulling":
      if (e.type === "PULL_OK") {
        const q = c.next;
        if (q?.k === "u") return { state: "pulling", ctx: accept(c, q.s) };
        if (q?.k === "d") return { state: "removing", ctx: { ...c, desired: null, plan: null, next: null, retry: null } };
        if (q?.k === "r") return { state: "failed", ctx: { ...c, desired: null, plan: null, next: null, retry: null } };
        return { state: "stoppingOld", ctx: c };
      }
      if (e.type === "PULL_FAIL") return c.plan!.pull ? fail(c, "pull") : null;
      if (e.type === "TIMEOUT") return fail(c, "pull");
      return midstep(state, c, e);
    case "stoppingOld": {
      const stop = c.plan!.stop;
      if (e.type === "STOP_OK") {
        const applied = { ...c.applied };
        for (const s of stop) delete applied[s];
        return { state: "startingNew", ctx: { ...fresh(c, stop), applied, down: without(c.down, stop), sick: without(c.sick, stop), vanished: without(c.vanished, stop) } };
      }
      // The first service to stop fails, in the one call that stops and removes it: it is left as it
      // was. The others (stopped side by side: the model's services have no depends_on and are fewer
      // than STEP_CONCURRENCY) are gone. Not retried. (A container that is gone stops and is removed
      // without fail.)
      const failable = stop.length > 0 && !c.vanished.includes(stop[0]!);
      if (e.type === "STOP_FAIL" || e.type === "REMOVE_FAIL") return failable ? fail(gone(c, stop.slice(1))) : null;
      if (e.type === "STEP_THROW" || e.type === "TIMEOUT") return fail(c);
      return midstep(state, c, e);
    }
    case "startingNew": {
      const start = c.plan!.start;
      if (e.type === "START_OK") {
        const applied = { ...c.applied };
        for (const [s, spec] of start) applied[s] = spec;
        const names = start.map(([s]) => s);
        const started = { ...fresh(c, names), applied, down: without(c.down, names) };
        // Nothing started, nothing to wait for: ready at once.
        return start.length ? { state: "verifying", ctx: started } : settle("running", { ...started, plan: null, retry: null });
      }
      // The first service's container is created but does not start: recorded (to be cleaned up or
      // started by the retry), down. The others began beside it (no depends_on, fewer than
      // STEP_CONCURRENCY) and run. Retried forward.
      if (e.type === "START_FAIL") {
        if (!start.length) return null;
        const applied = { ...c.applied };
        for (const [s, spec] of start) applied[s] = spec;
        const names = start.map(([s]) => s);
        return fail({ ...fresh(c, names), applied, down: sorted([...without(c.down, names), start[0]![0]]) }, "start");
      }
      if (e.type === "STEP_THROW" || e.type === "TIMEOUT") return fail(c, "start");
      return midstep(state, c, e);
    }
    case "verifying": {
      if (e.type === "VERIFY_OK") return settle("running", { ...c, plan: null, retry: null });
      // The first started service dies while it is verified: down, and the start is retried forward.
      if (e.type === "VERIFY_FAIL") return fail({ ...c, down: sorted([...c.down, c.plan!.start[0]![0]]) }, "start");
      if (e.type === "TICK") return null;
      if (e.type === "STEP_THROW") return fail(c, "start");
      if (e.type === "TIMEOUT") return fail(c, "start");
      return midstep(state, c, e);
    }
    case "running": {
      if (e.type === "UPDATE") return e.s !== c.desired ? { state: "pulling", ctx: accept(c, e.s) } : null;
      if (e.type === "UPDATE_SAME") return { state, ctx: c };
      if (e.type === "REJECT") return { state: "failed", ctx: { ...c, desired: null, plan: null, next: null, retry: null } };
      if (e.type === "DELETE") return { state: "removing", ctx: { ...c, desired: null, plan: null, next: null, retry: null } };
      // Version 1 journals' repair (TICK), replayed as it was: the services seen down start again.
      const repair = (extra: string[]) => {
        const svcs = Object.keys(c.applied).filter((s) => c.down.includes(s) || extra.includes(s));
        const plan = { pull: false, stop: [], start: svcs.map((s) => [s, c.applied[s]!] as [string, SpecId]) };
        return { state: "startingNew" as const, ctx: { ...c, down: sorted([...c.down, ...extra]), plan } };
      };
      if (e.type === "TICK") return c.down.length ? repair([]) : { state, ctx: c };
      if (e.type === "CRASH_TICK" || e.type === "VANISH_TICK") {
        const u = target1(c);
        return u ? repair([u]) : null;
      }
      return null;
    }
    case "failed": {
      if (e.type === "UPDATE") return e.s !== c.desired ? { state: "pulling", ctx: accept(c, e.s) } : null;
      // The same score again while failed is the operator's retry (UPDATE_RETRY), no longer a no-op.
      if (e.type === "UPDATE_RETRY") {
        if (c.desired === null || c.target === null) return null;
        // From the step the retry waits for; planned afresh when none does.
        if (c.retry === "pull") return { state: "pulling", ctx: c };
        if (c.retry === "start") return { state: "startingNew", ctx: c };
        return { state: "pulling", ctx: { ...c, plan: planOf(c.applied, c.target) } };
      }
      if (e.type === "RETRY_DUE") return c.retry === "pull" ? { state: "pulling", ctx: c } : c.retry === "start" ? { state: "startingNew", ctx: c } : null;
      if (e.type === "REJECT") return { state, ctx: { ...c, desired: null, plan: null, retry: null } };
      if (e.type === "DELETE") return { state: "removing", ctx: { ...c, desired: null, plan: null, retry: null } };
      if (e.type === "TICK") return { state, ctx: c };
      // A crash seen by a (v1) tick while failed is not repaired: only the liveness events restart.
      if (e.type === "CRASH_TICK") {
        const u = target1(c);
        return u ? { state, ctx: { ...c, down: sorted([...c.down, u]) } } : null;
      }
      return null;
    }
    case "removing": {
      const first = Object.keys(c.applied).filter((s) => !c.vanished.includes(s))[0];
      if (e.type === "REMOVE_OK") {
        const cleared: MCtx = { ...c, applied: {}, down: [], sick: [], pending: [], vanished: [], target: null };
        const q = c.next;
        if (q?.k === "u") return { state: "pulling", ctx: accept(cleared, q.s) };
        if (q?.k === "r") return { state: "failed", ctx: { ...cleared, desired: null, plan: null, next: null } };
        return { state: "removed", ctx: cleared };
      }
      // The first recorded container fails to be stopped and removed (one call: left as it was); the
      // others, removed side by side, are gone.
      if (e.type === "STOP_FAIL" || e.type === "REMOVE_FAIL") return first ? fail(gone(c, Object.keys(c.applied).filter((s) => s !== first))) : null;
      if (e.type === "LIST_FAIL" || e.type === "TIMEOUT") return fail(c);
      return midstep(state, c, e);
    }
    case "removed":
      return null;
  }
}

const STATES: MState[] = ["pending", "pulling", "stoppingOld", "startingNew", "verifying", "running", "failed", "removing", "removed"];
const INITIAL: MCtx = { applied: {}, down: [], sick: [], pending: [], vanished: [], target: null, desired: null, next: null, plan: null, retry: null };

/** `next` as an XState machine: per state and event, one guarded transition per possible target. */
export function buildModelMachine(opts: { events?: MEvent["type"][] } = {}) {
  const types = opts.events ?? EVENT_TYPES;
  const states: Record<string, object> = {};
  for (const from of STATES) {
    if (from === "removed") {
      states[from] = { type: "final" };
      continue;
    }
    const on: Record<string, object[]> = {};
    for (const type of types) {
      on[type] = STATES.map((to) => ({
        guard: ({ context, event }: { context: MCtx; event: MEvent }) => next(from, context, event)?.state === to,
        target: to === from ? undefined : to,
        actions: assign(({ context, event }: { context: MCtx; event: MEvent }) => next(from, context, event)!.ctx),
      }));
    }
    states[from] = { on };
  }
  return setup({ types: { context: {} as MCtx, events: {} as MEvent } }).createMachine({
    id: "model",
    context: INITIAL,
    initial: "pending",
    states: states as never,
  });
}
export type ModelSnapshot = SnapshotFrom<ReturnType<typeof buildModelMachine>>;
