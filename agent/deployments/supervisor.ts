// One machine actor per deployment of this device: created on its first desired value or rebuilt
// from its journal, fed desired changes and ticks, journaled and reported after every transition,
// and dropped once it reaches `removed`.
//
// A desired change that needs a write the disk refuses (its score, the deployment's journal, the
// history taken back from the stream) is never lost: it waits here, newest first, reported as
// `pending_change` with the failed write in `last_error`, and is applied once a write succeeds again
// (retried with backoff; docs/design.md, "Storage faults").
import { createActor, waitFor, type Actor } from "xstate";
import type { Phase } from "../../contracts/deployment-state.codec.js";
import type { JournalEvent } from "../../contracts/journal-event.codec.js";
import { deviceOrDeploymentNameProblem } from "../../contracts/names.js";
import type { ReconcileScore } from "../../contracts/score.codec.js";
import { laterSignedAt, replayRefusal } from "../../contracts/signed-score.js";
import { restartsOf, type DeploymentInput, type DeploymentSnapshot, type StepBudgets } from "../../machines/deployment.machine.js";
import { deploymentState } from "../../machines/deployment.report.js";
import { isStepState } from "../../machines/journal.vocabulary.js";
import { transitionRecorder } from "../../machines/transition.recorder.js";
import type { ContainerRuntime, ManagedContainer } from "../../runtime/container-runtime.js";
import type { CheckpointStore } from "../journal/checkpoint.js";
import { StorageError } from "../journal/durable-file.js";
import { retryDelayMs, type EventJournal } from "../journal/journal.js";
import { TransitionRecorder, type StateSink } from "../journal/recorder.js";
import { Recovery, type ScoreSource } from "../journal/recovery.js";
import { snapshotIsRedacted } from "../journal/score.rehydration.js";
import type { StorageHealth } from "../journal/storage.health.js";
import type { Logger } from "pino";
import type { DesiredChange } from "../nats/desired-state.watch.js";
import { runtimeDeploymentMachine } from "./executor.js";
import type { ScoreStore } from "./score.store.js";

export type { StateSink } from "../journal/recorder.js";

export interface SupervisorOptions {
  device: string;
  runtime: ContainerRuntime;
  journal: EventJournal;
  scores: ScoreStore;
  sink: StateSink;
  logger: Logger;
  budgets?: Partial<StepBudgets>;
  /** The values of a deployment's desired-state history in KV, for scores missing from the store; null when out of reach. */
  desiredHistory?: (deployment: string) => Promise<ReconcileScore[] | null>;
  /** The env of a recorded container, when it is this deployment's of that service and score hash (see ScoreSource). */
  containerEnv?: ScoreSource["containerEnv"];
  /** Where state-dir faults are counted and logged. */
  health?: StorageHealth;
  /** Backoff of a desired change that waits for a write (ms); default 1,000 doubling to 15,000 (the longest a freed disk waits). */
  retry?: { firstMs: number; maxMs: number };
  /** A deployment's events from the stream, for recovery when its local journal is gone. */
  streamHistory?: (deployment: string) => Promise<JournalEvent[]>;
  /** Snapshot checkpoints, so recovery folds only a journal's tail. */
  checkpoints?: CheckpointStore;
  /** Events between checkpoints; default 500 (a recovery folds at most 499). */
  checkpointEvery?: number;
  /**
   * How far a deployment's journal is confirmed in the stream. With it, each checkpoint compacts
   * the local journal through what is both checkpointed and published.
   */
  published?: (deployment: string) => number;
  now?: () => number;
}

type DeploymentActor = Actor<ReturnType<typeof runtimeDeploymentMachine>>;

const SETTLED = new Set(["running", "failed", "removed", "pending"]);

/** A desired change that waits for a write of the state dir to succeed. */
interface Waiting {
  change: DesiredChange;
  since: number;
  attempt: number;
  timer: NodeJS.Timeout | null;
}

