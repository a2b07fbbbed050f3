// The inputs and outputs of the steps a deployment's machine invokes. The machine decides; an
// executor bound to a ContainerRuntime (agent/deployment.actors.ts) carries the step out.
import type { Health } from "../contracts/score.codec.js";
import type { AppliedService } from "./upgrade.plan.js";

/** Every step output carries the time it finished: the machine keeps clocks out of itself. */
export interface StepDone {
  at: number;
}

/** A step that did part of its work and then failed on one service. */
export interface StepFailure {
  service: string;
  message: string;
}

export interface PullInput {
  deployment: string;
  images: string[];
}

export interface StopInput {
  deployment: string;
  /**
   * Recorded containers to stop gracefully and remove, in stop order; each after the services in its
   * `after` (those that depend on it), the others side by side.
   */
  containers: { service: string; id: string; graceSecs: number; after?: string[] }[];
  /**
   * Services of the score being applied. Any other container labelled with this deployment that
   * is not recorded (left by a crash or an abandoned step) is removed too, so none leaks.
   */
  keep: string[];
  /** Grace for such strays. */
  strayGraceSecs: number;
}
export interface StopOutput extends StepDone {
  /** Services whose old container is gone (stopped and removed). */
  stopped: string[];
  /** Ids of unrecorded strays removed. */
  swept?: string[];
  failure?: StepFailure;
}

export interface StartInput {
  deployment: string;
  services: AppliedService[];
}
export interface StartOutput extends StepDone {
  /** service → id of the container started (or adopted). */
  started: Record<string, string>;
  /** The service that failed; `id` when its container exists (it exited at start). */
  failure?: StepFailure & { id?: string };
}

export interface RemoveAllInput {
  deployment: string;
  /** Recorded ids; the executor also removes any other container labelled with this deployment. */
  containerIds: Record<string, string>;
  graceSecs: number;
}
export interface RemoveAllOutput extends StepDone {
  removed: string[];
  failure?: StepFailure;
}

export interface DeadlineInput {
  /** Epoch ms after which the current step has taken too long. */
  deadline: number;
}

/** What a rejected step (a thrown error) looks like once it has crossed the journal. */
export interface StepError {
  message: string;
  at?: number;
}

/** One started service the readiness step waits for. */
export interface VerifyService {
  service: string;
  id: string;
  /** The service's health check: ready at its first pass. */
  health?: Health;
  /** Without a health check: ready once it has run this long (`lifecycle.min_ready_secs`). */
  minReadySecs: number;
}
export interface VerifyInput {
  deployment: string;
  /** When the services were started: readiness is counted from then, also after a restore. */
  since: number;
  services: VerifyService[];
}
export interface VerifyOutput extends StepDone {
  /** Services found ready, in the order they became so. */
  ready: string[];
  /** The first service that died or failed its check while the step waited. */
  failure?: { service: string; reason: string };
}

/** A restart the machine decided: at `at` (the backoff's deadline), of the recorded container. */
export interface RestartDue {
  service: string;
  id: string;
  at: number;
  /** The spec of the recorded container: recreated from it if the container is gone and `recreate`. */
  spec: AppliedService;
  /** Roll forward only: a container of an earlier score than the target is started again, never recreated. */
  recreate: boolean;
  /** Restarted because it was unhealthy: a running container is restarted too. */
  unhealthy: boolean;
  /** The service's restarts so far, this one counted. */
  restarts: number;
}
export interface RestartsInput {
  deployment: string;
  restarts: RestartDue[];
}
/** What the restarts actor tells the machine: only what changes its record. */
export type RestartOutcome =
  /** The container was gone and was created again: its new id (`restarts`: the count before it, the machine's). */
  | { type: "SERVICE_RESTARTED"; service: string; id: string; restarts: number; by: "agent"; at: number }
  /** The restart did not take (the runtime refused): the service is still down. */
  | { type: "SERVICE_EXITED"; service: string; exitCode: number | null; at: number };
