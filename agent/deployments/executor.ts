// The thin executor: binds the deployment machine's step actors to a ContainerRuntime. Each step is
// idempotent, because a restored machine re-runs the step it was in: stopping a stopped container
// succeeds, and a container already created for the same score hash is adopted.
import { setMaxListeners } from "node:events";
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
import { containerName } from "../../contracts/names.js";
import { sleep } from "../../fleet/sleep.js";

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

  /** Stops (gracefully) and removes containers in order, up to the first failure or an abort. */
  const stopAndRemove = async <C extends { service: string; id: string; graceSecs: number }>(containers: C[], signal: AbortSignal) => {
    const done: C[] = [];
    for (const c of containers) {
      if (signal.aborted) return { done, failure: { service: c.service, message: "abandoned" } as StepFailure };
      try {
        await runtime.stop(c.id, c.graceSecs);
        await runtime.remove(c.id);
        done.push(c);
      } catch (e) {
        return { done, failure: { service: c.service, message: messageOf(e) } as StepFailure };
      }
    }
    return { done, failure: undefined };
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
        liveness.checked?.(svc.id, r.status);
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
  const restartWhenDue = async (deployment: string, due: RestartsInput["restarts"][number], began: number, signal: AbortSignal): Promise<RestartOutcome[]> => {
    // Before this actor's time (a restore, or a restart an earlier invocation carried out): not redone.
    if (due.at < began - STALE_RESTART_MS) return [];
    await sleepUntil(due.at, signal, "restart");
    if (signal.aborted) return [];
    const restartedAt = liveness.startedAt(due.id);
    if (restartedAt !== null && restartedAt >= due.at) return []; // done already (a re-invocation)
    const done = liveness.restarting(due.id);
    const stillDown = (): RestartOutcome => ({ type: "SERVICE_EXITED", service: due.service, exitCode: null, at: now() });
    try {
      const c = await runtime.status(due.id);
      if (!c) {
        // Roll forward only: a container of an earlier score is not created again; nor one whose
        // env this device no longer has (recovered from a redacted journal): never "<redacted>".
        if (!due.recreate || Object.values(due.spec.service.env ?? {}).includes(REDACTED)) return [];
        const spec = { deployment, ...due.spec };
        try {
          const id = await runtime.startService(spec);
          return [{ type: "SERVICE_RESTARTED", service: due.service, id, restarts: due.restarts, by: "agent", at: now() }];
        } catch {
          // Created but not started: recorded, so that it is not left behind (the liveness sees it
          // down and the next restart starts it); nothing created: still down, tried again.
          const made = await runtime.status(containerName(deployment, due.service)).catch(() => null);
          if (signal.aborted) return [];
          return made && made.scoreHash === due.spec.scoreHash ? [{ type: "SERVICE_RESTARTED", service: due.service, id: made.id, restarts: due.restarts, by: "agent", at: now() }] : [stillDown()];
        }
      }
      if (c.state !== "running" || due.unhealthy) await runtime.restart(due.id);
      return [];
    } catch {
      // Still down: the machine schedules the next try with its backoff.
      return signal.aborted ? [] : [stillDown()];
    } finally {
      done();
    }
  };

  return {
    pullImages: fromPromise<StepDone, PullInput>(({ input }) =>
      timed(async () => {
        for (const image of input.images) await runtime.ensureImage(image);
        return {};
      }),
    ),

    stopOld: fromPromise<StopOutput, StopInput>(({ input, signal }) =>
      timed(async () => {
        const old = await stopAndRemove(input.containers, signal);
        const stopped = old.done.map((c) => c.service);
        if (old.failure) return { stopped, failure: old.failure };
        // Strays: ours, of this deployment, unrecorded, for a service the new score doesn't have.
        const recorded = new Set(input.containers.map((c) => c.id));
        const keep = new Set(input.keep);
        const strays = (await runtime.list()).filter((c) => c.deployment === input.deployment && !keep.has(c.service) && !recorded.has(c.id));
        const swept = await stopAndRemove(strays.map((c) => ({ service: c.service, id: c.id, graceSecs: input.strayGraceSecs })), signal);
        return {
          stopped,
          ...(swept.done.length ? { swept: swept.done.map((c) => c.id) } : {}),
          ...(swept.failure ? { failure: swept.failure } : {}),
        };
      }),
    ),

    startNew: fromPromise<StartOutput, StartInput>(({ input, signal }) =>
      timed(async () => {
        const started: Record<string, string> = {};
        for (const spec of input.services) {
          const service = spec.service.name;
          // Timed out: start nothing more; what was started is swept by the next upgrade's stop step.
          if (signal.aborted) return { started, failure: { service, message: "abandoned" } };
          if (Object.values(spec.service.env ?? {}).includes(REDACTED)) {
            // Recovered from a redacted journal without the full score: never run a placeholder secret.
            return { started, failure: { service, message: `the env of score ${spec.scoreHash} is not on this device; write the desired state again` } };
          }
          try {
            started[service] = await runtime.startService({ deployment: input.deployment, ...spec });
          } catch (e) {
            // A container that was created but did not start exists: record it so it is cleaned up later.
            const existing = await runtime.status(`${input.deployment}.${service}`).catch(() => null);
            const id = existing && existing.scoreHash === spec.scoreHash ? existing.id : undefined;
            return { started, failure: { service, message: messageOf(e), ...(id ? { id } : {}) } };
          }
        }
        return { started };
      }),
    ),

    removeAll: fromPromise<RemoveAllOutput, RemoveAllInput>(({ input, signal }) =>
      timed(async () => {
        // Recorded ids plus anything else labelled with this deployment (a crash may leave one).
        const listed = (await runtime.list()).filter((c) => c.deployment === input.deployment);
        const targets = new Map<string, string>(Object.entries(input.containerIds).map(([service, id]) => [id, service]));
        for (const c of listed) targets.set(c.id, c.service);
        const r = await stopAndRemove([...targets].map(([id, service]) => ({ service, id, graceSecs: input.graceSecs })), signal);
        const removed = r.done.map((c) => c.id);
        return r.failure ? { removed, failure: r.failure } : { removed };
      }),
    ),

    verify: fromPromise<VerifyOutput, VerifyInput>(async ({ input, signal }) => {
      const ready: string[] = [];
      const abort = new AbortController();
      // Each service's wait listens on it (its death, its timer): a score may have 64.
      setMaxListeners(0, abort.signal);
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
      setMaxListeners(0, abort.signal);
      const began = now();
      for (const due of input.restarts) void restartWhenDue(input.deployment, due, began, abort.signal).then((outcomes) => {
        for (const o of outcomes) if (!abort.signal.aborted) sendBack(o);
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
