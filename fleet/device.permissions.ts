// A device's NATS identity and least-privilege permissions, as a nats-server (2.9) authorization
// entry: an nkey user that can read only its own desired state, write only its own reports and
// events, and use exactly the JetStream API requests the agent makes for them. Pure but for key
// generation (`newDeviceKey`).
import { nkeys } from "@nats-io/transport-node";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import {
  BUCKET_DESIRED_STATE,
  BUCKET_DEVICE_HEARTBEAT,
  BUCKET_DEVICE_INFO,
  BUCKET_DEVICE_STATE,
  STREAM_FLEET_EVENTS,
  deviceCommandSubjects,
  deviceEventSubjects,
} from "../contracts/wire-names.js";

/** The inbox prefix the agent connects with (`inboxPrefix`): replies and push deliveries land under it. */
export const deviceInboxPrefix = (device: string) => `_INBOX_${device}`;

export interface Permission {
  subject: string;
  why: string;
}

export interface DevicePermissions {
  publish: Permission[];
  subscribe: Permission[];
  /** nats-server `allow_responses`: may reply (once) to a message delivered to it with a reply subject. */
  allowResponses: Permission;
}

/** Every subject device `id` may publish to or subscribe on, each with the reason it needs it. */
export function devicePermissions(id: string): DevicePermissions {
  const problem = deviceOrDeploymentNameProblem(id);
  if (problem) throw new Error(`invalid device id: ${problem}`);
  const desired = `$KV.${BUCKET_DESIRED_STATE}.${id}.>`;
  return {
    publish: [
      { subject: `$KV.${BUCKET_DEVICE_STATE}.${id}.>`, why: "write its deployments' DeploymentState (device-state keys <id>.<deployment>)" },
      { subject: `$KV.${BUCKET_DEVICE_HEARTBEAT}.${id}`, why: "write its heartbeat (device-heartbeat key <id>)" },
      { subject: `$KV.${BUCKET_DEVICE_INFO}.${id}`, why: "write its device info (device-info key <id>)" },
      { subject: deviceEventSubjects(id), why: "publish its journal events to FLEET_EVENTS (fleet.events.<id>.<deployment>)" },
      {
        subject: `$JS.API.CONSUMER.CREATE.KV_${BUCKET_DESIRED_STATE}.*.${desired}`,
        why: "watch its desired state: create the watch's ordered push consumer on KV_desired-state, filtered (in the request subject, checked by the server against the config) to its own keys; also reads one key's history at a revision after a lost local score",
      },
      {
        subject: `$JS.API.CONSUMER.CREATE.${STREAM_FLEET_EVENTS}.*.${deviceEventSubjects(id)}`,
        why: "read its own journal back from FLEET_EVENTS when its state dir is lost (an ordered push consumer into its inbox, filtered in the request subject to its own events), so numbering continues where the stream is",
      },
      {
        subject: `$JS.API.DIRECT.GET.${STREAM_FLEET_EVENTS}.${deviceEventSubjects(id)}`,
        why: "read the last event on each of its own subjects (direct get by last subject), to know where its journal's publication resumes",
      },
    ],
    subscribe: [
      { subject: `${deviceInboxPrefix(id)}.>`, why: "its own inbox: replies to its requests (JetStream API, publish acks, direct gets) and the watch's push deliveries" },
      {
        subject: deviceCommandSubjects(id),
        why: "receive the operator's commands to it (ping, logs, restart on fleet.cmd.<id>.<verb>); it can't publish any command, to itself or another device",
      },
    ],
    allowResponses: {
      subject: "allow_responses: true",
      why: "answer the operator's commands (the reply goes to the request's reply subject) and the watch consumer's flow-control requests ($JS.FC.KV_desired-state.…, sent to its inbox with a reply subject; without it a large desired state stalls the watch). Only reply subjects of messages it received, once each",
    },
  };
}

/** A new nkey user for a device: the public key goes in the server config, the seed to the device. */
export function newDeviceKey(): { publicKey: string; seed: string } {
  const kp = nkeys.createUser();
  const seed = new TextDecoder().decode(kp.getSeed());
  const publicKey = kp.getPublicKey();
  kp.clear();
  return { publicKey, seed };
}

const q = (s: string) => JSON.stringify(s);

/**
 * The nats-server users-list entry for device `id` with nkey `publicKey` (nats-server.conf syntax),
 * with a comment per permission saying why it is needed.
 */
export function deviceUserEntry(id: string, publicKey: string): string {
  const p = devicePermissions(id);
  const list = (ps: Permission[], indent: string) => ps.map((x) => `${indent}# ${x.why}\n${indent}${q(x.subject)}`).join("\n");
  return [
    `# fleet-agent device ${id}`,
    `{`,
    `  nkey: ${q(publicKey)}`,
    `  permissions: {`,
    `    publish: {`,
    `      allow: [`,
    list(p.publish, "        "),
    `      ]`,
    `    }`,
    `    subscribe: {`,
    `      allow: [`,
    list(p.subscribe, "        "),
    `      ]`,
    `    }`,
    `    # ${p.allowResponses.why}`,
    `    ${p.allowResponses.subject}`,
    `  }`,
    `}`,
  ].join("\n");
}

/**
 * A whole nats-server authorization block: an operator user (full rights: creates the buckets and
 * the stream, writes desired states, reads everything) and one entry per device.
 */
export function authorizationBlock(operator: { user: string; password: string }, devices: Array<{ id: string; publicKey: string }>): string {
  const entries = [`{ user: ${q(operator.user)}, password: ${q(operator.password)} }`, ...devices.map((d) => deviceUserEntry(d.id, d.publicKey))];
  const indented = entries.map((e) => e.split("\n").map((l) => `    ${l}`).join("\n")).join("\n");
  return `authorization {\n  users = [\n${indented}\n  ]\n}\n`;
}