export class DeploymentSupervisor {
  private readonly actors = new Map<string, DeploymentActor>();
  private readonly machine: ReturnType<typeof runtimeDeploymentMachine>;
  private readonly now: () => number;
  private readonly log: Logger;
  private accepting = true;
  private readonly recovery: Recovery;
  private readonly recorder: TransitionRecorder;
  /** Per deployment, the newest desired change not applied yet because a write failed. */
  private readonly waiting = new Map<string, Waiting>();
  /** Per deployment, the chain its changes are applied on (the watch's order, and retries). */
  private readonly lanes = new Map<string, Promise<void>>();
  private readonly unsubscribe: () => void;

  constructor(private readonly o: SupervisorOptions) {
    this.now = o.now ?? Date.now;
    this.log = o.logger.child({ component: "supervisor" });
    const { device, journal, checkpoints, streamHistory, sink, logger, checkpointEvery, published, health, desiredHistory, containerEnv } = o;
    const scores: ScoreSource = {
      stored: (hash) => o.scores.get(hash),
      pathOf: (hash) => o.scores.fileOf(hash),
      keep: (hash, score) => o.scores.put(hash, score),
      history: async (d) => (desiredHistory ? desiredHistory(d) : null),
      ...(containerEnv ? { containerEnv } : {}),
    };
    this.recovery = new Recovery({
      device,
      journal,
      logger,
      scores,
      input: (d) => this.input(d),
      ...(checkpoints ? { checkpoints } : {}),
      ...(streamHistory ? { streamHistory } : {}),
      ...(health ? { health } : {}),
    });
    this.machine = runtimeDeploymentMachine(o.runtime, { now: this.now, fullSpec: (d, spec) => this.recovery.specOf(d, spec) });
    this.recorder = new TransitionRecorder({
      journal,
      sink,
      logger,
      now: this.now,
      ...(checkpoints ? { checkpoints } : {}),
      ...(checkpointEvery ? { checkpointEvery } : {}),
      ...(published ? { published } : {}),
    });
    this.unsubscribe = journal.onFault((d, fault) => {
      this.recorder.fault(d, "journal", fault?.message ?? null);
      // The journal writes again: a change that waited for it goes on.
      if (!fault && this.waiting.has(d)) void this.lane(d, () => this.tryWaiting(d));
    });
  }

  /** Deployments with a live actor. */
  deployments(): string[] {
    return [...this.actors.keys()].sort();
  }

  snapshot(deployment: string): DeploymentSnapshot | undefined {
    return this.actors.get(deployment)?.getSnapshot();
  }

  /** Phase of every live deployment, for the heartbeat. */
  phases(): Record<string, Phase> {
    const out: Record<string, Phase> = {};
    for (const [name, actor] of this.actors) out[name] = deploymentState(actor.getSnapshot(), { seq: 0, at: null }).phase;
    return out;
  }

  /**
   * Rebuilds every deployment from its journal and resumes it: a deployment caught mid-step re-runs
   * that step, which is idempotent, so a crash between stopping the old container and starting the
   * new one ends with the new one running, once.
   */
  async recover(): Promise<string[]> {
    const resumed = await this.recovery.local();
    for (const [deployment, snapshot] of resumed) this.spawnRestored(deployment, snapshot);
    return resumed.map(([deployment]) => deployment);
  }

  /**
   * Routes one desired-state change to its deployment's actor, creating the actor if need be. A
   * change that needs a write that fails waits (see `pending`) and is retried; this resolves either way.
   */
  async apply(change: DesiredChange): Promise<void> {
    if (!this.accepting) return;
    const badName = deviceOrDeploymentNameProblem(change.deployment);
    if (badName) {
      // No actor for it: a deployment with such a name can have no journal, no event subject, no
      // container name and no device-state, and its name in the heartbeat would get every heartbeat
      // dropped as invalid. The refusal (naming the key) is logged by the watch and here.
      this.log.error({ deployment: change.deployment.slice(0, 300), revision: change.revision, error: badName }, "desired state refused: invalid deployment name; nothing done");
      return;
    }
    const d = change.deployment;
    const before = this.waiting.get(d);
    if (before?.timer) clearTimeout(before.timer);
    // The newest value replaces one still waiting, as the machine coalesces values mid-step.
    this.waiting.set(d, { change, since: this.now(), attempt: 0, timer: null });
    await this.lane(d, () => this.tryWaiting(d));
  }

