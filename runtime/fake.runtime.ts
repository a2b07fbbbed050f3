// An in-memory ContainerRuntime for unit, model and simulation tests. It keeps PodmanRuntime's
// semantics (names, adoption by score hash, idempotent stop/remove, unmanaged containers left
// alone), records every call in order, and fails, delays or holds any step on demand.
import { createHash } from "node:crypto";
import { containerName } from "../contracts/names.js";
import { signalNumber } from "../contracts/signals.js";
import type { ContainerRuntime, ContainerState, ManagedContainer, ServiceSpec } from "./container-runtime.js";
import { RuntimeError } from "./container-runtime.js";

export type RuntimeOp = "ensureImage" | "startService" | "status" | "stop" | "remove" | "list";

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
  /** stop: the grace period asked for. */
  graceSecs?: number;
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
  /** See ContainerRuntime.startSettleMs. Default 0: checked at once, as an exit at start is immediate here. */
  startSettleMs?: number | null;
  /** Clock for `RuntimeCall.at`. Default Date.now. */
  now?: () => number;
}

export interface FaultOptions {
  /** Fire once, then clear. Default: fire until clearFaults(). */
  once?: boolean;
}

interface Container extends ManagedContainer {
  image: string;
  stopSignal: number;
  /** Unlabelled: not ours, never touched, never listed. */
  foreign: boolean;
}

type FaultKind = "pull" | "create" | "start" | "stop" | "remove" | "exitAtStart";
interface Fault {
  kind: FaultKind;
  /** Image (pull), or a service name or container name `<deployment>.<service>`. */
  key: string;
  message: string;
  exitCode: number;
  once: boolean;
}

const MUTATING: ReadonlySet<RuntimeOp> = new Set(["startService", "stop", "remove"]);

export class FakeRuntime implements ContainerRuntime {
  readonly device: string;
  /** Every call, in the order made. */
  readonly calls: RuntimeCall[] = [];
  /** Images present on the device. */
  readonly images: Set<string>;
  readonly startSettleMs: number | null;

  private readonly anyPullable: boolean;
  private readonly now: () => number;
  private readonly containers = new Map<string, Container>(); // by id, in creation order
  private faults: Fault[] = [];
  private readonly latencies = new Map<RuntimeOp, number>();
  private readonly gates = new Map<RuntimeOp, { wait: Promise<void>; release: () => void; reached: (c: RuntimeCall) => void }>();
  private seq = 0;

  constructor(opts: FakeRuntimeOptions) {
    this.device = opts.device;
    this.images = new Set(opts.images ?? []);
    this.anyPullable = opts.images === undefined;
    this.startSettleMs = opts.startSettleMs === undefined ? 0 : opts.startSettleMs;
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
        this.containers.delete(existing.id);
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
      if (ct.state === "running" || ct.state === "paused" || ct.state === "stopping") {
        ct.state = "exited";
        ct.exitCode = 128 + ct.stopSignal;
      }
    });
  }

  remove(id: string): Promise<void> {
    return this.call("remove", id, {}, () => {
      const ct = this.find(id);
      if (!ct) return;
      if (ct.foreign) throw new RuntimeError(`refusing to remove container ${id}: not managed by fleet-agent`, id);
      const f = this.fault("remove", ct.service, ct.name);
      if (f) throw new RuntimeError(`removing container ${ct.name} (${id}): ${f.message}`, id);
      this.containers.delete(ct.id);
    });
  }

  list(): Promise<ManagedContainer[]> {
    return this.call("list", "", {}, () => [...this.containers.values()].filter((c) => !c.foreign).map(view));
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

  /** A running container exits on its own. */
  crash(idOrName: string, exitCode = 1): void {
    const ct = this.mustFind(idOrName);
    ct.state = "exited";
    ct.exitCode = exitCode;
  }
  /** A container disappears (removed behind the agent's back). */
  vanish(idOrName: string): void {
    this.containers.delete(this.mustFind(idOrName).id);
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
  /** Clears every fault and latency and releases every held op. */
  clearFaults(): void {
    this.faults = [];
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
    try {
      return act(c); // synchronous: a step's effect is atomic, like one libpod request
    } catch (e) {
      c.error = (e as Error).message;
      throw e;
    }
  }

  private start(ct: Container, name: string, service: string): void {
    const f = this.fault("start", service, name);
    if (f) throw new RuntimeError(`starting service ${service}: ${f.message}`, service);
    const exit = this.fault("exitAtStart", service, name);
    if (exit) {
      ct.state = "exited";
      ct.exitCode = exit.exitCode;
      return;
    }
    ct.state = "running";
    ct.exitCode = null;
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

function view(c: Container): ManagedContainer {
  const state: ContainerState = c.state;
  return { id: c.id, name: c.name, deployment: c.deployment, service: c.service, scoreHash: c.scoreHash, state, exitCode: c.exitCode };
}
