// One deployment on one device: pending → pulling → stoppingOld → startingNew → running | failed,
// plus removing → removed. The machine does no I/O: it reaches containers only through the step
// actors it is given, so the same definition runs against Podman, FakeRuntime and test models.
//
// The file reads top to bottom: what the machine takes and keeps, its states, then the guards and
// actions they name, then the pure helpers those use.
import { assign, fromPromise, setup, type DoneActorEvent, type ErrorActorEvent, type SnapshotFrom } from "xstate";
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
  StepFailure,
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

export type DeploymentEvent =
  | { type: "UPDATE"; score: PodmanV0Score; hash: string; revision: number; at: number }
  /** A desired value that failed to decode or broke the device's policy. */
  | { type: "REJECT"; error: string; revision: number; at: number }
  | { type: "DELETE"; revision: number; at: number }
  /** This deployment's containers as one device-wide list call saw them. */
  | { type: "TICK"; containers: ObservedContainer[]; at: number };

/** A desired-state event: one that may have to wait for the step in flight. */
type DesiredEvent = Exclude<DeploymentEvent, { type: "TICK" }>;

/** A desired value that has not been acted on yet, by kind: the newest that arrived mid-step. */
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
}

/**
 * The machine's version: bumped whenever its context or a transition changes, so that a
 * checkpoint (a saved snapshot) of another version is not restored into it.
 */
export const MACHINE_VERSION = 1;

/** A desired value that arrives while a step runs waits for it (coalesced: the newest wins). */
const MID_STEP = {
  UPDATE: [{ guard: "isTargetHash", actions: "dropQueued" }, { actions: "queue" }],
  REJECT: { actions: "queue" },
  DELETE: { actions: "queue" },
} as const;

