// Recovery: a deployment's snapshot rebuilt from what is on record, through the machine's pure
// transition (docs/design.md, "Recovery"): the local journal from its last checkpoint; or, when the
// local journal is gone (a wiped or replaced state dir, a file damaged before its end) or was
// compacted past a lost checkpoint, the stream's history, taken back into the local journal so
// numbering continues where it was.
//
// The journal is redacted, so every env value is put back from what is known to be exact (see
// score.rehydration.ts): the score store, the desired-state history in KV (by hash: any revision
// still kept), a score rebuilt from those and checked against its hash, what a `running` step
// proves, and the recorded container itself. A score found elsewhere than the store is written back
// into it. Whatever stays unknown is reported (the deployment keeps running; a container of it can't
// be recreated until the desired value is written again).
import { canonicalJson } from "../../contracts/canonical-json.js";
import type { JournalCause, JournalEvent } from "../../contracts/journal-event.codec.js";
import { PodmanV0Score, type PodmanService, type ReconcileScore } from "../../contracts/score.codec.js";
import type { DeploymentInput, DeploymentSnapshot } from "../../machines/deployment.machine.js";
import { fold, foldJournal } from "../../machines/journal.fold.js";
import { isDomainCause } from "../../machines/journal.vocabulary.js";
import type { AppliedService } from "../../machines/upgrade.plan.js";
import type { Logger } from "pino";
import type { CheckpointStore } from "./checkpoint.js";
import type { EventJournal } from "./journal.js";
import {
  fillService,
  fillScore,
  reconstructScore,
  redactedSpecs,
  rehydrateSnapshot,
  scoreHashOf,
  scoreIsRedacted,
  snapshotIsRedacted,
  witnessKey,
  witnessSpecs,
} from "./score.rehydration.js";
import type { StorageHealth } from "./storage.health.js";

/** Where the full scores behind the redacted journal come from. */
export interface ScoreSource {
  /** The score store's copy of `hash`, or null (none, or damaged: the store reports that). */
  stored(hash: string): Promise<ReconcileScore | null>;
  /** The store's file for `hash`, for reports. */
  pathOf(hash: string): string;
  /** Keeps a score taken back from elsewhere in the store; a write that fails leaves it out. */
  keep(hash: string, score: ReconcileScore): Promise<void>;
  /** The values of the deployment's desired-state history in KV (its newest revisions); null when it can't be read now (offline). */
  history(deployment: string): Promise<ReconcileScore[] | null>;
  /** The env of the recorded container, when it is this deployment's container of that service and score hash. */
  containerEnv?(deployment: string, service: string, id: string, scoreHash: string): Promise<Record<string, string> | null>;
}

/** What a replay of a journal needs: where scores come from, the machine's input, where to report. */
export interface ReplayOptions {
  scores: ScoreSource;
  input: (deployment: string) => DeploymentInput;
  logger: Logger;
  health?: StorageHealth;
}

