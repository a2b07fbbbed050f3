// One machine actor per deployment of this device: created on its first desired value or rebuilt
// from its journal, fed desired changes and ticks, journaled and reported after every transition,
// and dropped once it reaches `removed`.
import { createActor, waitFor, type Actor, type AnyEventObject } from "xstate";
import type { DeploymentState, Phase } from "../contracts/deployment-state.codec.js";
import type { JournalEvent } from "../contracts/journal-event.codec.js";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import type { ReconcileScore } from "../contracts/score.codec.js";
import type { DeploymentInput, DeploymentSnapshot, StepBudgets } from "../machines/deployment.machine.js";
import { deploymentState } from "../machines/deployment.report.js";
import { foldJournal } from "../machines/journal.fold.js";
import { transitionRecorder, type Transition } from "../machines/transition.recorder.js";
import type { ContainerRuntime, ManagedContainer } from "../runtime/container-runtime.js";
import { runtimeDeploymentMachine } from "./deployment.actors.js";
import type { DesiredChange } from "./desired-state.watch.js";
import type { EventJournal } from "./event-journal.js";
import type { CheckpointStore } from "./journal.checkpoint.js";
import type { Logger } from "./logger.js";
import { REDACTED } from "./redact.js";
import type { ScoreStore } from "./score.store.js";


/** Where reports go; the NATS reporter in production, a list in tests. */
export interface StateSink {
  deploymentState(state: DeploymentState): void;
}

/** Finds a full score (env values included) the journal only knows by hash and revision. */
export type ScoreLookup = (deployment: string, hash: string, revision: number) => Promise<ReconcileScore | null>;

export interface SupervisorOptions {
  device: string;
  runtime: ContainerRuntime;
  journal: EventJournal;
  scores: ScoreStore;
  sink: StateSink;
  logger: Logger;
  budgets?: Partial<StepBudgets>;
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
  private readonly checkpointing = new Set<Promise<void>>();
  /** Deployments whose journal starts after n = 1 with no checkpoint to fold from (see recover). */
  private readonly compactedWithoutCheckpoint = new Set<string>();

  constructor(private readonly o: SupervisorOptions) {
    this.now = o.now ?? Date.now;
    this.machine = runtimeDeploymentMachine(o.runtime, { now: this.now });
    this.log = o.logger.child({ component: "supervisor" });
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
    const resumed: string[] = [];
    for (const deployment of this.o.journal.deployments()) {
      const events = this.o.journal.read(deployment);
      const base = this.o.journal.base(deployment);
      const lastN = base + events.length;
      if (lastN === 0) continue;
      const cp = this.o.checkpoints?.get(this.o.device, deployment);
      // A compacted journal can only be rebuilt from a checkpoint at or after its base.
      const from = cp && cp.n >= base && cp.n <= lastN ? cp : null;
      if (base > 0 && !from) {
        // The checkpoint that vouched for the compaction is gone: the compacted events are in the
        // stream, which the start does not wait for. The deployment's first desired value rebuilds it.
        this.log.error({ deployment, compactedThrough: base, checkpoint: cp?.n ?? null }, "journal compacted but its checkpoint is missing; the deployment waits for the stream");
        this.compactedWithoutCheckpoint.add(deployment);
        continue;
      }
      const tail = events.slice((from?.n ?? 0) - base);
      const causes = await this.rehydrate(deployment, tail.map((e) => e.event as AnyEventObject));
      const snapshot = foldJournal(this.input(deployment), causes, from?.snapshot);
      if (snapshot.status === "done") continue;
      this.log.info({ deployment, state: snapshot.value, events: lastN, checkpoint: from?.n ?? null }, "resuming deployment from its journal");
      this.spawn(deployment, snapshot);
      resumed.push(deployment);
    }
    return resumed;
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
    let actor = this.actors.get(change.deployment) ?? (await this.recoverFromStream(change.deployment));
    if (!actor) {
      // A delete for a deployment this device doesn't run: nothing to do.
      if (change.kind === "delete") return;
      actor = this.spawn(change.deployment);
    }
    if (change.kind === "update") {
      // The full score is kept before the machine sees it: the journal keeps only its redacted form.
      await this.o.scores.put(change.hash, change.score);
      actor.send({ type: "UPDATE", score: change.score.data, hash: change.hash, revision: change.revision, at });
    } else if (change.kind === "reject") {
      this.log.warn({ deployment: change.deployment, revision: change.revision, error: change.error }, "desired state rejected");
      actor.send({ type: "REJECT", error: change.error, revision: change.revision, at });
    } else {
      actor.send({ type: "DELETE", revision: change.revision, at });
    }
  }

  /**
   * The local journal is gone (a wiped or replaced state dir) but the stream has the deployment's
   * history: take it back into the local journal, so numbering continues where the stream is and
   * the deployment resumes from its fold. Without that history (none, or no permission to read
   * it) the deployment starts afresh.
   */
  private async recoverFromStream(deployment: string): Promise<DeploymentActor | undefined> {
    if (this.compactedWithoutCheckpoint.has(deployment)) return this.recoverCompacted(deployment);
    if (!this.o.streamHistory || this.o.journal.lastN(deployment) > 0) return undefined;
    const events = await this.o.streamHistory(deployment);
    if (events.length === 0) return undefined;
    await this.o.journal.adopt(deployment, events);
    return this.resumeFrom(deployment, events, "no local journal: resumed from the stream's history");
  }

