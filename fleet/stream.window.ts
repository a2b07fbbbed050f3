// A window of one deployment's journal in the FLEET_EVENTS stream, read by position instead of from
// the start: the dashboard opens a deployment with 100,000 events by reading its last page only.
// The stream numbers messages across every subject; a deployment's own events carry their journal
// number `n`, which grows with the stream sequence on its subject. So the stream sequence where
// event n sits is found by a binary search of direct gets (`next_by_subj`: the subject's first
// message at or after a sequence), about log2(stream length) requests, and the page itself is read
// with one ordered consumer from that sequence.
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import { DecodeError, decodeJson } from "../contracts/decode.js";
import { JournalEvent } from "../contracts/journal-event.codec.js";
import { STREAM_FLEET_EVENTS } from "../contracts/wire-names.js";
import { lastMessageOnSubject } from "./stream.reader.js";

/** A journal event with the stream sequence it is stored at. */
export interface StoredEvent {
  seq: number;
  event: JournalEvent;
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

  /** The event stored at or after `seq` on this subject (null past the last one). */
  async at(seq: number): Promise<StoredEvent | null> {
    const m = await nextOnSubject(this.jsm, this.subject, seq);
    return m ? stored(m) : null;
  }

  /**
   * The stream sequence of the first stored event whose n is at least `n`, searched within
   * [lo, hi] (default: the subject's whole range). Events older than the stream keeps are gone:
   * asking for one gives the first event kept.
   */
  async seqOf(n: number, lo = this.first.seq, hi = this.last.seq): Promise<number> {
    if (n <= this.first.event.n) return this.first.seq;
    if (n > this.last.event.n) return this.last.seq + 1;
    let answer = hi;
    while (lo <= hi) {
      const mid = Math.floor((lo + hi) / 2);
      const m = await this.at(mid);
      if (!m) {
        hi = mid - 1;
        continue;
      }
      if (m.event.n >= n) {
        answer = m.seq;
        hi = mid - 1;
      } else {
        lo = m.seq + 1;
      }
    }
    return answer;
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
        const r = decodeJson(JournalEvent, m.string());
        if (!r.ok) throw new DecodeError(`journal event at ${STREAM_FLEET_EVENTS} seq ${m.seq}`, r.errors);
        out.push({ seq: m.seq, event: r.value });
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

function stored(m: StoredMsg): StoredEvent {
  const r = decodeJson(JournalEvent, m.string());
  if (!r.ok) throw new DecodeError(`journal event at ${STREAM_FLEET_EVENTS} seq ${m.seq}`, r.errors);
  return { seq: m.seq, event: r.value };
}
