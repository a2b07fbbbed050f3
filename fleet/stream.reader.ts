// Reading a deployment's journal back from the FLEET_EVENTS stream (recovery when the local file is
// gone; fleetctl). One ordered push consumer with ONE filter subject (server 2.9 takes no list): its
// create request names the filter in its subject and its deliveries land in the reader's inbox, so a
// device's NATS permissions can let it read its own history and nothing else (a pull consumer would
// also need the right to pull from any consumer of the stream).
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import { errors } from "@nats-io/transport-node";
import { DecodeError, decodeJson } from "../contracts/decode.js";
import { JournalEvent } from "../contracts/journal-event.codec.js";
import { signatureFromHeaders } from "../contracts/report-signature.js";
import { eventSubject, STREAM_FLEET_EVENTS } from "../contracts/wire-names.js";

export interface ReadStreamOptions {
  /** Gives up after this long (ms); default 15 s. */
  timeoutMs?: number;
}

/**
 * The last message on `subject` of `stream`, or null. A direct get first: its request subject names
 * the message subject (`$JS.API.DIRECT.GET.<stream>.<subject>`), so NATS permissions can limit a
 * device to its own subjects; a stream created without `allow_direct` (no responders) falls back to
 * the stream API's message get.
 */
export async function lastMessageOnSubject(jsm: JetStreamManager, stream: string, subject: string): Promise<StoredMsg | null> {
  try {
    return await jsm.direct.getMessage(stream, { last_by_subj: subject });
  } catch (e) {
    // Without `allow_direct` the request finds no responder, or (JetStream answers the API's
    // subjects itself) none answers at all.
    if (!(e instanceof errors.NoRespondersError) && !(e instanceof errors.TimeoutError)) throw e;
    return jsm.streams.getMessage(stream, { last_by_subj: subject });
  }
}

/**
 * Every event of `<device>/<deployment>` in the stream, in stream order, each decoded with the
 * JournalEvent codec (a message that does not decode throws a DecodeError naming its sequence).
 * Reads up to the subject's last message as of the call.
 */
export async function readStreamEvents(js: JetStreamClient, device: string, deployment: string, opts: ReadStreamOptions = {}): Promise<JournalEvent[]> {
  return (await readStreamMessages(js, device, deployment, opts)).map((m) => m.event);
}

/** An event as the stream holds it: decoded, as published (JSON), and the device's signature headers. */
export interface StreamEvent {
  event: JournalEvent;
  /** The message's JSON with `signed` from its headers (when it has them), for `checkReport`. */
  signedValue: Record<string, unknown>;
}

/** Like `readStreamEvents`, with what is needed to check each event's signature. */
export async function readStreamMessages(js: JetStreamClient, device: string, deployment: string, opts: ReadStreamOptions = {}): Promise<StreamEvent[]> {
  const subject = eventSubject(device, deployment);
  // No $JS.API.INFO check: a device may read its own subjects without the right to the account info.
  const jsm = await js.jetstreamManager(false);
  const last = await lastMessageOnSubject(jsm, STREAM_FLEET_EVENTS, subject);
  if (!last) return [];
  const consumer = await js.consumers.getPushConsumer(STREAM_FLEET_EVENTS, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume();
  const timer = setTimeout(() => messages.stop(new Error(`timed out reading ${subject}`)), opts.timeoutMs ?? 15_000);
  const out: StreamEvent[] = [];
  try {
    for await (const m of messages) {
      const r = decodeJson(JournalEvent, m.string());
      if (!r.ok) throw new DecodeError(`journal event at ${STREAM_FLEET_EVENTS} seq ${m.seq}`, r.errors);
      const signed = signatureFromHeaders((name) => (m.headers?.has(name) ? m.headers.get(name) : undefined));
      // The codec is exact, so its encoding is the event as the device signed it.
      out.push({ event: r.value, signedValue: { ...JournalEvent.encode(r.value), ...(signed === undefined ? {} : { signed }) } });
      if (m.seq >= last.seq) break;
    }
  } finally {
    clearTimeout(timer);
    messages.stop();
  }
  return out;
}
