// Shared rig of the model and property suites: the REAL deployment machine, its real step executors
// (agent/deployment.actors.ts) bound to a FakeRuntime, each step held behind a deferred the test
// releases, the deadline actor a deferred the test fires, every runtime call attributed to the
// machine state it was made in, and the invariants of docs/design.md (1–7) checked against all of it.
import { createActor, fromPromise, initialTransition, toPromise, transition, type Actor, type AnyActorLogic, type InspectionEvent } from "xstate";
import { canonicalHash } from "../../../contracts/canonical-json.js";
import { resolveLifecycle, type PodmanService, type PodmanV0Score } from "../../../contracts/score.codec.js";
import { deploymentActors } from "../../../agent/deployments/executor.js";
import { deploymentMachine, type DeploymentInput, type DeploymentSnapshot } from "../../../machines/deployment.machine.js";
import type { StepDone } from "../../../machines/deployment.steps.js";
import { foldJournal } from "../../../machines/journal.fold.js";
import { machineEventOf } from "../../../machines/journal.vocabulary.js";
import { machineEdges, type Edge } from "../../../machines/statechart.js";
import { snapshotView, transitionRecorder, type Transition } from "../../../machines/transition.recorder.js";
import { specHash } from "../../../machines/upgrade.plan.js";
import type { ContainerRuntime, ContainerWatcher, LogQuery, ManagedContainer, ServiceSpec, StopAndRemoveOptions } from "../../../runtime/container-runtime.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";

// ---- scores ---------------------------------------------------------------------------------

const LIFECYCLE = { stop_signal: "SIGTERM", grace_period_secs: 5 } as const;

/** Service specs by id; each has an image of its own. */
export const SPECS = {
  w1: { name: "web", image: "localhost/web:1" },
  w2: { name: "web", image: "localhost/web:2", env: { MODE: "prod", LEVEL: "2" } },
  w3: { name: "web", image: "localhost/web:3", command: ["/bin/web", "--port", "8080"] },
  d1: { name: "db", image: "localhost/db:1", env: { DATA: "/data" } },
  d2: { name: "db", image: "localhost/db:2" },
  c1: { name: "cache", image: "localhost/cache:1" },
} satisfies Record<string, PodmanService>;
export type SpecId = keyof typeof SPECS;

export const scoreOf = (specs: readonly SpecId[], grace: number = LIFECYCLE.grace_period_secs): PodmanV0Score => ({
  services: specs.map((id) => structuredClone(SPECS[id]) as PodmanService),
  lifecycle: { ...LIFECYCLE, grace_period_secs: grace },
});

/** Same content, every object's keys in reverse order: same canonical hash, different bytes. */
export function reordered<T>(v: T): T {
  if (Array.isArray(v)) return v.map(reordered) as T;
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reordered(x)])) as T;
  return v;
}

export const hashOf = (score: PodmanV0Score) => canonicalHash({ type: "PodmanV0", data: score });

const specKey = (s: PodmanService, l: ReturnType<typeof resolveLifecycle>) => specHash(s, l);

/** The spec id of an applied service, for comparing the real context with an abstract model. */
const SPEC_HASHES = (Object.keys(SPECS) as SpecId[]).map((k) => [k, canonicalHash(SPECS[k])] as const);
export function specIdOf(service: PodmanService): SpecId {
  const h = canonicalHash(service);
  const id = SPEC_HASHES.find(([, x]) => x === h)?.[0];
  if (!id) throw new Error(`unknown spec ${JSON.stringify(service)}`);
  return id;
}

// ---- gated steps ----------------------------------------------------------------------------

export type StepActor = "pullImages" | "stopOld" | "startNew" | "verify" | "removeAll";
export const STEP_OF_STATE: Record<string, StepActor> = {
  pulling: "pullImages",
  stoppingOld: "stopOld",
  startingNew: "startNew",
  verifying: "verify",
  removing: "removeAll",
};

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** One step in flight, waiting for the test to say how it goes. */
export interface HeldStep {
  actor: StepActor;
  input: unknown;
  /** "run": the real executor runs now; "throw": the executor itself rejects (a crash, not a runtime failure). */
  go(mode: "run" | "throw"): void;
  /** Settles when the executor has finished (either way). */
  finished: Promise<void>;
}

/** A few macrotask turns: every promise chain the FakeRuntime and XState start has run by then. */
export async function flush(turns = 4): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}

// ---- runtime with attribution ---------------------------------------------------------------

