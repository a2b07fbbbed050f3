// What happens after every transition of a deployment: journal first (fsynced), then report, so a
// report's `last_event_seq` always names an event on disk; every `checkpointEvery` events a
// snapshot checkpoint, which also compacts the local journal through what the stream holds.
import type { DeploymentState } from "../../contracts/deployment-state.codec.js";
import type { DomainEvent } from "../../contracts/journal-event.codec.js";
import type { MachineState } from "../../contracts/deployment-state.codec.js";
import type { DeploymentSnapshot } from "../../machines/deployment.machine.js";
import { deploymentState, machineStateOf, nextChangeAt, type SeenContainer } from "../../machines/deployment.report.js";
import { resumedEvent } from "../../machines/journal.vocabulary.js";
import type { Transition } from "../../machines/transition.recorder.js";
import type { Logger } from "pino";
import type { CheckpointStore } from "./checkpoint.js";
import type { EventJournal } from "./journal.js";

/** Where reports go; the NATS reporter in production, a list in tests. */
export interface StateSink {
  deploymentState(state: DeploymentState): void;
}

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
  /** What the liveness last saw of each container, for the services' state in reports. */
  seen?: SeenContainer;
  /** A deployment's live snapshot, for the reports a clock or the liveness asks for between events. */
  current?: (deployment: string) => DeploymentSnapshot | undefined;
}

export class TransitionRecorder {
  private readonly checkpointing = new Set<Promise<void>>();
  private readonly log: Logger;
  /** Per deployment: the last event on disk, the last state reported, and the timer of its next change. */
  private readonly positions = new Map<string, { seq: number; at: string | null }>();
  private readonly lastReported = new Map<string, string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly o: RecorderOptions) {
    this.log = o.logger.child({ component: "supervisor" });
  }

  /**
   * Reports the deployment's state again without an event: what the liveness saw changed (a restart
   * happened, a check's status), or the clock passed a restart's time. Unchanged states are not
   * written; a deployment with no event on disk yet is not reported.
   */
  report(deployment: string, snapshot: DeploymentSnapshot | undefined = this.o.current?.(deployment)): void {
    const position = this.positions.get(deployment);
    if (!snapshot || !position) return;
    const now = this.o.now();
    const state = deploymentState(snapshot, position, { now, ...(this.o.seen ? { seen: this.o.seen } : {}) });
    const text = JSON.stringify(state);
    if (this.lastReported.get(deployment) !== text) {
      this.lastReported.set(deployment, text);
      this.o.sink.deploymentState(state);
    }
    // The phase and restart_at change with the clock alone (a restart's time, the end of a settle).
    const t = this.timers.get(deployment);
    if (t) clearTimeout(t);
    this.timers.delete(deployment);
    const next = snapshot.status === "done" ? null : nextChangeAt(snapshot, now);
    if (next !== null && this.o.current) {
      const timer = setTimeout(() => {
        this.timers.delete(deployment);
        this.report(deployment);
      }, next - now + 1);
      timer.unref?.();
      this.timers.set(deployment, timer);
    }
  }

  /** Stops the timers of reports to come (shutdown). */
  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
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

  private append(deployment: string, event: DomainEvent, from: MachineState, to: MachineState, snapshot: DeploymentSnapshot): void {
    const at = new Date(this.o.now()).toISOString();
    this.o.journal
      .append(deployment, { at, event, from, to })
      .then((ev) => {
        this.positions.set(deployment, { seq: ev.n, at: ev.at });
        this.report(deployment, snapshot);
        if (this.o.checkpoints && ev.n % (this.o.checkpointEvery ?? 500) === 0 && snapshot.status !== "done") {
          const write = this.o.checkpoints
            .put(deployment, ev.n, snapshot)
            .then(() => this.compact(deployment, ev.n), (e: Error) => this.log.warn({ deployment, err: e.message }, "checkpoint not written; recovery folds more of the journal"))
            .finally(() => this.checkpointing.delete(write));
          this.checkpointing.add(write);
        }
      })
      .catch((e: Error) => this.log.fatal({ deployment, err: e.message }, "journal append failed"));
  }

  /** Waits for the appends issued so far, then for the reports and checkpoints that follow them. */
  async recorded(): Promise<void> {
    await this.o.journal.settled();
    await new Promise((r) => setImmediate(r));
    await Promise.all(this.checkpointing);
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
