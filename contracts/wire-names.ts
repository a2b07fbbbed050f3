// Bucket, key, stream and subject names of the wire contract (docs/design.md). Other programs speak
// these: change them only with the contract.

export const BUCKET_DESIRED_STATE = "desired-state";
export const BUCKET_DEVICE_STATE = "device-state";
export const BUCKET_DEVICE_HEARTBEAT = "device-heartbeat";
export const BUCKET_DEVICE_INFO = "device-info";
/** Each device's public key, as the operator recorded it: what its reports are checked against. */
export const BUCKET_DEVICE_KEYS = "device-keys";
/** History kept per key in every bucket. */
export const BUCKET_HISTORY = 5;

export const STREAM_FLEET_EVENTS = "FLEET_EVENTS";
export const FLEET_EVENTS_SUBJECTS = "fleet.events.>";
/** JetStream's duplicate window for the event stream, in nanoseconds (2 minutes). */
export const FLEET_EVENTS_DUPLICATE_WINDOW_NS = 2 * 60 * 1_000_000_000;

/** Key of a deployment in `desired-state` and `device-state`. */
export const deploymentKey = (device: string, deployment: string) => `${device}.${deployment}`;
/** Key filter for all of one device's deployments. */
export const deviceKeys = (device: string) => `${device}.>`;
/** Splits a deployment key; null when it is not `<device>.<deployment>`. */
export function parseDeploymentKey(key: string): { device: string; deployment: string } | null {
  const parts = key.split(".");
  if (parts.length !== 2 || !parts[0] || !parts[1]) return null;
  return { device: parts[0], deployment: parts[1] };
}

export const eventSubject = (device: string, deployment: string) => `fleet.events.${device}.${deployment}`;
export const deviceEventSubjects = (device: string) => `fleet.events.${device}.>`;

/** Labels the agent puts on every container it creates; it touches no container without them. */
export const LABEL_MANAGED = "io.fleet.managed";
export const LABEL_DEVICE = "io.fleet.device";
export const LABEL_DEPLOYMENT = "io.fleet.deployment";
export const LABEL_SERVICE = "io.fleet.service";
export const LABEL_SCORE_HASH = "io.fleet.score-hash";

/**
 * Device commands (request/reply): `fleet.cmd.<device>.<verb>`. A device subscribes to its own
 * subjects only and answers through the request's reply subject; only the operator publishes here.
 */
export const COMMAND_SUBJECTS = "fleet.cmd.>";
export const commandSubject = (device: string, verb: string) => `fleet.cmd.${device}.${verb}`;
export const deviceCommandSubjects = (device: string) => `fleet.cmd.${device}.>`;
/** The verb of a command subject of `device`, or null when the subject is not one of its commands. */
export function commandVerbOf(device: string, subject: string): string | null {
  const prefix = `fleet.cmd.${device}.`;
  return subject.startsWith(prefix) ? subject.slice(prefix.length) : null;
}
