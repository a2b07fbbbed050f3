// The local-first journal: every transition of a deployment's machine is appended (redacted) to
// `<stateDir>/journal/<deployment>.jsonl` and fsynced before it is published, so an offline or
// crashing device loses nothing. `n` is contiguous from 1 per deployment. Once events are in the
// stream and a snapshot checkpoint covers them, `compact` drops them from the file and from memory,
// so neither grows with a deployment's age (a crash-looping service adds ~6,000 events a day).
//
// A write that fails (a full disk, an I/O error) is retried with backoff until it succeeds, in
// order, after cutting off whatever part of the line did reach the file; later events queue behind
// it, nothing is lost or reordered, and the fault is reported. Damage found when a file is read is
// dealt with and reported too: a torn last line is cut, a file damaged before its end is moved aside
// and the deployment taken back from the stream (docs/design.md, "Storage faults").
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, truncateSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { decode } from "../../contracts/decode.js";
import type { MachineState } from "../../contracts/deployment-state.codec.js";
import { JournalEvent, JournalEventV2, type DomainEvent } from "../../contracts/journal-event.codec.js";
import { deviceOrDeploymentNameProblem } from "../../contracts/names.js";
import { sleep } from "../../fleet/sleep.js";
import { fsyncDir, removeStaleTemps, StorageError, writeFileDurably } from "./durable-file.js";
import { redactEvent } from "./redact.js";
import type { StorageHealth } from "./storage.health.js";

export { redactEvent, REDACTED } from "./redact.js";

export interface Transition {
  at: string;
  /** The cause in the journal's vocabulary (machines/journal.vocabulary.ts); env values are redacted here. */
  event: DomainEvent;
  from: MachineState;
  to: MachineState;
}

export class JournalCorruptError extends Error {
  constructor(readonly file: string, readonly line: number, why: string) {
    super(`journal ${file} line ${line}: ${why}`);
    this.name = "JournalCorruptError";
  }
}

const SUFFIX = ".jsonl";

export interface JournalOptions {
  /** Where faults are counted and logged. */
  health?: StorageHealth;
  /** Backoff of a failed write: first pause and cap (ms); default 500 and 15,000. */
  retry?: { firstMs: number; maxMs: number };
}

/** The backoff after the `attempt`-th failed write (1-based): doubling from `firstMs`, capped. */
export const retryDelayMs = (attempt: number, r: { firstMs: number; maxMs: number }) => Math.min(r.maxMs, r.firstMs * 2 ** Math.min(attempt - 1, 20));
/** The file's form of events: one JSON line each. */
const linesOf = (events: readonly JournalEvent[]) => events.map((e) => `${JSON.stringify(JournalEvent.encode(e))}\n`).join("");

export class EventJournal {
  /** Per deployment, the events in the file: n = base + 1 … base + length. */
  private readonly events = new Map<string, JournalEvent[]>();
  private readonly bases = new Map<string, number>();
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly listeners = new Set<(e: JournalEvent) => void>();
  private readonly faultListeners = new Set<(deployment: string, fault: StorageError | null) => void>();
  /** Per deployment, the write that is failing right now (cleared once it succeeds). */
  private readonly faults = new Map<string, StorageError>();
  /** Per deployment, the byte length of the file's valid content (what a failed write is cut back to). */
  private readonly sizes = new Map<string, number>();
  /** Per deployment, the events of a file damaged before its end, up to the damage (see `salvaged`). */
  private readonly salvage = new Map<string, JournalEvent[]>();
  private readonly closing = new AbortController();
  private readonly retry: { firstMs: number; maxMs: number };

  private constructor(readonly dir: string, readonly device: string, private readonly o: JournalOptions) {
    this.retry = o.retry ?? { firstMs: 500, maxMs: 15_000 };
  }

  /** Opens (creating) `<stateDir>/journal` for `device`. */
  static open(stateDir: string, device: string, o: JournalOptions = {}): EventJournal {
    const problem = deviceOrDeploymentNameProblem(device);
    if (problem) throw new Error(`invalid device id: ${problem}`);
    const dir = join(stateDir, "journal");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    removeStaleTemps(dir);
    return new EventJournal(dir, device, o);
  }

  fileOf(deployment: string) {
    return join(this.dir, `${deployment}${SUFFIX}`);
  }

