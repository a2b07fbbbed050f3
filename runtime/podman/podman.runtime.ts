// ContainerRuntime on Podman's libpod REST API. Touches only containers that carry this device's
// labels; every failure is a RuntimeError that names the image, service or container.
import { StringDecoder } from "node:string_decoder";
import { decode } from "../../contracts/decode.js";
import { containerName } from "../../contracts/names.js";
import type { PodmanService } from "../../contracts/score.codec.js";
import { signalNumber } from "../../contracts/signals.js";
import { LABEL_DEPLOYMENT, LABEL_DEVICE, LABEL_MANAGED, LABEL_SCORE_HASH, LABEL_SERVICE } from "../../contracts/wire-names.js";
import {
  HEALTH_OUTPUT_CHARS,
  RuntimeError,
  type ContainerEvent,
  type ContainerRuntime,
  type ContainerState,
  type ContainerWatcher,
  type HealthReport,
  type HealthStatus,
  type LogQuery,
  type ManagedContainer,
  type ServiceLogs,
  type ServiceSpec,
  type StopAndRemoveOptions,
} from "../container-runtime.js";
import { LogWindow, logQueryProblem } from "../log-window.js";
import {
  LibpodClient,
  LibpodError,
  LogFrameError,
  isImageNotKnown,
  isNameInUse,
  isNotFound,
  isTimedOut,
  type ContainerInspect,
  type CreateSpec,
  type HealthConfig,
  type HealthInspect,
  type LibpodEvent,
  type LogFrame,
} from "./libpod.client.js";
import { DiedAttributes, HealthStatusEvent } from "./libpod.codecs.js";

export interface PodmanRuntimeOptions {
  /** This device's id: labelled on every container, and the filter of everything it touches. */
  device: string;
  /** Defaults to a client on resolveSocketPath(). */
  client?: LibpodClient;
  /** More labels for every container it creates (tests add a per-run label). Ours win on a clash. */
  extraLabels?: Record<string, string>;
}

const NS_PER_SEC = 1_000_000_000;
/**
 * How much longer than the check's own timeout a health check call may take: starting the check's
 * exec costs Podman about 0.1-0.2 s on a small device before the command runs.
 */
const HEALTH_CALL_SLACK_MS = 1000;
/** Reconnecting the event stream: first after this, doubling up to WATCH_RETRY_MAX_MS. */
const WATCH_RETRY_MS = 100;
const WATCH_RETRY_MAX_MS = 2000;
const FULL_ID = /^[0-9a-f]{64}$/;

/**
 * What the runtime remembers of a container it has seen to be ours, by full id. None of it can
 * change: Podman has no way to relabel a container or change its health check or stop timeout, and
 * an id is never reused. So a later health check, log read or restart of that id needs no inspect.
 */
interface KnownContainer {
  id: string;
  name: string;
  stopTimeout: number;
  /** The health check's timeout, or null when the container has none. */
  healthTimeoutSecs: number | null;
}
const KNOWN_CONTAINERS_MAX = 4096;
/** More outlived runs than any `retries` worth counting are not remembered. */
const OUTLIVED_CHECKS_KEPT = 128;
// Podman's own defaults for a health check field the score leaves out.
const HEALTH_DEFAULTS = { interval_secs: 30, timeout_secs: 30, retries: 3, start_period_secs: 0 } as const;

export class PodmanRuntime implements ContainerRuntime {
  readonly device: string;
  readonly client: LibpodClient;
  private readonly extraLabels: Record<string, string>;
  /** Insertion-ordered, so the oldest goes first when it is full. */
  private readonly known = new Map<string, KnownContainer>();
  /** Per container id: start times of health check runs that outlived their bound (see healthcheck). */
  private readonly outlivedChecks = new Map<string, number[]>();

  constructor(opts: PodmanRuntimeOptions) {
    this.device = opts.device;
    this.client = opts.client ?? new LibpodClient();
    this.extraLabels = { ...(opts.extraLabels ?? {}) };
  }

  async ensureImage(image: string): Promise<void> {
    try {
      if (await this.client.imageExists(image)) return;
      await this.client.pull(image, "missing");
    } catch (e) {
      throw runtimeError(`image ${image} is not available: ${reason(e)}`, image, e);
    }
  }