export interface ObservedCall {
  op: "ensureImage" | "startService" | "status" | "stop" | "remove" | "list" | "stopAndRemove" | "healthcheck" | "restart" | "logs";
  arg: string;
  /** startService: the spec asked for. */
  spec?: ServiceSpec;
  /** The machine state when the call was made. */
  state: string;
  ok?: boolean;
}

/** Records every call with the machine's state and checks, at the moment of the call, what may be touched. */
export class ObservedRuntime implements ContainerRuntime {
  readonly calls: ObservedCall[] = [];
  /** A device-wide list fails (the Podman socket went away); the removeAll executor then rejects. */
  failList = false;
  probe: () => DeploymentSnapshot = () => {
    throw new Error("probe not set");
  };
  /** Set by the world: checks a call before it reaches the fake. */
  check: (c: ObservedCall, snap: DeploymentSnapshot) => void = () => {};

  constructor(readonly fake: FakeRuntime) {}

  private async run<T>(c: Omit<ObservedCall, "state">, act: () => Promise<T>): Promise<T> {
    const snap = this.probe();
    const call: ObservedCall = { ...c, state: String(snap.value) };
    this.calls.push(call);
    this.check(call, snap);
    try {
      const r = await act();
      call.ok = true;
      return r;
    } catch (e) {
      call.ok = false;
      throw e;
    }
  }
  ensureImage(image: string) {
    return this.run({ op: "ensureImage", arg: image }, () => this.fake.ensureImage(image));
  }
  startService(spec: ServiceSpec) {
    return this.run({ op: "startService", arg: `${spec.deployment}.${spec.service.name}`, spec }, () => this.fake.startService(spec));
  }
  status(idOrName: string): Promise<ManagedContainer | null> {
    return this.run({ op: "status", arg: idOrName }, () => this.fake.status(idOrName));
  }
  stop(id: string, graceSecs: number) {
    return this.run({ op: "stop", arg: id }, () => this.fake.stop(id, graceSecs));
  }
  remove(id: string) {
    return this.run({ op: "remove", arg: id }, () => this.fake.remove(id));
  }
  list() {
    return this.run({ op: "list", arg: "" }, async () => {
      if (this.failList) throw new Error("list: connection to the runtime lost (simulated)");
      return this.fake.list();
    });
  }
  stopAndRemove(id: string, graceSecs: number, opts?: StopAndRemoveOptions) {
    return this.run({ op: "stopAndRemove", arg: id }, () => this.fake.stopAndRemove(id, graceSecs, opts));
  }
  healthcheck(id: string) {
    return this.run({ op: "healthcheck", arg: id }, () => this.fake.healthcheck(id));
  }
  restart(id: string) {
    return this.run({ op: "restart", arg: id }, () => this.fake.restart(id));
  }
  logs(id: string, query: LogQuery) {
    return this.run({ op: "logs", arg: id }, () => this.fake.logs(id, query));
  }
  watchContainers(watcher: ContainerWatcher, signal: AbortSignal) {
    return this.fake.watchContainers(watcher, signal);
  }
  mutations(from = 0) {
    return this.calls.slice(from).filter((c) => c.op === "startService" || c.op === "stop" || c.op === "remove" || c.op === "stopAndRemove" || c.op === "restart");
  }
}

// ---- edges ----------------------------------------------------------------------------------

export const edgeKey = (e: Edge) => `${e.from} -> ${e.to} on ${e.event}${e.guard ? ` [${e.guard}]` : ""}`;
export const ALL_EDGES: string[] = machineEdges(deploymentMachine).map(edgeKey);

interface TransitionDef {
  source: { key: string; always?: unknown[] };
  target?: { key: string }[];
  eventType: string;
  guard?: unknown;
}

/** The edges a microstep took, in the shape `machineEdges` lists them. */
function edgesOfMicrostep(ev: InspectionEvent): string[] {
  const ts = (ev as unknown as { _transitions?: TransitionDef[] })._transitions ?? [];
  const out: string[] = [];
  for (const t of ts) {
    const event = t.source.always?.includes(t) ? "always" : t.eventType;
    const guard = typeof t.guard === "string" ? t.guard : ((t.guard as { type?: string } | undefined)?.type ?? null);
    for (const to of t.target ?? []) out.push(edgeKey({ from: t.source.key, to: to.key, event, guard, params: null }));
  }
  return out;
}

// ---- the world ------------------------------------------------------------------------------

const SETTLED = new Set(["running", "failed", "removed", "pending"]);

