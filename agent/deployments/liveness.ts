// Liveness of the running deployments of this device, as runtime observation: it follows the
// runtime's event stream of the device's containers (a death is seen in well under a second), runs
// each service's health check on the service's own interval, and sweeps a device-wide list at each
// tick and after the stream reconnects (the safety net). It decides nothing: it tells a deployment's
// machine only what changed (a recorded container died, its health turned), as typed events, and the
// machine decides restarts and their backoff (docs/design.md, "Service health"). What it saw in
// between (a container started again, a check's latest status) is observation the report shows.
import type { Logger } from "pino";
import type { ServiceStatus } from "../../contracts/deployment-state.codec.js";
import type { Health } from "../../contracts/score.codec.js";
import type { ContainerEvent, ContainerRuntime, ManagedContainer } from "../../runtime/container-runtime.js";

type ServiceRunState = ServiceStatus["state"];
type ServiceHealthState = ServiceStatus["health"];

/** What a deployment's machine records of one service, as the liveness needs it. */
export interface WatchedService {
  service: string;
  /** The recorded container. */
  id: string;
  health: Health | undefined;
  /** When the machine restarts it next, or last did; null before its first restart. */
  restartAt: number | null;
  /** The machine took it as unhealthy and has not heard of a pass since. */
  unhealthy: boolean;
}

export interface WatchedDeployment {
  deployment: string;
  /**
   * Whether the machine takes liveness events now (running, failed): in other states its steps own
   * the containers (a stop is not a crash), and readiness checks its own health.
   */
  live: boolean;
  services: WatchedService[];
}

/** The events the liveness sends a deployment's machine: changes only. */
export type LivenessEvent =
  | { type: "SERVICE_EXITED"; service: string; exitCode: number | null; at: number }
  | { type: "SERVICE_UNHEALTHY"; service: string; output: string; at: number }
  | { type: "SERVICE_HEALTHY"; service: string; output: string; at: number };

/** A recorded container's death, as the step that waits for readiness needs it. */
export interface Death {
  exitCode: number | null;
  at: number;
}

/** What the deployment steps ask of the liveness (agent/deployments/executor.ts). */
export interface StepLiveness {
  /** Resolves when the container dies or is removed; `signal` abandons the wait. */
  death(id: string, signal: AbortSignal): Promise<Death>;
  /** The agent restarts this container now: its stop is not a crash. Call the result when done. */
  restarting(id: string): () => void;
  /** When the container was last seen to start, if it was (a restart already carried out). */
  startedAt(id: string): number | null;
  /** A health check a step ran (readiness): what it says is what the report shows, until the next. */
  checked?(id: string, status: ServiceHealthState): void;
}

export interface LivenessOptions {
  runtime: ContainerRuntime;
  logger: Logger;
  now: () => number;
  /** Every deployment with what its machine records, read at the moment of use. */
  watched(): WatchedDeployment[];
  /** A change the deployment's machine takes (and journals). */
  send(deployment: string, e: LivenessEvent): void;
  /** Something a report shows changed without a machine event (a restart happened, a check's status). */
  changed(deployment: string): void;
  /**
   * How long a restart the machine scheduled may take to show before a container still seen dead
   * is taken for a new death. Default 10 s.
   */
  restartGraceMs?: number;
  /** The time between a service's checks; default its `interval_secs` (tests shorten it). */
  healthIntervalMs?: (h: Health) => number;
}

interface Seen {
  state: ServiceRunState;
  health: ServiceHealthState;
  /** When the runtime last said it died. */
  diedAt: number | null;
  /** When the runtime last said it started. */
  startedAt: number | null;
}

interface Check {
  timer: NodeJS.Timeout | null;
  running: boolean;
  intervalMs: number;
}

const HEALTH_INTERVAL_DEFAULT_SECS = 30;

export class Liveness implements StepLiveness {
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private watching: Promise<void> | null = null;
  /** By container id. */
  private readonly seen = new Map<string, Seen>();
  private readonly deaths = new Map<string, Set<(d: Death) => void>>();
  private readonly restartsInFlight = new Map<string, number>();
  private readonly checks = new Map<string, Check>();
  private sweeping: Promise<void> | null = null;
  /** Health checks run, for the benchmark. */
  checksRun = 0;

  constructor(private readonly o: LivenessOptions) {
    this.log = o.logger.child({ component: "liveness" });
  }