  /**
   * Deployments recovered without some of their env values (the desired-state history was out of
   * reach at start) get them from it now: called once NATS is reachable. Resolves when done.
   */
  async recallScores(): Promise<void> {
    const redacted = [...this.actors].filter(([, a]) => snapshotIsRedacted(a.getSnapshot()));
    await Promise.all(redacted.map(([d]) => this.lane(d, async () => {
      const actor = this.actors.get(d);
      if (actor) await this.refreshed(d, actor);
    })));
  }

  /** The desired change of `deployment` that waits for a write, if any (its KV revision). */
  pending(deployment: string): number | null {
    return this.waiting.get(deployment)?.change.revision ?? null;
  }

  /** Runs `work` after everything queued for `deployment` so far. */
  private lane(deployment: string, work: () => Promise<void>): Promise<void> {
    const run = (this.lanes.get(deployment) ?? Promise.resolve()).then(work).catch((e: Error) => {
      this.log.error({ deployment, err: e.message }, "applying a desired change failed");
    });
    this.lanes.set(deployment, run);
    return run;
  }

  /** Applies the change waiting for `deployment`, or keeps it waiting (reported) until a retry. */
  private async tryWaiting(deployment: string): Promise<void> {
    const w = this.waiting.get(deployment);
    if (!w || !this.accepting) return;
    const journalFault = this.o.journal.fault(deployment);
    try {
      // While the journal can't be written, nothing new is started: it would not be on record.
      if (journalFault) throw journalFault;
      await this.applyNow(w.change);
    } catch (e) {
      if (!(e instanceof StorageError)) {
        this.waiting.delete(deployment);
        this.recorder.pending(deployment, null);
        this.recorder.fault(deployment, "desired", null);
        throw e;
      }
      if (this.waiting.get(deployment) !== w) return; // a newer value came meanwhile: its own try follows
      w.attempt += 1;
      const wait = retryDelayMs(w.attempt, this.o.retry ?? { firstMs: 1000, maxMs: 15_000 });
      if (e !== journalFault) this.recorder.fault(deployment, "desired", `${e.message}; desired revision ${w.change.revision} waits, retried in ${Math.round(wait / 1000)} s`);
      this.recorder.pending(deployment, { revision: w.change.revision, since: new Date(w.since).toISOString() });
      this.log.warn({ deployment, revision: w.change.revision, attempt: w.attempt, retryMs: wait, err: e.message }, "desired change waits for the state dir");
      // A journal fault clears itself (the journal retries its write) and wakes this (see the constructor).
      if (!journalFault) w.timer = setTimeout(() => void this.lane(deployment, () => this.tryWaiting(deployment)), wait);
      return;
    }
    if (this.waiting.get(deployment) === w) {
      this.waiting.delete(deployment);
      if (w.attempt > 0) this.log.info({ deployment, revision: w.change.revision, waitedMs: this.now() - w.since }, "desired change applied after waiting for the state dir");
    }
    this.recorder.fault(deployment, "desired", null);
    if (!this.waiting.has(deployment)) this.recorder.pending(deployment, null);
  }

