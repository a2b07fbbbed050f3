// fleetctl's and the dashboard's view of the fleet in NATS: the buckets and the event stream, every
// value decoded with the wire codecs (a value that does not decode is reported, not trusted), and
// every report checked against the key recorded for its device (docs/design.md, "Report signatures").
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import type { Type } from "io-ts";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { readStreamMessages } from "./stream.reader.js";
import { AuthFileError, natsConnectOptions, type NatsTarget } from "./auth.js";
import { ensureFleetResources } from "./resources.js";
import { canonicalHash } from "../contracts/canonical-json.js";
import { decodeJson } from "../contracts/decode.js";
import { DeploymentState } from "../contracts/deployment-state.codec.js";
import { DeviceInfo } from "../contracts/device-info.codec.js";
import { DeviceKey } from "../contracts/device-key.codec.js";
import { Heartbeat } from "../contracts/heartbeat.codec.js";
import type { JournalEvent } from "../contracts/journal-event.codec.js";
import { checkReport, type ReportCheck, type ReportKind } from "../contracts/report-signature.js";
import type { ReconcileScore } from "../contracts/score.codec.js";
import { DesiredValue, type DesiredSignature } from "../contracts/signed-score.js";
import {
  BUCKET_DESIRED_STATE,
  BUCKET_DEVICE_HEARTBEAT,
  BUCKET_DEVICE_INFO,
  BUCKET_DEVICE_KEYS,
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
  /** The operator's signature on it, or null when it is unsigned (or does not decode). */
  signed: DesiredSignature | null;
  errors: string[];
}

/** What the checks of one device's reports say (null: no such report to check). */
export interface ReportChecks {
  info: ReportCheck | null;
  heartbeat: ReportCheck | null;
  /** deployment → the check of its device-state. */
  deployments: Record<string, ReportCheck>;
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
  /**
   * Whether the device applies only operator-signed desired states, as its device-info says: "off"
   * also for an agent from before signing; "unknown" without device-info. Trust it only when
   * `checks.info` is verified.
   */
  signing: "on" | "off" | "unknown";
  /** The public key recorded for the device (`fleetctl device add`), or null. */
  deviceKey: string | null;
  checks: ReportChecks;
}

/** A journal event from the stream with the check of its signature. */
export interface CheckedEvent {
  event: JournalEvent;
  check: ReportCheck;
}

/** How many of a journal's events the device signed, and which it did not. */
export interface SignatureSummary {
  verified: number;
  unverified: number;
  forged: Array<{ n: number; why: string }>;
}

