// What happens after every transition of a deployment: journal first (fsynced), then report, so a
// report's `last_event_seq` always names an event on disk; every `checkpointEvery` events a
// snapshot checkpoint, which also compacts the local journal through what the stream holds.
//
// Reports also carry what the machine can't know: a write of the state dir that is failing (its
// path and errno in `last_error`, ahead of the machine's own error) and a desired value that waits
// for it (`pending_change`). The state reported stays the last one on disk meanwhile
// (docs/design.md, "Storage faults").
import type { DeploymentState, MachineState, PendingChange } from "../../contracts/deployment-state.codec.js";
import type { DomainEvent } from "../../contracts/journal-event.codec.js";
import { deploymentState, machineStateOf } from "../../machines/deployment.report.js";
import type { DeploymentSnapshot } from "../../machines/deployment.machine.js";
import { resumedEvent } from "../../machines/journal.vocabulary.js";
import type { Transition } from "../../machines/transition.recorder.js";
import type { Logger } from "pino";
import type { CheckpointStore } from "./checkpoint.js";
import { retryDelayMs, type EventJournal } from "./journal.js";
import { sleep } from "../../fleet/sleep.js";

/** Where reports go; the NATS reporter in production, a list in tests. */
export interface StateSink {
  deploymentState(state: DeploymentState): void;
}

/** Which write of the state dir a fault comes from; each clears on its own. */
export type FaultSource = "journal" | "desired" | "checkpoint";

export interface RecorderOptions {
  journal: EventJournal;
  sink: StateSink;
  logger: Logger;
  now: () => number;
  checkpoints?: CheckpointStore;
  /** Events between checkpoints; default 500 (a recovery folds at most 499). */
  checkpointEvery?: number;
  /** How far a deployment's journal is confirmed in the stream; without it nothing is compacted. */
  published?: (deployment: string) => number;
  /** Backoff of a failed checkpoint write (ms); default 1,000 doubling to 60,000. */
  retry?: { firstMs: number; maxMs: number };
}

export class TransitionRecorder {
  private readonly checkpointing = new Set<Promise<void>>();
  private readonly log: Logger;
  /** Per deployment, its state as of the last event on disk (what the machine says). */
  private readonly machineStates = new Map<string, DeploymentState>();
  private readonly faults = new Map<string, Map<FaultSource, string>>();
  private readonly pendings = new Map<string, PendingChange>();
  /** Per deployment, the checkpoint to write (the newest wins while one is being retried). */
  private readonly wantedCheckpoint = new Map<string, { n: number; snapshot: DeploymentSnapshot }>();
  private readonly stopping = new AbortController();

  constructor(private readonly o: RecorderOptions) {
    this.log = o.logger.child({ component: "supervisor" });
  }

  record(deployment: string, t: Transition): void {
    this.log.info({ deployment, from: t.from, to: t.to, event: t.event.type, error: t.snapshot.context.lastError ?? undefined }, "transition");
    this.append(deployment, t.event, t.from, t.to, t.snapshot);
  }

  /**
   * A deployment restored mid-step (its state runs a step, which the actor re-runs): on record as
   * `agent.resumed`, before whatever the re-run step leads to. The fold takes it as a no-op.
   */
  resumed(deployment: string, snapshot: DeploymentSnapshot): void {
    const state = machineStateOf(snapshot);
    this.log.info({ deployment, state }, "resumed mid-step: the step runs again");
    this.append(deployment, resumedEvent(state, this.o.now()), state, state, snapshot);
  }

  /** A deployment rebuilt from its history: what to report (with a fault) until its next event is on disk. */
  restored(deployment: string, snapshot: DeploymentSnapshot, last: { seq: number; at: string | null }): void {
    this.machineStates.set(deployment, deploymentState(snapshot, last));
  }

