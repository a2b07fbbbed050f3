// An in-memory ContainerRuntime for unit, model and simulation tests. It keeps PodmanRuntime's
// semantics (names, adoption by score hash, idempotent stop/remove, unmanaged containers left
// alone, Podman 4.3.1's health bookkeeping), records every call in order, fails, delays or holds
// any step on demand, and plays crash loops, flapping health and lost event streams.
import { createHash } from "node:crypto";
import { containerName } from "../contracts/names.js";
import type { Health } from "../contracts/score.codec.js";
import { signalNumber } from "../contracts/signals.js";
import type {
  ContainerEvent,
  ContainerRuntime,
  ContainerState,
  ContainerWatcher,
  HealthReport,
  LogLine,
  LogQuery,
  ManagedContainer,
  ServiceLogs,
  ServiceSpec,
  StopAndRemoveOptions,
} from "./container-runtime.js";
import { HEALTH_OUTPUT_CHARS, RuntimeError } from "./container-runtime.js";
import { LogWindow, logQueryProblem } from "./log-window.js";

export type RuntimeOp =
  | "ensureImage"
  | "startService"
  | "status"
  | "stop"
  | "remove"
  | "list"
  | "stopAndRemove"
  | "healthcheck"
  | "restart"
  | "logs";

/** What a startService or ensureImage call came to. */
export type CallOutcome =
  | "created" // a new container (replacing one of another score hash, see `replaced`)
  | "adopted" // a running container of the same name and hash, left as it was
  | "restarted" // a stopped container of the same name and hash, started again
  | "pulled" // ensureImage: the image was not there and was pulled
  | "present"; // ensureImage: the image was there already

export interface RuntimeCall {
  op: RuntimeOp;
  /** The image (ensureImage), container name (startService), id or name (status, stop, remove), "" (list). */
  arg: string;
  /** `now()` when the call was made. */
  at: number;
  outcome?: CallOutcome;
  /** startService: id of the container of another score hash that was removed first. */
  replaced?: string;
  /** stop, stopAndRemove: the grace period asked for. */
  graceSecs?: number;
  /** stopAndRemove: the caller vouched for the id (no ownership check). */
  recorded?: boolean;
  /** Set when the call rejected: the error's message. */
  error?: string;
}

/** Releases a held op; `reached` resolves with the first call that waits on it. */
export type Gate = (() => void) & { reached: Promise<RuntimeCall> };

export interface FakeRuntimeOptions {
  device: string;
  /**
   * Images present at start. When given, no other image can be pulled (as with no registry in
   * reach); when omitted, every image is pullable.
   */
  images?: string[];
  /** Clock for `RuntimeCall.at`. Default Date.now. */
  now?: () => number;
}

export interface FaultOptions {
  /** Fire once, then clear. Default: fire until clearFaults(). */
  once?: boolean;
}

/** One run of a scripted health check: passed or not, and what it printed. */
export type HealthOutcome = boolean | { pass: boolean; output?: string };

interface Container extends ManagedContainer {
  image: string;
  stopSignal: number;
  /** Unlabelled: not ours, never touched, never listed. */
  foreign: boolean;
  health: Health | undefined;
  /** Podman's bookkeeping: "" before the first start, "starting" after each start. */
  healthStatus: "" | "starting" | "healthy" | "unhealthy";
  failingStreak: number;
  healthOutput: string;
  /** `now()` at the last start. */
  startedAt: number;
  /** Counts starts: a crash timer set for one start does not fire after the next. */
  generation: number;
  log: LogLine[];
}

type FaultKind = "pull" | "create" | "start" | "stop" | "remove" | "exitAtStart" | "crashAfterStart";
interface Fault {
  kind: FaultKind;
  /** Image (pull), or a service name or container name `<deployment>.<service>`. */
  key: string;
  message: string;
  exitCode: number;
  once: boolean;
  /** crashAfterStart: ms after each start; how many crashes are left (Infinity: every start). */
  afterMs?: number;
  left?: number;
}