  /** A compacted journal without its checkpoint: the stream's events up to the base, then the file's. */
  private async recoverCompacted(deployment: string): Promise<DeploymentActor | undefined> {
    const base = this.o.journal.base(deployment);
    const head = (await this.o.streamHistory?.(deployment) ?? []).filter((e) => e.n <= base);
    if (head.length !== base || head.some((e, i) => e.n !== i + 1)) {
      // Numbering still goes on; the deployment starts afresh and adopts or replaces its containers by name.
      this.log.error({ deployment, compactedThrough: base, inStream: head.length }, "the stream does not hold the compacted events; the deployment starts afresh");
      this.compactedWithoutCheckpoint.delete(deployment);
      return undefined;
    }
    this.compactedWithoutCheckpoint.delete(deployment);
    return this.resumeFrom(deployment, [...head, ...this.o.journal.read(deployment)], "compacted journal without its checkpoint: resumed from the stream's history and the local tail");
  }

  /** Folds a deployment's whole history (n = 1…k) and resumes it, unless it ended removed. */
  private async resumeFrom(deployment: string, events: readonly JournalEvent[], why: string): Promise<DeploymentActor | undefined> {
    const causes = await this.rehydrate(deployment, events.map((e) => e.event as AnyEventObject));
    const snapshot = foldJournal(this.input(deployment), causes);
    this.log.warn({ deployment, events: events.length, state: snapshot.value }, why);
    if (snapshot.status === "done") return undefined;
    return this.spawn(deployment, snapshot);
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
      actor.send({ type: "TICK", containers: all.filter((c) => c.deployment === deployment), at });
    }
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
    await this.recorded();
  }

  /**
   * Resolves once every deployment is settled with nothing queued, and what it did is on record:
   * journaled, reported, checkpointed (tests, the demo).
   */
  async idle(timeoutMs = 60_000): Promise<void> {
    for (const actor of this.actors.values()) {
      await waitFor(actor, (s) => SETTLED.has(String(s.value)) && s.context.next === null, { timeout: timeoutMs });
    }
    await this.recorded();
  }

  /** Waits for the appends issued so far, then for the reports and checkpoints that follow them. */
  private async recorded(): Promise<void> {
    await this.o.journal.settled();
    await new Promise((r) => setImmediate(r));
    await Promise.all(this.checkpointing);
  }

  private input(deployment: string): DeploymentInput {
    return { device: this.o.device, deployment, ...(this.o.budgets ? { budgets: this.o.budgets } : {}) };
  }

  private spawn(deployment: string, restored?: DeploymentSnapshot): DeploymentActor {
    const input = this.input(deployment);
    const actor = createActor(this.machine, {
      input,
      ...(restored ? { snapshot: this.machine.getPersistedSnapshot(restored) as never } : {}),
      inspect: transitionRecorder((t) => this.record(deployment, t), restored),
    });
    this.actors.set(deployment, actor);
    actor.subscribe({
      complete: () => {
        this.actors.delete(deployment);
        this.log.info({ deployment }, "deployment removed");
      },
      error: (err) => this.log.error({ deployment, err: (err as Error).message }, "deployment actor failed"),
    });
    actor.start();
    return actor;
  }

  /** Journal first (fsynced), then report: the report's seq always names an event on disk. */
  private record(deployment: string, t: Transition) {
    const at = new Date(this.now()).toISOString();
    this.log.info({ deployment, from: t.from, to: t.to, event: t.event.type, error: t.snapshot.context.lastError ?? undefined }, "transition");
    this.o.journal
      .append(deployment, { at, event: t.event as { type: string }, from: t.from, to: t.to })
      .then((ev) => {
        this.o.sink.deploymentState(deploymentState(t.snapshot, { seq: ev.n, at: ev.at }));
        if (this.o.checkpoints && ev.n % (this.o.checkpointEvery ?? 500) === 0 && t.snapshot.status !== "done") {
          const write = this.o.checkpoints
            .put(deployment, ev.n, t.snapshot)
            .then(() => this.compact(deployment, ev.n), (e: Error) => this.log.warn({ deployment, err: e.message }, "checkpoint not written; recovery folds more of the journal"))
            .finally(() => this.checkpointing.delete(write));
          this.checkpointing.add(write);
        }
      })
      .catch((e: Error) => this.log.fatal({ deployment, err: e.message }, "journal append failed"));
  }

  /** Drops from the local journal what checkpoint `n` covers and the stream already holds. */
  private async compact(deployment: string, n: number) {
    if (!this.o.published) return;
    const through = Math.min(n, this.o.published(deployment));
    try {
      await this.o.journal.compact(deployment, through);
    } catch (e) {
      this.log.warn({ deployment, through, err: (e as Error).message }, "journal not compacted; it keeps its older events");
    }
  }

  /** Puts the full scores back into the journal's redacted UPDATE events, from the store or the KV. */
  private async rehydrate(deployment: string, causes: AnyEventObject[]): Promise<AnyEventObject[]> {
    const out: AnyEventObject[] = [];
    for (const e of causes) {
      if (e.type !== "UPDATE" || !hasRedactedEnv(e)) {
        out.push(e);
        continue;
      }
      const hash = String(e["hash"]);
      const score = (await this.o.scores.get(hash)) ?? (await this.o.lookupScore?.(deployment, hash, Number(e["revision"]))) ?? null;
      if (score) out.push({ ...e, score: score.data });
      else {
        // Kept redacted: startNew refuses to create a container from it rather than run "<redacted>".
        this.log.warn({ deployment, hash }, "score not found locally or in the desired-state history; its env is unknown");
        out.push(e);
      }
    }
    return out;
  }
}

function hasRedactedEnv(e: AnyEventObject): boolean {
  const services = (e["score"] as { services?: { env?: Record<string, string> }[] } | undefined)?.services ?? [];
  return services.some((s) => Object.values(s.env ?? {}).includes(REDACTED));
}
