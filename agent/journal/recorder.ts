// What happens after every transition of a deployment: journal first (fsynced), then report, so a
// report's `last_event_seq` always names an event on disk; every `checkpointEvery` events a
// snapshot checkpoint, which also compacts the local journal through what the stream holds.
import type { DeploymentState } from "../../contracts/deployment-state.codec.js";
import type { DomainEvent } from "../../contracts/journal-event.codec.js";
import type { MachineState } from "../../contracts/deployment-state.codec.js";
import type { DeploymentSnapshot } from "../../machines/deployment.machine.js";
import { deploymentState, machineStateOf } from "../../machines/deployment.report.js";
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
}

export class TransitionRecorder {
  private readonly checkpointing = new Set<Promise<void>>();
  private readonly log: Logger;

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

  private append(deployment: string, event: DomainEvent, from: MachineState, to: MachineState, snapshot: DeploymentSnapshot): void {
    const at = new Date(this.o.now()).toISOString();
    this.o.journal
      .append(deployment, { at, event, from, to })
      .then((ev) => {
        this.o.sink.deploymentState(deploymentState(snapshot, { seq: ev.n, at: ev.at }));
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
