// One machine actor per deployment of this device: created on its first desired value or rebuilt
// from its journal, fed desired changes and ticks, journaled and reported after every transition,
// and dropped once it reaches `removed`.
import { createActor, waitFor, type Actor } from "xstate";
import type { Phase } from "../../contracts/deployment-state.codec.js";
import type { JournalEvent } from "../../contracts/journal-event.codec.js";
import { deviceOrDeploymentNameProblem } from "../../contracts/names.js";
import { laterSignedAt, replayRefusal } from "../../contracts/signed-score.js";
import { restartsOf, type DeploymentInput, type DeploymentSnapshot, type StepBudgets } from "../../machines/deployment.machine.js";
import { phaseAt } from "../../machines/deployment.report.js";
import { isStepState } from "../../machines/journal.vocabulary.js";
import { transitionRecorder } from "../../machines/transition.recorder.js";
import type { ContainerRuntime, ManagedContainer } from "../../runtime/container-runtime.js";
import type { CheckpointStore } from "../journal/checkpoint.js";
import type { EventJournal } from "../journal/journal.js";
import { TransitionRecorder, type StateSink } from "../journal/recorder.js";
import { Recovery, type ScoreLookup } from "../journal/recovery.js";
import type { Logger } from "pino";
import type { DesiredChange } from "../nats/desired-state.watch.js";
import { runtimeDeploymentMachine } from "./executor.js";
import { Liveness, type WatchedDeployment } from "./liveness.js";
import type { Backoff } from "../../machines/restart.policy.js";
import type { Health } from "../../contracts/score.codec.js";
import type { ScoreStore } from "./score.store.js";

export type { StateSink } from "../journal/recorder.js";
export type { ScoreLookup } from "../journal/recovery.js";

export interface SupervisorOptions {
  device: string;
  runtime: ContainerRuntime;
  journal: EventJournal;
  scores: ScoreStore;
  sink: StateSink;
  logger: Logger;
  budgets?: Partial<StepBudgets>;
  /** Restart and retry backoff; default at once, then 10 s doubling to 300 s (tests shorten it). */
  backoff?: Partial<Backoff>;
  /** The time between a service's health checks; default its `interval_secs` (tests shorten it). */
  healthIntervalMs?: (h: Health) => number;
  /** Where to find a score missing from the local store (the desired-state KV's history). */
  lookupScore?: ScoreLookup;
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

export class DeploymentSupervisor {
  private readonly actors = new Map<string, DeploymentActor>();
  private readonly machine: ReturnType<typeof runtimeDeploymentMachine>;
  private readonly now: () => number;
  private readonly log: Logger;
  private accepting = true;
  private readonly recovery: Recovery;
  private readonly recorder: TransitionRecorder;
  /** The device's liveness: deaths and health of the recorded containers, told to their machines. */
  readonly liveness: Liveness;

  constructor(private readonly o: SupervisorOptions) {
    this.now = o.now ?? Date.now;
    this.log = o.logger.child({ component: "supervisor" });
    this.liveness = new Liveness({
      runtime: o.runtime,
      logger: o.logger,
      now: this.now,
      watched: () => this.watched(),
      send: (deployment, e) => {
        if (!this.accepting) return;
        this.actors.get(deployment)?.send(e);
      },
      changed: (deployment) => this.recorder.report(deployment),
      ...(o.healthIntervalMs ? { healthIntervalMs: o.healthIntervalMs } : {}),
    });
    this.machine = runtimeDeploymentMachine(o.runtime, { now: this.now, liveness: this.liveness });
    const { device, journal, checkpoints, streamHistory, lookupScore, sink, logger, checkpointEvery, published } = o;
    this.recovery = new Recovery({
      device,
      journal,
      logger,
      input: (d) => this.input(d),
      lookupScore: async (d, hash, revision) => (await o.scores.get(hash)) ?? (await lookupScore?.(d, hash, revision)) ?? null,
      ...(checkpoints ? { checkpoints } : {}),
      ...(streamHistory ? { streamHistory } : {}),
    });
    this.recorder = new TransitionRecorder({
      journal,
      sink,
      logger,
      now: this.now,
      ...(checkpoints ? { checkpoints } : {}),
      ...(checkpointEvery ? { checkpointEvery } : {}),
      ...(published ? { published } : {}),
      seen: (id) => this.liveness.view(id),
      current: (deployment) => this.actors.get(deployment)?.getSnapshot(),
    });
    this.liveness.start();
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
    const now = this.now();
    for (const [name, actor] of this.actors) out[name] = phaseAt(actor.getSnapshot(), now, (id) => this.liveness.view(id));
    return out;
  }

