// A window of one deployment's journal in the FLEET_EVENTS stream, read by position instead of from
// the start: the dashboard opens a deployment with 100,000 events by reading its last page only.
// The stream numbers messages across every subject; a deployment's own events carry their journal
// number `n`, which grows with the stream sequence on its subject. So the stream sequence where
// event n sits is found by a search of direct gets (`next_by_subj`: the subject's first message at
// or after a sequence), a few requests, and the page itself is read with one ordered consumer from
// that sequence.
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";
import { DecodeError, decodeJson } from "../contracts/decode.js";
import { JournalEvent } from "../contracts/journal-event.codec.js";
import { signatureFromHeaders } from "../contracts/report-signature.js";
import { STREAM_FLEET_EVENTS } from "../contracts/wire-names.js";
import { lastMessageOnSubject } from "./stream.reader.js";

/** A journal event with the stream sequence it is stored at. */
export interface StoredEvent {
  seq: number;
  event: JournalEvent;
  /** The event as published with `signed` from its headers (when it has them), for `checkReport`. */
  signedValue: Record<string, unknown>;
}

export class JournalWindowReader {
  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly subject: string,
    /** The subject's first and last stored events as of opening. */
    readonly first: StoredEvent,
    readonly last: StoredEvent,
  ) {}

  /** Null when the subject holds no event. */
  static async open(js: JetStreamClient, subject: string): Promise<JournalWindowReader | null> {
    const jsm = await js.jetstreamManager(false);
    const lastMsg = await lastMessageOnSubject(jsm, STREAM_FLEET_EVENTS, subject);
    if (!lastMsg) return null;
    const last = stored(lastMsg);
    const firstMsg = await nextOnSubject(jsm, subject, 1);
    const first = firstMsg ? stored(firstMsg) : last;
    return new JournalWindowReader(js, jsm, subject, first, last);
  }

  /** Direct gets made by `at` so far (a search's cost, for the benches). */
  gets = 0;

  /** The event stored at or after `seq` on this subject (null past the last one). */
  async at(seq: number): Promise<StoredEvent | null> {
    this.gets++;
    const m = await nextOnSubject(this.jsm, this.subject, seq);
    return m ? stored(m) : null;
  }

  /**
   * The stream sequence of the first stored event whose n is at least `n`. Events older than the
   * stream keeps are gone: asking for one gives the first event kept. Interpolation search (n grows
   * about evenly with the sequence when deployments publish at similar rates), every third probe a
   * bisection, so a skewed stream still takes no more than about log2 of its length.
   */
  async seqOf(n: number): Promise<number> {
    if (n <= this.first.event.n) return this.first.seq;
    if (n > this.last.event.n) return this.last.seq + 1;
    // lo: an event below n; found: the earliest event known at or above n. No event of this subject
    // lies in (limit, found.seq); (lo.seq, limit] is not searched yet.
    let lo = this.first;
    let found = this.last;
    let limit = found.seq - 1;
    for (let i = 0; limit > lo.seq && found.event.n - lo.event.n > 1; i++) {
      const guess = i % 3 === 2 ? (lo.seq + limit) / 2 : lo.seq + ((n - 0.5 - lo.event.n) * (found.seq - lo.seq)) / (found.event.n - lo.event.n);
      const probe = Math.min(limit, Math.max(lo.seq + 1, Math.round(guess)));
      const m = await this.at(probe);
      if (!m) break;
      if (m.event.n >= n) {
        found = m;
        limit = probe - 1;
      } else {
        lo = m;
      }
    }
    return found.seq;
  }

  /** Up to `count` events from stream sequence `fromSeq` on, never past `untilSeq` (default: the last as of opening). */
  async read(fromSeq: number, count: number, untilSeq = this.last.seq): Promise<StoredEvent[]> {
    if (count <= 0 || fromSeq > untilSeq) return [];
    const consumer = await this.js.consumers.getPushConsumer(STREAM_FLEET_EVENTS, {
      filter_subjects: this.subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: fromSeq,
    });
    const messages = await consumer.consume();
    const timer = setTimeout(() => messages.stop(new Error(`timed out reading ${this.subject} from seq ${fromSeq}`)), 15_000);
    const out: StoredEvent[] = [];
    try {
      for await (const m of messages) {
        out.push(storedEvent(m.seq, m.string(), m.headers));
        if (out.length >= count || m.seq >= untilSeq) break;
      }
    } finally {
      clearTimeout(timer);
      messages.stop();
    }
    return out;
  }

  /** The events numbered [fromN, toN] that the stream still keeps, oldest first. */
  async readNumbers(fromN: number, toN: number): Promise<StoredEvent[]> {
    if (toN < fromN) return [];
    const start = await this.seqOf(fromN);
    const events = await this.read(start, toN - Math.max(fromN, this.first.event.n) + 1);
    return events.filter((e) => e.event.n >= fromN && e.event.n <= toN);
  }
}

/**
 * A direct get of the subject's first message at or after `seq`. The operator's streams allow
 * direct gets (ensureFleetResources turns it on), so no fallback to the stream's message get.
 */
function nextOnSubject(jsm: JetStreamManager, subject: string, seq: number): Promise<StoredMsg | null> {
  return jsm.direct.getMessage(STREAM_FLEET_EVENTS, { seq, next_by_subj: subject });
}

const stored = (m: StoredMsg): StoredEvent => storedEvent(m.seq, m.string(), m.header);

function storedEvent(seq: number, text: string, headers: MsgHdrs | undefined): StoredEvent {
  const r = decodeJson(JournalEvent, text);
  if (!r.ok) throw new DecodeError(`journal event at ${STREAM_FLEET_EVENTS} seq ${seq}`, r.errors);
  const signed = signatureFromHeaders((name) => (headers?.has(name) ? headers.get(name) : undefined));
  // The codec is exact, so its encoding is the event as the device signed it.
  return { seq, event: r.value, signedValue: { ...JournalEvent.encode(r.value), ...(signed === undefined ? {} : { signed }) } };
}