export interface RecoveryOptions extends ReplayOptions {
  device: string;
  journal: EventJournal;
  /** A deployment's events from the stream. */
  streamHistory?: (deployment: string) => Promise<JournalEvent[]>;
  checkpoints?: CheckpointStore;
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
      const snapshot = await this.fold(deployment, tail, from?.snapshot);
      if (snapshot.status === "done") continue;
      this.log.info({ deployment, state: snapshot.value, events: lastN, checkpoint: from?.n ?? null }, "resuming deployment from its journal");
      out.push([deployment, snapshot]);
    }
    return out;
  }

  /**
   * A deployment the local journal can't rebuild, from the stream's history: its snapshot, or
   * undefined when there is nothing to resume (no history, no permission to read it, or it ended
   * removed): the deployment then starts afresh. `current` is the desired value being applied, one
   * more known score.
   */
  async fromStream(deployment: string, current?: ReconcileScore): Promise<DeploymentSnapshot | undefined> {
    if (this.compactedWithoutCheckpoint.has(deployment)) return this.compacted(deployment, current);
    if (!this.o.streamHistory || this.o.journal.lastN(deployment) > 0) return undefined;
    const stream = await this.o.streamHistory(deployment);
    // A local file damaged before its end may still know more than the stream (events not yet
    // published when it was damaged): its intact part is taken when the stream's history is a prefix of it.
    const salvaged = this.o.journal.salvaged(deployment);
    const events = salvaged.length > stream.length && isPrefix(stream, salvaged) ? salvaged : stream;
    if (events.length === 0) return undefined;
    await this.o.journal.adopt(deployment, events);
    const from = events === salvaged ? "the intact part of its damaged journal" : "the stream's history";
    return this.resume(deployment, events, `no local journal: resumed from ${from}`, current);
  }

  /**
   * The snapshot of a live deployment with what is now known put in where it was redacted (a
   * desired value written again, a score found in KV since): the same object when nothing changed.
   */
  async refresh(deployment: string, snapshot: DeploymentSnapshot, current?: ReconcileScore): Promise<DeploymentSnapshot> {
    if (!snapshotIsRedacted(snapshot)) return snapshot;
    const recall = new ScoreRecall(this.o.scores, deployment, this.o.health, this.log, current);
    const witnesses = new Map<string, PodmanService>();
    witnessSpecs(snapshot, witnesses);
    return patch({ ...this.o, logger: this.log }, deployment, snapshot, recall, witnesses);
  }

  /** The full spec of a service the context knows only redacted, for a step that must create its container. */
  async specOf(deployment: string, spec: AppliedService): Promise<PodmanService | null> {
    const recall = new ScoreRecall(this.o.scores, deployment, this.o.health, this.log);
    const full = await recall.score(spec.scoreHash);
    const s = full?.services.find((x) => x.name === spec.service.name);
    return s ? fillService(spec.service, s) : null;
  }

  /** A compacted journal without its checkpoint: the stream's events up to the base, then the file's. */
  private async compacted(deployment: string, current?: ReconcileScore): Promise<DeploymentSnapshot | undefined> {
    const base = this.o.journal.base(deployment);
    const head = ((await this.o.streamHistory?.(deployment)) ?? []).filter((e) => e.n <= base);
    this.compactedWithoutCheckpoint.delete(deployment);
    if (head.length !== base || head.some((e, i) => e.n !== i + 1)) {
      // Numbering still goes on; the deployment starts afresh and adopts or replaces its containers by name.
      this.log.error({ deployment, compactedThrough: base, inStream: head.length }, "the stream does not hold the compacted events; the deployment starts afresh");
      return undefined;
    }
    return this.resume(deployment, [...head, ...this.o.journal.read(deployment)], "compacted journal without its checkpoint: resumed from the stream's history and the local tail", current);
  }

  /** Folds a deployment's whole history (n = 1…k), unless it ended removed. */
  private async resume(deployment: string, events: readonly JournalEvent[], why: string, current?: ReconcileScore): Promise<DeploymentSnapshot | undefined> {
    const snapshot = await this.fold(deployment, events, undefined, current);
    this.log.warn({ deployment, events: events.length, state: snapshot.value }, why);
    return snapshot.status === "done" ? undefined : snapshot;
  }

  private fold(deployment: string, events: readonly JournalEvent[], from?: DeploymentSnapshot, current?: ReconcileScore): Promise<DeploymentSnapshot> {
    return replayJournal({ ...this.o, logger: this.log }, deployment, events, from, current);
  }
}

/**
 * A deployment's journal (redacted, as stored and published) replayed to its snapshot: the env
 * values put back into its desired events, folded through the machine's pure transition (from a
 * checkpoint's snapshot when given), then what the fold left redacted filled (docs/design.md,
 * invariant 5). `current`: the desired value being applied, one more known score.
 */
