// The abstract model of a deployment for model-based testing: no invocations, no timers. Its events
// are the outcomes of the world (a step succeeds, fails, times out, a container crashes, an update
// arrives mid-step), its context the little the outcomes depend on: which spec each service's
// recorded container runs, which of them are down, the target and desired score, the queued value
// and the plan of the step in flight. The transitions come from one pure function, `next`, so the
// model reads as a table of rules rather than as a second copy of the machine's config.
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
export interface MCtx {
  applied: Record<string, SpecId>;
  down: string[];
  target: ScoreId | null;
  desired: ScoreId | null;
  next: Queued;
  plan: MPlan | null;
}
export type MState = "pending" | "pulling" | "stoppingOld" | "startingNew" | "running" | "failed" | "removing" | "removed";

export type MEvent =
  | { type: "UPDATE"; s: ScoreId }
  | { type: "UPDATE_MIDSTEP"; s: ScoreId }
  | { type: "UPDATE_SAME" }
  | { type: "REJECT" }
  | { type: "DELETE" }
  | { type: "TICK" }
  | { type: "CRASH_TICK" }
  | { type: "VANISH_TICK" }
  | { type: "PULL_OK" }
  | { type: "PULL_FAIL" }
  | { type: "STOP_OK" }
  | { type: "STOP_FAIL" }
  | { type: "REMOVE_FAIL" }
  | { type: "START_OK" }
  | { type: "START_FAIL" }
  | { type: "REMOVE_OK" }
  | { type: "LIST_FAIL" }
  | { type: "STEP_THROW" }
  | { type: "TIMEOUT" };
