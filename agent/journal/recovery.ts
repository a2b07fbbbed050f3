// Recovery: a deployment's snapshot rebuilt from what is on record, through the machine's pure
// transition (docs/design.md, "Recovery"): the local journal from its last checkpoint; or, when the
// local journal is gone (a wiped or replaced state dir) or was compacted past a lost checkpoint,
// the stream's history, taken back into the local journal so numbering continues where it was.
import type { JournalCause, JournalCauseV1, JournalEvent } from "../../contracts/journal-event.codec.js";
import type { ReconcileScore } from "../../contracts/score.codec.js";
import type { DeploymentInput, DeploymentSnapshot } from "../../machines/deployment.machine.js";
import { foldJournal } from "../../machines/journal.fold.js";
import { isDomainCause } from "../../machines/journal.vocabulary.js";
import type { Logger } from "pino";
import type { CheckpointStore } from "./checkpoint.js";
import type { EventJournal } from "./journal.js";
import { REDACTED } from "./redact.js";

/** Finds a full score (env values included) the journal only knows by hash and revision. */
export type ScoreLookup = (deployment: string, hash: string, revision: number) => Promise<ReconcileScore | null>;

export interface RecoveryOptions {
  device: string;
  journal: EventJournal;
  /** The full scores behind the journal's redacted desired events (the score store, then the KV). */
  lookupScore: ScoreLookup;
  /** A deployment's events from the stream. */
  streamHistory?: (deployment: string) => Promise<JournalEvent[]>;
  checkpoints?: CheckpointStore;
  input: (deployment: string) => DeploymentInput;
  logger: Logger;
}

export class Recovery {
  /** Deployments whose journal starts after n = 1 with no checkpoint to fold from (see local). */
  private readonly compactedWithoutCheckpoint = new Set<string>();
  private readonly log: Logger;

  constructor(private readonly o: RecoveryOptions) {
    this.log = o.logger.child({ component: "recovery" });
  }

  /**
   * Every deployment of the local journal that did not end removed, with its snapshot: folded from
   * its last checkpoint (or n = 1) through the journal's tail.
   */
  async local(): Promise<Array<[deployment: string, snapshot: DeploymentSnapshot]>> {
    const out: Array<[string, DeploymentSnapshot]> = [];
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
        this.log.error({ deployment, compactedThrough: base, checkpoint: cp?.n ?? null }, "journal compacted but its checkpoint is missing (or of another machine version); the deployment waits for the stream");
        this.compactedWithoutCheckpoint.add(deployment);
        continue;
      }
      const tail = events.slice((from?.n ?? 0) - base);
      const snapshot = foldJournal(this.o.input(deployment), await this.rehydrate(deployment, tail), from?.snapshot);
      if (snapshot.status === "done") continue;
      this.log.info({ deployment, state: snapshot.value, events: lastN, checkpoint: from?.n ?? null }, "resuming deployment from its journal");
      out.push([deployment, snapshot]);
    }
    return out;
  }

  /**
   * A deployment the local journal can't rebuild, from the stream's history: its snapshot, or
   * undefined when there is nothing to resume (no history, no permission to read it, or it ended
   * removed): the deployment then starts afresh.
   */
  async fromStream(deployment: string): Promise<DeploymentSnapshot | undefined> {
    if (this.compactedWithoutCheckpoint.has(deployment)) return this.compacted(deployment);
    if (!this.o.streamHistory || this.o.journal.lastN(deployment) > 0) return undefined;
    const events = await this.o.streamHistory(deployment);
    if (events.length === 0) return undefined;
    await this.o.journal.adopt(deployment, events);
    return this.resume(deployment, events, "no local journal: resumed from the stream's history");
  }

  /** A compacted journal without its checkpoint: the stream's events up to the base, then the file's. */
  private async compacted(deployment: string): Promise<DeploymentSnapshot | undefined> {
    const base = this.o.journal.base(deployment);
    const head = ((await this.o.streamHistory?.(deployment)) ?? []).filter((e) => e.n <= base);
    this.compactedWithoutCheckpoint.delete(deployment);
    if (head.length !== base || head.some((e, i) => e.n !== i + 1)) {
      // Numbering still goes on; the deployment starts afresh and adopts or replaces its containers by name.
      this.log.error({ deployment, compactedThrough: base, inStream: head.length }, "the stream does not hold the compacted events; the deployment starts afresh");
      return undefined;
    }
    return this.resume(deployment, [...head, ...this.o.journal.read(deployment)], "compacted journal without its checkpoint: resumed from the stream's history and the local tail");
  }

  /** Folds a deployment's whole history (n = 1…k), unless it ended removed. */
  private async resume(deployment: string, events: readonly JournalEvent[], why: string): Promise<DeploymentSnapshot | undefined> {
    const snapshot = foldJournal(this.o.input(deployment), await this.rehydrate(deployment, events));
    this.log.warn({ deployment, events: events.length, state: snapshot.value }, why);
    return snapshot.status === "done" ? undefined : snapshot;
  }

  /** The events' causes, with the full scores put back into the journal's redacted desired events. */
  private async rehydrate(deployment: string, events: readonly JournalEvent[]): Promise<JournalCause[]> {
    const out: JournalCause[] = [];
    for (const { event } of events) {
      const desired = redactedDesired(event);
      if (!desired) {
        out.push(event);
        continue;
      }
      const score = await this.o.lookupScore(deployment, desired.hash, desired.revision);
      if (score) out.push({ ...event, score: score.data });
      else {
        // Kept redacted: startNew refuses to create a container from it rather than run "<redacted>".
        this.log.warn({ deployment, hash: desired.hash }, "score not found locally or in the desired-state history; its env is unknown");
        out.push(event);
      }
    }
    return out;
  }
}

/** The hash and revision of a desired score whose env the journal redacted (`desired.updated`, v1's `UPDATE`); null for any other event. */
function redactedDesired(e: JournalCause): { hash: string; revision: number } | null {
  if (isDomainCause(e)) return e.type === "desired.updated" && hasRedactedEnv(e.score.services) ? { hash: e.hash, revision: e.revision } : null;
  return e.type === "UPDATE" && hasRedactedEnv(v1Services(e)) ? { hash: String(e["hash"]), revision: Number(e["revision"]) } : null;
}

/** A v1 UPDATE's services as far as they can be read (the fold decodes the event exactly). */
function v1Services(e: JournalCauseV1): Array<{ env?: unknown }> {
  const score = e["score"];
  const services = typeof score === "object" && score !== null && "services" in score ? score.services : [];
  return Array.isArray(services) ? services : [];
}

function hasRedactedEnv(services: ReadonlyArray<{ env?: unknown }>): boolean {
  return services.some((s) => typeof s.env === "object" && s.env !== null && Object.values(s.env).includes(REDACTED));
}