export async function replayJournal(o: ReplayOptions, deployment: string, events: readonly JournalEvent[], from?: DeploymentSnapshot, current?: ReconcileScore): Promise<DeploymentSnapshot> {
  const recall = new ScoreRecall(o.scores, deployment, o.health, o.logger, current);
  const causes = await rehydrate(events, recall);
  const witnesses = new Map<string, PodmanService>();
  let last: DeploymentSnapshot | undefined;
  fold(o.input(deployment), causes, (s) => {
    last = s;
    witnessSpecs(s, witnesses);
  }, from);
  const folded = last ?? from ?? foldJournal(o.input(deployment), []);
  return patch(o, deployment, folded, recall, witnesses);
}

/**
 * The events' causes, with the env values put back into the journal's redacted desired events
 * (`desired.updated`, v1's `UPDATE`), filled in place: the journaled key order is the live one.
 */
async function rehydrate(events: readonly JournalEvent[], recall: ScoreRecall): Promise<JournalCause[]> {
  const out: JournalCause[] = [];
  for (const { event } of events) {
    const desired = redactedDesired(event);
    if (!desired) {
      out.push(event);
      continue;
    }
    const full = await recall.score(desired.hash);
    const filled = (full && fillScore(desired.score, full)) || (await recall.rebuild(desired.score, desired.hash));
    // Kept redacted when unknown: startNew refuses to create a container from it rather than run "<redacted>".
    out.push(filled ? { ...event, score: filled } : event);
  }
  return out;
}

/** The score and hash of a desired event whose env the journal redacted; null for any other event. */
function redactedDesired(e: JournalCause): { score: PodmanV0Score; hash: string } | null {
  if (isDomainCause(e)) return e.type === "desired.updated" && scoreIsRedacted(e.score) ? { score: e.score, hash: e.hash } : null;
  // v1: the fold decodes the event exactly; here only a well-formed score is filled.
  const score: unknown = e.type === "UPDATE" ? e["score"] : null;
  return PodmanV0Score.is(score) && scoreIsRedacted(score) && typeof e["hash"] === "string" ? { score, hash: e["hash"] } : null;
}

/** Fills the snapshot's redacted specs from scores by hash, running witnesses and the containers themselves. */
async function patch(o: ReplayOptions, deployment: string, s: DeploymentSnapshot, recall: ScoreRecall, witnesses: Map<string, PodmanService>): Promise<DeploymentSnapshot> {
  if (!snapshotIsRedacted(s)) return s;
  const ctx = s.context;
  const hashes = new Set<string>([
    ...(ctx.target ? [ctx.target.hash] : []),
    ...(ctx.next?.kind === "update" ? [ctx.next.hash] : []),
    ...redactedSpecs(s).map((r) => r.scoreHash),
    ...(ctx.plan?.start.map((a) => a.scoreHash) ?? []),
  ]);
  for (const h of hashes) await recall.score(h);
  const fromContainers = new Map<string, PodmanService>();
  for (const r of redactedSpecs(s)) {
    if (recall.known(r.scoreHash) || witnesses.has(witnessKey(r.service, r.scoreHash)) || !r.id || !o.scores.containerEnv) continue;
    const env = await o.scores.containerEnv(deployment, r.service, r.id, r.scoreHash).catch(() => null);
    const a = ctx.applied[r.service]!;
    if (env && r.keys.every((k) => k in env)) fromContainers.set(witnessKey(r.service, r.scoreHash), { ...a.service, env: Object.fromEntries(r.keys.map((k) => [k, env[k]!])) });
  }
  const patched = rehydrateSnapshot(s, {
    score: (h) => recall.known(h),
    spec: (service, scoreHash) => witnesses.get(witnessKey(service, scoreHash)) ?? fromContainers.get(witnessKey(service, scoreHash)) ?? null,
  });
  const unknown = new Map<string, string[]>();
  for (const r of redactedSpecs(patched)) unknown.set(r.scoreHash, [...(unknown.get(r.scoreHash) ?? []), r.service]);
  for (const [hash, services] of unknown) {
    if (!recall.historyWasRead) {
      // Offline: the desired-state history is asked again once NATS is in reach (recallScores).
      o.logger.info({ deployment, hash, services }, "env values not in the state dir; the desired-state history is asked once NATS is in reach");
      continue;
    }
    o.health?.note({
      kind: "missing_scores",
      path: o.scores.pathOf(hash),
      fault: `the env of ${services.join(", ")} of ${deployment} (score ${hash}) is in neither the state dir, the desired-state history nor the containers`,
      action: "kept redacted: the running containers are left alone, but they can't be recreated until the desired value is written again",
    });
  }
  if (patched !== s) {
    const how = fromContainers.size ? "scores by hash, running witnesses and the containers' env" : "scores by hash and running witnesses";
    o.logger.info({ deployment, state: patched.value, filledFrom: how }, "env values put back into the recovered deployment");
  }
  return patched;
}