export interface WorldOptions {
  deployment?: string;
  /** Steps wait for `release` (model suite); otherwise they run at once (property suite holds runtime ops instead). */
  gateSteps?: boolean;
}

/**
 * One deployment: the real machine on the real executors over a FakeRuntime, its journal, the edges
 * it took, and the invariants. Violations found at the moment of a runtime call are collected and
 * reported by `checkInvariants`.
 */
export class World {
  readonly fake: FakeRuntime;
  readonly runtime: ObservedRuntime;
  readonly input: DeploymentInput;
  readonly journal: Transition[] = [];
  readonly edges = new Set<string>();
  /** Edges taken on a synthetic executor crash (the real executors never reject there). */
  readonly syntheticEdges = new Set<string>();
  readonly violations: string[] = [];
  readonly actor: Actor<typeof deploymentMachine>;
  readonly held = new Map<StepActor, HeldStep>();
  deadline: ((d: StepDone) => void) | null = null;
  /** The forward retry's timer, when one is armed: fire it to make the retry due. */
  retryTimer: ((d: StepDone) => void) | null = null;
  /** Restarts the machine decided, waiting for their backoff: `restartsDue` lets them all through. */
  private readonly restartWaits = new Set<() => void>();

  private clock = 1_000;
  private revision = 0;
  private synthetic = false;
  /** Per accepted upgrade: the recorded ids when it was accepted, and the ids stopped since. */
  private idsAtAccept: Record<string, string> = {};
  private stoppedSinceAccept = new Set<string>();
  private lastPlan: unknown = null;
  /** Invariant 7: hashes that were superseded mid-step and must never be accepted; the one that may. */
  private coalesce: { forbidden: Set<string>; allowed: string | null; accepted: number } | null = null;
  private lastDesired: string | null = null;

  constructor(opts: WorldOptions = {}) {
    this.input = { device: "dev1", deployment: opts.deployment ?? "app" };
    this.replayed = initialTransition(deploymentMachine, this.input)[0];
    this.fake = new FakeRuntime({ device: "dev1", now: () => this.clock });
    this.runtime = new ObservedRuntime(this.fake);
    const now = () => ++this.clock;
    // Time is the world's: a readiness wait passes at once (the clock jumps to it); a restart's
    // backoff passes when the test says so (restartsDue).
    const sleepUntil = (at: number, signal: AbortSignal, why: "restart" | "ready") =>
      new Promise<void>((resolve) => {
        if (signal.aborted) return resolve();
        if (why === "ready") {
          this.clock = Math.max(this.clock, at);
          return resolve();
        }
        const go = () => {
          this.restartWaits.delete(go);
          this.clock = Math.max(this.clock, at);
          resolve();
        };
        this.restartWaits.add(go);
        signal.addEventListener("abort", () => {
          this.restartWaits.delete(go);
          resolve();
        }, { once: true });
      });
    const real = deploymentActors(this.runtime, { now, sleepUntil });
    const gate = opts.gateSteps ?? true;
    const step = (name: StepActor) => (gate ? this.gated(name, real[name]) : real[name]);
    const timer = (set: (fire: ((d: StepDone) => void) | null, only?: (d: StepDone) => void) => void) =>
      fromPromise<StepDone, { deadline: number }>(({ input, signal }) => {
        const d = deferred<StepDone>();
        const fire = (v: StepDone) => d.resolve(v);
        // A retry timer with no retry armed never fires.
        if (Number.isFinite(input.deadline)) set(fire);
        signal.addEventListener("abort", () => set(null, fire));
        return d.promise;
      });
    const machine = deploymentMachine.provide({
      actors: {
        pullImages: step("pullImages"),
        stopOld: step("stopOld"),
        startNew: step("startNew"),
        verify: step("verify"),
        removeAll: step("removeAll"),
        restarts: real.restarts,
        deadline: timer((fire, only) => {
          if (!only || this.deadline === only) this.deadline = fire;
        }),
        retryTimer: timer((fire, only) => {
          if (!only || this.retryTimer === only) this.retryTimer = fire;
        }),
      } as never,
    });
    const record = transitionRecorder((t) => this.journal.push(t));
    this.actor = createActor(machine, {
      input: this.input,
      inspect: (ev) => {
        record(ev);
        if (ev.type === "@xstate.microstep" && ev.actorRef === this.actor) {
          for (const e of edgesOfMicrostep(ev)) (this.synthetic ? this.syntheticEdges : this.edges).add(e);
        }
        if (ev.type === "@xstate.snapshot" && ev.actorRef === this.actor) this.observe(ev.snapshot as DeploymentSnapshot);
      },
    });
    this.runtime.probe = () => this.actor.getSnapshot();
    this.runtime.check = (c, s) => this.checkCall(c, s);
    this.actor.start();
  }