  private append(deployment: string, event: DomainEvent, from: MachineState, to: MachineState, snapshot: DeploymentSnapshot): void {
    const at = new Date(this.o.now()).toISOString();
    this.o.journal
      .append(deployment, { at, event, from, to })
      .then((ev) => {
        this.machineStates.set(deployment, deploymentState(snapshot, { seq: ev.n, at: ev.at }));
        this.report(deployment);
        if (this.o.checkpoints && ev.n % (this.o.checkpointEvery ?? 500) === 0 && snapshot.status !== "done") this.checkpoint(deployment, ev.n, snapshot);
      })
      .catch((e: Error) => this.log.error({ deployment, err: e.message }, "journal append abandoned: the agent stopped before the disk took it; the deployment resumes from the last event on disk"));
  }

  /** Sets or clears (null) a state-dir fault of `deployment`, and reports it. */
  fault(deployment: string, source: FaultSource, error: string | null): void {
    const current = this.faults.get(deployment) ?? new Map<FaultSource, string>();
    if ((current.get(source) ?? null) === error) return;
    if (error === null) current.delete(source);
    else current.set(source, error);
    if (current.size) this.faults.set(deployment, current);
    else this.faults.delete(deployment);
    this.report(deployment);
  }

  /** Sets or clears (null) the desired value that waits for a write, and reports it. */
  pending(deployment: string, p: PendingChange | null): void {
    const was = this.pendings.get(deployment);
    if (p === null ? was === undefined : was?.revision === p.revision && was.since === p.since) return;
    if (p === null) this.pendings.delete(deployment);
    else this.pendings.set(deployment, p);
    this.report(deployment);
  }

  /** The state-dir faults of `deployment` now, as one line (null when none). */
  faultOf(deployment: string): string | null {
    const f = this.faults.get(deployment);
    return f && f.size ? [...f.values()].join("; ") : null;
  }

  /** Waits for the appends issued so far, then for the reports and checkpoints that follow them. */
  async recorded(): Promise<void> {
    await this.o.journal.settled();
    await new Promise((r) => setImmediate(r));
    await Promise.all(this.checkpointing);
  }

  /** Stops retrying checkpoints (shutdown). */
  stop(): void {
    this.stopping.abort();
  }

  private report(deployment: string) {
    const fault = this.faultOf(deployment);
    const pending = this.pendings.get(deployment);
    // A deployment never recorded (its first value waits for the disk) is reported as pending.
    const base: DeploymentState = this.machineStates.get(deployment) ?? {
      device: this.o.journal.device,
      deployment,
      phase: "Pending",
      state: "pending",
      score_hash: null,
      desired_revision: null,
      container_ids: {},
      last_error: null,
      last_event_seq: this.o.journal.durableN(deployment),
      last_event_at: null,
    };
    if (!this.machineStates.has(deployment) && !fault && !pending) return;
    const lastError = [fault, base.last_error].filter((x): x is string => x !== null).join("; ") || null;
    this.o.sink.deploymentState({ ...base, last_error: lastError, ...(pending ? { pending_change: pending } : {}) });
  }

  /** Writes checkpoint `n`, retrying a failed write with backoff unless a newer checkpoint supersedes it. */
  private checkpoint(deployment: string, n: number, snapshot: DeploymentSnapshot) {
    const running = this.wantedCheckpoint.has(deployment);
    this.wantedCheckpoint.set(deployment, { n, snapshot });
    if (running) return;
    const write = (async () => {
      for (let attempt = 1; !this.stopping.signal.aborted; ) {
        const want = this.wantedCheckpoint.get(deployment)!;
        try {
          await this.o.checkpoints!.put(deployment, want.n, want.snapshot);
          this.fault(deployment, "checkpoint", null);
          await this.compact(deployment, want.n);
          if (this.wantedCheckpoint.get(deployment) === want) break;
          attempt = 1;
        } catch (e) {
          // Nothing waits on a checkpoint (the journal is the record): reported, and tried again.
          this.fault(deployment, "checkpoint", (e as Error).message);
          await sleep(retryDelayMs(attempt++, this.o.retry ?? { firstMs: 1000, maxMs: 60_000 }), this.stopping.signal);
        }
      }
      this.wantedCheckpoint.delete(deployment);
    })().finally(() => this.checkpointing.delete(write));
    this.checkpointing.add(write);
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
}
