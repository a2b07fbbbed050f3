// The inputs and outputs of the steps a deployment's machine invokes. The machine decides; an
// executor bound to a ContainerRuntime (agent/deployment.actors.ts) carries the step out.
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
  /** Recorded containers to stop gracefully and remove, in order. */
  containers: { service: string; id: string; graceSecs: number }[];
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
