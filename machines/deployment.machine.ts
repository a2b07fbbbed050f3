// One deployment on one device: pending → pulling → stoppingOld → startingNew → running | failed,
// plus removing → removed. The machine does no I/O: it reaches containers only through the step
// actors it is given, so the same definition runs against Podman, FakeRuntime and test models.
import { assign, fromPromise, setup, type SnapshotFrom } from "xstate";
import { resolveLifecycle, type PodmanV0Score } from "../contracts/score.codec.js";
import type {
  DeadlineInput,
  PullInput,
  RemoveAllInput,
  RemoveAllOutput,
  StartInput,
  StartOutput,
  StepDone,
  StepError,
  StopInput,
  StopOutput,
} from "./deployment.steps.js";
import { planUpgrade, repairPlan, servicesNeedingRepair, type Applied, type ObservedContainer, type Plan } from "./upgrade.plan.js";

export interface DeploymentInput {
  device: string;
  deployment: string;
  /** Step budgets; defaults suit a Raspberry Pi on a slow link. */
  budgets?: Partial<StepBudgets>;
}

export interface StepBudgets {
  pullSecs: number;
  /** Added to each container's grace period when stopping or removing. */
  stopSlackSecs: number;
  startSecs: number;
}
const DEFAULT_BUDGETS: StepBudgets = { pullSecs: 600, stopSlackSecs: 15, startSecs: 120 };

/** The newest desired value of a deployment that has not been acted on yet. */
export type Queued =
  | { kind: "update"; score: PodmanV0Score; hash: string; revision: number; at: number }
  | { kind: "reject"; error: string; revision: number; at: number }
  | { kind: "delete"; revision: number; at: number };

export interface DeploymentContext {
  device: string;
  deployment: string;
  budgets: StepBudgets;
  /** The score being applied, or the last one applied or attempted. */
  target: { score: PodmanV0Score; hash: string } | null;
  /** Hash of the newest desired score acted on; the same hash again is a no-op (invariant 4). */
  desiredHash: string | null;
  /** KV revision of the desired-state entry acted on. */
  revision: number | null;
  /** Coalesced: only the newest value that arrived mid-step (invariant 7). */
  next: Queued | null;
  plan: Plan | null;
  /** Per service, what its recorded container runs. */
  applied: Applied;
  containerIds: Record<string, string>;
  lastError: string | null;
  /** When the current step began (from the event that began it), for its deadline. */
  stepStartedAt: number | null;
  /**
   * Restarts of each recorded container (by id) since it was created. Absent until the first
   * restart (and in snapshots from before it existed): absent is none.
   */
  restarts?: Record<string, number>;
}

export type DeploymentEvent =
  | { type: "UPDATE"; score: PodmanV0Score; hash: string; revision: number; at: number }
  /** A desired value that failed to decode or broke the device's policy. */
  | { type: "REJECT"; error: string; revision: number; at: number }
  | { type: "DELETE"; revision: number; at: number }
  /** This deployment's containers as one device-wide list call saw them. */
  | { type: "TICK"; containers: ObservedContainer[]; at: number }
  /**
   * A recorded container was started anew, the same container (an operator's `restart` command):
   * journaled, and counted. Sent once it is done: the machine never waits on it.
   */
  | ServiceRestarted;

export interface ServiceRestarted {
  type: "SERVICE_RESTARTED";
  service: string;
  id: string;
  /** The container's restarts with this one. */
  restarts: number;
  by: "operator";
  at: number;
}

/** A recorded container's restarts so far. */
export const restartsOf = (ctx: DeploymentContext, id: string) => ctx.restarts?.[id] ?? 0;

const notProvided = (name: string) =>
  fromPromise<never, unknown>(async () => {
    throw new Error(`step actor ${name} was not provided`);
  });

