// Publishes a device's journal, in order, to `fleet.events.<device>.<deployment>`: one writer per
// deployment, each event published on the condition that the subject still ends where this
// publisher last saw it (`expect.lastSubjectSequence`, 0 for an empty subject). That condition is
// what makes publication exactly once: a retry after a lost acknowledgement is refused (wrong last
// sequence) if the first attempt landed, and the re-read that follows finds this device's own event
// there. No msg ids: JetStream's duplicate window is stream-wide, so another device could squat
// them; the subject is this device's alone (docs/design.md, "Securing a fleet").
//
// Where it is in each deployment's journal is derived from the stream (its last message on the
// subject) on start, after every reconnect and after every failure, so nothing extra is kept on disk.
import { jetstream, JetStreamApiError, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { canonicalJson } from "../../contracts/canonical-json.js";
import { decodeJson } from "../../contracts/decode.js";
import { JournalEvent } from "../../contracts/journal-event.codec.js";
import type { SigningKey } from "../../contracts/nkey.js";
import { HEADER_SIG, HEADER_SIGNED_BY, signReport } from "../../contracts/report-signature.js";
import { eventSubject, STREAM_FLEET_EVENTS } from "../../contracts/wire-names.js";
import type { EventJournal } from "./journal.js";
import { lastMessageOnSubject } from "../../fleet/stream.reader.js";
import type { Logger } from "pino";
import { type ConnectionSource, connectionOrAbort, OnlineTracker } from "../nats/online.js";
import { sleep } from "../../fleet/sleep.js";

/** JetStream's "wrong last sequence" error code. */
export const WRONG_LAST_SEQUENCE = 10071;

export interface JournalPublisherOptions {
  journal: EventJournal;
  nc: ConnectionSource;
  logger: Logger;
  /** Pause after a failed request while connected (ms); default 1000. */
  retryMs?: number;
  /** How often a paused deployment re-reads the stream to see whether it can go on (ms); default 30 s. */
  pausedRetryMs?: number;
  /** Publish acknowledgement timeout (ms); default 5000. */
  publishTimeoutMs?: number;
  /**
   * The device's own key: each event is published with its signature in two headers, so the event
   * itself stays what the journal holds (docs/design.md, "Report signatures").
   */
  signingKey?: SigningKey;
}

export interface PublishState {
  /** Highest n known to be in the stream. */
  published: number;
  /** Stream sequence of the subject's last message as far as this publisher knows (0: none). */
  lastSeq: number;
  /** True while a conflict or an inconsistent stream stops this deployment's publication. */
  paused: boolean;
}

interface DepState {
  streamN: number;
  confirmedN: number;
  lastSeq: number;
  needSync: boolean;
  paused: boolean;
  running: Promise<void> | null;
  pausedTimer: NodeJS.Timeout | null;
  /**
   * The publish that failed last: timed out (it may have landed) or refused because the subject had
   * moved on. The re-read that follows says whether it is this device's own event in the stream.
   */
  attempt: { n: number; expectedLastSeq: number; refused: boolean; actualLastSeq: number | null } | null;
}

type Step = "ok" | "retry" | "paused";

export class JournalPublisher {
  private readonly deps = new Map<string, DepState>();
  private readonly abort = new AbortController();
  private readonly retryMs: number;
  private readonly pausedRetryMs: number;
  private readonly publishTimeoutMs: number;
  private readonly log: Logger;
  private conn: { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; online: OnlineTracker } | null = null;
  private started: Promise<void> | null = null;
  private unsubscribers: Array<() => void> = [];

  constructor(private readonly o: JournalPublisherOptions) {
    this.retryMs = o.retryMs ?? 1000;
    this.pausedRetryMs = o.pausedRetryMs ?? 30_000;
    this.publishTimeoutMs = o.publishTimeoutMs ?? 5000;
    this.log = o.logger.child({ component: "journal-publisher" });
  }

  private get device() {
    return this.o.journal.device;
  }

  /**
   * Starts publishing: every deployment found in the journal, then each append as it lands on disk.
   * Returns at once; the connection may still be coming up.
   */
  start(): void {
    if (this.started) return;
    this.unsubscribers.push(this.o.journal.onAppend((e) => this.kick(e.deployment)));
    this.started = (async () => {
      const nc = await connectionOrAbort(this.o.nc, this.abort.signal);
      if (!nc || this.abort.signal.aborted) return;
      const js = jetstream(nc, { timeout: this.publishTimeoutMs });
      // No API check ($JS.API.INFO): a least-privilege device may not read its account's info.
      const jsm = await js.jetstreamManager(false);
      const online = new OnlineTracker(nc);
      this.conn = { nc, js, jsm, online };
      this.unsubscribers.push(
        online.onReconnect(() => {
          for (const [dep, st] of this.deps) {
            st.needSync = true;
            this.kick(dep);
          }
        }),
        () => online.close(),
      );
      for (const dep of this.o.journal.deployments()) this.kick(dep);
      for (const dep of this.deps.keys()) this.kick(dep);
    })().catch((e: unknown) => {
      this.log.error({ err: (e as Error).message }, "journal publisher failed to start");
    });
  }

  /** Where publication of `deployment` stands. */
  state(deployment: string): PublishState {
    const st = this.deps.get(deployment);
    return { published: st?.confirmedN ?? 0, lastSeq: st?.lastSeq ?? 0, paused: st?.paused ?? false };
  }

  /**
   * Resolves once every event on disk so far is in the stream (or rejects after `timeoutMs`).
   * For shutdown and tests.
   */
  async idle(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const behind = this.o.journal.deployments().filter((d) => {
        const st = this.deps.get(d);
        return !st || st.needSync || st.confirmedN < this.o.journal.durableN(d);
      });
      if (behind.length === 0) return;
      if (Date.now() > until) throw new Error(`journal not published within ${timeoutMs} ms: ${behind.join(", ")}`);
      await sleep(25);
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const u of this.unsubscribers) u();
    this.unsubscribers = [];
    for (const st of this.deps.values()) if (st.pausedTimer) clearTimeout(st.pausedTimer);
    await this.started;
    await Promise.allSettled([...this.deps.values()].map((st) => st.running));
  }

  private stateOf(dep: string): DepState {
    let st = this.deps.get(dep);
    if (!st) {
      st = { streamN: 0, confirmedN: 0, lastSeq: 0, needSync: true, paused: false, running: null, pausedTimer: null, attempt: null };
      this.deps.set(dep, st);
    }
    return st;
  }

  private kick(dep: string) {
    const st = this.stateOf(dep);
    if (!this.conn || this.abort.signal.aborted || st.running) return;
    st.running = this.pump(dep, st).finally(() => {
      st.running = null;
    });
  }

  private async pump(dep: string, st: DepState): Promise<void> {
    const { online } = this.conn!;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      await online.wait(signal);
      if (signal.aborted) return;
      if (st.needSync) {
        const r = await this.sync(dep, st);
        if (r === "retry") {
          await sleep(this.retryMs, signal);
          continue;
        }
        if (r === "paused") {
          this.retryPausedLater(dep, st);
          return;
        }
      }
      if (st.paused) return;
      const next = this.o.journal.durableAt(dep, st.streamN + 1);
      if (!next) return;
      if ((await this.publish(dep, st, next)) === "retry") await sleep(this.retryMs, signal);
    }
  }

  /** Re-reads the subject's last message and decides where publication goes on (or that it can't). */
  private async sync(dep: string, st: DepState): Promise<Step> {
    const { jsm } = this.conn!;
    const subject = eventSubject(this.device, dep);
    let streamN = 0;
    let lastSeq = 0;
    let streamEvent: JournalEvent | null = null;
    try {
      const sm = await lastMessageOnSubject(jsm, STREAM_FLEET_EVENTS, subject);
      if (sm) {
        const r = decodeJson(JournalEvent, sm.string());
        if (!r.ok || r.value.device !== this.device || r.value.deployment !== dep) {
          this.settleAttempt(dep, st, subject, false);
          const problem = r.ok ? `it is an event of ${r.value.device}/${r.value.deployment}` : r.errors.join("; ");
          return this.pause(dep, st, { subject, streamSeq: sm.seq, problem }, "journal conflict: the last message on the subject is not one of this deployment's events; publication paused");
        }
        streamEvent = r.value;
        streamN = r.value.n;
        lastSeq = sm.seq;
      }
    } catch (e) {
      this.log.warn({ deployment: dep, err: (e as Error).message }, "could not read the journal's position in the stream; will retry");
      return "retry";
    }
    if (streamN < st.confirmedN) {
      return this.pause(dep, st, { subject, streamN, publishedN: st.confirmedN, streamSeq: lastSeq }, "journal conflict: the stream's last event is older than one already published (purged or rewritten?); publication paused");
    }
    const localN = this.o.journal.durableN(dep);
    if (streamN > localN) {
      return this.pause(dep, st, { subject, streamN, localN, streamSeq: lastSeq }, "journal conflict: the stream holds events this device's journal does not (another writer?); publication paused");
    }
    const base = this.o.journal.base(dep);
    if (streamN < base) {
      return this.pause(dep, st, { subject, streamN, compactedThrough: base, streamSeq: lastSeq }, "journal conflict: the stream lacks events this device compacted away after they were published (purged?); publication paused");
    }
    const mine = this.o.journal.durableAt(dep, streamN);
    const same = streamEvent !== null && mine !== undefined && canonicalJson(JournalEvent.encode(mine)) === canonicalJson(JournalEvent.encode(streamEvent));
    this.settleAttempt(dep, st, subject, same && streamN === st.attempt?.n, lastSeq);
    if (streamEvent && mine && !same) {
      this.log.error({ deployment: dep, subject, n: streamN, streamSeq: lastSeq }, "journal diverged: the stream's event with this n differs from the local one; the stream's stands, publication goes on after it");
    }
    if (st.paused) this.log.warn({ deployment: dep, subject, streamN, streamSeq: lastSeq }, "journal publication resumed");
    st.streamN = streamN;
    st.confirmedN = Math.max(st.confirmedN, streamN);
    st.lastSeq = lastSeq;
    st.paused = false;
    st.needSync = false;
    return "ok";
  }

  /** Says what became of the failed publish, now that the subject's last event is known. */
  private settleAttempt(dep: string, st: DepState, subject: string, landed: boolean, seq?: number) {
    const a = st.attempt;
    st.attempt = null;
    if (!a) return;
    if (landed) {
      this.log.info({ deployment: dep, n: a.n, seq, retryRefused: a.refused }, "journal event was already in the stream (an earlier attempt landed; its acknowledgement was lost)");
    } else if (a.refused) {
      const { refused: _, ...details } = a;
      this.log.error({ deployment: dep, subject, ...details }, "JOURNAL CONFLICT: another writer published on this deployment's subject (wrong last sequence); the stream's events stand");
    }
  }

  private pause(dep: string, st: DepState, details: Record<string, unknown>, msg: string): Step {
    st.paused = true;
    st.needSync = true;
    this.log.error({ deployment: dep, ...details }, msg);
    return "paused";
  }

  private retryPausedLater(dep: string, st: DepState) {
    if (st.pausedTimer || this.abort.signal.aborted) return;
    st.pausedTimer = setTimeout(() => {
      st.pausedTimer = null;
      this.kick(dep);
    }, this.pausedRetryMs);
  }

  private signatureHeaders(event: Record<string, unknown>) {
    if (!this.o.signingKey) return {};
    const s = signReport("event", event, this.o.signingKey);
    const h = headers();
    h.set(HEADER_SIGNED_BY, s.by);
    h.set(HEADER_SIG, s.sig);
    return { headers: h };
  }

  private async publish(dep: string, st: DepState, ev: JournalEvent): Promise<Step> {
    const { js } = this.conn!;
    const subject = eventSubject(this.device, dep);
    const encoded = JournalEvent.encode(ev);
    const body = JSON.stringify(encoded);
    try {
      const ack = await js.publish(subject, body, {
        ...this.signatureHeaders(encoded),
        expect: { lastSubjectSequence: st.lastSeq },
        timeout: this.publishTimeoutMs,
      });
      st.streamN = ev.n;
      st.confirmedN = Math.max(st.confirmedN, ev.n);
      st.lastSeq = ack.seq;
      this.log.debug({ deployment: dep, n: ev.n, seq: ack.seq }, "journal event published");
      return "ok";
    } catch (e) {
      st.needSync = true;
      if (e instanceof JetStreamApiError && e.code === WRONG_LAST_SEQUENCE) {
        // The subject has moved on since it was last read: this publisher's own earlier attempt
        // (its acknowledgement lost) or another writer. The re-read that follows at once tells.
        const actual = /wrong last sequence:\s*(\d+)/i.exec(e.message)?.[1];
        st.attempt = { n: ev.n, expectedLastSeq: st.lastSeq, refused: true, actualLastSeq: actual === undefined ? null : Number(actual) };
        return "ok";
      }
      st.attempt = { n: ev.n, expectedLastSeq: st.lastSeq, refused: false, actualLastSeq: null };
      this.log.warn({ deployment: dep, n: ev.n, err: (e as Error).message }, "journal publish failed; will retry");
      return "retry";
    }
  }
}
