// The thin executor: binds the deployment machine's step actors to a ContainerRuntime. Each step is
// idempotent, because a restored machine re-runs the step it was in: stopping a stopped container
// succeeds, and a container already created for the same score hash is adopted.
import { fromPromise } from "xstate";
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
} from "../../machines/deployment.steps.js";
import type { ContainerRuntime } from "../../runtime/container-runtime.js";
import { REDACTED } from "../journal/redact.js";
import { sleep } from "../../fleet/sleep.js";

export interface ExecutorOptions {
  /** Clock for step outputs and deadlines; tests pass a fake one. */
  now?: () => number;
}

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

  /**
   * The settle: once for the whole step, then one list. The first service (in start order) whose
   * container no longer runs fails the step; its id moves from `started` to the failure, so the
   * machine still records it. A later service that exited too stays recorded by its id.
   */
  const exitedAtStart = async (started: Record<string, string>, signal: AbortSignal): Promise<Pick<StartOutput, "failure">> => {
    const services = Object.keys(started);
    if (runtime.startSettleMs === null || services.length === 0) return {};
    if (runtime.startSettleMs > 0) await sleep(runtime.startSettleMs, signal);
    const last = services.at(-1)!;
    if (signal.aborted) return { failure: { service: last, message: "abandoned" } };
    let listed;
    try {
      listed = new Map((await runtime.list()).map((c) => [c.id, c]));
    } catch (e) {
      return { failure: { service: last, message: `checking that the started containers run: ${messageOf(e)}` } };
    }
    for (const service of services) {
      const id = started[service]!;
      const c = listed.get(id);
      if (c?.state === "running") continue;
      delete started[service];
      return c
        ? { failure: { service, message: `service ${service} exited at start with code ${c.exitCode ?? "unknown"}`, id } }
        : { failure: { service, message: `service ${service}: its container vanished at start` } };
    }
    return {};
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
        return { started, ...(await exitedAtStart(started, signal)) };
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

    // Stopped with its step, the deadline's answer is dropped by the machine.
    deadline: fromPromise<StepDone, DeadlineInput>(async ({ input, signal }) => {
      await sleep(input.deadline - now(), signal);
      return { at: now() };
    }),
  };
}

/** The deployment machine wired to a runtime: what the agent runs, and what tests drive. */
export const runtimeDeploymentMachine = (runtime: ContainerRuntime, opts?: ExecutorOptions) =>
  deploymentMachine.provide({ actors: deploymentActors(runtime, opts) });