  private gated(name: StepActor, real: AnyActorLogic) {
    return fromPromise<unknown, unknown>(async ({ input, signal }) => {
      const go = deferred<"run" | "throw">();
      const done = deferred<void>();
      const h: HeldStep = { actor: name, input, go: go.resolve, finished: done.promise };
      this.held.set(name, h);
      signal.addEventListener("abort", () => {
        if (this.held.get(name) === h) this.held.delete(name);
      });
      const mode = await go.promise;
      if (this.held.get(name) === h) this.held.delete(name);
      try {
        if (mode === "throw") throw new Error(`${name}: executor crashed (synthetic)`);
        const child = createActor(real, { input });
        child.start();
        return await toPromise(child);
      } finally {
        done.resolve();
      }
    });
  }

  get snapshot(): DeploymentSnapshot {
    return this.actor.getSnapshot();
  }
  get state(): string {
    return String(this.snapshot.value);
  }
  now(): number {
    return ++this.clock;
  }

  // ---- events the agent sends -------------------------------------------------------------

  update(score: PodmanV0Score): string {
    const hash = hashOf(score);
    this.noteExternal("update", hash);
    this.actor.send({ type: "UPDATE", score, hash, revision: ++this.revision, at: this.now() });
    return hash;
  }
  reject(error = "services[0].image: expected ImageRef, got \"\""): void {
    this.noteExternal("reject", null);
    this.actor.send({ type: "REJECT", error, revision: ++this.revision, at: this.now() });
  }
  delete(): void {
    this.noteExternal("delete", null);
    this.actor.send({ type: "DELETE", revision: ++this.revision, at: this.now() });
  }
  /** One device-wide list call, then TICK with this deployment's containers (as the tick loop does). */
  async tick(): Promise<void> {
    const all = await this.runtime.list();
    this.actor.send({ type: "TICK", containers: all.filter((c) => c.deployment === this.input.deployment), at: this.now() });
    await flush();
  }

  /** What the liveness would tell the machine of a recorded service (its event stream, its health checks). */
  exited(service: string, exitCode: number | null): void {
    this.actor.send({ type: "SERVICE_EXITED", service, exitCode, at: this.now() });
  }
  unhealthy(service: string): void {
    this.actor.send({ type: "SERVICE_UNHEALTHY", service, output: "simulated health check failure", at: this.now() });
  }
  healthy(service: string): void {
    this.actor.send({ type: "SERVICE_HEALTHY", service, output: "ok", at: this.now() });
  }
  /** Every restart waiting for its backoff is due now; resolves once they are carried out. */
  async restartsDue(): Promise<void> {
    for (const go of [...this.restartWaits]) go();
    await flush(6);
  }
  get restartsWaiting(): number {
    return this.restartWaits.size;
  }
  /** The forward retry comes due. */
  async retryDue(): Promise<void> {
    if (!this.retryTimer) throw new Error(`no retry armed in state ${this.state}`);
    this.retryTimer({ at: this.now() });
    await flush();
  }

  /** Releases the held step of the current state; resolves once the machine has taken its outcome. */
  async release(mode: "run" | "throw" = "run"): Promise<void> {
    const name = STEP_OF_STATE[this.state];
    const h = name ? this.held.get(name) : undefined;
    if (!h) throw new Error(`no step held in state ${this.state}`);
    this.synthetic = mode === "throw";
    h.go(mode);
    await h.finished;
    await flush();
    this.synthetic = false;
  }
  /** The current step's deadline fires. */
  async timeout(): Promise<void> {
    if (!this.deadline) throw new Error(`no deadline armed in state ${this.state}`);
    this.deadline({ at: this.now() });
    await flush();
  }

  // ---- observation and invariants ---------------------------------------------------------

  private isStep(s: DeploymentSnapshot) {
    return String(s.value) in STEP_OF_STATE;
  }