export const EVENT_TYPES: MEvent["type"][] = [
  "UPDATE", "UPDATE_MIDSTEP", "UPDATE_SAME", "REJECT", "DELETE", "TICK", "CRASH_TICK", "VANISH_TICK", "PULL_OK", "PULL_FAIL",
  "STOP_OK", "STOP_FAIL", "REMOVE_FAIL", "START_OK", "START_FAIL", "REMOVE_OK", "LIST_FAIL", "STEP_THROW", "TIMEOUT",
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
const accept = (c: MCtx, s: ScoreId): MCtx => ({ ...c, target: s, desired: s, plan: planOf(c.applied, s), next: null });
const up = (c: MCtx) => Object.keys(c.applied).filter((s) => !c.down.includes(s));

/** The eventless rules of running and failed: a queued value is taken once a step has settled. */
function settle(state: MState, c: MCtx): { state: MState; ctx: MCtx } {
  if (state === "failed") c = { ...c, plan: null };
  if (state !== "running" && state !== "failed") return { state, ctx: c };
  const q = c.next;
  if (q?.k === "u") return { state: "pulling", ctx: accept(c, q.s) };
  if (q?.k === "d") return { state: "removing", ctx: { ...c, desired: null, plan: null, next: null } };
  if (q?.k === "r") return { state: "failed", ctx: { ...c, desired: null, plan: null, next: null } };
  return { state, ctx: c };
}
const fail = (c: MCtx) => settle("failed", c);

/** Queues a value that arrived mid-step (the newest wins; the target's own hash cancels). */
function midstep(state: MState, c: MCtx, e: MEvent): R {
  if (e.type === "UPDATE_MIDSTEP") return { state, ctx: { ...c, next: state !== "removing" && e.s === c.desired ? null : { k: "u", s: e.s } } };
  if (e.type === "REJECT") return { state, ctx: { ...c, next: { k: "r" } } };
  if (e.type === "DELETE") return { state, ctx: { ...c, next: state === "removing" ? null : { k: "d" } } };
  if (e.type === "TIMEOUT") return fail(c);
  return null;
}

/** The model's rules: the outcome of `e` in `state`, or null when `e` cannot happen there. */
export function next(state: MState, c: MCtx, e: MEvent): R {
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
        if (q?.k === "d") return { state: "removing", ctx: { ...c, desired: null, plan: null, next: null } };
        if (q?.k === "r") return { state: "failed", ctx: { ...c, desired: null, plan: null, next: null } };
        return { state: "stoppingOld", ctx: c };
      }
      if (e.type === "PULL_FAIL") return c.plan!.pull ? fail(c) : null;
      return midstep(state, c, e);
    case "stoppingOld": {
      const stop = c.plan!.stop;
      if (e.type === "STOP_OK") {
        const applied = { ...c.applied };
        for (const s of stop) delete applied[s];
        return { state: "startingNew", ctx: { ...c, applied, down: c.down.filter((s) => !stop.includes(s)) } };
      }
      // The first service to stop fails: nothing is stopped (STOP_FAIL) or it is stopped, not removed.
      if (e.type === "STOP_FAIL") return stop.length ? fail(c) : null;
      if (e.type === "REMOVE_FAIL") return stop.length ? fail({ ...c, down: sorted([...c.down, stop[0]!]) }) : null;
      if (e.type === "STEP_THROW") return fail(c);
      return midstep(state, c, e);
    }
    case "startingNew": {
      const start = c.plan!.start;
      if (e.type === "START_OK") {
        const applied = { ...c.applied };
        for (const [s, spec] of start) applied[s] = spec;
        const names = start.map(([s]) => s);
        return settle("running", { ...c, applied, down: c.down.filter((s) => !names.includes(s)), plan: null });
      }
      // The first service exits at start. Every service of the step was started before the one
      // settle check, so all are recorded; the first is down, the others run.
      if (e.type === "START_FAIL") {
        if (!start.length) return null;
        const applied = { ...c.applied };
        for (const [s, spec] of start) applied[s] = spec;
        const [first] = start[0]!;
        const names = start.map(([s]) => s);
        return fail({ ...c, applied, down: sorted([...c.down.filter((s) => !names.includes(s)), first]) });
      }
      if (e.type === "STEP_THROW") return fail(c);
      return midstep(state, c, e);
    }
    case "running": {
      if (e.type === "UPDATE") return e.s !== c.desired ? { state: "pulling", ctx: accept(c, e.s) } : null;
      if (e.type === "UPDATE_SAME") return { state, ctx: c };
      if (e.type === "REJECT") return { state: "failed", ctx: { ...c, desired: null, plan: null, next: null } };
      if (e.type === "DELETE") return { state: "removing", ctx: { ...c, desired: null, plan: null, next: null } };
      const repair = (extra: string[]) => {
        const svcs = Object.keys(c.applied).filter((s) => c.down.includes(s) || extra.includes(s));
        const plan = { pull: false, stop: [], start: svcs.map((s) => [s, c.applied[s]!] as [string, SpecId]) };
        return { state: "startingNew" as const, ctx: { ...c, down: sorted([...c.down, ...extra]), plan } };
      };
      if (e.type === "TICK") return c.down.length ? repair([]) : { state, ctx: c };
      if (e.type === "CRASH_TICK" || e.type === "VANISH_TICK") {
        const u = up(c);
        return u.length ? repair([u[0]!]) : null;
      }
      return null;
    }
    case "failed": {
      if (e.type === "UPDATE") return e.s !== c.desired ? { state: "pulling", ctx: accept(c, e.s) } : null;
      if (e.type === "UPDATE_SAME") return c.desired !== null ? { state, ctx: c } : null;
      if (e.type === "REJECT") return { state, ctx: { ...c, desired: null } };
      if (e.type === "DELETE") return { state: "removing", ctx: { ...c, desired: null } };
      if (e.type === "TICK") return { state, ctx: c };
      // A crash while failed is not repaired: roll forward only, nothing starts until a new value.
      if (e.type === "CRASH_TICK") {
        const u = up(c);
        return u.length ? { state, ctx: { ...c, down: sorted([...c.down, u[0]!]) } } : null;
      }
      return null;
    }
    case "removing": {
      const first = Object.keys(c.applied)[0];
      if (e.type === "REMOVE_OK") {
        const cleared: MCtx = { ...c, applied: {}, down: [], target: null };
        const q = c.next;
        if (q?.k === "u") return { state: "pulling", ctx: accept(cleared, q.s) };
        if (q?.k === "r") return { state: "failed", ctx: { ...cleared, desired: null, plan: null, next: null } };
        return { state: "removed", ctx: cleared };
      }
      // The first recorded container fails to stop (left running) or to be removed (left stopped).
      if (e.type === "STOP_FAIL") return first ? fail(c) : null;
      if (e.type === "REMOVE_FAIL") return first ? fail({ ...c, down: sorted([...c.down, first]) }) : null;
      if (e.type === "LIST_FAIL") return fail(c);
      return midstep(state, c, e);
    }
    case "removed":
      return null;
  }
}

const STATES: MState[] = ["pending", "pulling", "stoppingOld", "startingNew", "running", "failed", "removing", "removed"];
const INITIAL: MCtx = { applied: {}, down: [], target: null, desired: null, next: null, plan: null };

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
