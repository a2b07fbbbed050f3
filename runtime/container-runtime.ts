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

/** A service's health as Podman keeps it; `none` when the container has no health check. */
export type HealthStatus = "healthy" | "unhealthy" | "starting" | "none";

/** What one run of a container's health check came to. */
export interface HealthReport {
  /**
   * Podman's verdict after this run: `starting` until the first pass or until `retries` failures in a
   * row (failures within `start_period_secs` of the start do not count), `healthy` after a pass,
   * `unhealthy` after `retries` failures in a row; `none` when the container has no check.
   */
  status: HealthStatus;
  /** Failures in a row, outside the start period; 0 after a pass. */
  failingStreak: number;
  /** What the last run printed, whitespace-trimmed and cut to HEALTH_OUTPUT_CHARS. */
  output: string;
}
export const HEALTH_OUTPUT_CHARS = 200;

/** A change to one of this device's managed containers, as the runtime's event stream reports it. */
export type ContainerEvent = {
  id: string;
  name: string;
  deployment: string;
  service: string;
  /** ISO time of the change, as the runtime stamped it. */
  at: string;
} & (
  | { type: "started" }
  | { type: "died"; exitCode: number }
  | { type: "removed" }
  /**
   * A health check began. Podman 4.3.1 emits this as the check starts, carrying the status from
   * BEFORE that check: the check's own result is what healthcheck() returns.
   */
  | { type: "health"; status: Exclude<HealthStatus, "none"> }
);

/** Receives a watch's events; nothing it throws stops the watch (it goes to `error`). */
export interface ContainerWatcher {
  /**
   * The event stream is live: the first time, and again after every reconnect. Events that happened
   * while it was down are not replayed: this is the moment for a safety-net list().
   */
  connected(info: { reconnected: boolean }): void;
  event(e: ContainerEvent): void;
  /** The stream broke (the runtime went away, an event did not decode) or a callback threw. */
  error?(e: Error): void;
}

export interface LogQuery {
  /** Only the last `tail` lines (0 or more); all when absent. */
  tail?: number;
  /** Only lines written at or after this time. */
  since?: Date;
  /**
   * The lines, JSON-encoded (`JSON.stringify(lines)`), take at most this many bytes. When they would
   * take more, the OLDEST lines are dropped (tail semantics: what an operator asks logs for is what
   * happened last), a line too long on its own is cut, and `truncated` is set.
   */
  maxBytes: number;
}
export interface LogLine {
  /** ISO time the runtime stamped on the line (Podman 4.3.1: to the second). */
  at: string;
  stream: "stdout" | "stderr";
  /** The line without its newline. */
  text: string;
}
export interface ServiceLogs {
  /** Oldest first, in the order the runtime recorded them. */
  lines: LogLine[];
  /** Lines were dropped or cut to stay within maxBytes. */
  truncated: boolean;
}

export interface StopAndRemoveOptions {
  /**
   * The caller created this container itself and recorded its full id (from startService): the
   * ownership check (one inspect) is skipped. Anything else is checked, as stop and remove do.
   */
  recorded?: boolean;
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
  /**
   * Stops a managed container gracefully (as stop) and removes it, in one request where the runtime
   * can. Missing succeeds; not ours is refused unless `recorded` vouches for the id.
   */
  stopAndRemove(id: string, graceSecs: number, opts?: StopAndRemoveOptions): Promise<void>;
  /**
   * Runs a managed container's health check now and reports it. The check's own timeout bounds the
   * call: a check that outlives it counts as a failure. Rejects with reason `not-running` for a
   * container that is not running, `missing` for one that is gone.
   */
  healthcheck(id: string): Promise<HealthReport>;
  /**
   * A new start of the same managed container: a running one is first stopped gracefully (its stop
   * signal, its grace period, then SIGKILL), a stopped one is just started. Returns its id.
   */
  restart(id: string): Promise<string>;
  /** A managed container's stdout and stderr, bounded by `query.maxBytes`. */
  logs(id: string, query: LogQuery): Promise<ServiceLogs>;
  /**
   * Follows the runtime's events for this device's managed containers until `signal` aborts, then
   * resolves. Reconnects on its own when the stream breaks, calling `connected` again each time.
   */
  watchContainers(watcher: ContainerWatcher, signal: AbortSignal): Promise<void>;
}

/** Raised by a runtime for a failure that names what failed (an image, a service, a container). */
export class RuntimeError extends Error {
  constructor(
    message: string,
    readonly subject: string,
    /** Set when the failure is one a caller may act on: the container is gone, stopped, or not ours. */
    readonly reason?: RuntimeErrorReason,
  ) {
    super(message);
    this.name = "RuntimeError";
  }
}
export type RuntimeErrorReason = "missing" | "not-running" | "not-managed";