  /** Mid-step values are coalesced; a value sent while settled closes the window (invariant 7). */
  private noteExternal(kind: "update" | "reject" | "delete", hash: string | null) {
    const s = this.snapshot;
    if (!this.isStep(s)) {
      this.coalesce = null;
      return;
    }
    const c = this.coalesce && this.coalesce.accepted === 0 ? this.coalesce : { forbidden: new Set<string>(), allowed: null, accepted: 0 };
    if (c.allowed) c.forbidden.add(c.allowed);
    // An update equal to the target in flight cancels what was queued (outside removing).
    c.allowed = kind === "update" && hash !== null && hash !== s.context.desiredHash ? hash : null;
    if (c.allowed) c.forbidden.delete(c.allowed);
    this.coalesce = c;
  }

  /** The number of desired values accepted since a mid-step burst, for assertions. */
  get coalescedAccepts(): number | null {
    return this.coalesce?.accepted ?? null;
  }

  private observe(s: DeploymentSnapshot) {
    const ctx = s.context;
    // A new upgrade was accepted: remember what ran before it.
    if (ctx.plan !== this.lastPlan && ctx.plan !== null && s.value === "pulling") {
      this.idsAtAccept = { ...ctx.containerIds };
      this.stoppedSinceAccept = new Set();
    }
    this.lastPlan = ctx.plan;
    if (ctx.desiredHash !== null && ctx.desiredHash !== this.lastDesired && this.coalesce) {
      // Accepted after a mid-step burst: only the newest value may be, and only once.
      const c = this.coalesce;
      if (c.forbidden.has(ctx.desiredHash)) this.violations.push(`inv7: superseded score ${ctx.desiredHash.slice(7, 19)} was applied`);
      else if (ctx.desiredHash !== c.allowed) this.violations.push(`inv7: applied ${ctx.desiredHash.slice(7, 19)}, not the newest queued value`);
      c.accepted += 1;
      if (c.accepted > 1) this.violations.push("inv7: more than one upgrade after coalesced updates");
    }
    this.lastDesired = ctx.desiredHash;
    if (!this.isStep(s) && ctx.next === null && this.coalesce) {
      if (this.coalesce.allowed && this.coalesce.accepted === 0) {
        this.violations.push("inv7: the newest queued score was never applied");
      }
      this.coalesce = null;
    }
  }

  private checkCall(c: ObservedCall, s: DeploymentSnapshot) {
    const ctx = s.context;
    const v = (m: string) => this.violations.push(`${m} (call ${c.op} ${c.arg.slice(0, 16)} in ${c.state})`);
    const liveState = c.state === "running" || c.state === "failed";
    if (c.op === "startService") {
      const spec = c.spec!;
      const name = spec.service.name;
      // Roll forward only (inv. 3): what starts is what the current target says, never an earlier spec
      // (a forward retry starts the same target again; a restart creates a gone container of it again).
      const wanted = ctx.target?.score.services.find((x) => x.name === name);
      if (!wanted || specKey(wanted, resolveLifecycle(ctx.target!.score.lifecycle)) !== specKey(spec.service, spec.lifecycle)) {
        v(`inv3: started ${name} with a spec that is not the current target's`);
      }
      if (c.state === "startingNew") {
        const planned = (ctx.plan?.start ?? []).some((p) => p.service.name === name && specKey(p.service, p.lifecycle) === specKey(spec.service, spec.lifecycle));
        if (!planned) v(`inv2: started ${name}, which the plan does not start`);
        if (ctx.plan?.actions[name] === "replace") {
          const old = this.idsAtAccept[name];
          if (old && !this.stoppedSinceAccept.has(old)) v(`inv2: started replaced ${name} before its old container ${old.slice(0, 12)} was stopped`);
        }
      } else if (liveState) {
        const rec = ctx.services[name];
        if (!ctx.containerIds[name] || rec?.restartAt == null) v(`created ${name} again with no restart of it decided`);
      } else v("a container was started outside startingNew and the restarts of running or failed");
    }
    if (c.op === "restart") {
      const service = Object.entries(ctx.containerIds).find(([, id]) => id === c.arg)?.[0];
      if (!liveState) v("a container was restarted outside running and failed");
      else if (!service || ctx.services[service]?.restartAt == null) v("restarted a container that is not recorded or has no restart decided");
    }
    if (c.op === "stop" || c.op === "remove" || c.op === "stopAndRemove") {
      if (c.state === "stoppingOld") {
        const ids = (ctx.plan?.stop ?? []).map((svc) => ctx.containerIds[svc]);
        // A stray (this deployment's, recorded for no service, e.g. created by a start that failed
        // beside another) is swept; a recorded container of a service the plan keeps is never touched.
        const found = this.fake.peek(c.arg);
        const stray = !Object.values(ctx.containerIds).includes(c.arg) && found?.deployment === this.input.deployment && !(ctx.target?.score.services ?? []).some((x) => x.name === found.service);
        if (!ids.includes(c.arg) && !stray) v("inv2: stopped or removed a container that is not a replaced/removed service's recorded id, nor a stray");
        if (c.op === "stop" || c.op === "stopAndRemove") this.stoppedSinceAccept.add(c.arg);
      } else if (c.state === "removing") {
        const mine = Object.values(ctx.containerIds).includes(c.arg) || this.fake.peek(c.arg)?.deployment === this.input.deployment || !this.fake.peek(c.arg);
        if (!mine) v("removed a container that is not this deployment's");
      } else v("a container was stopped or removed outside stoppingOld/removing");
    }
  }

