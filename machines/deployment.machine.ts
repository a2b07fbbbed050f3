// One deployment on one device: pending → pulling → stoppingOld → startingNew → verifying → running
// | failed, plus removing → removed. While running (and when failed), it restarts a dead or unhealthy
// service with backoff; a failed pull, start or readiness is retried forward, toward the same target
// (docs/design.md, "Service health"). The machine does no I/O: it reaches containers only through the
// step actors it is given, so the same definition runs against Podman, FakeRuntime and test models;
// every decision is taken from the times its events carry, so a replay decides as the live run did.
//
// The file reads top to bottom: what the machine takes and keeps, its states, then the guards and
// actions they name, then the pure helpers those use.
import { assign, fromCallback, fromPromise, setup, type DoneActorEvent, type ErrorActorEvent, type EventObject, type SnapshotFrom } from "xstate";
import { DEFAULT_MIN_READY_SECS, HEALTH_DEFAULTS, resolveLifecycle, type PodmanV0Score } from "../contracts/score.codec.js";
import { laterSignedAt } from "../contracts/signed-score.js";
import type {
  DeadlineInput,
  PullInput,
  RemoveAllInput,
  RemoveAllOutput,
  RestartDue,
  RestartOutcome,
  RestartsInput,
  StartInput,
  StartOutput,
  StepDone,
  StepError,
  StepFailure,
  StopInput,
  StopOutput,
  VerifyInput,
  VerifyOutput,
  VerifyService,
} from "./deployment.steps.js";
import { backoffOf, NO_TRIES, nextTry, type Backoff, type Tries } from "./restart.policy.js";
import { planUpgrade, repairPlan, servicesNeedingRepair, type Applied, type ObservedContainer, type Plan } from "./upgrade.plan.js";

export interface DeploymentInput {
  device: string;
  deployment: string;
  /** Step budgets; defaults suit a Raspberry Pi on a slow link. */
  budgets?: Partial<StepBudgets>;
  /** Restart and forward-retry backoff; default at once, then 10 s doubling to 300 s (tests shorten it). */
  backoff?: Partial<Backoff>;
}

export interface StepBudgets {
  pullSecs: number;
  /** Added to each container's grace period when stopping or removing. */
  stopSlackSecs: number;
  startSecs: number;
  /** Added to the longest readiness wait the services of a start ask for. */
  verifySlackSecs: number;
}
const DEFAULT_BUDGETS: StepBudgets = { pullSecs: 600, stopSlackSecs: 15, startSecs: 120, verifySlackSecs: 30 };

export type DeploymentEvent =
  /** `signedAt`: when the operator signed it, for a device that checks signatures. */
  | { type: "UPDATE"; score: PodmanV0Score; hash: string; revision: number; at: number; signedAt?: string }
  /** A desired value that failed to decode or broke the device's policy. */
  | { type: "REJECT"; error: string; revision: number; at: number }
  | { type: "DELETE"; revision: number; at: number }
  /**
   * This deployment's containers as one device-wide list call saw them: the repair of version 1
   * journals (their `liveness.repair`), replayed as it was; the agent now sends the liveness events.
   */
  | { type: "TICK"; containers: ObservedContainer[]; at: number }
  /** A recorded container was seen dead (exited, or gone: exitCode null). */
  | { type: "SERVICE_EXITED"; service: string; exitCode: number | null; at: number }
  /** A recorded container's health check turned unhealthy (Podman counted `retries` failures in a row). */
  | { type: "SERVICE_UNHEALTHY"; service: string; output: string; at: number }
  /** …and passes again. */
  | { type: "SERVICE_HEALTHY"; service: string; output: string; at: number }
  /**
   * A recorded service started anew: by the agent, a gone container created again (its new id); by
   * an operator's `restart` command, the same container, counted. Sent once done: the machine never
   * waits on it.
   */
  | ServiceRestarted;