  /** Follows the runtime's events until stop(). */
  start(): void {
    if (this.watching) return;
    this.watching = this.o.runtime
      .watchContainers(
        {
          connected: ({ reconnected }) => {
            // Deaths while the stream was down were not delivered: look at every container once.
            if (reconnected) {
              this.log.info("container event stream reconnected: sweeping");
              void this.sweep();
            }
          },
          event: (e) => this.onEvent(e),
          error: (e) => this.log.warn({ err: e.message }, "container event stream"),
        },
        this.abort.signal,
      )
      .catch((e: Error) => this.log.error({ err: e.message }, "container event stream ended"));
    this.sync();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const c of this.checks.values()) if (c.timer) clearTimeout(c.timer);
    this.checks.clear();
    await this.watching;
    await this.sweeping;
  }

  /** What the liveness last saw of a container: its run state and health. */
  view(id: string): { state: ServiceRunState; health: ServiceHealthState } | null {
    const s = this.seen.get(id);
    return s ? { state: s.state, health: s.health } : null;
  }

  /**
   * The safety net: every recorded container of a live deployment that a device-wide list does not
   * show running is a death (unless a restart of it is under way). `listed` is the tick's list.
   */
  sweep(listed?: ManagedContainer[]): Promise<void> {
    if (this.sweeping) return this.sweeping;
    this.sweeping = (async () => {
      let all = listed;
      if (!all) {
        try {
          all = await this.o.runtime.list();
        } catch (e) {
          this.log.warn({ err: (e as Error).message }, "sweep: listing containers failed");
          return;
        }
      }
      const byId = new Map(all.map((c) => [c.id, c]));
      const at = this.o.now();
      for (const d of this.o.watched()) {
        for (const s of d.services) {
          const c = byId.get(s.id);
          if (c?.state === "running") {
            this.note(d.deployment, s.id, { state: "running" });
            continue;
          }
          this.note(d.deployment, s.id, { state: c ? "exited" : "missing" });
          if (d.live) this.died(d, s, c?.exitCode ?? null, this.seen.get(s.id)?.diedAt ?? null, at);
        }
      }
      this.sync();
    })().finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  /**
   * Brings the health checks in line with what the machines record: one check per recorded
   * container of a live deployment with a health check, on the service's interval. Called after
   * every transition and every tick.
   */
  sync(): void {
    if (this.abort.signal.aborted) return;
    const wanted = new Map<string, number>();
    for (const d of this.o.watched()) {
      if (!d.live) continue;
      for (const s of d.services) if (s.health) wanted.set(s.id, this.o.healthIntervalMs?.(s.health) ?? (s.health.interval_secs ?? HEALTH_INTERVAL_DEFAULT_SECS) * 1000);
    }
    for (const [id, c] of this.checks) {
      if (wanted.has(id)) continue;
      if (c.timer) clearTimeout(c.timer);
      this.checks.delete(id);
    }
    for (const [id, intervalMs] of wanted) {
      const c = this.checks.get(id);
      if (c && c.intervalMs === intervalMs) continue;
      if (c?.timer) clearTimeout(c.timer);
      const check: Check = { timer: null, running: false, intervalMs };
      this.checks.set(id, check);
      this.schedule(id, check);
    }
  }

  // ---- StepLiveness -----------------------------------------------------------------------

  death(id: string, signal: AbortSignal): Promise<Death> {
    return new Promise((resolve) => {
      if (signal.aborted) return;
      const waiters = this.deaths.get(id) ?? new Set();
      this.deaths.set(id, waiters);
      const done = (d: Death) => {
        waiters.delete(done);
        if (waiters.size === 0) this.deaths.delete(id);
        resolve(d);
      };
      waiters.add(done);
      signal.addEventListener("abort", () => {
        waiters.delete(done);
        if (waiters.size === 0) this.deaths.delete(id);
      }, { once: true });
    });
  }

  restarting(id: string): () => void {
    this.restartsInFlight.set(id, (this.restartsInFlight.get(id) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const n = (this.restartsInFlight.get(id) ?? 1) - 1;
      if (n > 0) this.restartsInFlight.set(id, n);
      else this.restartsInFlight.delete(id);
    };
  }

  startedAt(id: string): number | null {
    return this.seen.get(id)?.startedAt ?? null;
  }

  checked(id: string, status: ServiceHealthState): void {
    const found = this.find(id);
    if (found) this.note(found[0].deployment, id, { health: status });
    else this.seen.set(id, { ...(this.seen.get(id) ?? { state: "running", health: "starting", diedAt: null, startedAt: null }), health: status });
  }

  // ---- internals --------------------------------------------------------------------------

  private onEvent(e: ContainerEvent): void {
    const at = Date.parse(e.at);
    if (e.type === "died" || e.type === "removed") {
      const exitCode = e.type === "died" ? e.exitCode : null;
      for (const w of [...(this.deaths.get(e.id) ?? [])]) w({ exitCode, at });
    }
    const found = this.find(e.id);
    if (!found) return;
    const [d, s] = found;
    switch (e.type) {
      case "started":
        // Started again (by the agent's restart, or an adoption): its health starts afresh.
        this.note(d.deployment, e.id, { state: "running", health: s.health ? "starting" : "none", diedAt: null, startedAt: at });
        return;
      case "died":
        this.note(d.deployment, e.id, { state: "exited", diedAt: at });
        if (d.live) this.died(d, s, e.exitCode, at, this.o.now());
        return;
      case "removed":
        this.note(d.deployment, e.id, { state: "missing", diedAt: this.seen.get(e.id)?.diedAt ?? at });
        if (d.live) this.died(d, s, null, at, this.o.now());
        return;
      case "health":
        // Podman 4.3.1 sends the status from before the check that just began: the agent's own
        // checks (check()) are what it goes by.
        return;
    }
  }

  /**
   * A recorded container of a live deployment was seen dead (at `diedAt` when the runtime said when).
   * It is news to its machine unless it is the agent's own restart, or the machine took this death
   * already: a restart is due at or after it, or (a death the stream did not date) was due so
   * recently that it may still be under way.
   */
  private died(d: WatchedDeployment, s: WatchedService, exitCode: number | null, diedAt: number | null, now: number): void {
    if (this.restartsInFlight.has(s.id)) return;
    if (s.restartAt !== null) {
      if (diedAt !== null ? diedAt <= s.restartAt : now - s.restartAt < (this.o.restartGraceMs ?? 10_000)) return;
    }
    this.log.info({ deployment: d.deployment, service: s.service, id: s.id.slice(0, 12), exitCode }, "service died");
    this.o.send(d.deployment, { type: "SERVICE_EXITED", service: s.service, exitCode, at: now });
  }

  private health(d: WatchedDeployment, s: WatchedService, status: Exclude<ServiceHealthState, "none"> | "none", output: string): void {
    const before = this.seen.get(s.id)?.health;
    this.note(d.deployment, s.id, { health: status });
    if (!d.live || this.restartsInFlight.has(s.id)) return;
    const at = this.o.now();
    // A turn is news to the machine: unhealthy after anything else (a restart made it `starting`),
    // healthy again after the machine took it as unhealthy.
    if (status === "unhealthy" && (before !== "unhealthy" || !s.unhealthy)) {
      if (s.restartAt !== null && s.restartAt > at) return; // a restart is due already
      this.log.warn({ deployment: d.deployment, service: s.service, output }, "service unhealthy");
      this.o.send(d.deployment, { type: "SERVICE_UNHEALTHY", service: s.service, output, at });
    } else if (status === "healthy" && s.unhealthy) {
      this.log.info({ deployment: d.deployment, service: s.service }, "service healthy again");
      this.o.send(d.deployment, { type: "SERVICE_HEALTHY", service: s.service, output, at });
    }
  }

  private schedule(id: string, check: Check): void {
    if (this.abort.signal.aborted || this.checks.get(id) !== check) return;
    check.timer = setTimeout(() => void this.check(id, check), check.intervalMs);
    check.timer.unref?.();
  }

  private async check(id: string, check: Check): Promise<void> {
    check.timer = null;
    if (this.checks.get(id) !== check || check.running) return;
    const found = this.find(id);
    const seen = this.seen.get(id);
    // Not running (dead, being restarted): nothing to check until it runs again.
    if (!found || seen?.state === "exited" || seen?.state === "missing" || this.restartsInFlight.has(id)) return this.schedule(id, check);
    check.running = true;
    try {
      this.checksRun += 1;
      const r = await this.o.runtime.healthcheck(id);
      const again = this.find(id);
      if (again && r.status !== "none") this.health(again[0], again[1], r.status, r.output);
    } catch (e) {
      // A container that is not running or gone is the event stream's or the sweep's to report.
      this.log.debug({ id: id.slice(0, 12), err: (e as Error).message }, "health check did not run");
    } finally {
      check.running = false;
      this.schedule(id, check);
    }
  }

  private find(id: string): [WatchedDeployment, WatchedService] | null {
    for (const d of this.o.watched()) for (const s of d.services) if (s.id === id) return [d, s];
    return null;
  }

  /** Records what was seen of a container; tells the report when that changes what it shows. */
  private note(deployment: string, id: string, patch: Partial<Seen>): void {
    const prev: Seen = this.seen.get(id) ?? { state: "running", health: "starting", diedAt: null, startedAt: null };
    const next = { ...prev, ...patch };
    this.seen.set(id, next);
    if (prev.state !== next.state || prev.health !== next.health) this.o.changed(deployment);
    // Forget containers no machine records any more.
    if (this.seen.size > 4096) for (const k of this.seen.keys()) if (!this.find(k)) this.seen.delete(k);
  }
}
