// Reports what the agent knows to KV: DeploymentState to `device-state/<device>.<deployment>`, the
// heartbeat to `device-heartbeat/<device>`, DeviceInfo to `device-info/<device>`. Callers never wait:
// values are queued, only the latest per key is kept while NATS is away, and flushed on reconnect.
import type * as t from "io-ts";
import { Kvm, type KV } from "@nats-io/kv";
import { decode } from "../../contracts/decode.js";
import { DeploymentState } from "../../contracts/deployment-state.codec.js";
import { DeviceInfo } from "../../contracts/device-info.codec.js";
import { Heartbeat } from "../../contracts/heartbeat.codec.js";
import type { SigningKey } from "../../contracts/nkey.js";
import { signReport, type ReportKind } from "../../contracts/report-signature.js";
import { BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO, BUCKET_DEVICE_STATE, deploymentKey } from "../../contracts/wire-names.js";
import type { Logger } from "pino";
import { type ConnectionSource, connectionOrAbort, OnlineTracker } from "./online.js";
import { sleep } from "../../fleet/sleep.js";

export interface StateReporterOptions {
  device: string;
  nc: ConnectionSource;
  logger: Logger;
  /** Pause after a failed write while connected (ms); default 1000. */
  retryMs?: number;
  /** The device's own key: every report carries its signature (docs/design.md, "Report signatures"). */
  signingKey?: SigningKey;
}

interface Pending {
  bucket: string;
  key: string;
  data: string;
}

export class StateReporter {
  private readonly pending = new Map<string, Pending>();
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private readonly buckets = new Map<string, KV>();
  private conn: { online: OnlineTracker; kvm: Kvm } | null = null;
  private running: Promise<void> | null = null;
  private readonly ready: Promise<void>;

  constructor(private readonly o: StateReporterOptions) {
    this.log = o.logger.child({ component: "state-reporter" });
    this.ready = connectionOrAbort(o.nc, this.abort.signal)
      .then((nc) => {
        if (!nc || this.abort.signal.aborted) return;
        this.conn = { online: new OnlineTracker(nc), kvm: new Kvm(nc) };
        this.conn.online.onReconnect(() => this.kick());
        this.kick();
      })
      .catch((e: unknown) => this.log.error({ err: (e as Error).message }, "state reporter has no connection"));
  }

  /** Queues the deployment's state (latest wins). An invalid state is logged and dropped. */
  reportDeployment(state: DeploymentState): void {
    if (state.device !== this.o.device) {
      this.log.error({ device: state.device, deployment: state.deployment }, "dropped a deployment state of another device");
      return;
    }
    this.enqueue(DeploymentState, "device-state", BUCKET_DEVICE_STATE, deploymentKey(state.device, state.deployment), state);
  }

  reportHeartbeat(hb: Heartbeat): void {
    this.enqueue(Heartbeat, "device-heartbeat", BUCKET_DEVICE_HEARTBEAT, this.o.device, hb);
  }

  reportDeviceInfo(info: DeviceInfo): void {
    this.enqueue(DeviceInfo, "device-info", BUCKET_DEVICE_INFO, this.o.device, info);
  }

  /** Number of values waiting to be written. */
  get backlog(): number {
    return this.pending.size;
  }

  /** Resolves once every value queued so far is written (or rejects after `timeoutMs`). */
  async flush(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    await this.ready;
    while (this.pending.size > 0 || this.running) {
      if (Date.now() > until) throw new Error(`state reporter: ${this.pending.size} value(s) not written within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.conn?.online.close();
    await this.ready;
    await this.running;
  }

  private enqueue<A, O extends Record<string, unknown>>(codec: t.Type<A, O, unknown>, kind: ReportKind, bucket: string, key: string, value: A) {
    const checked = decode(codec, codec.encode(value));
    if (!checked.ok) {
      // The errors name paths and shapes, never values of env maps (a state carries none anyway).
      this.log.error({ bucket, key, errors: checked.errors }, `dropped an invalid ${codec.name}`);
      return;
    }
    const encoded = codec.encode(checked.value);
    const signed = this.o.signingKey ? { signed: signReport(kind, encoded, this.o.signingKey) } : {};
    this.pending.set(`${bucket}/${key}`, { bucket, key, data: JSON.stringify({ ...encoded, ...signed }) });
    this.kick();
  }

  private kick() {
    if (!this.conn || this.running || this.abort.signal.aborted || this.pending.size === 0) return;
    this.running = this.drain().finally(() => {
      this.running = null;
      // Something may have been queued after the loop looked for the last time.
      if (this.pending.size > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    const { online, kvm } = this.conn!;
    const signal = this.abort.signal;
    while (!signal.aborted && this.pending.size > 0) {
      await online.wait(signal);
      if (signal.aborted) return;
      const [id, item] = this.pending.entries().next().value as [string, Pending];
      try {
        let kv = this.buckets.get(item.bucket);
        if (!kv) {
          kv = await kvm.open(item.bucket);
          this.buckets.set(item.bucket, kv);
        }
        await kv.put(item.key, item.data);
        // Only forget it if no newer value replaced it meanwhile.
        if (this.pending.get(id) === item) this.pending.delete(id);
      } catch (e) {
        // Let the other keys have their turn before this one is tried again.
        if (this.pending.get(id) === item) {
          this.pending.delete(id);
          this.pending.set(id, item);
        }
        this.log.warn({ bucket: item.bucket, key: item.key, err: (e as Error).message }, "state write failed; will retry");
        await sleep(online.online ? (this.o.retryMs ?? 1000) : 0, signal);
      }
    }
  }
}