export interface ServiceRestarted {
  type: "SERVICE_RESTARTED";
  service: string;
  id: string;
  /** The service's restarts with this one (an operator's); the agent's own are counted by the machine. */
  restarts: number;
  by: "agent" | "operator";
  at: number;
}

/** A desired-state event: one that may have to wait for the step in flight. */
type DesiredEvent = Extract<DeploymentEvent, { type: "UPDATE" | "REJECT" | "DELETE" }>;
type ServiceEvent = Extract<DeploymentEvent, { type: `SERVICE_${string}` }>;

/** What the machine decided about one applied service: its restarts and its health. */
export interface ServiceRecord {
  /** Restarts decided since its container was created. */
  restarts: number;
  lastExitCode: number | null;
  /** When it is restarted next, or last was (the backoff's deadline); null before its first. */
  restartAt: number | null;
  tries: Tries;
  /** Taken as unhealthy, and no pass heard of since. */
  unhealthy: boolean;
  /** When a step last started its container: a restart decided before that is not carried out. */
  startedAt: number | null;
}

/** The steps a failed deployment tries again, forward, toward the same target. */
export type RetryStep = "pull" | "start" | "verify";

/** A failed step that is tried again: which, when, and the backoff's count so far. */
export interface Retry {
  step: RetryStep;
  at: number;
  tries: Tries;
}

/** A desired value that has not been acted on yet, by kind: the newest that arrived mid-step. */
export type Queued =
  | { kind: "update"; score: PodmanV0Score; hash: string; revision: number; at: number; signedAt?: string }
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
  /**
   * The newest operator signature time of a score this deployment accepted: a different score
   * signed before it is a replay (docs/design.md, "Signed desired state"). Null until a signed one.
   */
  signedAt: string | null;
  /** Coalesced: only the newest value that arrived mid-step (invariant 7). */
  next: Queued | null;
  plan: Plan | null;
  /** Per service, what its recorded container runs. */
  applied: Applied;
  containerIds: Record<string, string>;
  lastError: string | null;
  /** When the current step began (from the event that began it), for its deadline. */
  stepStartedAt: number | null;
  backoff: Backoff;
  /** Per applied service: its restarts and health. */
  services: Record<string, ServiceRecord>;
  /**
   * The forward retry of a failed step toward the target; kept through the retried step (its count
   * goes on if it fails again) and cleared by success or by another target.
   */
  retry: Retry | null;
}

/** A recorded container's restarts so far (by the agent and by operators), or 0 for one not recorded. */
export const restartsOf = (ctx: DeploymentContext, id: string) => {
  const service = Object.keys(ctx.containerIds).find((s) => ctx.containerIds[s] === id);
  return service === undefined ? 0 : (ctx.services[service]?.restarts ?? 0);
};

/**
 * The machine's version: bumped whenever its context or a transition changes, so that a
 * checkpoint (a saved snapshot) of another version is not restored into it.
 */
export const MACHINE_VERSION = 3;

/** A desired value that arrives while a step runs waits for it (coalesced: the newest wins). */
const MID_STEP = {
  UPDATE: [{ guard: "isTargetHash", actions: "dropQueued" }, { actions: "queue" }],
  REJECT: { actions: "queue" },
  DELETE: { actions: "queue" },
} as const;

/** The restarts the machine decided, carried out when due, while it runs or has failed. */
const RESTARTS = {
  id: "restarts",
  src: "restarts",
  input: ({ context }: { context: DeploymentContext }): RestartsInput => ({ deployment: context.deployment, restarts: restartsDue(context) }),
} as const;

/**
 * What the liveness tells a running (or failed) deployment about its services. Each re-enters the
 * state, so that its restarts actor takes the new decision.
 */