  /** The change, routed: may throw a StorageError (nothing was sent to the machine then). */
  private async applyNow(change: DesiredChange): Promise<void> {
    const at = this.now();
    const current = change.kind === "update" ? change.score : undefined;
    let actor = this.actors.get(change.deployment) ?? this.spawnRestored(change.deployment, await this.recovery.fromStream(change.deployment, current));
    if (!actor) {
      // A delete for a deployment this device doesn't run: nothing to do.
      if (change.kind === "delete") return;
      actor = this.spawn(change.deployment);
    }
    const replayed = change.kind === "update" && change.signedAt ? this.replayOf(actor.getSnapshot(), change.hash, change.signedAt) : null;
    if (replayed) {
      this.log.warn({ deployment: change.deployment, revision: change.revision, error: replayed }, "desired state refused: a replayed old value");
      actor.send({ type: "REJECT", error: replayed, revision: change.revision, at });
    } else if (change.kind === "update") {
      // The full score is kept before the machine sees it: the journal keeps only its redacted form.
      await this.o.scores.put(change.hash, change.score);
      // A deployment recovered without some of its env values gets them back from this one.
      actor = await this.refreshed(change.deployment, actor, change.score);
      const signed = change.signedAt ? { signedAt: change.signedAt } : {};
      actor.send({ type: "UPDATE", score: change.score.data, hash: change.hash, revision: change.revision, at, ...signed });
    } else if (change.kind === "reject") {
      this.log.warn({ deployment: change.deployment, revision: change.revision, error: change.error }, "desired state rejected");
      actor.send({ type: "REJECT", error: change.error, revision: change.revision, at });
    } else {
      actor.send({ type: "DELETE", revision: change.revision, at });
    }
  }

  /**
   * Journals a restart of a recorded container, done outside the machine (an operator's command):
   * the machine counts it and it goes on record, once written. Returns the container's restarts,
   * or null when the deployment or its record moved on meanwhile (nothing is journaled then).
   */
  async serviceRestarted(deployment: string, r: { service: string; id: string; by: "operator" }): Promise<number | null> {
    const actor = this.actors.get(deployment);
    if (!actor) return null;
    const restarts = restartsOf(actor.getSnapshot().context, r.id) + 1;
    actor.send({ type: "SERVICE_RESTARTED", service: r.service, id: r.id, restarts, by: r.by, at: this.now() });
    await this.recorder.recorded();
    return restartsOf(actor.getSnapshot().context, r.id) === restarts ? restarts : null;
  }

  /** Deployments this device runs that have no desired entry any more (deleted while offline). */
  orphans(desired: ReadonlySet<string>): string[] {
    return this.deployments().filter((d) => !desired.has(d));
  }

  /** One tick: the device's containers from one list call, then TICK to every deployment. */
  async tick(): Promise<void> {
    if (!this.accepting || this.actors.size === 0) return;
    let all: ManagedContainer[];
    try {
      all = await this.o.runtime.list();
    } catch (e) {
      this.log.error({ err: (e as Error).message }, "tick: listing containers failed; liveness skipped");
      return;
    }
    const at = this.now();
    for (const [deployment, actor] of this.actors) {
      // A repair the journal can't record waits for the journal, like a desired change.
      if (this.o.journal.fault(deployment)) continue;
      actor.send({ type: "TICK", containers: all.filter((c) => c.deployment === deployment), at });
    }
  }

  /**
   * Stops taking new work and lets in-flight steps reach a settled state (bounded), then stops the
   * actors and waits for the journal to be on disk. Containers keep running.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    this.accepting = false;
    for (const w of this.waiting.values()) if (w.timer) clearTimeout(w.timer);
    this.unsubscribe();
    this.recorder.stop();
    const deadline = this.now() + timeoutMs;
    for (const [deployment, actor] of this.actors) {
      const left = Math.max(0, deadline - this.now());
      try {
        await waitFor(actor, (s) => SETTLED.has(String(s.value)), { timeout: left });
      } catch {
        this.log.warn({ deployment, state: actor.getSnapshot().value }, "shutdown: step still in flight; it resumes from the journal at next start");
      }
      actor.stop();
    }
    this.actors.clear();
    // A write that keeps failing is given up at the deadline: what is on disk stays valid, and the
    // restarted agent resumes from it (the watch delivers the desired values again).
    const settled = this.recorder.recorded();
    const left = Math.max(0, deadline - this.now());
    const gaveUp = await Promise.race([settled.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), left).unref())]);
    if (gaveUp) {
      this.log.warn("shutdown: journal writes still failing; giving them up");
      this.o.journal.close();
      await settled;
    }
  }

  /**
   * Resolves once every deployment is settled with nothing queued, and what it did is on record:
   * journaled, reported, checkpointed (tests, the demo).
   */
  async idle(timeoutMs = 60_000): Promise<void> {
    for (const actor of this.actors.values()) {
      await waitFor(actor, (s) => SETTLED.has(String(s.value)) && s.context.next === null, { timeout: timeoutMs });
    }
    await this.recorder.recorded();
  }

