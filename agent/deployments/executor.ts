// The thin executor: binds the deployment machine's step actors to a ContainerRuntime. Each step is
// idempotent, because a restored machine re-runs the step it was in: stopping a stopped container
// succeeds, and a container already created for the same score hash is adopted. The parts of a step
// (images, containers, services) run side by side, STEP_CONCURRENCY at a time, each after what it
// must follow (docs/design.md, "Service health": `depends_on`).
import { fromCallback, fromPromise, type EventObject } from "xstate";
import { deploymentMachine } from "../../machines/deployment.machine.js";
import type {
  DeadlineInput,
  PullInput,
  RemoveAllInput,
  RemoveAllOutput,
  StartInput,
  StartOutput,
  StepDone,
  StepFailure,
  StopInput,
  StopOutput,
  RestartOutcome,
  RestartsInput,
  VerifyInput,
  VerifyOutput,
  VerifyService,
} from "../../machines/deployment.steps.js";
import { RuntimeError, type ContainerRuntime } from "../../runtime/container-runtime.js";
import type { Death, StepLiveness } from "./liveness.js";
import { REDACTED } from "../journal/redact.js";
import { sleep } from "../../fleet/sleep.js";
import { runParts, type Part, type PartsOutcome } from "./concurrent.js";

export interface ExecutorOptions {
  /** Clock for step outputs and deadlines; tests pass a fake one. */
  now?: () => number;
  /**
   * The device's liveness (agent/deployments/liveness.ts): deaths as its event stream sees them, and
   * the agent's own restarts kept from counting as crashes. Without it the steps follow the
   * runtime's event stream themselves.
   */
  liveness?: StepLiveness;
  /**
   * Waits until the clock reads `at` (a restart's backoff, a readiness wait), or `signal` aborts.
   * Default: a timer on `now`; the model and property suites pass one their test drives.
   */
  sleepUntil?: (at: number, signal: AbortSignal, why: "restart" | "ready") => Promise<void>;
}

/**
 * How many parts of a step run at once. Podman's work per container start or stop (runc, conmon,
 * the network namespace) is CPU-bound on a small device: on 2 cores, 8 upgrades at once took no
 * less time than 4 (bench/RESULTS.md), and fewer at once keeps the device responsive.
 */
export const STEP_CONCURRENCY = 4;

/** A restart that was due this long before its actor began is taken as done or lost: the liveness reports what is still wrong. */
const STALE_RESTART_MS = 10_000;
// Podman's own defaults for a health check field the score leaves out.
const HEALTH_DEFAULTS = { interval_secs: 30, retries: 3, start_period_secs: 0 } as const;

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** A thrown step error that still says when it happened, so the next step's clock is right. */
class TimedError extends Error {
  constructor(message: string, readonly at: number) {
    super(message);
  }
  toJSON() {
    return { message: this.message, at: this.at };
  }
}

/** A service that did not start; `id` when its container was created all the same. */
class StartFailure extends Error {
  constructor(message: string, readonly id?: string) {
    super(message);
  }
}

