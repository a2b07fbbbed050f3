// Watches `desired-state/<device>.>` and turns every entry into a typed change for the supervisor.
//
// nats.js v3's kv.watch is an ordered push consumer: after a reconnect it only re-creates its
// consumer once two idle heartbeats (5 s each) are missed, and if it had delivered nothing yet it
// restarts from stream sequence 1 (replaying old revisions). So this watcher re-creates the watch
// itself after every reconnect (and whenever the iterator ends), with "last value per key" again,
// and drops every entry whose revision it has already passed: the result is each key's newest
// value once, in revision order, with no old revision ever delivered after a newer one.
import { Kvm, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { canonicalHash } from "../../contracts/canonical-json.js";
import { decodeJson } from "../../contracts/decode.js";
import { deviceOrDeploymentNameProblem } from "../../contracts/names.js";
import type { ReconcileScore } from "../../contracts/score.codec.js";
import { DesiredValue, signatureRefusal } from "../../contracts/signed-score.js";
import { BUCKET_DESIRED_STATE, deviceKeys } from "../../contracts/wire-names.js";
import type { Logger } from "pino";
import { type ConnectionSource, connectionOrAbort, OnlineTracker } from "./online.js";
import { sleep } from "../../fleet/sleep.js";

export type DesiredChange =
  /** `signedAt`: when an operator key this device trusts signed it (only when it checks signatures). */
  | { kind: "update"; deployment: string; score: ReconcileScore; hash: string; revision: number; signedAt?: string }
  | { kind: "reject"; deployment: string; revision: number; error: string }
  | { kind: "delete"; deployment: string; revision: number };

export interface DesiredStateWatchOptions {
  device: string;
  nc: ConnectionSource;
  logger: Logger;
  onChange: (change: DesiredChange) => void;
  /** Operator keys whose signatures this device requires; absent or empty: signing is off. */
  operatorKeys?: readonly string[];
  /** Pause before re-creating a failed watch (ms); default 1000. */
  retryMs?: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The change a desired-state entry stands for (pure). With `operatorKeys`, a value one of them did
 * not sign for this device and deployment is refused like one that does not decode (docs/design.md,
 * "Signed desired state"); a replay of an older signed value is refused by the supervisor, which
 * knows what the deployment accepted.
 */
export function toDesiredChange(device: string, e: Pick<KvWatchEntry, "key" | "operation" | "revision" | "value">, operatorKeys?: readonly string[]): DesiredChange {
  const prefix = `${device}.`;
  const deployment = e.key.startsWith(prefix) ? e.key.slice(prefix.length) : e.key;
  const revision = e.revision;
  const problem = deviceOrDeploymentNameProblem(deployment);
  if (problem) return { kind: "reject", deployment, revision, error: `key ${JSON.stringify(e.key.slice(0, 300))}: invalid deployment name: ${problem}` };
  if (e.operation === "DEL" || e.operation === "PURGE") return { kind: "delete", deployment, revision };
  let text: string;
  try {
    text = utf8.decode(e.value);
  } catch {
    return { kind: "reject", deployment, revision, error: "(root): the value is not valid UTF-8" };
  }
  const r = decodeJson(DesiredValue, text);
  if (!r.ok) return { kind: "reject", deployment, revision, error: r.errors.join("; ") };
  const { score, signed } = r.value;
  const update = { kind: "update" as const, deployment, score, hash: canonicalHash(score), revision };
  if (!operatorKeys?.length) return update;
  const refused = signatureRefusal(r.value, { device, deployment }, operatorKeys);
  if (refused || !signed) return { kind: "reject", deployment, revision, error: refused?.error ?? "signed: missing" };
  return { ...update, signedAt: signed.at };
}

export class DesiredStateWatch {
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private lastRevision = 0;
  private current: { stop(): void } | null = null;
  private readonly done: Promise<void>;
  private restarts = 0;

  private constructor(private readonly o: DesiredStateWatchOptions) {
    this.log = o.logger.child({ component: "desired-state-watch" });
    this.done = this.run();
  }

  /** Starts watching; `onChange` gets each change in revision order. */
  static start(o: DesiredStateWatchOptions): DesiredStateWatch {
    return new DesiredStateWatch(o);
  }

  /** Highest revision delivered so far. */
  get revision(): number {
    return this.lastRevision;
  }

  /** How many times the underlying watch was re-created (reconnects, failures). */
  get restartCount(): number {
    return this.restarts;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.current?.stop();
    await this.done;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let nc: NatsConnection;
    try {
      const got = await connectionOrAbort(this.o.nc, signal);
      if (!got) return;
      nc = got;
    } catch (e) {
      this.log.error({ err: (e as Error).message }, "desired-state watch has no connection");
      return;
    }
    const online = new OnlineTracker(nc);
    const unsubscribe = online.onReconnect(() => {
      // The server may have lost the watch's consumer: start a fresh one from where we are.
      this.log.info({ revision: this.lastRevision }, "reconnected: re-creating the desired-state watch");
      this.current?.stop();
    });
    const kvm = new Kvm(nc);
    try {
      let first = true;
      while (!signal.aborted && !nc.isClosed()) {
        await online.wait(signal);
        if (signal.aborted) break;
        if (!first) this.restarts++;
        first = false;
        try {
          const kv = await kvm.open(BUCKET_DESIRED_STATE);
          const iter = await kv.watch({ key: deviceKeys(this.o.device) });
          this.current = iter;
          if (signal.aborted) iter.stop();
          for await (const e of iter) {
            if (e.revision <= this.lastRevision) continue;
            this.lastRevision = e.revision;
            this.deliver(e);
          }
        } catch (e) {
          if (signal.aborted) break;
          this.log.warn({ err: (e as Error).message }, "desired-state watch failed; will re-create it");
          await sleep(this.o.retryMs ?? 1000, signal);
        } finally {
          this.current = null;
        }
      }
    } finally {
      unsubscribe();
      online.close();
    }
  }

  private deliver(e: KvWatchEntry) {
    const change = toDesiredChange(this.o.device, e, this.o.operatorKeys);
    if (change.kind === "reject") this.log.warn({ deployment: change.deployment, revision: change.revision, error: change.error }, "rejected a desired state");
    else if (change.kind === "update") this.log.info({ deployment: change.deployment, revision: change.revision, hash: change.hash }, "desired state");
    else this.log.info({ deployment: change.deployment, revision: change.revision }, "desired state deleted");
    try {
      this.o.onChange(change);
    } catch (err) {
      this.log.error({ err: (err as Error).message, deployment: change.deployment }, "desired-state change handler threw");
    }
  }
}