  /** Deployments that have a journal file. */
  deployments(): string[] {
    const found = new Set<string>();
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith(SUFFIX)) continue;
      const name = f.slice(0, -SUFFIX.length);
      if (deviceOrDeploymentNameProblem(name) === null) found.add(name);
    }
    for (const d of this.events.keys()) found.add(d);
    return [...found].sort();
  }

  /**
   * The deployment's events still in the journal, n = base + 1 … k (a copy; see `base`). A torn last
   * line (crash mid-append) is dropped.
   */
  read(deployment: string): JournalEvent[] {
    return [...this.load(deployment)];
  }

  /** Number of the last event compacted away (0 when none): `read` starts after it. */
  base(deployment: string): number {
    this.load(deployment);
    return this.bases.get(deployment) ?? 0;
  }

  /** Number of the last event, 0 when none. */
  lastN(deployment: string): number {
    return this.base(deployment) + this.load(deployment).length;
  }

  /**
   * Appends the next event of `deployment` (n = last + 1, assigned now, in call order) with its
   * cause redacted; resolves once the line is on disk (fsynced). A failed write is retried with
   * backoff (see `fault`) until it succeeds or the journal is closed, which rejects it.
   */
  append(deployment: string, t: Transition): Promise<JournalEvent> {
    const problem = deviceOrDeploymentNameProblem(deployment);
    if (problem) return Promise.reject(new Error(`invalid deployment name: ${problem}`));
    const list = this.load(deployment);
    // Written as version 2 only; a journal that began as version 1 goes on in version 2.
    const candidate = { v: 2, device: this.device, deployment, n: this.lastN(deployment) + 1, at: t.at, event: redactEvent(t.event), from: t.from, to: t.to };
    const checked = decode(JournalEventV2, candidate);
    if (!checked.ok) return Promise.reject(new Error(`invalid journal event: ${checked.errors.join("; ")}`));
    const ev = checked.value;
    list.push(ev);
    const line = linesOf([ev]);
    const file = this.fileOf(deployment);
    const prev = this.tails.get(deployment) ?? Promise.resolve();
    const write = prev.then(async () => {
      if (this.durableN(deployment) !== ev.n - 1) throw new Error(`journal of ${deployment}: event ${ev.n - 1} is not on disk, so ${ev.n} is not written`);
      await this.untilWritten(deployment, `journal append (event ${ev.n})`, () => this.appendLine(deployment, file, line));
      this.durableCount.set(deployment, ev.n);
    });
    // Only a closed journal makes a write give up; the events after it are refused (never written
    // after a gap), and a reopened journal goes on after the last line on disk.
    this.tails.set(deployment, write);
    return write.then(() => {
      for (const l of this.listeners) l(ev);
      return ev;
    });
  }

  /** The write of `deployment` that is failing right now, or null. */
  fault(deployment: string): StorageError | null {
    return this.faults.get(deployment) ?? null;
  }

  /** Calls `listener` when a deployment's writes start failing (with the error) or recover (null). */
  onFault(listener: (deployment: string, fault: StorageError | null) => void): () => void {
    this.faultListeners.add(listener);
    return () => this.faultListeners.delete(listener);
  }

  /**
   * Stops retrying failed writes (a stopping agent): they reject, and so do the appends queued
   * behind them. What is on disk stays valid.
   */
  close(): void {
    this.closing.abort();
  }

  /**
   * Events of this deployment's journal file as far as it read back, when the file was damaged
   * before its end and moved aside (n = 1…k, or empty): recovery compares them with the stream's.
   */
  salvaged(deployment: string): JournalEvent[] {
    this.load(deployment);
    return [...(this.salvage.get(deployment) ?? [])];
  }

  /** Appends `line`, first cutting the file back to its valid length (a failed attempt may have left part of a line). */
  private async appendLine(deployment: string, file: string, line: string) {
    const size = this.sizes.get(deployment) ?? 0;
    const fh = await open(file, "a", 0o600);
    try {
      // Bytes past the valid length are what a failed attempt left: half a line.
      const st = await fh.stat();
      if (st.isFile() && st.size > size) await fh.truncate(size);
      await fh.appendFile(line);
      await fh.sync();
    } finally {
      await fh.close();
    }
    this.sizes.set(deployment, size + Buffer.byteLength(line));
    // The file may be new: make its directory entry durable too (once per deployment and process).
    if (!this.dirSynced.has(deployment)) {
      fsyncDir(this.dir);
      this.dirSynced.add(deployment);
    }
  }

  /** Runs a write until it succeeds, with backoff, reporting the fault while it lasts. */
  private async untilWritten(deployment: string, what: string, write: () => Promise<void>) {
    const file = this.fileOf(deployment);
    for (let attempt = 1; ; attempt++) {
      try {
        await write();
        break;
      } catch (e) {
        const err = StorageError.of(what, file, e);
        this.faults.set(deployment, err);
        const wait = retryDelayMs(attempt, this.retry);
        this.o.health?.note({ kind: "write_failures", path: file, fault: err.message, action: `retried in ${wait} ms (attempt ${attempt}); later events of ${deployment} wait in order` });
        if (attempt === 1) for (const l of this.faultListeners) l(deployment, err);
        if (this.closing.signal.aborted) throw err;
        await sleep(wait, this.closing.signal);
        if (this.closing.signal.aborted) throw err;
      }
    }
    if (this.faults.delete(deployment)) for (const l of this.faultListeners) l(deployment, null);
  }

  /**
   * Takes a deployment's history from elsewhere (the stream) into an empty local journal, so that
   * the next append continues its numbering. The events must be n = 1..k of this deployment.
   */
  async adopt(deployment: string, events: readonly JournalEvent[]): Promise<void> {
    const list = this.load(deployment);
    if (this.lastN(deployment) > 0) throw new Error(`journal of ${deployment} is not empty`);
    events.forEach((e, i) => {
      if (e.n !== i + 1 || e.device !== this.device || e.deployment !== deployment) throw new Error(`adopted event ${i + 1} of ${deployment} is not n=${i + 1} of this deployment`);
    });
    const text = linesOf(events);
    const file = this.fileOf(deployment);
    try {
      await writeFileDurably(file, text, "adopting the stream's history into");
    } catch (e) {
      this.o.health?.note({ kind: "write_failures", path: file, fault: (e as Error).message, action: "the deployment waits; taking its history back is tried again with its next desired value" });
      throw e;
    }
    this.sizes.set(deployment, Buffer.byteLength(text));
    list.push(...events);
    this.durableCount.set(deployment, this.lastN(deployment));
    // Adopted events are durable events like appended ones: the publisher must learn of the deployment.
    for (const e of events) for (const l of this.listeners) l(e);
  }

  /** Calls `listener` after each append (or adopted event) is on disk; returns the unsubscribe function. */
  onAppend(listener: (e: JournalEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when every append issued so far is on disk. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.tails.values()]);
  }

  /** Number of the last event on disk (what a publisher may send up to). */
  durableN(deployment: string): number {
    this.load(deployment);
    return this.durableCount.get(deployment) ?? 0;
  }

  /** Event `n` if it is on disk and not compacted away. */
  durableAt(deployment: string, n: number): JournalEvent | undefined {
    const base = this.base(deployment);
    return n > base && n <= this.durableN(deployment) ? this.load(deployment)[n - base - 1] : undefined;
  }

  /**
   * Drops events n ≤ `throughN` from the file (rewritten atomically) and from memory. The caller
   * vouches that they are in the stream and that a checkpoint at or after `throughN` is on disk.
   * The last event always stays, so a reopened journal knows its numbering.
   */
  compact(deployment: string, throughN: number): Promise<void> {
    const prev = this.tails.get(deployment) ?? Promise.resolve();
    const run = prev.then(async () => {
      const base = this.base(deployment);
      const through = Math.min(throughN, this.durableN(deployment) - 1);
      if (through <= base) return;
      const list = this.load(deployment);
      // Only what is on disk: appends issued after this call are in memory already but write after it.
      const kept = linesOf(list.slice(through - base, this.durableN(deployment) - base));
      try {
        await writeFileDurably(this.fileOf(deployment), kept, "compacting");
      } catch (e) {
        this.o.health?.note({ kind: "write_failures", path: this.fileOf(deployment), fault: (e as Error).message, action: "not compacted: the journal keeps its older events until the next checkpoint" });
        throw e;
      }
      this.sizes.set(deployment, Buffer.byteLength(kept));
      list.splice(0, through - base);
      this.bases.set(deployment, through);
    });
    // Appends wait for it (they append to the file it replaces). A failed compaction leaves the file
    // as it was and does not stop later appends; a failed append before it still does.
    this.tails.set(deployment, prev.then(() => run.catch(() => undefined)));
    return run;
  }

  private readonly dirSynced = new Set<string>();
  private readonly durableCount = new Map<string, number>();

  private load(deployment: string): JournalEvent[] {
    const cached = this.events.get(deployment);
    if (cached) return cached;
    const file = this.fileOf(deployment);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      text = "";
    }
    let parsed: ReturnType<typeof parseJournal>;
    try {
      parsed = parseJournal(text, file, this.device, deployment);
    } catch (e) {
      if (!(e instanceof JournalCorruptError)) throw e;
      return this.quarantine(deployment, file, text, e);
    }
    const { events, base, validBytes, torn } = parsed;
    // Cut a torn tail so the next append does not glue itself to half a line.
    if (torn) {
      const dropped = Buffer.byteLength(text) - validBytes;
      truncateSync(file, validBytes);
      const fd = openSync(file, "r+");
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      this.o.health?.note({
        kind: "torn_lines",
        path: file,
        fault: `torn last line (${dropped} bytes after event ${base + events.length}): a write cut short by a crash or power cut`,
        action: `cut off; the journal goes on at event ${base + events.length + 1}`,
      });
    }
    this.events.set(deployment, events);
    this.bases.set(deployment, base);
    this.sizes.set(deployment, validBytes);
    this.durableCount.set(deployment, base + events.length);
    return events;
  }

  /**
   * A file damaged before its last line can't be trusted from there on, nor extended: it is moved
   * aside (kept for inspection) and the deployment's local journal starts empty, so recovery takes
   * its history back from the stream; what read back before the damage is kept as `salvaged`.
   */
  private quarantine(deployment: string, file: string, text: string, e: JournalCorruptError): JournalEvent[] {
    const aside = `${file}.corrupt`;
    let moved = true;
    try {
      renameSync(file, aside);
      fsyncDir(this.dir);
    } catch {
      // A read-only card: the next append cuts the file back to nothing (see appendLine).
      moved = false;
    }
    const valid = text.split("\n").slice(0, e.line - 1).join("\n");
    let prefix: JournalEvent[] = [];
    try {
      prefix = parseJournal(valid === "" ? "" : `${valid}\n`, file, this.device, deployment).events;
    } catch {
      prefix = [];
    }
    this.salvage.set(deployment, prefix[0]?.n === 1 ? prefix : []);
    this.o.health?.note({
      kind: "corrupt_files",
      path: file,
      fault: e.message,
      action: `${moved ? `moved to ${aside}` : "could not be moved aside"}; the deployment is taken back from the stream (${prefix.length} event(s) before the damage kept to compare)`,
    });
    const events: JournalEvent[] = [];
    this.events.set(deployment, events);
    this.bases.set(deployment, 0);
    this.sizes.set(deployment, 0);
    this.durableCount.set(deployment, 0);
    return events;
  }
}