export function deploymentActors(runtime: ContainerRuntime, opts: ExecutorOptions = {}) {
  const now = opts.now ?? Date.now;
  const liveness = opts.liveness ?? ownWatch(runtime, now);
  const sleepUntil = opts.sleepUntil ?? ((at: number, signal: AbortSignal) => sleep(at - now(), signal));
  const timed = async <T extends object>(work: () => Promise<T>): Promise<T & StepDone> => {
    try {
      return { ...(await work()), at: now() };
    } catch (e) {
      throw new TimedError(messageOf(e), now());
    }
  };

  /**
   * Deployments whose every container this process knows to be recorded: none of theirs can be a
   * stray, so the stop step lists nothing. A deployment leaves the set when one of its steps fails or
   * is abandoned (a container may have been created and not recorded), and is not in it after the
   * agent starts (a crash may have left one): its next stop step sweeps, and puts it back.
   */
  const noStrays = new Set<string>();
  const mayHaveStrays = (deployment: string) => noStrays.delete(deployment);

  /** A step's failure as the machine records it: the part's service and why. */
  const failureOf = <T extends { service: string }>(o: PartsOutcome<T>): StepFailure | undefined =>
    o.failure && { service: o.failure.part.service, message: "abandoned" in o.failure ? "abandoned" : messageOf(o.failure.error) };

  /**
   * Stops (gracefully) and removes containers side by side, each after its `after`, in one request
   * each (the runtime's stopAndRemove). `recorded`: an id the agent recorded itself, whose
   * ownership was checked when it was created, so no inspect; any other id is checked first.
   */
  const stopAndRemove = async <C extends { service: string; id: string; graceSecs: number; after?: string[]; recorded: boolean }>(containers: C[], signal: AbortSignal) => {
    const parts: Part<C>[] = containers.map((c) => ({ key: c.service, after: c.after ?? [], value: c }));
    const o = await runParts(parts, STEP_CONCURRENCY, (c) => runtime.stopAndRemove(c.id, c.graceSecs, { recorded: c.recorded }), signal);
    return { done: o.done, failure: failureOf(o) };
  };

  /** Starts one service, or says why not; a container it created that did not start is named by id. */
  const startOne = async (deployment: string, spec: StartInput["services"][number]): Promise<string> => {
    if (Object.values(spec.service.env ?? {}).includes(REDACTED)) {
      // Recovered from a redacted journal without the full score: never run a placeholder secret.
      throw new StartFailure(`the env of score ${spec.scoreHash} is not on this device; write the desired state again`);
    }
    try {
      return await runtime.startService({ deployment, ...spec });
    } catch (e) {
      // A container that was created but did not start exists: record it so it is cleaned up later.
      const existing = await runtime.status(`${deployment}.${spec.service.name}`).catch(() => null);
      throw new StartFailure(messageOf(e), existing && existing.scoreHash === spec.scoreHash ? existing.id : undefined);
    }
  };

  /** Resolves at `deadline` (epoch ms; never for +Infinity); a stopped actor's promise is dropped. */
  const until = async (deadline: number, signal: AbortSignal): Promise<StepDone> => {
    if (!Number.isFinite(deadline)) await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    else await sleep(deadline - now(), signal);
    return { at: now() };
  };

  /** null when the service is ready; else why not. Waits with the deadlines the input carries (a restore waits the rest). */
  const readiness = async (svc: VerifyService, since: number, signal: AbortSignal): Promise<string | null> => {
    const died = liveness.death(svc.id, signal).then((d) => deathReason(svc.service, d));
    const current = await runtime.status(svc.id).catch(() => undefined);
    if (current === null) return `service ${svc.service}: its container is gone`;
    if (current && current.state !== "running") return `service ${svc.service} exited with code ${current.exitCode ?? "unknown"}`;
    const waitOrDeath = async (until: number) => Promise.race([sleepUntil(until, signal, "ready").then(() => null), died]);
    if (!svc.health) {
      if (svc.minReadySecs === 0) return null;
      const dead = await waitOrDeath(since + svc.minReadySecs * 1000);
      if (dead !== null || signal.aborted) return dead ?? "abandoned";
      const c = await runtime.status(svc.id).catch(() => undefined);
      if (c === null) return `service ${svc.service}: its container is gone`;
      return c === undefined || c.state === "running" ? null : `service ${svc.service} exited with code ${c.exitCode ?? "unknown"}`;
    }
    const h = svc.health;
    const intervalMs = (h.interval_secs ?? HEALTH_DEFAULTS.interval_secs) * 1000;
    // docs/design.md: ready at the first pass within start_period + (retries + 1) × interval.
    const limit = since + (h.start_period_secs ?? HEALTH_DEFAULTS.start_period_secs) * 1000 + ((h.retries ?? HEALTH_DEFAULTS.retries) + 1) * intervalMs;
    for (;;) {
      if (signal.aborted) return "abandoned";
      let last = "";
      try {
        const r = await runtime.healthcheck(svc.id);
        if (r.status === "healthy" || r.status === "none") return null;
        if (r.status === "unhealthy") return `service ${svc.service} is unhealthy: ${r.output || "its health check failed"}`;
        last = r.output;
      } catch (e) {
        if (e instanceof RuntimeError && (e.reason === "not-running" || e.reason === "missing")) {
          return (await Promise.race([died, sleep(200, signal).then(() => null)])) ?? `service ${svc.service} stopped running`;
        }
        last = messageOf(e);
      }
      if (now() + intervalMs > limit) {
        return `service ${svc.service}: no passing health check within ${Math.round((limit - since) / 1000)} s${last ? ` (last: ${last})` : ""}`;
      }
      const dead = await waitOrDeath(now() + intervalMs);
      if (dead !== null) return dead;
    }
  };

  /** One restart the machine decided, carried out when due; what the machine must hear of it, if anything. */
  const restartWhenDue = async (deployment: string, due: RestartsInput["restarts"][number], began: number, signal: AbortSignal): Promise<RestartOutcome | null> => {
    // Before this actor's time (a restore, or a restart an earlier invocation carried out): not redone.
    if (due.at < began - STALE_RESTART_MS) return null;
    await sleepUntil(due.at, signal, "restart");
    if (signal.aborted) return null;
    const restartedAt = liveness.startedAt(due.id);
    if (restartedAt !== null && restartedAt >= due.at) return null; // done already (a re-invocation)
    const done = liveness.restarting(due.id);
    try {
      const c = await runtime.status(due.id);
      if (!c) {
        // Roll forward only: a container of an earlier score is not created again; nor one whose
        // env this device no longer has (recovered from a redacted journal): never "<redacted>".
        if (!due.recreate || Object.values(due.spec.service.env ?? {}).includes(REDACTED)) return null;
        const id = await runtime.startService({ deployment, ...due.spec });
        // Stopped meanwhile, the machine never hears of the new id: for the next stop step to sweep.
        if (signal.aborted) mayHaveStrays(deployment);
        return { type: "SERVICE_RESTARTED", service: due.service, id, restarts: due.restarts, by: "agent", at: now() };
      }
      if (c.state !== "running" || due.unhealthy) await runtime.restart(due.id);
      return null;
    } catch {
      mayHaveStrays(deployment);
      // Still down: the machine schedules the next try with its backoff.
      return signal.aborted ? null : { type: "SERVICE_EXITED", service: due.service, exitCode: null, at: now() };
    } finally {
      done();
    }
  };

  return {
    pullImages: fromPromise<StepDone, PullInput>(({ input, signal }) =>
      timed(async () => {
        // Side by side; the first failure is the step's, once the other pulls have ended.
        const o = await runParts(input.images.map((image) => ({ key: image, after: [], value: image })), STEP_CONCURRENCY, (image) => runtime.ensureImage(image), signal);
        if (o.failure) throw "error" in o.failure ? o.failure.error : new Error("abandoned");
        return {};
      }),
    ),

    stopOld: fromPromise<StopOutput, StopInput>(({ input, signal }) =>
      timed(async () => {
        const old = await stopAndRemove(input.containers.map((c) => ({ ...c, recorded: true })), signal);
        const stopped = old.done.map((c) => c.service);
        if (old.failure) {
          mayHaveStrays(input.deployment);
          return { stopped, failure: old.failure };
        }
        if (noStrays.has(input.deployment)) return { stopped };
        // Strays: ours, of this deployment, unrecorded, for a service the new score doesn't have.
        const recorded = new Set(input.containers.map((c) => c.id));
        const keep = new Set(input.keep);
        const strays = (await runtime.list()).filter((c) => c.deployment === input.deployment && !keep.has(c.service) && !recorded.has(c.id));
        const swept = await stopAndRemove(strays.map((c) => ({ service: c.service, id: c.id, graceSecs: input.strayGraceSecs, recorded: false })), signal);
        if (!swept.failure) noStrays.add(input.deployment);
        return {
          stopped,
          ...(swept.done.length ? { swept: swept.done.map((c) => c.id) } : {}),
          ...(swept.failure ? { failure: swept.failure } : {}),
        };
      }).catch((e: unknown) => {
        mayHaveStrays(input.deployment);
        throw e;
      }),
    ),

    startNew: fromPromise<StartOutput, StartInput>(({ input, signal }) =>
      timed(async () => {
        // Each service after what it depends on, the others side by side. Timed out: start nothing
        // more; what was started is recorded, anything else is swept by the next stop step.
        const started: Record<string, string> = {};
        const parts = input.services.map((spec) => ({ key: spec.service.name, after: spec.service.depends_on ?? [], value: spec }));
        const o = await runParts(parts, STEP_CONCURRENCY, async (spec) => {
          started[spec.service.name] = await startOne(input.deployment, spec);
        }, signal);
        if (!o.failure) return { started };
        mayHaveStrays(input.deployment);
        const service = o.failure.part.service.name;
        if ("abandoned" in o.failure) return { started, failure: { service, message: "abandoned" } };
        const e = o.failure.error;
        return { started, failure: { service, message: messageOf(e), ...(e instanceof StartFailure && e.id ? { id: e.id } : {}) } };
      }).catch((e: unknown) => {
        mayHaveStrays(input.deployment);
        throw e;
      }),
    ),

    removeAll: fromPromise<RemoveAllOutput, RemoveAllInput>(({ input, signal }) =>
      timed(async () => {
        // Recorded ids plus anything else labelled with this deployment (a crash may leave one).
        mayHaveStrays(input.deployment);
        const listed = (await runtime.list()).filter((c) => c.deployment === input.deployment);
        const targets = new Map(Object.entries(input.containerIds).map(([service, id]) => [id, { service, id, graceSecs: input.graceSecs, recorded: true }]));
        for (const c of listed) if (!targets.has(c.id)) targets.set(c.id, { service: c.service, id: c.id, graceSecs: input.graceSecs, recorded: false });
        const r = await stopAndRemove([...targets.values()], signal);
        const removed = r.done.map((c) => c.id);
        return r.failure ? { removed, failure: r.failure } : { removed };
      }),
    ),

    verify: fromPromise<VerifyOutput, VerifyInput>(async ({ input, signal }) => {
      const ready: string[] = [];
      const abort = new AbortController();
      const stop = () => abort.abort();
      signal.addEventListener("abort", stop, { once: true });
      try {
        // The first service that is not ready ends the step: the others are not waited for.
        const failure = await new Promise<VerifyOutput["failure"]>((resolve) => {
          let left = input.services.length;
          if (left === 0) resolve(undefined);
          for (const svc of input.services) {
            void readiness(svc, input.since, abort.signal)
              .catch((e: unknown) => `service ${svc.service}: ${messageOf(e)}`)
              .then((reason) => {
                if (abort.signal.aborted) return;
                if (reason !== null) return resolve({ service: svc.service, reason });
                ready.push(svc.service);
                if (--left === 0) resolve(undefined);
              });
          }
          signal.addEventListener("abort", () => resolve({ service: input.services.find((s) => !ready.includes(s.service))?.service ?? "", reason: "abandoned" }), { once: true });
        });
        return { ready, ...(failure ? { failure } : {}), at: now() };
      } finally {
        abort.abort();
        signal.removeEventListener("abort", stop);
      }
    }),

    // Long-lived while the deployment runs (or has failed): each restart the machine decided, at its
    // deadline. It tells the machine only what changes its record (a new id, a restart that did not take).
    restarts: fromCallback<EventObject, RestartsInput>(({ input, sendBack }) => {
      const abort = new AbortController();
      const began = now();
      for (const due of input.restarts) void restartWhenDue(input.deployment, due, began, abort.signal).then((outcome) => {
        if (outcome && !abort.signal.aborted) sendBack(outcome);
      });
      return () => abort.abort();
    }),

    // Stopped with its step, the deadline's answer is dropped by the machine.
    deadline: fromPromise<StepDone, DeadlineInput>(({ input, signal }) => until(input.deadline, signal)),
    retryTimer: fromPromise<StepDone, DeadlineInput>(({ input, signal }) => until(input.deadline, signal)),
  };
}

