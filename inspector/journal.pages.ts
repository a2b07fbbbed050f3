// The visualiser's timeline one page at a time: the newest page when a deployment opens, an older
// one per step back. Each page is read from the stream by event number (fleet/stream.window.ts)
// and folded on its own (machines/journal.window.ts); nothing reads or folds the whole history.
import type { JetStreamClient } from "@nats-io/jetstream";
import { sha256Hex } from "../contracts/canonical-json.js";
import { decode } from "../contracts/decode.js";
import type { DeploymentState } from "../contracts/deployment-state.codec.js";
import { PodmanV0Score } from "../contracts/score.codec.js";
import { checkReport, type ReportCheck } from "../contracts/report-signature.js";
import { eventSubject } from "../contracts/wire-names.js";
import { signatureSummary, type SignatureSummary } from "../fleet/fleet.client.js";
import { foldWindow, type WindowStep } from "../machines/journal.window.js";
import { domainEvent } from "../machines/journal.words.js";
import { JournalWindowReader, type StoredEvent } from "../fleet/stream.window.js";

export const PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
/** How far before a page to look for the desired score its first update replaced. */
export const SCORE_LOOKBACK = 2000;
/**
 * Events read before the page with it, in the same consumer: the score before the page's first
 * update is usually among them, so no second read is needed. Further back, chunks grow.
 */
const MARGIN = 24;
const LOOKBACK_CHUNKS = [200, 800];

/** A step with the check of the device's signature on its event (docs/design.md, "Report signatures"). */
export type PageStep = WindowStep & { signature: "verified" | "unverified" | "forged"; signature_why?: string };

export interface JournalPage {
  steps: PageStep[];
  /** How many of the page's events the device signed, and which it did not. */
  signatures: SignatureSummary;
  time_in_state: Record<string, number>;
  /** The page's first and last event numbers (null: no events). */
  first_n: number | null;
  last_n: number | null;
  /** The first and last events the stream keeps for this deployment. */
  oldest_n: number | null;
  newest_n: number | null;
  has_older: boolean;
  has_newer: boolean;
  /** The page starts at the deployment's first event, so every step's containers are exact. */
  from_origin: boolean;
  /** The agent's report (device-state) is of this page's last event. */
  anchored: boolean;
}

export interface PageRequest {
  /** Events numbered below this (default: the newest page). */
  before?: number;
  size?: number;
  /** The deployment's device-state, to anchor the newest page (read while the page is). */
  state: DeploymentState | null | Promise<DeploymentState | null>;
  /** The device's recorded public key, to check each event's signature (null or absent: none recorded). */
  deviceKey?: string | null | Promise<string | null>;
}

/**
 * Verdicts already reached, by device, key and the event's exact content with its signature (so a
 * recreated stream that numbers other events the same way can't reuse one): a stored event never
 * changes, and the live view reads its newest page again at every new event. An ed25519 check costs
 * ~0.1–0.4 ms here, the digest a few microseconds; a page has 100.
 */
const verdicts = new Map<string, ReportCheck>();
const MAX_VERDICTS = 50_000;

function checkEvent(device: string, e: StoredEvent, key: string | null): ReportCheck {
  const k = `${device}|${key}|${sha256Hex(JSON.stringify(e.signedValue))}`;
  const known = verdicts.get(k);
  if (known) return known;
  const c = checkReport("event", device, e.signedValue, key);
  if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
  verdicts.set(k, c);
  return c;
}

const EMPTY: JournalPage = {
  steps: [],
  signatures: { verified: 0, unverified: 0, forged: [] },
  time_in_state: {},
  first_n: null,
  last_n: null,
  oldest_n: null,
  newest_n: null,
  has_older: false,
  has_newer: false,
  from_origin: true,
  anchored: false,
};