const LIVENESS = (state: "running" | "failed") =>
  ({
    SERVICE_EXITED: { guard: "isRecordedService", target: state, reenter: true, actions: "recordExit" },
    SERVICE_UNHEALTHY: { guard: "isRecordedService", target: state, reenter: true, actions: "recordUnhealthy" },
    SERVICE_HEALTHY: { guard: "isUnhealthyService", target: state, reenter: true, actions: "recordHealthy" },
    SERVICE_RESTARTED: [
      // An operator restarted the recorded container: counted, nothing else changes.
      { guard: "isOperatorRestart", actions: "recordOperatorRestart" },
      { guard: "isRecreated", target: state, reenter: true, actions: "recordRecreated" },
    ],
  }) as const;

export const deploymentMachine = machineSetup().createMachine({
  id: "deployment",
  context: ({ input }) => ({
    device: input.device,
    deployment: input.deployment,
    budgets: { ...DEFAULT_BUDGETS, ...input.budgets },
    target: null,
    desiredHash: null,
    revision: null,
    signedAt: null,
    next: null,
    plan: null,
    applied: {},
    containerIds: {},
    lastError: null,
    stepStartedAt: null,
    backoff: backoffOf(input.backoff),
    services: {},
    retry: null,
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
          onError: { target: "failed", actions: [{ type: "recordError", params: thrown }, { type: "armRetry", params: thrownIn("pull") }] },
        },
        {
          id: "deadline",
          src: "deadline",
          input: ({ context }) => deadlineOf(context, context.budgets.pullSecs * 1000),
          onDone: { target: "failed", actions: [{ type: "recordTimeout", params: { step: "pulling" } }, { type: "armRetry", params: doneIn("pull") }] },
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
            { guard: { type: "hasFailure", params: output }, target: "failed", actions: [{ type: "recordStopped", params: output }, "disarmRetry"] },
            {
              target: "startingNew",
              actions: [
                { type: "recordStopped", params: output },
                { type: "markStepStart", params: output },
              ],
            },
          ],
          onError: { target: "failed", actions: [{ type: "recordError", params: thrown }, "disarmRetry"] },
        },
        {
          id: "deadline",
          src: "deadline",
          input: ({ context }) =>
            deadlineOf(context, stopBudgetMs(context, (context.plan?.stop ?? []).map((s) => context.applied[s]?.lifecycle.grace_period_secs ?? 0))),
          onDone: { target: "failed", actions: [{ type: "recordTimeout", params: { step: "stoppingOld" } }, "disarmRetry"] },
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
            {
              guard: { type: "hasFailure", params: output },
              target: "failed",
              actions: [{ type: "recordStarted", params: output }, { type: "armRetry", params: doneIn("start") }],
            },
            // Nothing to wait for (min_ready_secs 0, no health check): started is ready.
            { guard: "nothingToVerify", target: "running", actions: [{ type: "recordStarted", params: output }, "settled"] },
            {
              target: "verifying",
              actions: [
                { type: "recordStarted", params: output },
                { type: "markStepStart", params: output },
              ],
            },
          ],
          onError: { target: "failed", actions: [{ type: "recordError", params: thrown }, { type: "armRetry", params: thrownIn("start") }] },
        },
        {
          id: "deadline",
          src: "deadline",
          input: ({ context }) => deadlineOf(context, context.budgets.startSecs * 1000),
          onDone: { target: "failed", actions: [{ type: "recordTimeout", params: { step: "startingNew" } }, { type: "armRetry", params: doneIn("start") }] },
        },
      ],
      on: MID_STEP,
    },
    verifying: {
      invoke: [
        {
          id: "verify",
          src: "verify",
          input: ({ context }): VerifyInput => ({ deployment: context.deployment, since: context.stepStartedAt ?? 0, services: toVerify(context) }),
          onDone: [
            {
              guard: { type: "hasFailure", params: output },
              target: "failed",
              actions: [{ type: "recordNotReady", params: output }, { type: "armRetry", params: doneIn("verify") }],
            },
            { target: "running", actions: "settled" },
          ],
          // Not the executor's way; recorded as the journal replays it (a verify.failed of its first service).
          onError: {
            target: "failed",
            actions: [{ type: "recordNotReady", params: ({ context, event }) => ({ ready: [], failure: notReadyOf(context, event.error), at: 0 }) }, { type: "armRetry", params: thrownIn("verify") }],
          },
        },
        {
          id: "deadline",
          src: "deadline",
          input: ({ context }) => deadlineOf(context, verifyBudgetMs(context)),
          onDone: { target: "failed", actions: [{ type: "recordTimeout", params: { step: "verifying" } }, { type: "armRetry", params: doneIn("verify") }] },
        },
      ],
      on: MID_STEP,
    },
    running: {
      // A value that arrived mid-upgrade is applied once the upgrade has settled.
      always: takeQueued({ update: "pending", delete: "removing", reject: "failed" }),
      invoke: RESTARTS,
      on: {
        UPDATE: { guard: "isNewHash", target: "pending", actions: "apply" },
        REJECT: { target: "failed", actions: "apply" },
        DELETE: { target: "removing", actions: "apply" },
        // Version 1 journals' repair, replayed as it was (docs/design.md, "Journal events, version 2").
        TICK: { guard: "needsRepair", target: "startingNew", actions: "planRepair" },
        ...LIVENESS("running"),
      },
    },
    failed: {
      // Roll forward only: a failed deployment never reverts. It tries the failed step again toward
      // the same target when that may pass (a pull, a start, readiness), and keeps what runs alive.
      always: takeQueued({ update: "pending", delete: "removing", reject: null }),
      entry: "dropPlanUnlessRetry",
      invoke: [
        RESTARTS,
        {
          id: "retry",
          src: "retryTimer",
          input: ({ context }): DeadlineInput => ({ deadline: context.retry?.at ?? Number.POSITIVE_INFINITY }),
          // Guarded: a value taken since the timer began (a reject) may have disarmed the retry.
          onDone: [
            { guard: { type: "retries", params: { step: "pull" } }, target: "pulling", actions: { type: "markStepStart", params: output } },
            { guard: { type: "retries", params: { step: "start" } }, target: "startingNew", actions: { type: "markStepStart", params: output } },
            { guard: { type: "retries", params: { step: "verify" } }, target: "startingNew", actions: { type: "markStepStart", params: output } },
          ],
        },
      ],
      on: {
        UPDATE: [
          { guard: "isNewHash", target: "pending", actions: "apply" },
          // The same score at a newer revision: the operator's retry, at once (desired.retried).
          { guard: { type: "isRetryNow", params: { from: "pull" } }, target: "pulling", actions: "retryStepNow" },
          { guard: { type: "isRetryNow", params: { from: "start" } }, target: "startingNew", actions: "retryStepNow" },
          { guard: { type: "isRetryNow", params: { from: "plan" } }, target: "pending", actions: "retryNow" },
        ],
        REJECT: { actions: "apply" },
        DELETE: { target: "removing", actions: "apply" },
        ...LIVENESS("failed"),
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
      verify: notProvided<VerifyOutput, VerifyInput>("verify"),
      restarts: fromCallback<EventObject, RestartsInput>(() => {
        throw new Error("step actor restarts was not provided");
      }),
      deadline: notProvided<StepDone, DeadlineInput>("deadline"),
      /** Resolves at the forward retry's time (never, for +Infinity: no retry armed). */
      retryTimer: notProvided<StepDone, DeadlineInput>("retryTimer"),
    },
    guards: {
      hasPlan: ({ context }) => context.plan !== null,
      isNewHash: ({ context, event }) => event.type === "UPDATE" && event.hash !== context.desiredHash,
      /** Mid-step, an update equal to the target in flight cancels whatever was queued. */
      isTargetHash: ({ context, event }) => event.type === "UPDATE" && event.hash === context.desiredHash,
      /** The restarted container is the one recorded for its service (not one replaced since). */
      needsRepair: ({ context, event }) =>
        event.type === "TICK" && servicesNeedingRepair(context.applied, context.containerIds, event.containers).length > 0,
      queued: ({ context }, params: { kind: Queued["kind"] }) => context.next?.kind === params.kind,
      /** A step that ended with part of its work done and one service failed. */
      hasFailure: (_, output: { failure?: unknown }) => output.failure !== undefined,
      /** The services just started need no wait: no health check, and `min_ready_secs` 0. */
      nothingToVerify: ({ context }) => (context.plan?.start ?? []).every((s) => !s.service.health && minReadySecsOf(context) === 0),
      isRecordedService: ({ context, event }) => isServiceEvent(event) && Object.hasOwn(context.applied, event.service) && Object.hasOwn(context.containerIds, event.service),
      isOperatorRestart: ({ context, event }) => event.type === "SERVICE_RESTARTED" && event.by === "operator" && context.containerIds[event.service] === event.id,
      /** The agent created a gone container of a recorded service again. */
      isRecreated: ({ context, event }) => event.type === "SERVICE_RESTARTED" && event.by === "agent" && Object.hasOwn(context.applied, event.service),
      isUnhealthyService: ({ context, event }) => event.type === "SERVICE_HEALTHY" && context.services[event.service]?.unhealthy === true,
      retries: ({ context }, p: { step: RetryStep }) => context.retry?.step === p.step,
      /**
       * The same score again at a newer revision while failed: retried at once, from the step the
       * retry waits for (`pull`: the pull; `start`: the start and readiness), or planned afresh
       * when none waits (a stop failed, a timeout of one).
       */
      isRetryNow: ({ context, event }, p: { from: "pull" | "start" | "plan" }) => {
        if (event.type !== "UPDATE" || event.hash !== context.desiredHash || context.target === null || event.revision <= (context.revision ?? 0)) return false;
        const step = context.retry?.step ?? null;
        return p.from === "plan" ? step === null : p.from === "pull" ? step === "pull" : step === "start" || step === "verify";
      },
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
        const services = { ...context.services };
        for (const s of out.stopped) {
          delete applied[s];
          delete containerIds[s];
          delete services[s];
        }
        return { applied, containerIds, services, lastError: out.failure ? `stop ${out.failure.service}: ${out.failure.message}` : context.lastError };
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
        // A new container starts its record afresh; one started again (a retry, a repair) keeps its
        // own, and a restart decided before this start is moot.
        const services = { ...context.services };
        for (const [service, id] of Object.entries(out.started)) {
          services[service] = { ...(context.containerIds[service] === id ? (services[service] ?? FRESH) : FRESH), startedAt: out.at };
        }
        return { applied, containerIds, services, lastError: out.failure ? `start ${out.failure.service}: ${out.failure.message}` : null };
      }),
      recordRemoved: assign(({ context }, out: RemoveAllOutput) => {
        if (!out.failure) return { applied: {}, containerIds: {}, services: {}, target: null, lastError: null };
        // A partial removal: the containers already removed are no longer recorded, so the next plan
        // starts their services again instead of taking them for unchanged.
        const applied = { ...context.applied };
        const containerIds = { ...context.containerIds };
        const services = { ...context.services };
        for (const [service, id] of Object.entries(context.containerIds)) {
          if (out.removed.includes(id)) {
            delete applied[service];
            delete containerIds[service];
            delete services[service];
          }
        }
        return { applied, containerIds, services, lastError: `remove ${out.failure.service}: ${out.failure.message}` };
      }),
      recordError: assign((_, p: { error: unknown }) => ({ lastError: errorOf(p.error).message })),
      recordTimeout: assign((_, p: { step: string }) => ({ lastError: `${p.step} timed out` })),
      stepDone: assign({ plan: null }),
      /** Ready: the upgrade (or repair) is done, and so is any retry of it. */
      settled: assign({ plan: null, retry: null }),
      recordNotReady: assign((_, out: VerifyOutput) => ({ lastError: out.failure ? `verify ${out.failure.service}: ${out.failure.reason}` : null })),
      /** The failed step is tried again with the backoff; its plan stays for it. */
      armRetry: assign(({ context }, p: { step: RetryStep; at: number }) => ({ retry: retryAfter(context, p.step, p.at) })),
      disarmRetry: assign({ retry: null }),
      dropPlanUnlessRetry: assign(({ context }) => (context.retry ? {} : { plan: null })),
      retryNow: assign(({ context, event }) =>
        event.type === "UPDATE"
          ? { revision: event.revision, retry: null, plan: planUpgrade(context.applied, context.target!.score, context.target!.hash), lastError: null, stepStartedAt: event.at }
          : {},
      ),
      retryStepNow: assign(({ event }) => (event.type === "UPDATE" ? { revision: event.revision, lastError: null, stepStartedAt: event.at } : {})),
      recordExit: assign(({ context, event }) => (event.type === "SERVICE_EXITED" ? restartOf(context, event.service, event.at, { lastExitCode: event.exitCode }) : {})),
      recordUnhealthy: assign(({ context, event }) => (event.type === "SERVICE_UNHEALTHY" ? restartOf(context, event.service, event.at, { unhealthy: true }) : {})),
      recordHealthy: assign(({ context, event }) => {
        if (event.type !== "SERVICE_HEALTHY") return {};
        const rec = context.services[event.service] ?? FRESH;
        // A restart still waited for is not needed any more.
        const restartAt = rec.restartAt !== null && rec.restartAt > event.at ? event.at : rec.restartAt;
        return { services: { ...context.services, [event.service]: { ...rec, unhealthy: false, restartAt } } };
      }),
      recordRecreated: assign(({ context, event }) =>
        event.type === "SERVICE_RESTARTED" ? { containerIds: { ...context.containerIds, [event.service]: event.id } } : {},
      ),
      recordOperatorRestart: assign(({ context, event }) => {
        if (event.type !== "SERVICE_RESTARTED") return {};
        const rec = context.services[event.service] ?? FRESH;
        return { services: { ...context.services, [event.service]: { ...rec, restarts: event.restarts } } };
      }),
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
  return e.type === "UPDATE" || e.type === "REJECT" || e.type === "DELETE";
}