/**
 * The full scores one recovery has found for one deployment, by hash: the store first, then the
 * deployment's desired-state history (read once), then rebuilt ones. Each found outside the store
 * is reported once and written back into it.
 */
class ScoreRecall {
  private readonly found = new Map<string, PodmanV0Score>();
  private readonly missed = new Set<string>();
  private historyRead: Promise<ReconcileScore[]> | null = null;
  /** False until the desired-state history was actually read (not out of reach). */
  historyWasRead = false;

  constructor(
    private readonly src: ScoreSource,
    private readonly deployment: string,
    private readonly health: StorageHealth | undefined,
    private readonly log: Logger,
    current?: ReconcileScore,
  ) {
    if (current) this.found.set(scoreHashOf(current.data), current.data);
  }

  /** The score of `hash` if found so far (no lookup). */
  known(hash: string): PodmanV0Score | null {
    return this.found.get(hash) ?? null;
  }

  async score(hash: string): Promise<PodmanV0Score | null> {
    const hit = this.found.get(hash);
    if (hit || this.missed.has(hash)) return hit ?? null;
    const stored = await this.src.stored(hash);
    if (stored) {
      this.found.set(hash, stored.data);
      return stored.data;
    }
    const fromKv = (await this.history()).find((r) => scoreHashOf(r.data) === hash);
    if (fromKv) {
      this.found.set(hash, fromKv.data);
      await this.takeBack(hash, fromKv, "taken back from the desired-state history");
      return fromKv.data;
    }
    this.missed.add(hash);
    return null;
  }

  /** A score rebuilt from the redacted one and every full score known for the deployment, checked by hash. */
  async rebuild(redacted: PodmanV0Score, hash: string): Promise<PodmanV0Score | null> {
    const known = [...this.found.values(), ...(await this.history()).map((r) => r.data)];
    const rebuilt = reconstructScore(redacted, hash, known);
    if (!rebuilt) return null;
    this.missed.delete(hash);
    this.found.set(hash, rebuilt);
    await this.takeBack(hash, { type: "PodmanV0", data: rebuilt }, "rebuilt from the env values of other scores of the deployment (its hash checks)");
    return rebuilt;
  }

  private history(): Promise<ReconcileScore[]> {
    this.historyRead ??= this.src.history(this.deployment).then(
      (h) => {
        this.historyWasRead = h !== null;
        return h ?? [];
      },
      () => [],
    );
    return this.historyRead;
  }

  private async takeBack(hash: string, score: ReconcileScore, how: string) {
    const path = this.src.pathOf(hash);
    this.health?.note({ kind: "missing_scores", path, fault: `score ${hash} of ${this.deployment} was not in the state dir`, action: `${how}; written back` });
    this.log.info({ deployment: this.deployment, hash }, `score ${how}`);
    await this.src.keep(hash, score).catch(() => undefined);
  }
}

function isPrefix(a: readonly JournalEvent[], b: readonly JournalEvent[]): boolean {
  return a.every((e, i) => canonicalJson(e) === canonicalJson(b[i]));
}