  /**
   * Why a signed update is a replay, or null: a different score than the one accepted (or queued),
   * signed before the newest signature the deployment accepted (docs/design.md, "Signed desired
   * state"). The signature time is in the snapshot, so it holds across restarts and recoveries.
   */
  private replayOf(s: DeploymentSnapshot, hash: string, signedAt: string): string | null {
    const queued = s.context.next?.kind === "update" ? s.context.next : null;
    if (hash === queued?.hash) return null;
    const newest = laterSignedAt(s.context.signedAt, queued?.signedAt);
    const accepted = s.context.target?.hash ?? s.context.desiredHash;
    if (!newest || !accepted) return null;
    return replayRefusal(hash, signedAt, { hash: accepted, signedAt: newest })?.error ?? null;
  }

  private input(deployment: string): DeploymentInput {
    return { device: this.o.device, deployment, ...(this.o.budgets ? { budgets: this.o.budgets } : {}) };
  }

  private spawnRestored(deployment: string, restored: DeploymentSnapshot | undefined): DeploymentActor | undefined {
    if (!restored) return undefined;
    const last = this.o.journal.read(deployment).at(-1);
    this.recorder.restored(deployment, restored, { seq: this.o.journal.lastN(deployment), at: last?.at ?? null });
    return this.spawn(deployment, restored);
  }

  /**
   * The deployment's actor with the env values `score` brings put back into its context where it
   * held them redacted (recovered without its scores): at rest, the actor is restarted from the
   * filled snapshot; the journal is unchanged (it is redacted anyway).
   */
  private async refreshed(deployment: string, actor: DeploymentActor, score?: ReconcileScore): Promise<DeploymentActor> {
    const snap = actor.getSnapshot();
    if (!snapshotIsRedacted(snap) || !SETTLED.has(String(snap.value)) || snap.context.next !== null) return actor;
    const filled = await this.recovery.refresh(deployment, snap, score);
    if (filled === snap || this.actors.get(deployment) !== actor || actor.getSnapshot() !== snap) return actor;
    actor.stop();
    this.log.info({ deployment, state: filled.value }, "env values of the deployment put back from the desired-state history");
    return this.spawn(deployment, filled);
  }

  private spawn(deployment: string, restored?: DeploymentSnapshot): DeploymentActor {
    const input = this.input(deployment);
    const actor = createActor(this.machine, {
      input,
      ...(restored ? { snapshot: this.machine.getPersistedSnapshot(restored) as never } : {}),
      inspect: transitionRecorder((t) => this.recorder.record(deployment, t), restored),
    });
    this.actors.set(deployment, actor);
    actor.subscribe({
      complete: () => {
        // A stopped actor completes too (shutdown, or replaced by a refreshed one): only `done` is removal.
        if (this.actors.get(deployment) !== actor || actor.getSnapshot().status !== "done") return;
        this.actors.delete(deployment);
        this.log.info({ deployment }, "deployment removed");
      },
      error: (err) => this.log.error({ deployment, err: (err as Error).message }, "deployment actor failed"),
    });
    // Journaled before the actor starts, so it precedes whatever the step it re-runs leads to.
    if (restored && isStepState(String(restored.value))) this.recorder.resumed(deployment, restored);
    actor.start();
    return actor;
  }
}