/**
 * Parses a journal file's text; a torn last line (no newline, or undecodable) is dropped. The first
 * event gives the base (a compacted journal starts after n = 1); the rest must follow it.
 */
export function parseJournal(text: string, file: string, device: string, deployment: string) {
  const events: JournalEvent[] = [];
  let base = 0;
  let offset = 0;
  let validBytes = 0;
  let torn = false;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const last = i === lines.length - 1;
    const isFinalText = last || (i === lines.length - 2 && lines[lines.length - 1] === "");
    if (last) {
      // Text after the last newline: empty when the file ends cleanly, else a torn write.
      if (line !== "") torn = true;
      break;
    }
    const bytes = Buffer.byteLength(line) + 1;
    let problem: string | null = null;
    let ev: JournalEvent | undefined;
    try {
      const u: unknown = JSON.parse(line);
      // `is` is the fast path (a long journal is read at every start); decode says what is wrong.
      if (JournalEvent.is(u)) ev = u;
      else {
        const r = decode(JournalEvent, u);
        if (!r.ok) problem = r.errors.join("; ");
        else ev = r.value;
      }
    } catch (e) {
      problem = `malformed JSON: ${(e as Error).message}`;
    }
    if (ev && problem === null) {
      if (ev.device !== device || ev.deployment !== deployment) problem = `event of ${ev.device}/${ev.deployment} in the journal of ${device}/${deployment}`;
      else if (events.length === 0) base = ev.n - 1;
      else if (ev.n !== base + events.length + 1) problem = `expected n=${base + events.length + 1}, got n=${ev.n}`;
    }
    if (problem !== null) {
      // Only the last line can be half-written by a crash; anything earlier is real damage.
      if (isFinalText) {
        torn = true;
        break;
      }
      throw new JournalCorruptError(file, i + 1, problem);
    }
    events.push(ev!);
    offset += bytes;
    validBytes = offset;
  }
  return { events, base, validBytes, torn };
}