const errorOf = (e: unknown): StepError => {
  if (e instanceof Error) return { message: e.message };
  if (typeof e === "object" && e !== null && typeof (e as StepError).message === "string") return e as StepError;
  return { message: String(e) };
};

/** The time carried by the event that begins a step; every event the machine takes has one. */
function eventTime(event: { type: string }, fallback: number | null): number {
  const e = event as { at?: unknown; output?: { at?: unknown }; error?: { at?: unknown } };
  for (const t of [e.at, e.output?.at, e.error?.at]) if (typeof t === "number") return t;
  return fallback ?? 0;
}

const fromQueued = (q: Queued): Exclude<DeploymentEvent, { type: "TICK" | "SERVICE_RESTARTED" }> =>
  q.kind === "update"
    ? { type: "UPDATE", score: q.score, hash: q.hash, revision: q.revision, at: q.at }
    : q.kind === "reject"
      ? { type: "REJECT", error: q.error, revision: q.revision, at: q.at }
      : { type: "DELETE", revision: q.revision, at: q.at };

const toQueued = (e: DeploymentEvent): Queued | null =>
  e.type === "UPDATE"
    ? { kind: "update", score: e.score, hash: e.hash, revision: e.revision, at: e.at }
    : e.type === "REJECT"
      ? { kind: "reject", error: e.error, revision: e.revision, at: e.at }
      : e.type === "DELETE"
        ? { kind: "delete", revision: e.revision, at: e.at }
        : null;

/** Accepting an update: the new target, its plan against what runs, and the step clock. */
function accept(ctx: DeploymentContext, u: { score: PodmanV0Score; hash: string; revision: number; at: number }): Partial<DeploymentContext> {
  return {
    target: { score: u.score, hash: u.hash },
    desiredHash: u.hash,
    revision: u.revision,
    plan: planUpgrade(ctx.applied, u.score, u.hash),
    lastError: null,
    stepStartedAt: u.at,
    next: null,
  };
}

const stopBudgetMs = (ctx: DeploymentContext, graces: number[]) =>
  graces.reduce((sum, g) => sum + (g + ctx.budgets.stopSlackSecs) * 1000, ctx.budgets.stopSlackSecs * 1000);

const deadlineOf = (ctx: DeploymentContext, budgetMs: number): DeadlineInput => ({ deadline: (ctx.stepStartedAt ?? 0) + budgetMs });

const nextIs = (kind: Queued["kind"]) => ({ context }: { context: DeploymentContext }) => context.next?.kind === kind;

/** A desired value that arrives while a step runs waits for it (coalesced: the newest wins). */
const MID_STEP = {
  UPDATE: [{ guard: "isTargetHash", actions: "dropQueued" }, { actions: "queue" }],
  REJECT: { actions: "queue" },
  DELETE: { actions: "queue" },
} as const;