  /**
   * Invariants 2, 3, 7 (checked at call time), 5 (replay) and 6 (converged); throws with every
   * violation. Replay here is incremental, event by event through the pure `transition`, as
   * `foldSteps` does; `full` folds the whole journal again with `foldJournal`. `converged: false`
   * skips invariant 6 while the world has changed behind the agent's back and no tick has run yet.
   */
  checkInvariants(where: string, full = false, converged = true): void {
    const problems = [...this.violations];
    const live = this.snapshot;
    const events = this.journal.map((t) => t.event);
    let replayed: DeploymentSnapshot;
    if (full) replayed = foldJournal(this.input, events);
    else {
      for (; this.replayedUpTo < events.length; this.replayedUpTo++) {
        if (this.replayed.status === "done") this.replayed = initialTransition(deploymentMachine, this.input)[0];
        // The journaled cause (the vocabulary's) back into the machine event it replays as.
        const event = machineEventOf(events[this.replayedUpTo]!, this.replayed);
        if (event) [this.replayed] = transition(deploymentMachine, this.replayed, event as never);
      }
      replayed = this.replayed;
    }
    if (snapshotView(replayed) !== snapshotView(live)) {
      problems.push(`inv5: replay differs from live\n  live:   ${snapshotView(live)}\n  replay: ${snapshotView(replayed)}`);
    }
    // A container that crashed or vanished since the last tick is not yet seen: converged from that tick on.
    if (live.value === "running" && converged) problems.push(...this.convergence());
    if (problems.length) throw new Error(`${where}: ${problems.join("; ")}`);
  }
  private replayed: DeploymentSnapshot = initialTransition(deploymentMachine, { device: "dev1", deployment: "app" })[0];
  private replayedUpTo = 0;

  /** Invariant 6: exactly one managed container per service, its id the recorded one; nothing else. */
  convergence(): string[] {
    const ctx = this.snapshot.context;
    const out: string[] = [];
    const mine = this.fake.snapshot().filter((c) => !c.foreign && c.deployment === this.input.deployment);
    const services = (ctx.target?.score.services ?? []).map((s) => s.name).sort();
    for (const svc of services) {
      const cs = mine.filter((c) => c.service === svc);
      // Gone, with a restart decided: the restarts actor creates it again when its backoff has passed.
      if (cs.length === 0 && ctx.services[svc]?.restartAt != null) continue;
      if (cs.length !== 1) out.push(`inv6: ${cs.length} containers for ${svc}`);
      else if (cs[0]!.id !== ctx.containerIds[svc]) out.push(`inv6: ${svc} runs ${cs[0]!.id.slice(0, 12)} but records ${ctx.containerIds[svc]?.slice(0, 12)}`);
    }
    const extra = mine.filter((c) => !services.includes(c.service));
    if (extra.length) out.push(`inv6: containers of services not in the score: ${extra.map((c) => c.name).join(", ")}`);
    const recorded = Object.keys(ctx.containerIds).sort();
    if (JSON.stringify(recorded) !== JSON.stringify(services)) out.push(`inv6: recorded services ${recorded} != score services ${services}`);
    return out;
  }

  /** Services whose recorded container is not running in the fake. */
  downServices(): string[] {
    const ctx = this.snapshot.context;
    return Object.keys(ctx.applied)
      .filter((s) => this.fake.peek(ctx.containerIds[s] ?? "-")?.state !== "running")
      .sort();
  }

  settledNow(): boolean {
    const s = this.snapshot;
    return SETTLED.has(String(s.value)) && s.context.next === null;
  }

  stop(): void {
    this.actor.stop();
  }
}