function isServiceEvent(e: DeploymentEvent): e is ServiceEvent {
  return e.type === "SERVICE_EXITED" || e.type === "SERVICE_UNHEALTHY" || e.type === "SERVICE_HEALTHY" || e.type === "SERVICE_RESTARTED";
}

const FRESH: ServiceRecord = { restarts: 0, lastExitCode: null, restartAt: null, tries: NO_TRIES, unhealthy: false, startedAt: null };

/** A service that died or turned unhealthy at `at`: restarted at once the first time, then with the backoff. */
export function restartOf(ctx: DeploymentContext, service: string, at: number, change: Partial<Pick<ServiceRecord, "lastExitCode" | "unhealthy">>): Partial<DeploymentContext> {
  const rec = ctx.services[service] ?? FRESH;
  const next = nextTry(rec.tries, at, ctx.backoff);
  const lastExitCode = change.lastExitCode === undefined || change.lastExitCode === null ? rec.lastExitCode : change.lastExitCode;
  const updated: ServiceRecord = { ...rec, ...change, lastExitCode, restarts: rec.restarts + 1, restartAt: next.at, tries: next.tries };
  return { services: { ...ctx.services, [service]: updated } };
}

/** The retry of `step` after a failure at `at`: the backoff goes on while the target stays the same. */
export function retryAfter(ctx: DeploymentContext, step: RetryStep, at: number): Retry {
  const next = nextTry(ctx.retry?.tries ?? NO_TRIES, at, ctx.backoff);
  return { step, at: next.at, tries: next.tries };
}