export function signatureSummary(events: readonly CheckedEvent[]): SignatureSummary {
  const out: SignatureSummary = { verified: 0, unverified: 0, forged: [] };
  for (const { event, check } of events) {
    if (check.verdict === "verified") out.verified++;
    else if (check.verdict === "unverified") out.unverified++;
    else out.forged.push({ n: event.n, why: check.why });
  }
  return out;
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
    readonly deviceKeys: KV,
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
    const [desired, states, heartbeats, infos, keys] = await Promise.all(
      [BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO, BUCKET_DEVICE_KEYS].map((b) => kvm.open(b)),
    );
    return new Fleet(nc, jetstream(nc), desired!, states!, heartbeats!, infos!, keys!, owned);
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
    return (await this.checkedDeploymentStates(device, async () => null)).map((c) => c.value);
  }

  /** The public key recorded for `device` by `fleetctl device add`, or null. */
  async deviceKey(device: string): Promise<string | null> {
    const e = await this.deviceKeys.get(device);
    const k = e && e.operation === "PUT" ? decodeOr(DeviceKey, e) : null;
    return k && k.device === device ? k.public_key : null;
  }

  /** Records `device`'s public key: its reports are checked against it from now on. */
  async recordDeviceKey(device: string, publicKey: string, at = new Date().toISOString()): Promise<number> {
    return this.deviceKeys.put(device, JSON.stringify(DeviceKey.encode({ device, public_key: publicKey, added_at: at })));
  }

  /**
   * Removes every revision of `key` from `bucket`. Not kv.purge: that is a rollup header, which the
   * buckets devices write refuse (with one, a device could purge every device's entries,
   * fleet/resources.ts); the stream API's purge by subject is the operator's alone.
   */
  async purgeKey(bucket: string, key: string): Promise<void> {
    const jsm = await this.js.jetstreamManager();
    await jsm.streams.purge(`KV_${bucket}`, { filter: `$KV.${bucket}.${key}` });
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

  /** Devices with their heartbeat age, deployments (of one device when given) and report checks. */
  async summary(opts: { device?: string; tickSecs: number; now?: number }): Promise<DeviceSummary[]> {
    const now = opts.now ?? Date.now();
    const devices = opts.device ? [opts.device] : await this.knownDevices();
    const recorded = new Map(await Promise.all(devices.map(async (d) => [d, await this.deviceKey(d)] as const)));
    const keyOf = async (d: string) => (recorded.has(d) ? recorded.get(d)! : this.deviceKey(d));
    const states = await this.checkedDeploymentStates(opts.device, keyOf);
    const out: DeviceSummary[] = [];
    for (const device of devices) {
      const key = await keyOf(device);
      const [info, heartbeat] = await Promise.all([
        this.checked(this.infos, device, DeviceInfo, "device-info", device, key),
        this.checked(this.heartbeats, device, Heartbeat, "device-heartbeat", device, key),
      ]);
      const age = heartbeat ? now - Date.parse(heartbeat.value.at) : null;
      const own = states.filter((s) => s.device === device);
      const tickSecs = heartbeat?.value.tick_secs ?? opts.tickSecs;
      out.push({
        device,
        info: info?.value ?? null,
        heartbeat: heartbeat?.value ?? null,
        heartbeatAgeMs: age,
        tickSecs,
        stale: age === null || age > STALE_TICKS * tickSecs * 1000,
        deployments: own.map((s) => s.value),
        signing: info ? info.value.signing ?? "off" : "unknown",
        deviceKey: key,
        checks: {
          info: info?.check ?? null,
          heartbeat: heartbeat?.check ?? null,
          deployments: Object.fromEntries(own.map((s) => [s.value.deployment, s.check])),
        },
      });
    }
    return out;
  }

  /** The deployment's journal from the FLEET_EVENTS stream (env values are redacted by the agent). */
  async journal(device: string, deployment: string): Promise<JournalEvent[]> {
    return (await this.checkedJournal(device, deployment)).map((e) => e.event);
  }

  /** The journal with each event's signature checked against the device's recorded key. */
  async checkedJournal(device: string, deployment: string): Promise<CheckedEvent[]> {
    const [messages, key] = await Promise.all([readStreamMessages(this.js, device, deployment), this.deviceKey(device)]);
    return messages.map((m) => ({ event: m.event, check: checkReport("event", device, m.signedValue, key) }));
  }

  private async checkedDeploymentStates(device: string | undefined, keyOf: (device: string) => Promise<string | null>) {
    const out: Array<{ device: string; value: DeploymentState; check: ReportCheck }> = [];
    for (const key of await this.keys(this.states, device ? deviceKeys(device) : ">")) {
      const p = parseDeploymentKey(key);
      if (!p) continue;
      const s = await this.checked(this.states, key, DeploymentState, "device-state", p.device, await keyOf(p.device));
      if (!s) continue;
      // The signature covers the value, not the key it is filed under: a copy of another deployment's state is no report of this one.
      const misfiled = s.value.deployment !== p.deployment && s.check.verdict === "verified";
      out.push({ device: p.device, ...s, ...(misfiled ? { check: { verdict: "forged", why: `filed under deployment ${JSON.stringify(p.deployment)} but names ${JSON.stringify(s.value.deployment)}` } } : {}) });
    }
    return out.sort((a, b) => a.device.localeCompare(b.device) || a.value.deployment.localeCompare(b.value.deployment));
  }

  /** A report, decoded, with the check of its signature; null when absent or not decodable. */
  private async checked<A extends object, O extends Record<string, unknown>>(kv: KV, key: string, codec: Type<A, O, unknown>, kind: ReportKind, device: string, recordedKey: string | null) {
    const e = await kv.get(key);
    const value = e && e.operation === "PUT" ? decodeOr(codec, e) : null;
    return value ? { value, check: checkReport(kind, device, codec.encode(value), recordedKey) } : null;
  }

  private async keys(kv: KV, filter: string): Promise<string[]> {
    const out: string[] = [];
    for await (const k of await kv.keys(filter)) out.push(k);
    return out;
  }
}

function toDesired(key: string, e: KvEntry): DesiredEntry {
  const r = decodeJson(DesiredValue, e.string());
  return r.ok
    ? { key, revision: e.revision, score: r.value.score, hash: canonicalHash(r.value.score), signed: r.value.signed, errors: [] }
    : { key, revision: e.revision, score: null, hash: null, signed: null, errors: r.errors };
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
