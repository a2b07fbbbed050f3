// fleetctl's and the dashboard's view of the fleet in NATS: the four buckets and the event stream,
// every value decoded with the wire codecs (a value that does not decode is reported, not trusted).
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import type { Type } from "io-ts";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { readStreamEvents } from "./stream.reader.js";
import { AuthFileError, natsConnectOptions, type NatsTarget } from "./auth.js";
import { ensureFleetResources } from "./resources.js";
import { canonicalHash } from "../contracts/canonical-json.js";
import { decodeJson } from "../contracts/decode.js";
import { DeploymentState } from "../contracts/deployment-state.codec.js";
import { DeviceInfo } from "../contracts/device-info.codec.js";
import { Heartbeat } from "../contracts/heartbeat.codec.js";
import type { JournalEvent } from "../contracts/journal-event.codec.js";
import { ReconcileScore } from "../contracts/score.codec.js";
import {
  BUCKET_DESIRED_STATE,
  BUCKET_DEVICE_HEARTBEAT,
  BUCKET_DEVICE_INFO,
  BUCKET_DEVICE_STATE,
  deploymentKey,
  deviceKeys,
  parseDeploymentKey,
} from "../contracts/wire-names.js";
import { OperationError, UsageError } from "./errors.js";

export interface DesiredEntry {
  key: string;
  revision: number;
  /** The decoded score, or null when the stored value does not decode (errors say why). */
  score: ReconcileScore | null;
  hash: string | null;
  errors: string[];
}

export interface DeviceSummary {
  device: string;
  info: DeviceInfo | null;
  heartbeat: Heartbeat | null;
  /** ms since the heartbeat's `at`, or null without a heartbeat. */
  heartbeatAgeMs: number | null;
  /** The tick staleness was judged by: the heartbeat's own `tick_secs`, else the caller's guess. */
  tickSecs: number;
  stale: boolean;
  deployments: DeploymentState[];
}

/** A heartbeat older than this many ticks marks its device stale. */
export const STALE_TICKS = 3;