export async function journalPage(js: JetStreamClient, device: string, deployment: string, req: PageRequest): Promise<JournalPage> {
  const reader = await JournalWindowReader.open(js, eventSubject(device, deployment));
  if (!reader) return EMPTY;
  const size = Math.max(1, Math.min(MAX_PAGE_SIZE, req.size ?? PAGE_SIZE));
  const oldest = reader.first.event.n;
  const newest = reader.last.event.n;
  const endN = Math.max(oldest, Math.min(newest, (req.before ?? newest + 1) - 1));
  const startN = Math.max(oldest, endN - size + 1);
  // One more than the page, when there is one: the time of the event after it ends the last step's stay.
  const read = await reader.readNumbers(Math.max(oldest, startN - MARGIN), Math.min(newest, endN + 1));
  const page = read.filter((e) => e.event.n >= startN && e.event.n <= endN);
  const margin = read.filter((e) => e.event.n < startN);
  const after = read.find((e) => e.event.n === endN + 1);
  if (!page.length) return { ...EMPTY, oldest_n: oldest, newest_n: newest };
  const fromOrigin = page[0]!.event.n === 1;
  const hasUpdate = page.some((e) => domainEvent(e.event.event, e.event.from).name === "desired.updated");
  const previousScore = !fromOrigin && hasUpdate ? await scoreBefore(reader, page[0]!, margin) : undefined;
  const state = await req.state;
  const anchored = state !== null && state.last_event_seq === endN;
  const key = (await req.deviceKey) ?? null;
  const checks = page.map((e) => ({ event: e.event, check: checkEvent(device, e, key) }));
  const w = foldWindow({
    events: page.map((e) => e.event),
    fromOrigin,
    ...(previousScore !== undefined ? { previousScore } : {}),
    ...(anchored && state ? { anchor: { container_ids: state.container_ids, last_error: state.last_error } } : {}),
    nextAt: after?.event.at ?? null,
  });
  return {
    steps: w.steps.map((s, i) => {
      const c = checks[i]!.check;
      return { ...s, signature: c.verdict, ...(c.verdict === "verified" ? {} : { signature_why: c.why }) };
    }),
    signatures: signatureSummary(checks),
    time_in_state: w.time_in_state,
    first_n: page[0]!.event.n,
    last_n: endN,
    oldest_n: oldest,
    newest_n: newest,
    has_older: page[0]!.event.n > oldest,
    has_newer: endN < newest,
    from_origin: fromOrigin,
    anchored,
  };
}

/**
 * The desired score in force before `first`: the last desired.updated before it (null when a
 * removal, or the deployment's first event, comes first), looked for in the events already read
 * with the page, then backwards a growing chunk at a time up to SCORE_LOOKBACK events; undefined
 * when it is further back than that or the stream no longer has it.
 */
async function scoreBefore(reader: JournalWindowReader, first: StoredEvent, margin: StoredEvent[]): Promise<PodmanV0Score | null | undefined> {
  const found = lastScoreIn(margin);
  if (found) return found.score;
  let endN = (margin[0]?.event.n ?? first.event.n) - 1;
  const floor = Math.max(reader.first.event.n, first.event.n - SCORE_LOOKBACK);
  const endSeq = (margin[0] ?? first).seq - 1;
  for (const size of [...LOOKBACK_CHUNKS, SCORE_LOOKBACK]) {
    if (endN < floor) break;
    const startN = Math.max(floor, endN - size + 1);
    const chunk = await reader.read(await reader.seqOf(startN), endN - startN + 1, endSeq);
    const r = lastScoreIn(chunk);
    if (r) return r.score;
    endN = startN - 1;
  }
  return undefined;
}

/**
 * Where `events` settle the score before them: the last desired.updated's (undefined when it does
 * not decode), or none after a removal or the deployment's first event. Null: they don't settle it.
 */
function lastScoreIn(events: StoredEvent[]): { score: PodmanV0Score | null | undefined } | null {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!.event;
    const d = domainEvent(e.event, e.from);
    if (d.name === "desired.updated") {
      const r = decode(PodmanV0Score, d.payload["score"]);
      return { score: r.ok ? r.value : undefined };
    }
    if ((d.name === "remove.done" && e.to === "removed") || e.n === 1) return { score: null };
  }
  return null;
}
