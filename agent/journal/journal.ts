// The local-first journal: every transition of a deployment's machine is appended (redacted) to
// `<stateDir>/journal/<deployment>.jsonl` and fsynced before it is published, so an offline or
// crashing device loses nothing. `n` is contiguous from 1 per deployment. Once events are in the
// stream and a snapshot checkpoint covers them, `compact` drops them from the file and from memory,
// so neither grows with a deployment's age (a crash-looping service adds ~6,000 events a day).
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, truncateSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { decode } from "../../contracts/decode.js";
import type { MachineState } from "../../contracts/deployment-state.codec.js";
import { JournalEvent, JournalEventV2, type DomainEvent } from "../../contracts/journal-event.codec.js";
import { deviceOrDeploymentNameProblem } from "../../contracts/names.js";
import { fsyncDir, writeFileDurably } from "./durable-file.js";
import { redactEvent } from "./redact.js";

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
/** The file's form of events: one JSON line each. */
const linesOf = (events: readonly JournalEvent[]) => events.map((e) => `${JSON.stringify(JournalEvent.encode(e))}\n`).join("");

export class EventJournal {
  /** Per deployment, the events in the file: n = base + 1 … base + length. */
  private readonly events = new Map<string, JournalEvent[]>();
  private readonly bases = new Map<string, number>();
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly listeners = new Set<(e: JournalEvent) => void>();

  private constructor(readonly dir: string, readonly device: string) {}

  /** Opens (creating) `<stateDir>/journal` for `device`. */
  static open(stateDir: string, device: string): EventJournal {
    const problem = deviceOrDeploymentNameProblem(device);
    if (problem) throw new Error(`invalid device id: ${problem}`);
    const dir = join(stateDir, "journal");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new EventJournal(dir, device);
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
   * cause redacted; resolves once the line is on disk (fsynced).
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
      const firstWrite = !this.dirSynced.has(deployment);
      const fh = await open(file, "a", 0o600);
      try {
        await fh.appendFile(line);
        await fh.sync();
      } finally {
        await fh.close();
      }
      // The file may be new: make its directory entry durable too (once per deployment and process).
      if (firstWrite) {
        fsyncDir(this.dir);
        this.dirSynced.add(deployment);
      }
      this.durableCount.set(deployment, ev.n);
    });
    // A failed write poisons the deployment's later appends: their n would follow a missing line.
    this.tails.set(deployment, write);
    return write.then(() => {
      for (const l of this.listeners) l(ev);
      return ev;
    });
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
    const fh = await open(this.fileOf(deployment), "a", 0o600);
    try {
      await fh.appendFile(linesOf(events));
      await fh.sync();
    } finally {
      await fh.close();
    }
    fsyncDir(this.dir);
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
      const kept = list.slice(through - base, this.durableN(deployment) - base);
      await writeFileDurably(this.fileOf(deployment), linesOf(kept));
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
    const { events, base, validBytes, torn } = parseJournal(text, file, this.device, deployment);
    // Cut a torn tail so the next append does not glue itself to half a line.
    if (torn) {
      truncateSync(file, validBytes);
      const fd = openSync(file, "r+");
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    this.events.set(deployment, events);
    this.bases.set(deployment, base);
    this.durableCount.set(deployment, base + events.length);
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