export const deploymentMachine = setup({
  types: {
    context: {} as DeploymentContext,
    events: {} as DeploymentEvent,
    input: {} as DeploymentInput,
  },
  actors: {
    pullImages: notProvided("pullImages") as unknown as ReturnType<typeof fromPromise<StepDone, PullInput>>,
    stopOld: notProvided("stopOld") as unknown as ReturnType<typeof fromPromise<StopOutput, StopInput>>,
    startNew: notProvided("startNew") as unknown as ReturnType<typeof fromPromise<StartOutput, StartInput>>,
    removeAll: notProvided("removeAll") as unknown as ReturnType<typeof fromPromise<RemoveAllOutput, RemoveAllInput>>,
    deadline: notProvided("deadline") as unknown as ReturnType<typeof fromPromise<StepDone, DeadlineInput>>,
  },
  guards: {
    hasPlan: ({ context }) => context.plan !== null,
    isNewHash: ({ context, event }) => event.type === "UPDATE" && event.hash !== context.desiredHash,
    /** Mid-step, an update equal to the target in flight cancels whatever was queued. */
    isTargetHash: ({ context, event }) => event.type === "UPDATE" && event.hash === context.desiredHash,
    /** The restarted container is the one recorded for its service (not one replaced since). */
    isRecordedContainer: ({ context, event }) => event.type === "SERVICE_RESTARTED" && context.containerIds[event.service] === event.id,
    needsRepair: ({ context, event }) =>
      event.type === "TICK" && servicesNeedingRepair(context.applied, context.containerIds, event.containers).length > 0,
    nextIsUpdate: nextIs("update"),
    nextIsDelete: nextIs("delete"),
    nextIsReject: nextIs("reject"),
    stopFailed: ({ event }) => (event as { output?: StopOutput }).output?.failure !== undefined,
    startFailed: ({ event }) => (event as { output?: StartOutput }).output?.failure !== undefined,
    removeFailed: ({ event }) => (event as { output?: RemoveAllOutput }).output?.failure !== undefined,
  },
  actions: {
    acceptUpdate: assign(({ context, event }) => (event.type === "UPDATE" ? accept(context, event) : {})),
    reject: assign(({ event }) =>
      event.type === "REJECT" ? { lastError: event.error, revision: event.revision, desiredHash: null, plan: null, next: null } : {},
    ),
    acceptDelete: assign(({ event }) =>
      event.type === "DELETE" ? { revision: event.revision, desiredHash: null, plan: null, next: null, stepStartedAt: event.at } : {},
    ),
    queue: assign({ next: ({ event }) => toQueued(event) }),
    dropQueued: assign({ next: null }),
    /** Takes the queued value as if it had just arrived. */
    takeNext: assign(({ context, event }) => {
      const q = context.next;
      if (!q) return {};
      // The next step starts now, at the boundary, not when the value was queued.
      const e = { ...fromQueued(q), at: Math.max(q.at, eventTime(event, 0)) };
      if (e.type === "UPDATE") return accept(context, e);
      if (e.type === "REJECT") return { lastError: e.error, revision: e.revision, desiredHash: null, plan: null, next: null };
      return { revision: e.revision, desiredHash: null, plan: null, next: null, stepStartedAt: e.at };
    }),
    planRepair: assign(({ context, event }) =>
      event.type === "TICK"
        ? { plan: repairPlan(context.applied, servicesNeedingRepair(context.applied, context.containerIds, event.containers)), stepStartedAt: event.at }
        : {},
    ),
    markStepStart: assign(({ context, event }) => ({ stepStartedAt: eventTime(event, context.stepStartedAt) })),
    recordStopped: assign(({ context, event }) => {
      const out = (event as { output?: StopOutput }).output;
      if (!out) return {};
      const applied = { ...context.applied };
      const containerIds = { ...context.containerIds };
      for (const s of out.stopped) {
        delete applied[s];
        delete containerIds[s];
      }
      return { applied, containerIds, lastError: out.failure ? `stop ${out.failure.service}: ${out.failure.message}` : context.lastError };
    }),
    recordStarted: assign(({ context, event }) => {
      const out = (event as { output?: StartOutput }).output;
      if (!out) return {};
      const applied = { ...context.applied };
      const containerIds = { ...context.containerIds };
      const byName = new Map((context.plan?.start ?? []).map((s) => [s.service.name, s]));
      const record = (service: string, id: string) => {
        const spec = byName.get(service);
        if (spec) applied[service] = spec;
        containerIds[service] = id;
      };
      for (const [service, id] of Object.entries(out.started)) record(service, id);
      if (out.failure?.id) record(out.failure.service, out.failure.id);
      return { applied, containerIds, lastError: out.failure ? `start ${out.failure.service}: ${out.failure.message}` : null };
    }),
    recordRemoved: assign(({ context, event }) => {
      const out = (event as { output?: RemoveAllOutput }).output;
      if (!out?.failure) return { applied: {}, containerIds: {}, target: null, lastError: null };
      // A partial removal: the containers already removed are no longer recorded, so the next plan
      // starts their services again instead of taking them for unchanged.
      const applied = { ...context.applied };
      const containerIds = { ...context.containerIds };
      for (const [service, id] of Object.entries(context.containerIds)) {
        if (out.removed.includes(id)) {
          delete applied[service];
          delete containerIds[service];
        }
      }
      return { applied, containerIds, lastError: `remove ${out.failure.service}: ${out.failure.message}` };
    }),
    recordRestart: assign(({ context, event }) => {
      if (event.type !== "SERVICE_RESTARTED") return {};
      // Only the recorded containers keep a count: a replaced one's is dropped here.
      const live = new Set(Object.values(context.containerIds));
      const restarts = Object.fromEntries(Object.entries(context.restarts ?? {}).filter(([id]) => live.has(id)));
      return { restarts: { ...restarts, [event.id]: event.restarts } };
    }),
    recordError: assign(({ event }) => ({ lastError: errorOf((event as { error?: unknown }).error).message })),
    recordTimeout: assign((_, params: { step: string }) => ({ lastError: `${params.step} timed out` })),
    stepDone: assign({ plan: null }),
  },
}).createMachine({
  id: "deployment",
  context: ({ input }) => ({
    device: input.device,
    deployment: input.deployment,
    budgets: { ...DEFAULT_BUDGETS, ...input.budgets },
    target: null,
    desiredHash: null,
    revision: null,
    next: null,
    plan: null,
    applied: {},
    containerIds: {},
    lastError: null,
    stepStartedAt: null,
  }),
  initial: "pending",
  states: {
    pending: {
      always: { guard: "hasPlan", target: "pulling" },
      on: {
        UPDATE: { guard: "isNewHash", actions: "acceptUpdate" },
        REJECT: { target: "failed", actions: "reject" },
        DELETE: { target: "removing", actions: "acceptDelete" },
      },
    },
    pulling: {
      invoke: [
        {
          id: "pull",
          src: "pullImages",
          input: ({ context }) => ({ deployment: context.deployment, images: context.plan?.pull ?? [] }),
          onDone: [
            // Nothing has been touched yet: a newer desired value replaces this one at once.
            { guard: "nextIsUpdate", target: "pending", actions: "takeNext" },
            { guard: "nextIsDelete", target: "removing", actions: "takeNext" },
            { guard: "nextIsReject", target: "failed", actions: "takeNext" },
            { target: "stoppingOld", actions: "markStepStart" },
          ],
          onError: { target: "failed", actions: "recordError" },
        },
        {
          id: "deadline",
          src: "deadline",
          input: ({ context }) => deadlineOf(context, context.budgets.pullSecs * 1000),
          onDone: { target: "failed", actions: { type: "recordTimeout", params: { step: "pulling" } } },
        },
      ],
      on: MID_STEP,
    },
    stoppingOld: {
      invoke: [
        {
          id: "stopOld",
          src: "stopOld",
          input: ({ context }) => ({
            deployment: context.deployment,
            containers: (context.plan?.stop ?? []).flatMap((service) => {
              const id = context.containerIds[service];
              const grace = context.applied[service]?.lifecycle.grace_period_secs ?? 0;
              return id ? [{ service, id, graceSecs: grace }] : [];
            }),
            keep: (context.target?.score.services ?? []).map((s) => s.name),
            strayGraceSecs: resolveLifecycle(context.target?.score.lifecycle).grace_period_secs,
          }),
          onDone: [
            { guard: "stopFailed", target: "failed", actions: "recordStopped" },
            { target: "startingNew", actions: ["recordStopped", "markStepStart"] },
          ],
          onError: { target: "failed", actions: "recordError" },
        },
        {
          id: "deadline",
          src: "deadline",
          input: ({ context }) =>
            deadlineOf(context, stopBudgetMs(context, (context.plan?.stop ?? []).map((s) => context.applied[s]?.lifecycle.grace_period_secs ?? 0))),
          onDone: { target: "failed", actions: { type: "recordTimeout", params: { step: "stoppingOld" } } },
        },
      ],
      on: MID_STEP,
    },
    startingNew: {
      invoke: [
        {
          id: "startNew",
          src: "startNew",
          input: ({ context }) => ({ deployment: context.deployment, services: context.plan?.start ?? [] }),
          onDone: [
            { guard: "startFailed", target: "failed", actions: ["recordStarted", "stepDone"] },
            { target: "running", actions: ["recordStarted", "stepDone"] },
          ],
          onError: { target: "failed", actions: "recordError" },
        },
        {
          id: "deadline",
          src: "deadline",
          input: ({ context }) => deadlineOf(context, context.budgets.startSecs * 1000),
          onDone: { target: "failed", actions: { type: "recordTimeout", params: { step: "startingNew" } } },
        },
      ],
      on: MID_STEP,
    },
    running: {
      // A value that arrived mid-upgrade is applied once the upgrade has settled.
      always: [
        { guard: "nextIsUpdate", target: "pending", actions: "takeNext" },
        { guard: "nextIsDelete", target: "removing", actions: "takeNext" },
        { guard: "nextIsReject", target: "failed", actions: "takeNext" },
      ],
      on: {
        UPDATE: { guard: "isNewHash", target: "pending", actions: "acceptUpdate" },
        REJECT: { target: "failed", actions: "reject" },
        DELETE: { target: "removing", actions: "acceptDelete" },
        TICK: { guard: "needsRepair", target: "startingNew", actions: "planRepair" },
        SERVICE_RESTARTED: { guard: "isRecordedContainer", actions: "recordRestart" },
      },
    },
    failed: {
      // Roll forward only: a failed deployment waits for a new desired value; it never reverts.
      always: [
        { guard: "nextIsUpdate", target: "pending", actions: "takeNext" },
        { guard: "nextIsDelete", target: "removing", actions: "takeNext" },
        { guard: "nextIsReject", actions: "takeNext" },
      ],
      entry: "stepDone",
      on: {
        UPDATE: { guard: "isNewHash", target: "pending", actions: "acceptUpdate" },
        REJECT: { actions: "reject" },
        DELETE: { target: "removing", actions: "acceptDelete" },
        SERVICE_RESTARTED: { guard: "isRecordedContainer", actions: "recordRestart" },
      },
    },
    removing: {
      invoke: [
        {
          id: "removeAll",
          src: "removeAll",
          input: ({ context }) => ({
            deployment: context.deployment,
            containerIds: context.containerIds,
            graceSecs: Math.max(0, ...Object.values(context.applied).map((a) => a.lifecycle.grace_period_secs)),
          }),
          onDone: [
            { guard: "removeFailed", target: "failed", actions: "recordRemoved" },
            { guard: "nextIsUpdate", target: "pending", actions: ["recordRemoved", "takeNext"] },
            { guard: "nextIsReject", target: "failed", actions: ["recordRemoved", "takeNext"] },
            { target: "removed", actions: "recordRemoved" },
          ],
          onError: { target: "failed", actions: "recordError" },
        },
        {
          id: "deadline",
          src: "deadline",
          input: ({ context }) => deadlineOf(context, stopBudgetMs(context, Object.values(context.applied).map((a) => a.lifecycle.grace_period_secs))),
          onDone: { target: "failed", actions: { type: "recordTimeout", params: { step: "removing" } } },
        },
      ],
      on: {
        UPDATE: { actions: "queue" },
        REJECT: { actions: "queue" },
        DELETE: { actions: "dropQueued" },
      },
    },
    removed: { type: "final" },
  },
});

export type DeploymentMachine = typeof deploymentMachine;
export type DeploymentSnapshot = SnapshotFrom<DeploymentMachine>;
