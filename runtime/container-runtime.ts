// The one door from a deployment's machine to containers. PodmanRuntime opens it onto Podman's
// REST API; FakeRuntime onto memory, for unit, model and simulation work.
import type { Lifecycle, PodmanService } from "../contracts/score.codec.js";

/** Everything needed to create one service's container. */
export interface ServiceSpec {
  deployment: string;
  service: PodmanService;
  lifecycle: Lifecycle;
  /** Hash of the score that introduced this spec; labelled on the container, used to adopt it. */
  scoreHash: string;
}

export type ContainerState = "running" | "created" | "exited" | "paused" | "stopping" | "unknown";

/** One managed container as the runtime sees it (labels read back, not the spec). */
export interface ManagedContainer {
  id: string;
  name: string;
  deployment: string;
  service: string;
  scoreHash: string;
  state: ContainerState;
  exitCode: number | null;
}

export interface ContainerRuntime {
  /** Makes sure `image` is present, pulling it if it is not. Rejects naming the image. */
  ensureImage(image: string): Promise<void>;
  /**
   * Creates and starts the service's container and returns its id. A container of the same name
   * and score hash that is already there (ours, from a crash or a restart) is adopted: started if
   * it is not running, and its id returned. Never touches a container without our labels.
   */
  startService(spec: ServiceSpec): Promise<string>;
  /**
   * How long a just-started container must keep running to count as started, in ms. A start step
   * waits it once for all the services it started, then checks them with one list(): waiting per
   * service would delay each later service's start (and so its downtime) by the settle. null: no check.
   */
  readonly startSettleMs: number | null;
  /** The managed container with this id or name, or null when there is none. */
  status(idOrName: string): Promise<ManagedContainer | null>;
  /**
   * Stops a managed container gracefully: its stop signal (baked in at create), `graceSecs`,
   * then SIGKILL. Stopping a stopped or missing container succeeds.
   */
  stop(id: string, graceSecs: number): Promise<void>;
  /** Removes a managed container (stopped first if need be). Removing a missing one succeeds. */
  remove(id: string): Promise<void>;
  /** This device's managed containers, in one call to the runtime. */
  list(): Promise<ManagedContainer[]>;
}

/** Raised by a runtime for a failure that names what failed (an image, a service, a container). */
export class RuntimeError extends Error {
  constructor(message: string, readonly subject: string) {
    super(message);
    this.name = "RuntimeError";
  }
}
