// The fleet's JetStream resources: the KV buckets and the FLEET_EVENTS stream, created by the
// operator's side (fleetctl, the dashboard) or by an agent that is allowed to.
import { jetstreamManager, type JetStreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { errors, type NatsConnection } from "@nats-io/transport-node";
import {
  BUCKET_DESIRED_STATE,
  BUCKET_DEVICE_HEARTBEAT,
  BUCKET_DEVICE_INFO,
  BUCKET_DEVICE_KEYS,
  BUCKET_DEVICE_STATE,
  BUCKET_HISTORY,
  FLEET_EVENTS_DUPLICATE_WINDOW_NS,
  FLEET_EVENTS_SUBJECTS,
  STREAM_FLEET_EVENTS,
} from "../contracts/wire-names.js";

// device-keys: written by the operator only (`fleetctl device add`), read to check device reports.
export const FLEET_BUCKETS = [BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO, BUCKET_DEVICE_KEYS] as const;

export interface FleetResourceOptions {
  /** JetStream replicas for buckets and stream (default 1). */
  replicas?: number;
}

/** The buckets devices write. Their streams refuse rollup headers (below). */
export const DEVICE_WRITTEN_BUCKETS = [BUCKET_DEVICE_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO] as const;

/** True for the server's refusal of a subject this user may not use. */
export const isPermissionError = (e: unknown): boolean =>
  e instanceof errors.PermissionViolationError || (e instanceof Error && /permissions violation/i.test(e.message));

/**
 * True when this connection's account has no JetStream of its own: a device's account, which reaches
 * the fleet's streams only through its imports and whose `$JS.API.INFO` answers "JetStream not
 * enabled for account" (fleet/device.permissions.ts). nats.js names that error JetStreamNotEnabled.
 */
export const isNoJetStreamAccount = (e: unknown): boolean => e instanceof Error && e.name === "JetStreamNotEnabled";

/**
 * Creates, if missing, the KV buckets and the FLEET_EVENTS stream, and keeps the settings the
 * fleet's isolation depends on (below) on ones that exist. Idempotent, and safe when another agent
 * creates them at the same moment.
 *
 * A device may not: in its own account (the secured layout) the first request answers that the
 * account has no JetStream, under user permissions it is refused; either way this resolves
 * "not-permitted" at once, nothing else tried, and the operator creates the resources (README:
 * Securing a fleet).
 */
export async function ensureFleetResources(nc: NatsConnection, opts: FleetResourceOptions = {}): Promise<"ok" | "not-permitted"> {
  try {
    await createFleetResources(nc, opts);
    return "ok";
  } catch (e) {
    if (isPermissionError(e) || isNoJetStreamAccount(e)) return "not-permitted";
    throw e;
  }
}

async function createFleetResources(nc: NatsConnection, opts: FleetResourceOptions): Promise<void> {
  const replicas = opts.replicas ?? 1;
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);
  for (const bucket of FLEET_BUCKETS) {
    await tolerateRace(
      () => kvm.create(bucket, { history: BUCKET_HISTORY, replicas }),
      () => streamExists(jsm, `KV_${bucket}`),
    );
  }
  // nats.js creates every bucket with rollup headers allowed. On a bucket devices write, a put with
  // `Nats-Rollup: all` on the device's own key would purge every device's entries: refused instead.
  // The agents write values and never purge; the operator purges through the stream API.
  for (const bucket of DEVICE_WRITTEN_BUCKETS) await refuseRollups(jsm, `KV_${bucket}`);
  await tolerateRace(
    async () => {
      if (await streamExists(jsm, STREAM_FLEET_EVENTS)) {
        // A stream made before direct gets were used: turn them on (an operator's right).
        const info = await jsm.streams.info(STREAM_FLEET_EVENTS);
        if (!info.config.allow_direct) await jsm.streams.update(STREAM_FLEET_EVENTS, { allow_direct: true });
        await refuseRollups(jsm, STREAM_FLEET_EVENTS);
        return;
      }
      await jsm.streams.add({
        name: STREAM_FLEET_EVENTS,
        subjects: [FLEET_EVENTS_SUBJECTS],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        duplicate_window: FLEET_EVENTS_DUPLICATE_WINDOW_NS,
        num_replicas: replicas,
        // Direct gets by last subject put the subject in the request's subject, so a device's
        // imports can limit its reads of the stream to its own events.
        allow_direct: true,
        // Devices publish here: no header of theirs may purge the stream.
        allow_rollup_hdrs: false,
      });
    },
    () => streamExists(jsm, STREAM_FLEET_EVENTS),
  );
}

/** Turns rollup headers off on an existing stream (also one made before this rule). */
async function refuseRollups(jsm: JetStreamManager, stream: string) {
  const info = await jsm.streams.info(stream);
  if (info.config.allow_rollup_hdrs) await jsm.streams.update(stream, { allow_rollup_hdrs: false });
}

async function streamExists(jsm: JetStreamManager, name: string): Promise<boolean> {
  try {
    await jsm.streams.info(name);
    return true;
  } catch (e) {
    if ((e as Error).message === "stream not found") return false;
    throw e;
  }
}

/** Runs `create`; if it fails but the resource exists (someone else made it), that is success. */
async function tolerateRace(create: () => Promise<unknown>, exists: () => Promise<boolean>) {
  try {
    await create();
  } catch (e) {
    if (!(await exists())) throw e;
  }
}
