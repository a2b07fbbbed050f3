// Whether a NATS connection is up right now, and a way to wait for it to come back: components
// that queue while NATS is away use this instead of piling requests into the client's buffer.
import type { NatsConnection, Status } from "@nats-io/transport-node";

export class OnlineTracker {
  private up = true;
  private waiters: Array<() => void> = [];
  private readonly reconnectListeners = new Set<() => void>();
  private readonly iter: AsyncIterable<Status> & { stop?: () => void };

  constructor(readonly nc: NatsConnection) {
    const iter = nc.status();
    this.iter = iter;
    void (async () => {
      for await (const s of iter) {
        if (s.type === "disconnect") this.up = false;
        else if (s.type === "reconnect") {
          this.up = true;
          this.release();
          for (const l of this.reconnectListeners) l();
        } else if (s.type === "close") {
          this.up = false;
        }
      }
    })();
  }

  get online(): boolean {
    return this.up && !this.nc.isClosed();
  }

  /** Resolves when the connection is up (at once if it is), or when `signal` aborts. */
  wait(signal?: AbortSignal): Promise<void> {
    if (this.online || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      signal?.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  /** Calls `listener` after every reconnect; returns the unsubscribe function. */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  close() {
    this.iter.stop?.();
    this.release();
  }

  private release() {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

/** A connection that may still be being established (an agent that booted offline). */
export type ConnectionSource = NatsConnection | Promise<NatsConnection>;

/** `source` once connected, or null if `signal` aborts first (a component stopped while offline). */
export function connectionOrAbort(source: ConnectionSource, signal: AbortSignal): Promise<NatsConnection | null> {
  if (signal.aborted) return Promise.resolve(null);
  const aborted = new Promise<null>((resolve) => signal.addEventListener("abort", () => resolve(null), { once: true }));
  return Promise.race([Promise.resolve(source), aborted]);
}