export class Fleet {
  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly desired: KV,
    readonly states: KV,
    readonly heartbeats: KV,
    readonly infos: KV,
    private readonly owned: boolean,
  ) {}

  /** Connects (failing fast when no server answers) and opens, creating if missing, the buckets. */
  static async connect({ servers, auth }: NatsTarget): Promise<Fleet> {
    let options: ReturnType<typeof natsConnectOptions>;
    try {
      options = natsConnectOptions(auth);
    } catch (e) {
      if (e instanceof AuthFileError) throw new UsageError(e.message);
      throw e;
    }
    let nc: NatsConnection;
    try {
      nc = await connect({ servers, name: "fleetctl", timeout: 5000, maxReconnectAttempts: 10, ...options });
    } catch (e) {
      throw new OperationError(`cannot reach NATS at ${servers.join(",")}: ${(e as Error).message}`);
    }
    try {
      return await Fleet.open(nc, true);
    } catch (e) {
      await nc.close().catch(() => undefined);
      throw e;
    }
  }

  /** Uses a connection the caller owns (close() leaves it open). */
  static async open(nc: NatsConnection, owned = false): Promise<Fleet> {
    await ensureFleetResources(nc);
    const kvm = new Kvm(nc);
    const [desired, states, heartbeats, infos] = await Promise.all(
      [BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO].map((b) => kvm.open(b)),
    );
    return new Fleet(nc, jetstream(nc), desired!, states!, heartbeats!, infos!, owned);
  }

  async close(): Promise<void> {
    if (this.owned) await this.nc.close().catch(() => undefined);
  }

  async desiredEntry(device: string, deployment: string): Promise<DesiredEntry | null> {
    const key = deploymentKey(device, deployment);
    const e = await this.desired.get(key);
    if (!e || e.operation !== "PUT") return null;
    return toDesired(key, e);
  }

  async deploymentState(device: string, deployment: string): Promise<DeploymentState | null> {
    const e = await this.states.get(deploymentKey(device, deployment));
    return e && e.operation === "PUT" ? decodeOr(DeploymentState, e) : null;
  }

  /** Every deployment state, optionally of one device, sorted by device then deployment. */
  async deploymentStates(device?: string): Promise<DeploymentState[]> {
    const out: DeploymentState[] = [];
    for (const key of await this.keys(this.states, device ? deviceKeys(device) : ">")) {
      if (!parseDeploymentKey(key)) continue;
      const s = await this.deploymentState(...(key.split(".") as [string, string]));
      if (s) out.push(s);
    }
    return out.sort((a, b) => a.device.localeCompare(b.device) || a.deployment.localeCompare(b.deployment));
  }

  async heartbeat(device: string): Promise<Heartbeat | null> {
    const e = await this.heartbeats.get(device);
    return e && e.operation === "PUT" ? decodeOr(Heartbeat, e) : null;
  }

  async info(device: string): Promise<DeviceInfo | null> {
    const e = await this.infos.get(device);
    return e && e.operation === "PUT" ? decodeOr(DeviceInfo, e) : null;
  }

  /** Devices known from device-info, heartbeats or device-state, sorted. */
  async knownDevices(): Promise<string[]> {
    const set = new Set<string>();
    for (const k of await this.keys(this.infos, ">")) if (!k.includes(".")) set.add(k);
    for (const k of await this.keys(this.heartbeats, ">")) if (!k.includes(".")) set.add(k);
    for (const k of await this.keys(this.states, ">")) {
      const p = parseDeploymentKey(k);
      if (p) set.add(p.device);
    }
    return [...set].sort();
  }

  /** Whether `device` ever reported: any device-info, heartbeat or device-state entry of its own. */
  async deviceSeen(device: string): Promise<boolean> {
    const [info, heartbeat] = await Promise.all([this.infos.get(device), this.heartbeats.get(device)]);
    if ((info && info.operation === "PUT") || (heartbeat && heartbeat.operation === "PUT")) return true;
    return (await this.keys(this.states, deviceKeys(device))).length > 0;
  }

  /** The desired-state keys of one device. */
  desiredKeys(device: string): Promise<string[]> {
    return this.keys(this.desired, deviceKeys(device));
  }

  /** The device-state keys of one device. */
  stateKeys(device: string): Promise<string[]> {
    return this.keys(this.states, deviceKeys(device));
  }

  /** Devices with their heartbeat age and deployments (of one device when given). */
  async summary(opts: { device?: string; tickSecs: number; now?: number }): Promise<DeviceSummary[]> {
    const now = opts.now ?? Date.now();
    const devices = opts.device ? [opts.device] : await this.knownDevices();
    const states = await this.deploymentStates(opts.device);
    const out: DeviceSummary[] = [];
    for (const device of devices) {
      const [info, heartbeat] = await Promise.all([this.info(device), this.heartbeat(device)]);
      const age = heartbeat ? now - Date.parse(heartbeat.at) : null;
      const tickSecs = heartbeat?.tick_secs ?? opts.tickSecs;
      out.push({
        device,
        info,
        heartbeat,
        heartbeatAgeMs: age,
        tickSecs,
        stale: age === null || age > STALE_TICKS * tickSecs * 1000,
        deployments: states.filter((s) => s.device === device),
      });
    }
    return out;
  }

  /** The deployment's journal from the FLEET_EVENTS stream (env values are redacted by the agent). */
  journal(device: string, deployment: string): Promise<JournalEvent[]> {
    return readStreamEvents(this.js, device, deployment);
  }

  private async keys(kv: KV, filter: string): Promise<string[]> {
    const out: string[] = [];
    for await (const k of await kv.keys(filter)) out.push(k);
    return out;
  }
}

function toDesired(key: string, e: KvEntry): DesiredEntry {
  const r = decodeJson(ReconcileScore, e.string());
  return r.ok
    ? { key, revision: e.revision, score: r.value, hash: canonicalHash(r.value), errors: [] }
    : { key, revision: e.revision, score: null, hash: null, errors: r.errors };
}

function decodeOr<A, O>(codec: Type<A, O, unknown>, e: KvEntry): A | null {
  const r = decodeJson(codec, e.string());
  return r.ok ? r.value : null;
}

/** A score as operators may see it: env keys kept, values never shown. */
export function scoreWithoutEnvValues(score: ReconcileScore): ReconcileScore {
  return {
    ...score,
    data: {
      ...score.data,
      services: score.data.services.map((s) => (s.env ? { ...s, env: Object.fromEntries(Object.keys(s.env).map((k) => [k, "<redacted>"])) } : s)),
    },
  };
}