export const deploymentMachine = machineSetup().createMachine({
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
        UPDATE: { guard: "isNewHash", actions: "apply" },
        REJECT: { target: "failed", actions: "apply" },
        DELETE: { target: "removing", actions: "apply" },
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
            ...takeQueued({ update: "pending", delete: "removing", reject: "failed" }),
            { target: "stoppingOld", actions: { type: "markStepStart", params: output } },
          ],
          onError: { target: "failed", actions: { type: "recordError", params: thrown } },
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
            { guard: { type: "hasFailure", params: output }, target: "failed", actions: { type: "recordStopped", params: output } },
            {
              target: "startingNew",
              actions: [
                { type: "recordStopped", params: output },
                { type: "markStepStart", params: output },
              ],
            },
          ],
          onError: { target: "failed", actions: { type: "recordError", params: thrown } },
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
            { guard: { type: "hasFailure", params: output }, target: "failed", actions: [{ type: "recordStarted", params: output }, "stepDone"] },
            { target: "running", actions: [{ type: "recordStarted", params: output }, "stepDone"] },
          ],
          onError: { target: "failed", actions: { type: "recordError", params: thrown } },
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
      always: takeQueued({ update: "pending", delete: "removing", reject: "failed" }),
      on: {
        UPDATE: { guard: "isNewHash", target: "pending", actions: "apply" },
        REJECT: { target: "failed", actions: "apply" },
        DELETE: { target: "removing", actions: "apply" },
        TICK: { guard: "needsRepair", target: "startingNew", actions: "planRepair" },
      },
    },
    failed: {
      // Roll forward only: a failed deployment waits for a new desired value; it never reverts.
      always: takeQueued({ update: "pending", delete: "removing", reject: null }),
      entry: "stepDone",
      on: {
        UPDATE: { guard: "isNewHash", target: "pending", actions: "apply" },
        REJECT: { actions: "apply" },
        DELETE: { target: "removing", actions: "apply" },
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
            { guard: { type: "hasFailure", params: output }, target: "failed", actions: { type: "recordRemoved", params: output } },
            // A delete queued here was dropped (DELETE below): only an update or a reject can wait.
            ...takeQueued({ update: "pending", reject: "failed" }, { type: "recordRemoved", params: output }),
            { target: "removed", actions: { type: "recordRemoved", params: output } },
          ],
          onError: { target: "failed", actions: { type: "recordError", params: thrown } },
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

/**
 * Once a step has ended, the value queued meanwhile is taken as if it had just arrived: one row per
 * kind, to where that kind goes from here (null: it stays), after `before` (the step's own record).
 */
function takeQueued<const B extends readonly object[]>(to: Partial<Record<Queued["kind"], "pending" | "removing" | "failed" | null>>, ...before: B) {
  return (["update", "delete", "reject"] as const).flatMap((kind) => {
    const target = to[kind];
    if (target === undefined) return [];
    const actions: [...B, "takeNext"] = [...before, "takeNext"];
    const row = { guard: { type: "queued" as const, params: { kind } }, actions };
    return [target === null ? row : { ...row, target }];
  });
}

// ---- guards, actions and the step actors the states name ----------------------------------------

function machineSetup() {
  return setup({
    types: {
      context: {} as DeploymentContext,
      events: {} as DeploymentEvent,
      input: {} as DeploymentInput,
    },
    actors: {
      pullImages: notProvided<StepDone, PullInput>("pullImages"),
      stopOld: notProvided<StopOutput, StopInput>("stopOld"),
      startNew: notProvided<StartOutput, StartInput>("startNew"),
      removeAll: notProvided<RemoveAllOutput, RemoveAllInput>("removeAll"),
      deadline: notProvided<StepDone, DeadlineInput>("deadline"),
    },
    guards: {
      hasPlan: ({ context }) => context.plan !== null,
      isNewHash: ({ context, event }) => event.type === "UPDATE" && event.hash !== context.desiredHash,
      /** Mid-step, an update equal to the target in flight cancels whatever was queued. */
      isTargetHash: ({ context, event }) => event.type === "UPDATE" && event.hash === context.desiredHash,
      needsRepair: ({ context, event }) =>
        event.type === "TICK" && servicesNeedingRepair(context.applied, context.containerIds, event.containers).length > 0,
      queued: ({ context }, params: { kind: Queued["kind"] }) => context.next?.kind === params.kind,
      /** A step that ended with part of its work done and one service failed. */
      hasFailure: (_, output: { failure?: StepFailure }) => output.failure !== undefined,
    },
    actions: {
      /** A desired value acted on as it arrives. */
      apply: assign(({ context, event }) => (isDesired(event) ? desiredEffect(context, queued(event)) : {})),
      queue: assign({ next: ({ event }) => (isDesired(event) ? queued(event) : null) }),
      dropQueued: assign({ next: null }),
      /** Takes the queued value as if it had just arrived. */
      takeNext: assign(({ context, event }) => {
        const q = context.next;
        // The next step starts now, at the boundary, not when the value was queued.
        return q ? desiredEffect(context, { ...q, at: Math.max(q.at, eventTime(event) ?? 0) }) : {};
      }),
      planRepair: assign(({ context, event }) =>
        event.type === "TICK"
          ? { plan: repairPlan(context.applied, servicesNeedingRepair(context.applied, context.containerIds, event.containers)), stepStartedAt: event.at }
          : {},
      ),
      markStepStart: assign((_, done: StepDone) => ({ stepStartedAt: done.at })),
      recordStopped: assign(({ context }, out: StopOutput) => {
        const applied = { ...context.applied };
        const containerIds = { ...context.containerIds };
        for (const s of out.stopped) {
          delete applied[s];
          delete containerIds[s];
        }
        return { applied, containerIds, lastError: out.failure ? `stop ${out.failure.service}: ${out.failure.message}` : context.lastError };
      }),
      recordStarted: assign(({ context }, out: StartOutput) => {
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
      recordRemoved: assign(({ context }, out: RemoveAllOutput) => {
        if (!out.failure) return { applied: {}, containerIds: {}, target: null, lastError: null };
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
      recordError: assign((_, p: { error: unknown }) => ({ lastError: errorOf(p.error).message })),
      recordTimeout: assign((_, p: { step: string }) => ({ lastError: `${p.step} timed out` })),
      stepDone: assign({ plan: null }),
    },
  });
}

// ---- the pure helpers ---------------------------------------------------------------------------

/** A step's output, as the params of the guard or action that reads it. */
function output<O>({ event }: { event: DoneActorEvent<O> }): O {
  return event.output;
}

/** What a step threw, as the params of `recordError`. */
function thrown({ event }: { event: ErrorActorEvent }) {
  return { error: event.error };
}

function notProvided<Out, In>(name: string) {
  return fromPromise<Out, In>(async () => {
    throw new Error(`step actor ${name} was not provided`);
  });
}

function isDesired(e: DeploymentEvent): e is DesiredEvent {
  return e.type !== "TICK";
}

/** A desired event as a value that can wait: the one conversion between the two. */
function queued(e: DesiredEvent): Queued {
  switch (e.type) {
    case "UPDATE":
      return { kind: "update", score: e.score, hash: e.hash, revision: e.revision, at: e.at };
    case "REJECT":
      return { kind: "reject", error: e.error, revision: e.revision, at: e.at };
    case "DELETE":
      return { kind: "delete", revision: e.revision, at: e.at };
  }
}

/** What a desired value does to the context, whether it arrived just now or waited for a step. */
function desiredEffect(ctx: DeploymentContext, d: Queued): Partial<DeploymentContext> {
  switch (d.kind) {
    case "update":
      // Accepted: the new target, its plan against what runs, and the step clock.
      return {
        target: { score: d.score, hash: d.hash },
        desiredHash: d.hash,
        revision: d.revision,
        plan: planUpgrade(ctx.applied, d.score, d.hash),
        lastError: null,
        stepStartedAt: d.at,
        next: null,
      };
    case "reject":
      return { lastError: d.error, revision: d.revision, desiredHash: null, plan: null, next: null };
    case "delete":
      return { revision: d.revision, desiredHash: null, plan: null, next: null, stepStartedAt: d.at };
  }
}

/** The time an event carries: its own `at`, or its step output's or error's. */
function eventTime(event: object): number | undefined {
  if ("at" in event && typeof event.at === "number") return event.at;
  if ("output" in event && isTimed(event.output)) return event.output.at;
  if ("error" in event && isTimed(event.error)) return event.error.at;
  return undefined;
}

function isTimed(u: unknown): u is StepDone {
  return typeof u === "object" && u !== null && "at" in u && typeof u.at === "number";
}

function errorOf(e: unknown): StepError {
  if (e instanceof Error) return { message: e.message };
  if (typeof e === "object" && e !== null && "message" in e && typeof e.message === "string") return { message: e.message };
  return { message: String(e) };
}

function stopBudgetMs(ctx: DeploymentContext, graces: number[]) {
  return graces.reduce((sum, g) => sum + (g + ctx.budgets.stopSlackSecs) * 1000, ctx.budgets.stopSlackSecs * 1000);
}

function deadlineOf(ctx: DeploymentContext, budgetMs: number): DeadlineInput {
  return { deadline: (ctx.stepStartedAt ?? 0) + budgetMs };
}
