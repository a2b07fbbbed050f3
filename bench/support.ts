// Bench helpers on top of the project: scores, a device-state waiter, a libpod request tracer,
// an in-process agent, and clean-up of what a bench wrote to NATS and Podman.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startAgent, type RunningAgent } from "../agent/agent.js";
import { silentLogger } from "../agent/logger.js";
import { ensureFleetResources, FLEET_BUCKETS } from "../fleet/resources.js";
import { canonicalHash } from "../contracts/canonical-json.js";
import type { DeploymentState } from "../contracts/deployment-state.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, STREAM_FLEET_EVENTS, deviceEventSubjects, deviceKeys } from "../contracts/wire-names.js";
import type { ContainerRuntime } from "../runtime/container-runtime.js";
import type { LibpodClient } from "../runtime/podman/libpod.client.js";

export interface ServiceDef {
  name: string;
  image: string;
}

export function scoreJson(services: ServiceDef[], graceSecs = 10, minReadySecs?: number): string {
  const lifecycle = { grace_period_secs: graceSecs, ...(minReadySecs === undefined ? {} : { min_ready_secs: minReadySecs }) };
  return JSON.stringify({ type: "PodmanV0", data: { services, lifecycle } });
}
export const scoreHashOf = (json: string) => canonicalHash(JSON.parse(json));

/** Waits on device-state values of the keys it watches, as the watch delivers them (no polling). */
export class StateWaiter {
  readonly latest = new Map<string, DeploymentState>();
  private waiters: Array<{ key: string; pred: (s: DeploymentState) => boolean; resolve: (v: { s: DeploymentState; at: number }) => void }> = [];
  private stopFn: (() => void) | null = null;

  static async start(kv: KV, keyFilter: string): Promise<StateWaiter> {
    const w = new StateWaiter();
    const it = await kv.watch({ key: keyFilter });
    w.stopFn = () => it.stop();
    void (async () => {
      for await (const e of it) {
        if (e.operation !== "PUT") continue;
        const at = performance.now();
        const s = e.json<DeploymentState>();
        w.latest.set(e.key, s);
        w.onState(e.key, s, at);
      }
    })();
    return w;
  }

  /** Hook for every delivered state (fleet bench counts converged devices with it). */
  onState: (key: string, s: DeploymentState, at: number) => void = (key, s, at) => this.check(key, s, at);

  check(key: string, s: DeploymentState, at: number) {
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.key === key && w.pred(s)) w.resolve({ s, at });
      else still.push(w);
    }
    this.waiters = still;
  }

  wait(key: string, pred: (s: DeploymentState) => boolean, timeoutMs = 120_000): Promise<{ s: DeploymentState; at: number }> {
    const cur = this.latest.get(key);
    if (cur && pred(cur)) return Promise.resolve({ s: cur, at: performance.now() });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting on ${key}; last: ${JSON.stringify(this.latest.get(key) ?? null)}`)), timeoutMs);
      this.waiters.push({
        key,
        pred,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
      });
    });
  }

  stop() {
    this.stopFn?.();
  }
}

export interface TracedRequest {
  method: string;
  ms: number;
  at: number;
}

/** Wraps the client's public request methods to record each call's duration (a latency profile). */
export function traceClient(client: LibpodClient): TracedRequest[] {
  const log: TracedRequest[] = [];
  const c = client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const m of ["inspect", "stop", "remove", "create", "start", "list", "imageExists", "pull", "version"]) {
    const orig = c[m]!.bind(client);
    c[m] = async (...a: unknown[]) => {
      const t0 = performance.now();
      try {
        return await orig(...a);
      } finally {
        log.push({ method: m, ms: performance.now() - t0, at: t0 });
      }
    };
  }
  return log;
}

export interface BenchAgent {
  agent: RunningAgent;
  device: string;
  stateDir: string;
  close(): Promise<void>;
}

export async function startBenchAgent(device: string, runtime: ContainerRuntime, natsUrl: string, opts: { tickSecs?: number; stateRoot?: string } = {}): Promise<BenchAgent> {
  const stateDir = mkdtempSync(join(opts.stateRoot ?? tmpdir(), `bench-${device}-`));
  const agent = await startAgent(
    { deviceId: device, natsServers: [natsUrl], stateDir, tickSecs: opts.tickSecs ?? 3600, logLevel: "silent", containerHost: undefined },
    { runtime, logger: silentLogger() },
  );
  await agent.online;
  return {
    agent,
    device,
    stateDir,
    async close() {
      await agent.stop(10_000);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export async function openKv(nc: NatsConnection) {
  await ensureFleetResources(nc);
  const kvm = new Kvm(nc);
  return { desired: await kvm.open(BUCKET_DESIRED_STATE), states: await kvm.open(BUCKET_DEVICE_STATE) };
}

export const connectBench = (servers: string, name = "fleet-bench") => connect({ servers, name });

/** Removes every key of `device` from the fleet buckets and purges its event subjects. */
export async function cleanupDevice(nc: NatsConnection, device: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const b of FLEET_BUCKETS) {
    await jsm.streams.purge(`KV_${b}`, { filter: `$KV.${b}.${device}` }).catch(() => undefined);
    await jsm.streams.purge(`KV_${b}`, { filter: `$KV.${b}.${deviceKeys(device)}` }).catch(() => undefined);
  }
  await jsm.streams.purge(STREAM_FLEET_EVENTS, { filter: deviceEventSubjects(device) }).catch(() => undefined);
}

/** Force-removes every container labelled with this device id. */
export async function removeDeviceContainers(client: LibpodClient, device: string): Promise<number> {
  const mine = await client.list({ all: true, filters: { label: [`io.fleet.device=${device}`] } });
  await Promise.all(mine.map((c) => client.remove(c.Id, { force: true, timeout: 0 }).catch(() => undefined)));
  return mine.length;
}