const deathReason = (service: string, d: Death) =>
  d.exitCode === null ? `service ${service}: its container was removed` : `service ${service} exited with code ${d.exitCode}`;

/**
 * Without the agent's liveness (tests that drive one machine): deaths from a watch of the runtime's
 * events of its own, for as long as someone waits for one.
 */
function ownWatch(runtime: ContainerRuntime, now: () => number): StepLiveness {
  const started = new Map<string, number>();
  return {
    death: (id, signal) =>
      new Promise<Death>((resolve) => {
        const watch = new AbortController();
        signal.addEventListener("abort", () => watch.abort(), { once: true });
        void runtime.watchContainers(
          {
            connected: () => undefined,
            event: (e) => {
              if (e.id === id && (e.type === "died" || e.type === "removed")) {
                watch.abort();
                resolve({ exitCode: e.type === "died" ? e.exitCode : null, at: now() });
              }
            },
          },
          watch.signal,
        );
      }),
    restarting: (id) => {
      return () => started.set(id, now());
    },
    startedAt: (id) => started.get(id) ?? null,
  };
}

/** The deployment machine wired to a runtime: what the agent runs, and what tests drive. */
export const runtimeDeploymentMachine = (runtime: ContainerRuntime, opts?: ExecutorOptions) =>
  deploymentMachine.provide({ actors: deploymentActors(runtime, opts) });