  async startService(spec: ServiceSpec): Promise<string> {
    const name = containerName(spec.deployment, spec.service.name);
    const create = this.createSpec(spec, name);
    // At most: create → (name taken by our leftover) remove → create.
    for (let attempt = 0; attempt < 3; attempt++) {
      let id: string;
      try {
        id = (await this.client.create(create)).Id;
      } catch (e) {
        if (isImageNotKnown(e)) throw runtimeError(`service ${spec.service.name}: image ${spec.service.image} is not present`, spec.service.image, e);
        if (!isNameInUse(e)) throw runtimeError(`service ${spec.service.name}: creating container ${name} failed: ${reason(e)}`, name, e);
        const existing = await this.inspectOrNull(name);
        if (!existing) continue; // removed in between: create again
        if (!this.isOurs(existing) || labelsOf(existing)[LABEL_DEPLOYMENT] !== spec.deployment || labelsOf(existing)[LABEL_SERVICE] !== spec.service.name) {
          throw new RuntimeError(`container ${name} already exists and is not managed by fleet-agent for device ${this.device}; not touching it`, name);
        }
        if (labelsOf(existing)[LABEL_SCORE_HASH] === spec.scoreHash) {
          // Ours, same score: adopt it.
          this.remember(existing);
          if (!existing.State.Running) await this.startContainer(existing.Id, spec);
          return existing.Id;
        }
        // Ours, from another score: a leftover (a crash between stop and remove). Replace it.
        try {
          await this.client.remove(existing.Id, { force: true, timeout: spec.lifecycle.grace_period_secs });
        } catch (re) {
          if (!isNotFound(re)) throw runtimeError(`service ${spec.service.name}: removing leftover container ${name} failed: ${reason(re)}`, name, re);
        }
        continue;
      }
      this.rememberKnown({
        id,
        name,
        stopTimeout: spec.lifecycle.grace_period_secs,
        healthTimeoutSecs: spec.service.health ? (spec.service.health.timeout_secs ?? HEALTH_DEFAULTS.timeout_secs) : null,
      });
      await this.startContainer(id, spec);
      return id;
    }
    throw new RuntimeError(`service ${spec.service.name}: container name ${name} stays taken`, name);
  }

  async status(idOrName: string): Promise<ManagedContainer | null> {
    const c = await this.inspectOrNull(idOrName);
    return c && this.isOurs(c) ? this.fromInspect(c) : null;
  }

  async stop(id: string, graceSecs: number): Promise<void> {
    const c = await this.ownedOrNull(id, "stop");
    if (!c) return;
    try {
      await this.client.stop(c.Id, graceSecs);
    } catch (e) {
      if (isNotFound(e)) return;
      throw runtimeError(`stopping container ${c.Name} failed: ${reason(e)}`, c.Name, e);
    }
  }

  async remove(id: string): Promise<void> {
    const c = await this.ownedOrNull(id, "remove");
    if (!c) return;
    this.known.delete(c.Id);
    this.outlivedChecks.delete(c.Id);
    try {
      await this.client.remove(c.Id, { force: true, timeout: c.Config.StopTimeout ?? 10 });
    } catch (e) {
      if (isNotFound(e)) return;
      throw runtimeError(`removing container ${c.Name} failed: ${reason(e)}`, c.Name, e);
    }
  }