/** Each restart decided for a recorded container, for the restarts actor. */
function restartsDue(ctx: DeploymentContext): RestartDue[] {
  return Object.entries(ctx.services).flatMap(([service, rec]) => {
    const id = ctx.containerIds[service];
    const spec = ctx.applied[service];
    if (rec.restartAt === null || !id || !spec || (rec.startedAt !== null && rec.restartAt < rec.startedAt)) return [];
    return [{ service, id, at: rec.restartAt, spec, recreate: spec.scoreHash === ctx.target?.hash, unhealthy: rec.unhealthy, restarts: rec.restarts }];
  });
}

function minReadySecsOf(ctx: DeploymentContext): number {
  return ctx.target?.score.lifecycle?.min_ready_secs ?? DEFAULT_MIN_READY_SECS;
}

/** The services a readiness step waits for: those the start step started, with their checks. */
function toVerify(ctx: DeploymentContext): VerifyService[] {
  const minReadySecs = minReadySecsOf(ctx);
  return (ctx.plan?.start ?? []).flatMap((s) => {
    const id = ctx.containerIds[s.service.name];
    return id ? [{ service: s.service.name, id, ...(s.service.health ? { health: s.service.health } : {}), minReadySecs }] : [];
  });
}

/** The longest wait of the readiness step (docs/design.md: start_period + (retries + 1) × interval), and slack. */
function verifyBudgetMs(ctx: DeploymentContext): number {
  const waits = toVerify(ctx).map((v) => {
    if (!v.health) return v.minReadySecs;
    const h = { ...HEALTH_DEFAULTS, ...v.health };
    return h.start_period_secs + (h.retries + 1) * h.interval_secs + h.timeout_secs;
  });
  return (Math.max(0, ...waits) + ctx.budgets.verifySlackSecs) * 1000;
}

