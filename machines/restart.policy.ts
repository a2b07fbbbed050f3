// When a service that failed is tried again: the one backoff of restarts (a dead or unhealthy
// service) and of forward retries (a failed pull, start or readiness step). Pure: the machine calls
// it with the times its events carry, so a replay of the journal decides exactly as the live run did.

export interface Backoff {
  /** Delay of the second try; the first is at once. */
  baseMs: number;
  /** No delay grows past this. */
  capMs: number;
  /** A service that has run this long since its last try starts again from "at once". */
  resetAfterMs: number;
}

/** Kubernetes' CrashLoopBackOff numbers: at once, then 10 s doubling to 5 min, reset after 10 min up. */
export const DEFAULT_BACKOFF: Backoff = { baseMs: 10_000, capMs: 300_000, resetAfterMs: 600_000 };

/** What the backoff remembers of one service (or one deployment's forward retries). */
export interface Tries {
  /** Failures in a row, each followed by a try; 0 before the first. */
  streak: number;
  /** When the last try was due (epoch ms), or null before the first. */
  lastTryAt: number | null;
}

export const NO_TRIES: Tries = { streak: 0, lastTryAt: null };

/** The delay before try number `streak + 1` of a run of failures. */
export function delayMs(streak: number, b: Backoff): number {
  if (streak <= 0) return 0;
  // 2^(streak-1) overflows to Infinity long before streak does; the cap bounds it either way.
  return Math.min(b.capMs, b.baseMs * 2 ** Math.min(streak - 1, 52));
}

/**
 * A failure at `failedAt`: when to try again, and what to remember. A streak is forgotten once the
 * last try has held for `resetAfterMs` (it ran that long before failing again).
 */
export function nextTry(prev: Tries, failedAt: number, b: Backoff): { at: number; tries: Tries } {
  const held = prev.lastTryAt !== null && failedAt - prev.lastTryAt >= b.resetAfterMs;
  const streak = held ? 0 : prev.streak;
  const at = failedAt + delayMs(streak, b);
  return { at, tries: { streak: streak + 1, lastTryAt: at } };
}

/**
 * How long a service that was tried again at `lastTryAt` must keep working before it counts as
 * well: as long as its next delay would be, so that a crash loop never shows as Running between
 * its crashes, while a single crash is forgotten after one base delay.
 */
export function settlesAt(t: Tries, b: Backoff): number | null {
  return t.lastTryAt === null ? null : t.lastTryAt + Math.max(b.baseMs, delayMs(t.streak, b));
}

/** A backoff with some fields given (agent options, tests), the rest defaulted; reset follows the cap. */
export function backoffOf(p: Partial<Backoff> = {}): Backoff {
  const capMs = p.capMs ?? (p.baseMs !== undefined ? Math.max(p.baseMs, (p.baseMs * DEFAULT_BACKOFF.capMs) / DEFAULT_BACKOFF.baseMs) : DEFAULT_BACKOFF.capMs);
  const baseMs = p.baseMs ?? Math.min(DEFAULT_BACKOFF.baseMs, capMs);
  return { baseMs, capMs, resetAfterMs: p.resetAfterMs ?? 2 * capMs };
}
