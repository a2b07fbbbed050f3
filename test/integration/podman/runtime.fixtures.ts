// Shared by the PodmanRuntime suites on real Podman: service specs on the busybox test images, a
// watcher that records what it is told, and waiting on a condition with a deadline.
import { execFile } from "node:child_process";
import type { Health, PodmanService } from "../../../contracts/score.codec.js";
import type { StopSignal } from "../../../contracts/signals.js";
import type { ContainerEvent, ContainerWatcher, ServiceSpec } from "../../../runtime/container-runtime.js";
import { PODMAN_ENV_SCRIPT, TEST_IMAGES, type PodmanTestEnv } from "../../support/podman.env.js";

/**
 * Services the health and liveness suites need, on the v1 image (busybox), as spec options: pass
 * one to serviceSpec, e.g. `serviceSpec(env, "web", TEST_SERVICES.passesAfter3s)`.
 */
export const TEST_SERVICES = {
  /** Runs for a second, then exits 3: a death with a known exit code, every start. */
  exiting: { command: ["sh", "-c", "sleep 1; exit 3"] },
  /** Serves on 8080; its check always fails, printing why (retries 2, every second). */
  failingCheck: {
    health: { cmd: ["CMD-SHELL", "echo 'check failed: nothing listens on 8081'; exit 1"], interval_secs: 1, timeout_secs: 2, retries: 2 },
  },
  /** Serves on 8080; its check fails ("warming up") until 3 s after each start, then passes ("ready"). */
  passesAfter3s: {
    command: ["sh", "-c", "rm -f /tmp/ready; (sleep 3; echo ready > /tmp/ready) & exec httpd -f -p 8080 -h /www"],
    health: { cmd: ["CMD-SHELL", "cat /tmp/ready || { echo warming up; exit 1; }"], interval_secs: 1, timeout_secs: 2, retries: 10 },
  },
} satisfies Record<string, SpecOptions>;

export interface SpecOptions {
  deployment?: string;
  image?: string;
  command?: string[];
  health?: Health;
  volumes?: PodmanService["volumes"];
  grace?: number;
  stopSignal?: StopSignal;
  hash?: string;
}

/** A service on the v1 image (busybox: sh, httpd, sleep), in a deployment unique to the run. */
export function serviceSpec(env: PodmanTestEnv, name: string, o: SpecOptions = {}): ServiceSpec {
  const service: PodmanService = { name, image: o.image ?? TEST_IMAGES.v1 };
  if (o.command) service.command = o.command;
  if (o.health) service.health = o.health;
  if (o.volumes) service.volumes = o.volumes;
  return {
    deployment: o.deployment ?? env.unique("dep"),
    service,
    lifecycle: { stop_signal: o.stopSignal ?? "SIGTERM", grace_period_secs: o.grace ?? 10 },
    scoreHash: o.hash ?? "sha256:fixture",
  };
}

/** Resolves with `f()`'s first truthy value; rejects naming `what` after `deadlineMs`. */
export async function until<T>(what: string, f: () => T | null | undefined | false | Promise<T | null | undefined | false>, deadlineMs = 15_000, everyMs = 50): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A ContainerWatcher that keeps everything it is told, with the local time it was told. */
export class RecordingWatcher implements ContainerWatcher {
  readonly events: Array<ContainerEvent & { receivedAt: number }> = [];
  readonly connections: Array<{ reconnected: boolean; at: number }> = [];
  readonly errors: Error[] = [];
  private readonly waiters: Array<() => void> = [];

  connected(info: { reconnected: boolean }): void {
    this.connections.push({ ...info, at: Date.now() });
    this.wake();
  }
  event(e: ContainerEvent): void {
    this.events.push({ ...e, receivedAt: Date.now() });
    this.wake();
  }
  error(e: Error): void {
    this.errors.push(e);
    this.wake();
  }

  /** Resolves once `pred` holds, checked at every call; rejects naming `what` after `ms`. */
  waitFor<T>(what: string, pred: () => T | undefined | null | false, ms = 15_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = pred();
        if (!v) return false;
        clearTimeout(timer);
        resolve(v);
        return true;
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(tick);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; got ${JSON.stringify(this.events.map((e) => `${e.type} ${e.name}`))}`));
      }, ms);
      const tick = () => {
        if (check()) this.waiters.splice(this.waiters.indexOf(tick), 1);
      };
      if (!check()) this.waiters.push(tick);
    });
  }

  event$(id: string, type: ContainerEvent["type"]) {
    return this.waitFor(`${type} of ${id.slice(0, 12)}`, () => this.events.find((e) => e.id === id && e.type === type));
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** Runs scripts/podman-env.sh (acting locally: no CONTAINER_HOST) with `args`. */
export function podmanEnvScript(args: string[]): Promise<string> {
  const env = { ...process.env };
  delete env.CONTAINER_HOST;
  delete env.CONTAINERS_CONF;
  return new Promise((resolve, reject) => {
    execFile("bash", [PODMAN_ENV_SCRIPT, ...args], { env, timeout: 120_000 }, (err, stdout, stderr) => (err ? reject(new Error(`podman-env.sh ${args.join(" ")}: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

export function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `n=${s.length} median ${s[Math.floor(s.length / 2)]!.toFixed(0)} ms, min ${s[0]!.toFixed(0)} ms, max ${s[s.length - 1]!.toFixed(0)} ms`;
}