/** The params of armRetry for a step that ended with a failure (or a deadline that fired): its time. */
function doneIn(step: RetryStep) {
  return ({ event }: { event: DoneActorEvent<StepDone> }) => ({ step, at: event.output.at });
}

/** …for a step that threw: the time the error carries, else the one the journal gives it (undatedErrorTime). */
function thrownIn(step: RetryStep) {
  return ({ context, event }: { context: DeploymentContext; event: ErrorActorEvent }) => ({ step, at: timeOfError(event.error) ?? undatedErrorTime(context) });
}

/**
 * The time given to a step error that carries none (the executors date theirs; only one that crashes
 * outright throws a bare error): the step's start, or the arrival of the value queued meanwhile if
 * earlier. The machine reads an error's time to start the queued value's step, at the later of the
 * two times, and to date the forward retry, so the replay does both when the live machine did.
 */
export function undatedErrorTime(ctx: DeploymentContext): number {
  return Math.min(ctx.stepStartedAt ?? 0, ctx.next?.at ?? Number.POSITIVE_INFINITY);
}

/** A readiness step that threw: its first service, and the error. */
export function notReadyOf(ctx: DeploymentContext, error: unknown): { service: string; reason: string } {
  return { service: ctx.plan?.start[0]?.service.name ?? Object.keys(ctx.applied)[0] ?? "unknown", reason: errorOf(error).message };
}

function timeOfError(e: unknown): number | undefined {
  return typeof e === "object" && e !== null && "at" in e && typeof e.at === "number" ? e.at : undefined;
}

/** A desired event as a value that can wait: the one conversion between the two. */
function queued(e: DesiredEvent): Queued {
  switch (e.type) {
    case "UPDATE":
      return { kind: "update", score: e.score, hash: e.hash, revision: e.revision, at: e.at, ...(e.signedAt ? { signedAt: e.signedAt } : {}) };
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
        signedAt: laterSignedAt(ctx.signedAt, d.signedAt ?? null),
        plan: planUpgrade(ctx.applied, d.score, d.hash),
        lastError: null,
        stepStartedAt: d.at,
        next: null,
        retry: null,
      };
    case "reject":
      return { lastError: d.error, revision: d.revision, desiredHash: null, plan: null, next: null, retry: null };
    case "delete":
      return { revision: d.revision, desiredHash: null, plan: null, next: null, stepStartedAt: d.at, retry: null };
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