/** A scripted health check for one service (or container name). */
interface HealthScript {
  key: string;
  outcomes: Array<{ pass: boolean; output: string }>;
  next: number;
  repeat: boolean;
  /** Fails until this long after the container's start, then passes. */
  passAfterMs?: number;
}

const MUTATING: ReadonlySet<RuntimeOp> = new Set(["startService", "stop", "remove", "stopAndRemove", "restart"]);
const FULL_ID = /^[0-9a-f]{64}$/;
const HEALTH_RETRIES_DEFAULT = 3;

export class FakeRuntime implements ContainerRuntime {
  readonly device: string;
  /** Every call, in the order made. */
  readonly calls: RuntimeCall[] = [];
  /** Images present on the device. */
  readonly images: Set<string>;

  private readonly anyPullable: boolean;
  private readonly now: () => number;
  private readonly containers = new Map<string, Container>(); // by id, in creation order
  private faults: Fault[] = [];
  private readonly latencies = new Map<RuntimeOp, number>();
  private readonly gates = new Map<RuntimeOp, { wait: Promise<void>; release: () => void; reached: (c: RuntimeCall) => void }>();
  private seq = 0;
  private healthScripts: HealthScript[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Each watcher, and whether it has been told `connected` yet. */
  private readonly watchers = new Map<ContainerWatcher, { connectedBefore: boolean }>();
  /** interruptWatch() was called and resumeWatch() not yet: events are lost. */
  private watchDown = false;
  /** The `at` of the call being acted on: one call reads the clock once. */
  private acting: number | null = null;

  constructor(opts: FakeRuntimeOptions) {
    this.device = opts.device;
    this.images = new Set(opts.images ?? []);
    this.anyPullable = opts.images === undefined;
    this.now = opts.now ?? Date.now;
  }

  // ---- ContainerRuntime -------------------------------------------------------------------

  ensureImage(image: string): Promise<void> {
    return this.call("ensureImage", image, {}, (c) => {
      if (this.images.has(image)) {
        c.outcome = "present";
        return;
      }
      const f = this.fault("pull", image);
      if (f) throw new RuntimeError(`pulling image ${image}: ${f.message}`, image);
      if (!this.anyPullable) throw new RuntimeError(`pulling image ${image}: not found in any registry`, image);
      this.images.add(image);
      c.outcome = "pulled";
    });
  }

  startService(spec: ServiceSpec): Promise<string> {
    const name = containerName(spec.deployment, spec.service.name);
    return this.call("startService", name, {}, (c) => {
      const service = spec.service.name;
      const existing = this.byName(name);
      if (existing?.foreign) {
        throw new RuntimeError(`service ${service}: the name ${name} is taken by a container fleet-agent does not manage`, service);
      }
      if (existing && existing.scoreHash === spec.scoreHash) {
        if (existing.state === "running") {
          c.outcome = "adopted";
          return existing.id;
        }
        c.outcome = "restarted";
        this.start(existing, name, service);
        return existing.id;
      }
      if (existing) {
        this.removeContainer(existing);
        c.replaced = existing.id;
      }
      const f = this.fault("create", service, name);
      if (f) throw new RuntimeError(`creating service ${service}: ${f.message}`, service);
      if (!this.images.has(spec.service.image)) {
        throw new RuntimeError(`creating service ${service}: image ${spec.service.image} not known`, service);
      }
      const ct: Container = {
        id: this.nextId(),
        name,
        deployment: spec.deployment,
        service,
        scoreHash: spec.scoreHash,
        state: "created",
        exitCode: null,
        image: spec.service.image,
        stopSignal: signalNumber(spec.lifecycle.stop_signal),
        foreign: false,
        ...freshHealth(spec.service.health),
      };
      this.containers.set(ct.id, ct);
      c.outcome = "created";
      this.start(ct, name, service);
      return ct.id;
    });
  }

  status(idOrName: string): Promise<ManagedContainer | null> {
    return this.call("status", idOrName, {}, () => {
      const ct = this.find(idOrName);
      return ct && !ct.foreign ? view(ct) : null;
    });
  }

  stop(id: string, graceSecs: number): Promise<void> {
    return this.call("stop", id, { graceSecs }, () => {
      const ct = this.find(id);
      if (!ct) return;
      if (ct.foreign) throw new RuntimeError(`refusing to stop container ${id}: not managed by fleet-agent`, id);
      const f = this.fault("stop", ct.service, ct.name);
      if (f) throw new RuntimeError(`stopping container ${ct.name} (${id}): ${f.message}`, id);
      this.stopContainer(ct);
    });
  }

  remove(id: string): Promise<void> {
    return this.call("remove", id, {}, () => {
      const ct = this.find(id);
      if (!ct) return;
      if (ct.foreign) throw new RuntimeError(`refusing to remove container ${id}: not managed by fleet-agent`, id);
      const f = this.fault("remove", ct.service, ct.name);
      if (f) throw new RuntimeError(`removing container ${ct.name} (${id}): ${f.message}`, id);
      this.removeContainer(ct);
    });
  }

  list(): Promise<ManagedContainer[]> {
    return this.call("list", "", {}, () => [...this.containers.values()].filter((c) => !c.foreign).map(view));
  }

  /** stop then remove, as one call; `recorded` skips the ownership check (a foreign id is then removed, as Podman would). */
  stopAndRemove(id: string, graceSecs: number, opts: StopAndRemoveOptions = {}): Promise<void> {
    return this.call("stopAndRemove", id, { graceSecs, ...(opts.recorded ? { recorded: true } : {}) }, () => {
      if (opts.recorded && !FULL_ID.test(id)) throw new RuntimeError(`stopAndRemove: a recorded container id must be a full 64-hex id, got ${JSON.stringify(id)}`, id);
      const ct = opts.recorded ? this.containers.get(id) : this.find(id);
      if (!ct) return;
      if (ct.foreign && !opts.recorded) throw new RuntimeError(`refusing to remove container ${id}: not managed by fleet-agent`, id, "not-managed");
      const f = this.fault("stop", ct.service, ct.name) ?? this.fault("remove", ct.service, ct.name);
      if (f) throw new RuntimeError(`stopping and removing container ${ct.name} (${id}): ${f.message}`, id);
      this.stopContainer(ct);
      this.removeContainer(ct);
    });
  }

  /**
   * Podman 4.3.1's bookkeeping (see PodmanRuntime.healthcheck): a pass is healthy with streak 0; a
   * failure outside the start period adds to the streak, unhealthy once it reaches `retries`. A
   * `health` event carrying the status from before the check is emitted as it begins, as 4.3.1 does.
   */
  healthcheck(id: string): Promise<HealthReport> {
    return this.call("healthcheck", id, {}, () => {
      const ct = this.owned(id, "run the health check of");
      if (!ct.health) return { status: "none", failingStreak: 0, output: "" };
      if (ct.state !== "running") throw new RuntimeError(`container ${ct.name} is not running: its health check cannot run`, ct.name, "not-running");
      this.emit(ct, { type: "health", status: ct.healthStatus === "" ? "starting" : ct.healthStatus });
      const run = this.healthRun(ct);
      ct.healthOutput = run.output;
      if (run.pass) {
        ct.healthStatus = "healthy";
        ct.failingStreak = 0;
      } else if (this.time() >= ct.startedAt + (ct.health.start_period_secs ?? 0) * 1000) {
        ct.failingStreak += 1;
        if (ct.failingStreak >= (ct.health.retries ?? HEALTH_RETRIES_DEFAULT)) ct.healthStatus = "unhealthy";
      }
      const output = run.output.trim();
      return {
        status: ct.healthStatus === "" ? "starting" : ct.healthStatus,
        failingStreak: ct.failingStreak,
        output: output.length <= HEALTH_OUTPUT_CHARS ? output : `${output.slice(0, HEALTH_OUTPUT_CHARS - 1)}…`,
      };
    });
  }

  /** Stops a running container (a `died` with 128 + its stop signal) and starts it again; faults at start apply. */
  restart(id: string): Promise<string> {
    return this.call("restart", id, {}, () => {
      const ct = this.owned(id, "restart");
      this.stopContainer(ct);
      this.start(ct, ct.name, ct.service);
      return ct.id;
    });
  }

  logs(id: string, query: LogQuery): Promise<ServiceLogs> {
    return this.call("logs", id, {}, () => {
      const problem = logQueryProblem(query);
      if (problem) throw new RuntimeError(`logs: ${problem}`, id);
      const ct = this.owned(id, "read the logs of");
      const since = query.since?.getTime();
      let lines = since === undefined ? ct.log : ct.log.filter((l) => Date.parse(l.at) >= since);
      if (query.tail !== undefined) lines = query.tail === 0 ? [] : lines.slice(-query.tail);
      const window = new LogWindow(query.maxBytes);
      for (const l of lines) window.add(l.stream, l.at, l.text, true);
      return window.result();
    });
  }

  /** Delivers events (each in its own microtask, in order) until `signal` aborts. */
  watchContainers(watcher: ContainerWatcher, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      this.watchers.set(watcher, { connectedBefore: false });
      if (!this.watchDown) this.connect(watcher);
      signal.addEventListener(
        "abort",
        () => {
          this.watchers.delete(watcher);
          resolve();
        },
        { once: true },
      );
    });
  }

  // ---- faults -------------------------------------------------------------------------------

  failPull(image: string, message = "simulated pull failure", opts: FaultOptions = {}): void {
    this.addFault("pull", image, message, opts);
  }
  /** `service` is a service name (any deployment) or a container name `<deployment>.<service>`. */
  failCreate(service: string, message = "simulated create failure", opts: FaultOptions = {}): void {
    this.addFault("create", service, message, opts);
  }
  /** The container is created but does not start (it stays `created`). */
  failStart(service: string, message = "simulated start failure", opts: FaultOptions = {}): void {
    this.addFault("start", service, message, opts);
  }
  failStop(service: string, message = "simulated stop failure", opts: FaultOptions = {}): void {
    this.addFault("stop", service, message, opts);
  }
  failRemove(service: string, message = "simulated remove failure", opts: FaultOptions = {}): void {
    this.addFault("remove", service, message, opts);
  }
  /** The service's container exits with `code` right after each start (startService returns its id). */
  exitAtStart(service: string, code: number, opts: FaultOptions = {}): void {
    this.faults.push({ kind: "exitAtStart", key: service, message: "", exitCode: code, once: opts.once ?? false });
  }

  /**
   * A crash loop: the service's container exits with `code` `afterMs` real milliseconds after each
   * start (a `died` event follows), for the next `times` starts (default: every start), until
   * clearFaults(). A stop, restart or remove before then cancels that start's crash.
   */
  crashAfterStart(service: string, code: number, opts: { afterMs: number; times?: number }): void {
    this.faults.push({ kind: "crashAfterStart", key: service, message: "", exitCode: code, once: false, afterMs: opts.afterMs, left: opts.times ?? Infinity });
  }
  /**
   * The service's health checks give these outcomes in turn, then pass again; with `repeat`, they
   * cycle for ever (a flapping check). Replaces an earlier script for the same key.
   */
  scriptHealth(service: string, outcomes: HealthOutcome[], opts: { repeat?: boolean } = {}): void {
    this.setHealthScript({
      key: service,
      outcomes: outcomes.map((o) => (typeof o === "boolean" ? { pass: o, output: o ? "" : "simulated health check failure" } : { pass: o.pass, output: o.output ?? "" })),
      next: 0,
      repeat: opts.repeat ?? false,
    });
  }
  /** Every health check of the service fails, printing `output`, until clearFaults(). */
  failHealth(service: string, output = "simulated health check failure"): void {
    this.scriptHealth(service, [{ pass: false, output }], { repeat: true });
  }
  /** The service's checks fail until `ms` after its container's (latest) start, by `now()`, then pass. */
  healthPassesAfter(service: string, ms: number): void {
    this.setHealthScript({ key: service, outcomes: [], next: 0, repeat: false, passAfterMs: ms });
  }
  /** Appends to a container's log: one line per `\n`-separated part, stamped `at` (default now()). */
  writeLog(idOrName: string, text: string, opts: { stream?: LogLine["stream"]; at?: Date } = {}): void {
    const ct = this.mustFind(idOrName);
    const at = (opts.at ?? new Date(this.now())).toISOString();
    const parts = text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n");
    for (const part of parts) ct.log.push({ at, stream: opts.stream ?? "stdout", text: part });
  }
  /** The event stream breaks: watchers get an error, and events are lost until resumeWatch(). */
  interruptWatch(): void {
    if (this.watchDown) return;
    this.watchDown = true;
    for (const w of this.watchers.keys()) this.tell(w, () => w.error?.(new Error("simulated loss of the event stream")));
  }
  /** The event stream is back: watchers are told `connected({ reconnected: true })`. */
  resumeWatch(): void {
    if (!this.watchDown) return;
    this.watchDown = false;
    for (const w of this.watchers.keys()) this.connect(w);
  }
  /** How many watchers are following the events. */
  get watcherCount(): number {
    return this.watchers.size;
  }

  /** A running container exits on its own (a `died` event follows). */
  crash(idOrName: string, exitCode = 1): void {
    const ct = this.mustFind(idOrName);
    ct.state = "exited";
    ct.exitCode = exitCode;
    this.emit(ct, { type: "died", exitCode });
  }
  /** A container disappears (removed behind the agent's back; a `removed` event follows). */
  vanish(idOrName: string): void {
    this.removeContainer(this.mustFind(idOrName));
  }
  /** An image disappears (pruned behind the agent's back). */
  dropImage(image: string): void {
    this.images.delete(image);
  }
  /** Every call of `op` takes `ms` real milliseconds before it acts (0 removes the delay). */
  latency(op: RuntimeOp, ms: number): void {
    if (ms > 0) this.latencies.set(op, ms);
    else this.latencies.delete(op);
  }
  /**
   * Calls of `op` made from now on are recorded, then wait until the returned function is called;
   * `gate.reached` resolves when the first one is waiting. Holding it again gives a new gate
   * for later calls; calls already waiting keep waiting on the earlier one.
   */
  hold(op: RuntimeOp): Gate {
    let release!: () => void;
    let reached!: (c: RuntimeCall) => void;
    const wait = new Promise<void>((r) => (release = r));
    const reachedP = new Promise<RuntimeCall>((r) => (reached = r));
    const entry = { wait, release: () => {}, reached };
    entry.release = () => {
      if (this.gates.get(op) === entry) this.gates.delete(op);
      release();
    };
    this.gates.set(op, entry);
    return Object.assign(() => entry.release(), { reached: reachedP });
  }
  /** Clears every fault, health script, pending crash and latency, and releases every held op. */
  clearFaults(): void {
    this.faults = [];
    this.healthScripts = [];
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.latencies.clear();
    for (const g of [...this.gates.values()]) g.release();
  }

  /** A container without our labels, running; the runtime must never touch it. Returns its id. */
  addForeign(name: string, image = "docker.io/library/busybox:latest"): string {
    const ct: Container = {
      id: this.nextId(),
      name,
      deployment: "",
      service: "",
      scoreHash: "",
      state: "running",
      exitCode: null,
      image,
      stopSignal: 15,
      foreign: true,
      ...freshHealth(undefined),
    };
    this.containers.set(ct.id, ct);
    return ct.id;
  }

  // ---- inspection for tests ----------------------------------------------------------------

  /** How many calls of `op` were made. */
  count(op: RuntimeOp): number {
    return this.calls.filter((c) => c.op === op).length;
  }
  /** Calls that may change a container: startService, stop and remove (failed ones included). */
  mutations(): RuntimeCall[] {
    return this.calls.filter((c) => MUTATING.has(c.op));
  }
  clearCalls(): void {
    this.calls.length = 0;
  }
  /** Every container, ours and foreign, as it is now (synchronous, not recorded). */
  snapshot(): Array<ManagedContainer & { image: string; foreign: boolean }> {
    return [...this.containers.values()].map((c) => ({ ...view(c), image: c.image, foreign: c.foreign }));
  }
  /** The container with this id or name, ours or foreign (not recorded). */
  peek(idOrName: string): (ManagedContainer & { image: string; foreign: boolean }) | null {
    const c = this.find(idOrName);
    return c ? { ...view(c), image: c.image, foreign: c.foreign } : null;
  }

  // ---- internals ---------------------------------------------------------------------------

  private async call<T>(op: RuntimeOp, arg: string, extra: Partial<RuntimeCall>, act: (c: RuntimeCall) => T): Promise<T> {
    const c: RuntimeCall = { op, arg, at: this.now(), ...extra };
    this.calls.push(c);
    const gate = this.gates.get(op);
    if (gate) {
      gate.reached(c);
      await gate.wait;
    }
    const ms = this.latencies.get(op);
    if (ms) await new Promise((r) => setTimeout(r, ms));
    this.acting = c.at;
    try {
      return act(c); // synchronous: a step's effect is atomic, like one libpod request
    } catch (e) {
      c.error = (e as Error).message;
      throw e;
    } finally {
      this.acting = null;
    }
  }

  private start(ct: Container, name: string, service: string): void {
    const f = this.fault("start", service, name);
    if (f) throw new RuntimeError(`starting service ${service}: ${f.message}`, service);
    ct.generation += 1;
    ct.startedAt = this.time();
    if (ct.health) {
      ct.healthStatus = "starting";
      ct.failingStreak = 0;
    }
    ct.state = "running";
    ct.exitCode = null;
    this.emit(ct, { type: "started" });
    const exit = this.fault("exitAtStart", service, name);
    if (exit) {
      ct.state = "exited";
      ct.exitCode = exit.exitCode;
      this.emit(ct, { type: "died", exitCode: exit.exitCode });
      return;
    }
    const loop = this.fault("crashAfterStart", service, name);
    if (loop) {
      loop.left = (loop.left ?? Infinity) - 1;
      if (loop.left <= 0) this.faults.splice(this.faults.indexOf(loop), 1);
      const generation = ct.generation;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (this.containers.get(ct.id) !== ct || ct.generation !== generation || ct.state !== "running") return;
        ct.state = "exited";
        ct.exitCode = loop.exitCode;
        this.emit(ct, { type: "died", exitCode: loop.exitCode });
      }, loop.afterMs ?? 0);
      this.timers.add(timer);
    }
  }

  /** A running (or paused, or stopping) container exits with 128 + its stop signal. */
  private stopContainer(ct: Container): void {
    if (ct.state === "running" || ct.state === "paused" || ct.state === "stopping") {
      ct.generation += 1; // a pending crash of this start no longer fires
      ct.state = "exited";
      ct.exitCode = 128 + ct.stopSignal;
      this.emit(ct, { type: "died", exitCode: ct.exitCode });
    }
  }

  /** Gone, as Podman's forced remove: a running one dies first. */
  private removeContainer(ct: Container): void {
    if (ct.state === "running" || ct.state === "paused" || ct.state === "stopping") {
      ct.state = "exited";
      ct.exitCode = 137;
      this.emit(ct, { type: "died", exitCode: 137 });
    }
    ct.generation += 1;
    this.containers.delete(ct.id);
    this.emit(ct, { type: "removed" });
  }

  /** Ours, or a RuntimeError: `missing` when there is none, `not-managed` when it is foreign. */
  private owned(idOrName: string, action: string): Container {
    const ct = this.find(idOrName);
    if (!ct) throw new RuntimeError(`cannot ${action} container ${idOrName}: there is no such container`, idOrName, "missing");
    if (ct.foreign) throw new RuntimeError(`refusing to ${action} container ${idOrName}: not managed by fleet-agent`, idOrName, "not-managed");
    return ct;
  }

  private healthRun(ct: Container): { pass: boolean; output: string } {
    const script = this.healthScripts.find((h) => h.key === ct.service || h.key === ct.name);
    if (!script) return { pass: true, output: "" };
    if (script.passAfterMs !== undefined) {
      const pass = this.time() >= ct.startedAt + script.passAfterMs;
      return { pass, output: pass ? "" : "simulated health check failure (not ready yet)" };
    }
    const o = script.outcomes[script.next];
    if (!o) return { pass: true, output: "" };
    script.next += 1;
    if (script.repeat && script.next >= script.outcomes.length) script.next = 0;
    return o;
  }

  private setHealthScript(h: HealthScript): void {
    this.healthScripts = [...this.healthScripts.filter((x) => x.key !== h.key), h];
  }

  /** Queues an event for every watcher, unless the stream is down; foreign containers have none. */
  private emit(ct: Container, e: DistributiveOmit<ContainerEvent, "id" | "name" | "deployment" | "service" | "at">): void {
    if (ct.foreign || this.watchDown || this.watchers.size === 0) return;
    const event: ContainerEvent = { id: ct.id, name: ct.name, deployment: ct.deployment, service: ct.service, at: new Date(this.time()).toISOString(), ...e };
    for (const w of [...this.watchers.keys()]) queueMicrotask(() => this.tell(w, () => w.event(event)));
  }

  /** Now, as the call being acted on saw it, or the clock outside a call (a crash timer firing). */
  private time(): number {
    return this.acting ?? this.now();
  }

  /** Tells a watcher the stream is live, in its own microtask (after events already queued). */
  private connect(w: ContainerWatcher): void {
    const state = this.watchers.get(w);
    if (!state) return;
    const reconnected = state.connectedBefore;
    state.connectedBefore = true;
    queueMicrotask(() => this.tell(w, () => w.connected({ reconnected })));
  }

  /** Calls a watcher; what it throws goes to its `error`, as with PodmanRuntime. */
  private tell(w: ContainerWatcher, f: () => void): void {
    if (!this.watchers.has(w)) return;
    try {
      f();
    } catch (e) {
      try {
        w.error?.(e instanceof Error ? e : new Error(String(e)));
      } catch {
        // nothing left to tell
      }
    }
  }

  private addFault(kind: FaultKind, key: string, message: string, opts: FaultOptions): void {
    this.faults.push({ kind, key, message, exitCode: 0, once: opts.once ?? false });
  }

  /** The first fault of `kind` matching any of `keys`; a one-shot fault is used up. */
  private fault(kind: FaultKind, ...keys: string[]): Fault | undefined {
    const i = this.faults.findIndex((f) => f.kind === kind && keys.includes(f.key));
    const f = this.faults[i];
    if (f?.once) this.faults.splice(i, 1);
    return f;
  }

  private byName(name: string): Container | undefined {
    for (const c of this.containers.values()) if (c.name === name) return c;
    return undefined;
  }

  /** By full id, by name, or (as Podman) by an unambiguous id prefix of at least 12 characters. */
  private find(idOrName: string): Container | undefined {
    const exact = this.containers.get(idOrName) ?? this.byName(idOrName);
    if (exact || idOrName.length < 12) return exact;
    const hits = [...this.containers.values()].filter((c) => c.id.startsWith(idOrName));
    return hits.length === 1 ? hits[0] : undefined;
  }

  private mustFind(idOrName: string): Container {
    const c = this.find(idOrName);
    if (!c) throw new Error(`FakeRuntime: no container ${idOrName}`);
    return c;
  }

  /** Deterministic, unique, Podman-shaped (64 hex): sha256 of device and a counter. */
  private nextId(): string {
    this.seq += 1;
    return createHash("sha256").update(`${this.device}/${this.seq}`).digest("hex");
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function freshHealth(health: Health | undefined) {
  return { health, healthStatus: "" as const, failingStreak: 0, healthOutput: "", startedAt: 0, generation: 0, log: [] as LogLine[] };
}

function view(c: Container): ManagedContainer {
  const state: ContainerState = c.state;
  return { id: c.id, name: c.name, deployment: c.deployment, service: c.service, scoreHash: c.scoreHash, state, exitCode: c.exitCode };
}