  /**
   * Rebuilds every deployment from its journal and resumes it: a deployment caught mid-step re-runs
   * that step, which is idempotent, so a crash between stopping the old container and starting the
   * new one ends with the new one running, once.
   */
  async recover(): Promise<string[]> {
    const resumed = await this.recovery.local();
    for (const [deployment, snapshot] of resumed) this.spawn(deployment, snapshot);
    return resumed.map(([deployment]) => deployment);
  }

  /** Routes one desired-state change to its deployment's actor, creating the actor if need be. */
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
    const at = this.now();
    let actor = this.actors.get(change.deployment) ?? this.spawnRestored(change.deployment, await this.recovery.fromStream(change.deployment));
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

  /**
   * One tick, the liveness's safety net: the device's containers from one list call; every recorded
   * container of a running (or failed) deployment that is not running is a death its machine hears
   * of, unless it heard of it already (the event stream is the first to tell).
   */
  async tick(): Promise<void> {
    if (!this.accepting || this.actors.size === 0) return;
    let all: ManagedContainer[];
    try {
      all = await this.o.runtime.list();
    } catch (e) {
      this.log.error({ err: (e as Error).message }, "tick: listing containers failed; liveness skipped");
      return;
    }
    await this.liveness.sweep(all);
  }

  /**
   * Stops taking new work and lets in-flight steps reach a settled state (bounded), then stops the
   * actors and waits for the journal to be on disk. Containers keep running.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    this.accepting = false;
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
    await this.liveness.stop();
    this.recorder.close();
    await this.recorder.recorded();
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
    return { device: this.o.device, deployment, ...(this.o.budgets ? { budgets: this.o.budgets } : {}), ...(this.o.backoff ? { backoff: this.o.backoff } : {}) };
  }

  /** What each deployment's machine records, as the liveness needs it. */
  private watched(): WatchedDeployment[] {
    const out: WatchedDeployment[] = [];
    for (const [deployment, actor] of this.actors) {
      const s = actor.getSnapshot();
      const ctx = s.context;
      const state = String(s.value);
      out.push({
        deployment,
        live: state === "running" || state === "failed",
        services: Object.entries(ctx.containerIds).flatMap(([service, id]) => {
          const applied = ctx.applied[service];
          if (!applied) return [];
          const rec = ctx.services[service];
          return [{ service, id, health: applied.service.health, restartAt: rec?.restartAt ?? null, unhealthy: rec?.unhealthy ?? false }];
        }),
      });
    }
    return out;
  }

  private spawnRestored(deployment: string, restored: DeploymentSnapshot | undefined): DeploymentActor | undefined {
    return restored ? this.spawn(deployment, restored) : undefined;
  }

  private spawn(deployment: string, restored?: DeploymentSnapshot): DeploymentActor {
    const input = this.input(deployment);
    const actor = createActor(this.machine, {
      input,
      ...(restored ? { snapshot: this.machine.getPersistedSnapshot(restored) as never } : {}),
      inspect: transitionRecorder((t) => {
        this.recorder.record(deployment, t);
        // What it watches follows the record: new containers, a deployment that began or ended a step.
        queueMicrotask(() => this.liveness.sync());
      }, restored),
    });
    this.actors.set(deployment, actor);
    actor.subscribe({
      complete: () => {
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