  async list(): Promise<ManagedContainer[]> {
    let listed;
    try {
      listed = await this.client.list({ all: true, filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_DEVICE}=${this.device}`] } });
    } catch (e) {
      throw runtimeError(`listing containers failed: ${reason(e)}`, this.device, e);
    }
    const out: ManagedContainer[] = [];
    for (const c of listed) {
      const labels = c.Labels ?? {};
      // Podman filtered already; checked again so that a filter Podman ignored can't let a stranger in.
      if (labels[LABEL_MANAGED] !== "true" || labels[LABEL_DEVICE] !== this.device) continue;
      out.push({
        id: c.Id,
        name: c.Names?.[0] ?? "",
        deployment: labels[LABEL_DEPLOYMENT] ?? "",
        service: labels[LABEL_SERVICE] ?? "",
        scoreHash: labels[LABEL_SCORE_HASH] ?? "",
        state: mapState(c.State),
        exitCode: isFinished(c.State) ? c.ExitCode : null,
      });
    }
    return out;
  }

  /**
   * One request on 4.3.1: `DELETE ?force=true&timeout=N` stops a running container exactly as stop
   * does (its stop signal, N s, then SIGKILL; checked on a real 4.3.1 with a container that traps its
   * stop signal and one that ignores it) and removes it. With `recorded`, no inspect either.
   */
  async stopAndRemove(id: string, graceSecs: number, opts: StopAndRemoveOptions = {}): Promise<void> {
    let target: { id: string; name: string };
    if (opts.recorded) {
      if (!FULL_ID.test(id)) throw new RuntimeError(`stopAndRemove: a recorded container id must be a full 64-hex id, got ${JSON.stringify(id.slice(0, 80))}`, id);
      target = { id, name: this.known.get(id)?.name ?? id };
    } else {
      const c = await this.owned(id, "remove");
      if (!c) return;
      target = c;
    }
    this.known.delete(target.id);
    this.outlivedChecks.delete(target.id);
    try {
      await this.client.remove(target.id, { force: true, timeout: graceSecs });
    } catch (e) {
      if (isNotFound(e)) return;
      throw runtimeError(`stopping and removing container ${target.name} failed: ${reason(e)}`, target.name, e);
    }
  }

  /**
   * Runs the check through libpod's endpoint and reads Podman's bookkeeping back (inspect): two
   * requests for a container seen before, three for one not. What Podman 4.3.1 does when a check is
   * run on demand, checked on a real 4.3.1:
   * - the endpoint answers only this run's verdict ("healthy" on a pass, "unhealthy" on ANY failure);
   *   `retries` and `start_period` act only on the container's recorded state, read by inspect:
   * - `retries`: a failure adds one to FailingStreak; the status stays what it was ("starting" after
   *   a start) until the streak reaches `retries`, then is "unhealthy"; a pass makes it "healthy" and
   *   the streak 0. With `retries` 0 the first failure is "unhealthy".
   * - `start_period`: a failure less than `start_period` after the container's start is logged but
   *   not counted (streak and status unchanged); a pass within it counts (healthy at once).
   * - `timeout`: Podman waits for the command however long it takes, then counts a run over the
   *   timeout as a failure (ExitCode -1) and answers 500. So the call here is bounded by the timeout
   *   plus HEALTH_CALL_SLACK_MS; a run that outlives that is counted now as the failure Podman will
   *   record when (if ever) its command ends, by the same rules, and goes on being counted until
   *   Podman's log shows it: a check that hangs every time becomes unhealthy at `retries` hangs.
   * - no health check: 409 "has no defined healthcheck" (reported as "none"); not running: 409
   *   "is not running"; missing: 404.
   */
  async healthcheck(id: string): Promise<HealthReport> {
    const c = await this.mustOwn(id, "run the health check of");
    if (c.healthTimeoutSecs === null) return { status: "none", failingStreak: 0, output: "" };
    const runStart = Date.now();
    let outlived = false;
    try {
      await this.client.healthcheck(c.id, c.healthTimeoutSecs * 1000 + HEALTH_CALL_SLACK_MS);
    } catch (e) {
      if (isNotFound(e)) throw this.gone(c);
      if (e instanceof LibpodError && e.status === 409 && e.cause.includes("no defined healthcheck")) return { status: "none", failingStreak: 0, output: "" };
      if (e instanceof LibpodError && e.status === 409 && e.cause.includes("not running")) {
        throw runtimeError(`container ${c.name} is not running: its health check cannot run`, c.name, e, "not-running");
      }
      if (isTimedOut(e)) outlived = true;
      // Over its timeout but finished: Podman has recorded the failure; the inspect below reads it.
      else if (!(e instanceof LibpodError && e.status === 500 && e.cause.includes("exceeded timeout"))) {
        throw runtimeError(`health check of container ${c.name} failed to run: ${reason(e)}`, c.name, e);
      }
    }
    let h: HealthInspect;
    try {
      h = await this.client.inspectHealth(c.id);
    } catch (e) {
      if (isNotFound(e)) throw this.gone(c);
      throw runtimeError(`reading the health of container ${c.name} failed: ${reason(e)}`, c.name, e);
    }
    const recorded = h.State.Health;
    const log = recorded.Log ?? [];
    const last = log[log.length - 1];
    const status: HealthStatus = recorded.Status === "" ? "starting" : recorded.Status;
    // Runs that outlived the bound and that Podman has not recorded yet (it records a run when its
    // command ends, as ExitCode -1, at its start time); a pass recorded after them ends their row.
    const pending = (this.outlivedChecks.get(c.id) ?? []).filter((s) => !log.some((l) => l.ExitCode === -1 && Math.abs(Date.parse(l.Start ?? "") - s) < 2000));
    const passedSince = last?.ExitCode === 0 && pending.every((s) => Date.parse(last.Start ?? "") > s);
    if (passedSince) pending.length = 0;
    if (outlived) pending.push(runStart);
    this.outlivedChecks.delete(c.id);
    if (pending.length > 0) {
      this.outlivedChecks.set(c.id, pending.slice(-OUTLIVED_CHECKS_KEPT));
      if (this.outlivedChecks.size > KNOWN_CONTAINERS_MAX) this.outlivedChecks.delete(this.outlivedChecks.keys().next().value!);
    }
    const output = outlived ? `health check did not finish within its timeout of ${c.healthTimeoutSecs} s` : trimOutput(last?.Output ?? "");
    if (pending.length === 0) return { status, failingStreak: recorded.FailingStreak, output };
    // Counted now, as Podman will count them: not within the start period; unhealthy at `retries`.
    const cfg = h.Config.Healthcheck;
    const startPeriodMs = (cfg?.StartPeriod ?? 0) / 1e6;
    const started = Date.parse(h.State.StartedAt ?? "");
    const counted = pending.filter((s) => !(startPeriodMs > 0 && Number.isFinite(started) && s < started + startPeriodMs)).length;
    const failingStreak = recorded.FailingStreak + counted;
    return { status: counted > 0 && failingStreak >= (cfg?.Retries ?? 0) ? "unhealthy" : status, failingStreak, output };
  }

  /**
   * libpod's restart (one request for a container seen before): its graceful stop uses the
   * container's stop signal and the grace period baked in at create (StopTimeout).
   */
  async restart(id: string): Promise<string> {
    const c = await this.mustOwn(id, "restart");
    this.outlivedChecks.delete(c.id);
    try {
      await this.client.restart(c.id, c.stopTimeout);
    } catch (e) {
      if (isNotFound(e)) throw this.gone(c);
      throw runtimeError(`restarting container ${c.name} failed: ${reason(e)}`, c.name, e);
    }
    return c.id;
  }

  /**
   * libpod's logs endpoint with timestamps, read as a stream: however much the service printed,
   * this holds at most `maxBytes` of lines and one frame. The whole answer is read, as the newest
   * lines come last; `tail` and `since` keep the answer short. Lines are in the order of
   * Podman's log file, which is the order conmon read them: when a service writes to both streams
   * at once, conmon may take all of one stream's waiting output before the other's.
   */
  async logs(id: string, query: LogQuery): Promise<ServiceLogs> {
    const problem = logQueryProblem(query);
    if (problem) throw new RuntimeError(`logs: ${problem}`, id);
    const c = await this.mustOwn(id, "read the logs of");
    if (query.tail === 0) return { lines: [], truncated: false };
    const since = query.since?.toISOString();
    if (query.tail === undefined) return (await this.readLogs(c, since ? { since } : {}, query.maxBytes)).logs;
    // Podman 4.3.1's own tail joins up the pieces of lines its log file holds in pieces (partial
    // records, written when conmon's buffer ends inside a line, as under bulk output) wrongly: fixed
    // upstream in 2023. So its tail only tells from when to read: the time of the oldest of the last
    // tail + 1 lines. Those are read without its tail (pieces in order, joined here) and the tail is
    // taken here, one line more first, as the oldest read could be the end of a line begun earlier.
    const from = await this.oldestOfTail(c, query.tail + 1, since);
    if (from === null) return { lines: [], truncated: false };
    const { lines, truncated } = (await this.readLogs(c, { since: from }, query.maxBytes, query.tail + 1)).logs;
    return { lines: lines.length > query.tail ? lines.slice(lines.length - query.tail) : lines, truncated };
  }

  /** The time of the oldest of the last `tail` lines by Podman's tail (at or after `since`), or null for none. */
  private async oldestOfTail(c: KnownContainer, tail: number, since: string | undefined): Promise<string | null> {
    let oldest: number | null = null;
    try {
      // Podman answers oldest first: the first frame's time is the one wanted.
      await this.client.logFrames(c.id, { timestamps: true, tail, ...(since ? { since } : {}) }, (f) => {
        if (oldest === null) oldest = Date.parse(timestamped(f.payload).at);
      });
    } catch (e) {
      if (isNotFound(e)) throw this.gone(c);
      throw runtimeError(`reading the logs of container ${c.name} failed: ${reason(e)}`, c.name, e);
    }
    if (oldest === null) return null;
    return new Date(Math.max(oldest, since ? Date.parse(since) : oldest)).toISOString();
  }

  /** One read of the logs endpoint (never with Podman's tail) into a window. */
  private async readLogs(c: KnownContainer, ask: { since?: string }, maxBytes: number, maxLines?: number): Promise<{ logs: ServiceLogs }> {
    const window = new LogWindow(maxBytes, maxLines);
    const decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
    const onFrame = (f: LogFrame) => {
      const { at, body } = timestamped(f.payload);
      // A piece without its newline is continued by the stream's next frame; the decoder keeps a
      // character split between the two whole.
      const ends = body.length > 0 && body[body.length - 1] === 0x0a;
      const decoder = decoders[f.stream];
      const text = decoder.write(ends ? body.subarray(0, body.length - 1) : body) + (ends ? decoder.end() : "");
      window.add(f.stream, at, text, ends);
    };
    try {
      await this.client.logFrames(c.id, { timestamps: true, ...ask }, onFrame);
    } catch (e) {
      if (isNotFound(e)) throw this.gone(c);
      throw runtimeError(`reading the logs of container ${c.name} failed: ${reason(e)}`, c.name, e);
    }
    return { logs: window.result() };
  }

  /**
   * Podman's event stream, filtered by Podman on this device's label (and again here, on both of
   * our labels). A death reaches the watcher as the `died` event Podman writes when conmon reports
   * the exit. After the stream breaks (the Podman service restarted, a malformed event) it
   * reconnects, retrying after 100 ms, then doubling up to every 2 s, and says so through
   * `connected`; events from before a (re)subscription are not replayed (LibpodClient.events drops them).
   */
  async watchContainers(watcher: ContainerWatcher, signal: AbortSignal): Promise<void> {
    let connectedBefore = false;
    let retryMs = WATCH_RETRY_MS;
    let reported = false; // one error per outage, not one per failed reconnect
    const report = (e: unknown) => {
      try {
        watcher.error?.(e instanceof Error ? e : new Error(String(e)));
      } catch {
        // the watcher's own error handler failed: nothing left to tell
      }
    };
    const call = (f: () => void) => {
      try {
        f();
      } catch (e) {
        report(e);
      }
    };
    while (!signal.aborted) {
      let broke: unknown = null;
      try {
        const stream = await this.client.events({ type: ["container"], label: [`${LABEL_DEVICE}=${this.device}`] }, signal);
        const reconnected = connectedBefore;
        connectedBefore = true;
        retryMs = WATCH_RETRY_MS;
        reported = false;
        call(() => watcher.connected({ reconnected }));
        for await (const ev of stream) {
          let ce: ContainerEvent | null;
          try {
            ce = this.containerEvent(ev);
          } catch (e) {
            report(e);
            continue;
          }
          if (ce) call(() => watcher.event(ce));
        }
        if (!signal.aborted) broke = new RuntimeError("Podman's event stream ended", this.device);
      } catch (e) {
        broke = e;
      }
      if (signal.aborted) break;
      if (!reported) {
        reported = true;
        report(runtimeError(`watching container events: ${reason(broke)}; reconnecting`, this.device, broke));
      }
      await delay(retryMs, signal);
      retryMs = Math.min(retryMs * 2, WATCH_RETRY_MAX_MS);
    }
  }

  /** The runtime's view of a libpod event of one of our containers; null for the actions it does not report. */
  containerEvent(e: LibpodEvent): ContainerEvent | null {
    if (e.Type !== "container") return null;
    const attrs = e.Actor.Attributes ?? {};
    if (attrs[LABEL_MANAGED] !== "true" || attrs[LABEL_DEVICE] !== this.device) return null;
    const base = {
      id: e.Actor.ID,
      name: attrs.name ?? "",
      deployment: attrs[LABEL_DEPLOYMENT] ?? "",
      service: attrs[LABEL_SERVICE] ?? "",
      at: new Date(e.timeNano !== undefined ? Math.floor(e.timeNano / 1e6) : e.time * 1000).toISOString(),
    };
    // libpod's action names (libpod/events/config.go), not Docker's: `died`, not `die`.
    switch (e.Action) {
      case "start":
        return { ...base, type: "started" };
      case "died": {
        const d = decode(DiedAttributes, attrs);
        if (!d.ok) throw new RuntimeError(`event died of container ${base.name}: Actor.Attributes.${d.errors.join("; ")}`, base.name);
        return { ...base, type: "died", exitCode: Number.parseInt(d.value.containerExitCode, 10) };
      }
      case "remove":
        this.known.delete(e.Actor.ID);
        this.outlivedChecks.delete(e.Actor.ID);
        return { ...base, type: "removed" };
      case "health_status": {
        const d = decode(HealthStatusEvent, e);
        if (!d.ok) throw new RuntimeError(`event health_status of container ${base.name}: ${d.errors.join("; ")}`, base.name);
        return { ...base, type: "health", status: d.value.HealthStatus };
      }
      default:
        return null; // create, init, restart, stop, cleanup, exec_died, …: a start or a death follows, or nothing that matters
    }
  }

  /** The SpecGenerator for a service: name, labels, stop signal and timeout, env, ports, mounts, health. */
  createSpec(spec: ServiceSpec, name = containerName(spec.deployment, spec.service.name)): CreateSpec {
    const s = spec.service;
    const create: CreateSpec = {
      name,
      image: s.image,
      labels: {
        ...this.extraLabels,
        [LABEL_MANAGED]: "true",
        [LABEL_DEVICE]: this.device,
        [LABEL_DEPLOYMENT]: spec.deployment,
        [LABEL_SERVICE]: s.name,
        [LABEL_SCORE_HASH]: spec.scoreHash,
      },
      stop_signal: signalNumber(spec.lifecycle.stop_signal),
      stop_timeout: spec.lifecycle.grace_period_secs,
    };
    if (s.command) create.command = [...s.command];
    if (s.env) create.env = { ...s.env };
    if (s.ports?.length) {
      create.portmappings = s.ports.map((p) => ({ container_port: p.container_port, host_port: p.host_port, protocol: p.protocol ?? "tcp" }));
    }
    if (s.volumes?.length) {
      create.mounts = s.volumes.map((v) => ({
        destination: v.target,
        type: "bind",
        source: v.source,
        options: v.read_only ? ["rbind", "ro"] : ["rbind", "rw"],
      }));
    }
    if (s.health) create.healthconfig = healthConfig(s.health);
    return create;
  }

  // ---- internals ----

  private async startContainer(id: string, spec: ServiceSpec): Promise<void> {
    const service = spec.service.name;
    try {
      await this.client.start(id);
    } catch (e) {
      throw runtimeError(`service ${service} failed to start: ${reason(e)}`, service, e);
    }
  }

  private async inspectOrNull(idOrName: string): Promise<ContainerInspect | null> {
    try {
      return await this.client.inspect(idOrName);
    } catch (e) {
      if (isNotFound(e)) return null;
      throw runtimeError(`inspecting container ${idOrName} failed: ${reason(e)}`, idOrName, e);
    }
  }

  /** The container if it is ours; null if it is missing; a RuntimeError (and no action) if it is not ours. */
  private async ownedOrNull(idOrName: string, action: string): Promise<ContainerInspect | null> {
    const c = await this.inspectOrNull(idOrName);
    if (!c) return null;
    if (!this.isOurs(c)) {
      throw new RuntimeError(`refusing to ${action} container ${c.Name}: it is not managed by fleet-agent for device ${this.device}`, c.Name, "not-managed");
    }
    return c;
  }

  /** As ownedOrNull, without a request for a container seen before. */
  private async owned(idOrName: string, action: string): Promise<KnownContainer | null> {
    const known = this.known.get(idOrName);
    if (known) return known;
    const c = await this.ownedOrNull(idOrName, action);
    return c ? this.remember(c) : null;
  }

  /** As owned, and a missing container is an error (reason `missing`). */
  private async mustOwn(idOrName: string, action: string): Promise<KnownContainer> {
    const c = await this.owned(idOrName, action);
    if (!c) throw new RuntimeError(`cannot ${action} container ${idOrName}: there is no such container`, idOrName, "missing");
    return c;
  }

  private gone(c: KnownContainer): RuntimeError {
    this.known.delete(c.id);
    this.outlivedChecks.delete(c.id);
    return new RuntimeError(`container ${c.name} no longer exists`, c.name, "missing");
  }

  private remember(c: ContainerInspect): KnownContainer {
    const timeoutNs = c.Config.Healthcheck?.Timeout;
    const hasCheck = c.Config.Healthcheck !== undefined && !(c.Config.Healthcheck.Test?.[0] === "NONE") && (c.Config.Healthcheck.Test?.length ?? 0) > 0;
    return this.rememberKnown({
      id: c.Id,
      name: c.Name,
      stopTimeout: c.Config.StopTimeout ?? 10,
      // Podman's default when a check leaves its timeout out (omitted when zero).
      healthTimeoutSecs: hasCheck ? Math.ceil((timeoutNs || HEALTH_DEFAULTS.timeout_secs * NS_PER_SEC) / NS_PER_SEC) : null,
    });
  }

  private rememberKnown(k: KnownContainer): KnownContainer {
    this.known.delete(k.id);
    this.known.set(k.id, k);
    if (this.known.size > KNOWN_CONTAINERS_MAX) this.known.delete(this.known.keys().next().value!);
    return k;
  }

  private isOurs(c: ContainerInspect): boolean {
    const labels = labelsOf(c);
    return labels[LABEL_MANAGED] === "true" && labels[LABEL_DEVICE] === this.device;
  }

  private fromInspect(c: ContainerInspect): ManagedContainer {
    const labels = labelsOf(c);
    return {
      id: c.Id,
      name: c.Name,
      deployment: labels[LABEL_DEPLOYMENT] ?? "",
      service: labels[LABEL_SERVICE] ?? "",
      scoreHash: labels[LABEL_SCORE_HASH] ?? "",
      state: mapState(c.State.Status),
      exitCode: isFinished(c.State.Status) ? c.State.ExitCode : null,
    };
  }
}

const labelsOf = (c: ContainerInspect): Record<string, string> => c.Config.Labels ?? {};

/** Podman's container states (libpod/define/containerstate.go) as ContainerState. */
export function mapState(podmanState: string): ContainerState {
  switch (podmanState.toLowerCase()) {
    case "running":
      return "running";
    case "created":
    case "configured":
    case "initialized":
      return "created";
    case "exited":
    case "stopped":
      return "exited";
    case "paused":
      return "paused";
    case "stopping":
      return "stopping";
    default:
      return "unknown";
  }
}

const isFinished = (podmanState: string) => mapState(podmanState) === "exited";

function healthConfig(h: NonNullable<PodmanService["health"]>): HealthConfig {
  const first = h.cmd[0];
  // Docker's convention: the first word says how to run the rest. A bare command means CMD.
  const test = first === "CMD" || first === "CMD-SHELL" || first === "NONE" ? [...h.cmd] : ["CMD", ...h.cmd];
  return {
    Test: test,
    Interval: (h.interval_secs ?? HEALTH_DEFAULTS.interval_secs) * NS_PER_SEC,
    Timeout: (h.timeout_secs ?? HEALTH_DEFAULTS.timeout_secs) * NS_PER_SEC,
    StartPeriod: (h.start_period_secs ?? HEALTH_DEFAULTS.start_period_secs) * NS_PER_SEC,
    Retries: h.retries ?? HEALTH_DEFAULTS.retries,
  };
}

/** Whitespace-trimmed, at most HEALTH_OUTPUT_CHARS characters (an ellipsis marks a cut). */
function trimOutput(s: string): string {
  const t = s.trim();
  return t.length <= HEALTH_OUTPUT_CHARS ? t : `${t.slice(0, HEALTH_OUTPUT_CHARS - 1)}…`;
}

const TIMESTAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) /;

/** A log frame's payload with `timestamps=true`: an RFC 3339 time, a space, then the text. */
export function timestamped(payload: Buffer): { at: string; body: Buffer } {
  const head = payload.subarray(0, 48).toString("latin1");
  const m = TIMESTAMP.exec(head);
  const ms = m ? Date.parse(m[1]!) : Number.NaN;
  if (!m || !Number.isFinite(ms)) {
    throw new LogFrameError(`log frame: expected an RFC 3339 time and a space, got ${JSON.stringify(head.slice(0, 40))}`);
  }
  return { at: new Date(ms).toISOString(), body: payload.subarray(m[0].length) };
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

function reason(e: unknown): string {
  if (e instanceof LibpodError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

function runtimeError(message: string, subject: string, cause: unknown, why?: RuntimeError["reason"]): RuntimeError {
  const err = new RuntimeError(message, subject, why);
  err.cause = cause;
  return err;
}
