// Collects a container's log lines under a byte budget, keeping the newest: the reply to a `logs`
// command must stay under the server's max payload however much the service printed, and the agent
// must not hold more than that budget while reading (docs/design.md, device commands).
import type { LogLine, LogQuery, ServiceLogs } from "./container-runtime.js";

type Stream = LogLine["stream"];

interface Entry {
  line: LogLine;
  /** Bytes this line adds to `JSON.stringify(lines)`: its own JSON and one separator. */
  cost: number;
}

/** What is wrong with a log query, in words, or null: the same answer from every runtime. */
export function logQueryProblem(q: LogQuery): string | null {
  if (q.tail !== undefined && (!Number.isInteger(q.tail) || q.tail < 0)) return `tail must be a whole number, got ${q.tail}`;
  if (q.since !== undefined && !Number.isFinite(q.since.getTime())) return "since is not a valid time";
  if (!Number.isInteger(q.maxBytes) || q.maxBytes < 2) return `maxBytes must be a whole number of at least 2, got ${q.maxBytes}`;
  return null;
}

/** Bytes `text` takes inside a JSON string (escapes included, quotes not). */
export function jsonTextBytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text)) - 2;
}

/** The longest prefix of `text` that takes at most `budget` bytes inside a JSON string. */
export function cutJsonText(text: string, budget: number): string {
  if (jsonTextBytes(text) <= budget) return text;
  let used = 0;
  let end = 0;
  for (const ch of text) {
    const n = jsonTextBytes(ch);
    if (used + n > budget) break;
    used += n;
    end += ch.length;
  }
  return text.slice(0, end);
}

const lineOverhead = (at: string, stream: Stream) => Buffer.byteLength(JSON.stringify({ at, stream, text: "" })) + 1;

/**
 * Lines arrive oldest first, each in one or more fragments (Podman's log file splits long lines, and
 * a line's pieces may interleave with the other stream's lines). A line keeps the place and time of
 * its first fragment. When the lines would take more than `maxBytes` as JSON, the oldest go; a
 * single line too long on its own is cut, and the rest of it is skipped.
 */
export class LogWindow {
  /** kept[first..] are the live lines; the slots before are let go, so dropping the oldest is O(1). */
  private readonly kept: Array<Entry | undefined> = [];
  private first = 0;
  private total = 0;
  /** Per stream: the line still receiving fragments, or "skip" for the rest of a dropped or cut one. */
  private readonly open = new Map<Stream, Entry | "skip">();
  private cut = false;

  /** `maxLines`: keep only the newest this many lines (a tail; dropping for it is not a cut). */
  constructor(
    private readonly maxBytes: number,
    private readonly maxLines = Number.POSITIVE_INFINITY,
  ) {
    if (!Number.isInteger(maxBytes) || maxBytes < 2) throw new RangeError(`maxBytes must be an integer of at least 2, got ${maxBytes}`);
  }

  /** A fragment of a line of `stream`; `ends` when the line ends with it (a newline followed it). */
  add(stream: Stream, at: string, text: string, ends: boolean): void {
    const open = this.open.get(stream);
    if (open === "skip") {
      if (ends) this.open.delete(stream);
      return;
    }
    let entry: Entry;
    if (open) {
      entry = open;
      entry.line.text += text;
      const grown = jsonTextBytes(text);
      entry.cost += grown;
      this.total += grown;
    } else {
      entry = { line: { at, stream, text }, cost: lineOverhead(at, stream) + jsonTextBytes(text) };
      this.kept.push(entry);
      this.total += entry.cost;
      if (this.kept.length - this.first > this.maxLines) this.dropOldest(false);
    }
    if (ends) this.open.delete(stream);
    else this.open.set(stream, entry);
    this.fit();
  }

  /** The lines kept, oldest first. */
  result(): ServiceLogs {
    const lines: LogLine[] = [];
    for (let i = this.first; i < this.kept.length; i++) lines.push(this.kept[i]!.line);
    return { lines, truncated: this.cut };
  }

  // `JSON.stringify(lines)` is 1 + Σ cost for one line or more ("[" + lines and commas + "]").
  private fit(): void {
    while (1 + this.total > this.maxBytes && this.kept.length - this.first > 1) this.dropOldest();
    if (1 + this.total <= this.maxBytes || this.kept.length === this.first) return;
    const only = this.kept[this.first]!;
    const overhead = lineOverhead(only.line.at, only.line.stream);
    this.cut = true;
    if (this.open.get(only.line.stream) === only) this.open.set(only.line.stream, "skip");
    const budget = this.maxBytes - 1 - overhead;
    if (budget < 0) {
      this.dropOldest();
      return;
    }
    only.line.text = cutJsonText(only.line.text, budget);
    this.total = overhead + jsonTextBytes(only.line.text);
    only.cost = this.total;
  }

  /** Lines before the kept ones were dropped: when `cut`, to fit the bytes; else past the tail. */
  private dropOldest(cut = true): void {
    const e = this.kept[this.first]!;
    this.kept[this.first] = undefined;
    this.first++;
    this.total -= e.cost;
    if (cut) this.cut = true;
    if (this.open.get(e.line.stream) === e) this.open.set(e.line.stream, "skip");
    if (this.first > 1024 && this.first * 2 > this.kept.length) {
      this.kept.splice(0, this.first);
      this.first = 0;
    }
  }
}
