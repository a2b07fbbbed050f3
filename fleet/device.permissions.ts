// The nats-server accounts that keep devices apart (docs/design.md, "Securing a fleet"): what
// `fleetctl device add` and `fleetctl device accounts` print, each line with the reason it is there.
//
// Why accounts and not user permissions: a device's request is answered by JetStream with the reply
// subject the device chose, and the server checks no permission on that answer, so within one
// account a device could make JetStream write into any subject (another device's desired state).
// Across an import the reply subject is rewritten (`_R_…`), and the answer comes back into the
// device's own account, where nothing but the device's own imports lives. A device account reaches
// exactly the subjects its imports name; JetStream answers cannot travel on through a second import.
//
// Why three accounts hold the fleet's streams: a device creates consumers (its desired-state watch,
// its journal read back) and a consumer may deliver to any subject of the account its stream lives
// in. The only stream there must be the consumer's own, whose subjects the server refuses as a
// delivery subject ("forms a cycle"); nothing else in those accounts captures or serves anything.
// Devices never create consumers on the reports (device-state, heartbeat, info), so one account
// holds those three, and device-keys, which only the operator writes and devices never reach. The operator's account has no JetStream and imports each stream's API by name.
//
// Every import here names a subject without mapping it (`to`): nats-server 2.9 panics when an answer
// is delivered on a mapped import with a `*` wildcard (fixed upstream in 2025), and a device chooses
// its reply subjects. Pure but for key generation (`newDeviceKey`).
import { nkeys } from "@nats-io/transport-node";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import {
  BUCKET_DESIRED_STATE,
  BUCKET_DEVICE_HEARTBEAT,
  BUCKET_DEVICE_INFO,
  BUCKET_DEVICE_KEYS,
  BUCKET_DEVICE_STATE,
  FLEET_EVENTS_SUBJECTS,
  COMMAND_SUBJECTS,
  STREAM_FLEET_EVENTS,
  deviceCommandSubjects,
  deviceEventSubjects,
} from "../contracts/wire-names.js";

/** The operator's account: fleetctl and the dashboard; no JetStream of its own. */
export const ACCOUNT_OPERATOR = "FLEET_OPERATOR";
/** Holds KV_desired-state and nothing else. */
export const ACCOUNT_DESIRED = "FLEET_DESIRED";
/** Holds FLEET_EVENTS and nothing else. */
export const ACCOUNT_JOURNAL = "FLEET_JOURNAL";
/** Holds the buckets devices report to (device-state, device-heartbeat, device-info) and device-keys. */
export const ACCOUNT_REPORTS = "FLEET_REPORTS";
/** Answers a device account's JetStream INFO, so the server gives that account no JetStream API of its own. */
export const ACCOUNT_NO_JETSTREAM = "FLEET_NO_JETSTREAM";
/** A device's own account. */
export const deviceAccountName = (id: string) => `FLEET_DEVICE_${id}`;

/** Where the fleet's streams live, and so which account serves each one's API. */
export const STREAM_ACCOUNTS = [
  { account: ACCOUNT_DESIRED, streams: [`KV_${BUCKET_DESIRED_STATE}`], buckets: [BUCKET_DESIRED_STATE], subjects: [] as string[] },
  { account: ACCOUNT_JOURNAL, streams: [STREAM_FLEET_EVENTS], buckets: [] as string[], subjects: [FLEET_EVENTS_SUBJECTS] },
  {
    account: ACCOUNT_REPORTS,
    streams: [`KV_${BUCKET_DEVICE_STATE}`, `KV_${BUCKET_DEVICE_HEARTBEAT}`, `KV_${BUCKET_DEVICE_INFO}`, `KV_${BUCKET_DEVICE_KEYS}`],
    buckets: [BUCKET_DEVICE_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO, BUCKET_DEVICE_KEYS],
    subjects: [] as string[],
  },
] as const;

/** Prefix of a device's inboxes (the agent connects with `inboxPrefix`): its consumers deliver there. */
export const DEVICE_INBOXES = "_INBOX_device";
export const deviceInboxPrefix = (id: string) => `${DEVICE_INBOXES}.${id}`;

/** One entry of a config list and the reason it is there. */
export interface ConfigLine {
  entry: string;
  why: string;
}

/** An account of the server config: its parts, each entry with its reason. */
export interface AccountBlock {
  name: string;
  why: string;
  jetstream?: ConfigLine;
  users?: ConfigLine[];
  imports?: ConfigLine[];
  exports?: ConfigLine[];
}

export interface OperatorUser {
  user: string;
  /** A bcrypt hash (`nats server passwd`), or a plain password (tests). */
  password: string;
}

export interface DeviceKey {
  id: string;
  publicKey: string;
}

const q = (s: string) => JSON.stringify(s);
const service = (account: string, subject: string) => `{ service: { account: ${q(account)}, subject: ${q(subject)} } }`;
const stream = (account: string, subject: string) => `{ stream: { account: ${q(account)}, subject: ${q(subject)} } }`;

function checkedId(id: string): string {
  const problem = deviceOrDeploymentNameProblem(id);
  if (problem) throw new Error(`invalid device id: ${problem}`);
  return id;
}

/** The imports of device `id`'s account: everything it may reach, and nothing else. */
export function deviceImports(id: string): ConfigLine[] {
  checkedId(id);
  const desired = `$KV.${BUCKET_DESIRED_STATE}.${id}.>`;
  return [
    {
      entry: service(ACCOUNT_REPORTS, `$KV.${BUCKET_DEVICE_STATE}.${id}.>`),
      why: `write its deployments' DeploymentState (device-state keys ${id}.<deployment>); JetStream's ack comes back through the import`,
    },
    { entry: service(ACCOUNT_REPORTS, `$KV.${BUCKET_DEVICE_HEARTBEAT}.${id}`), why: `write its heartbeat (device-heartbeat key ${id})` },
    { entry: service(ACCOUNT_REPORTS, `$KV.${BUCKET_DEVICE_INFO}.${id}`), why: `write its device info (device-info key ${id})` },
    { entry: service(ACCOUNT_JOURNAL, deviceEventSubjects(id)), why: `publish its journal events to FLEET_EVENTS (fleet.events.${id}.<deployment>)` },
    {
      entry: service(ACCOUNT_JOURNAL, `$JS.API.DIRECT.GET.${STREAM_FLEET_EVENTS}.${deviceEventSubjects(id)}`),
      why: "read the last event on each of its own subjects, where its journal's publication resumes (a direct get by last subject names the subject in the request's subject)",
    },
    {
      entry: service(ACCOUNT_JOURNAL, `$JS.API.CONSUMER.CREATE.${STREAM_FLEET_EVENTS}.*.${deviceEventSubjects(id)}`),
      why: "read its own journal back when its state dir is lost: a consumer on FLEET_EVENTS whose filter is in the request's subject, which the server checks against the consumer's config",
    },
    { entry: service(ACCOUNT_JOURNAL, `$JS.FC.${STREAM_FLEET_EVENTS}.>`), why: "answer those consumers' flow control" },
    { entry: stream(ACCOUNT_JOURNAL, `${deviceInboxPrefix(id)}.>`), why: "those consumers' deliveries, to its own inboxes (the agent's inbox prefix)" },
    {
      entry: service(ACCOUNT_DESIRED, `$JS.API.CONSUMER.CREATE.KV_${BUCKET_DESIRED_STATE}.*.${desired}`),
      why: "watch its desired state, and read one key's history after a lost local score: a consumer on KV_desired-state filtered, in the request's subject, to its own keys",
    },
    { entry: service(ACCOUNT_DESIRED, `$JS.FC.KV_${BUCKET_DESIRED_STATE}.>`), why: "answer the watch's flow control; without it a large desired state stalls the watch" },
    { entry: stream(ACCOUNT_DESIRED, `${deviceInboxPrefix(id)}.>`), why: "the watch's deliveries, to its own inboxes" },
    {
      entry: service(ACCOUNT_NO_JETSTREAM, "$JS.API.INFO"),
      why: `stands in for the JetStream API the server gives an account without JetStream: with it the imports above are the account's only JetStream subjects, and INFO answers "JetStream not enabled for account", which tells the agent the fleet's buckets and stream are the operator's`,
    },
  ];
}

/** Device `id`'s account, for nkey `publicKey`. */
export function deviceAccount(id: string, publicKey: string): AccountBlock {
  return {
    name: deviceAccountName(checkedId(id)),
    why: `fleet-agent device ${id}: reaches only its own keys and subjects, through its imports; no user permissions are needed inside it`,
    users: [
      {
        entry: `{ nkey: ${q(publicKey)}, permissions: { publish: { deny: [${q(COMMAND_SUBJECTS)}] } } }`,
        why: `the agent's nkey user; its seed is the device's secret (--nkey). It may publish no command (${COMMAND_SUBJECTS}), not even one to itself: commands are the operator's, and its answers go to the reply subjects the import gives them`,
      },
    ],
    imports: deviceImports(id),
    exports: [
      {
        entry: `{ service: ${q(deviceCommandSubjects(id))}, accounts: [${q(ACCOUNT_OPERATOR)}] }`,
        why: `device commands: the operator's requests to fleet.cmd.${id}.<verb>, answered by the agent; the answer returns through the import's reply mapping`,
      },
    ],
  };
}

/** The line device `id` adds to the operator account's imports: its commands. */
export function operatorImportOfDevice(id: string): ConfigLine {
  return {
    entry: service(deviceAccountName(checkedId(id)), deviceCommandSubjects(id)),
    why: `send commands to device ${id} (fleet.cmd.${id}.<verb>) and get its answers`,
  };
}

/** The JetStream API subjects of one stream, each with what uses it, for the operator's imports. */
function streamApi(name: string): Array<{ subject: string; why: string }> {
  return [
    { subject: `$JS.API.STREAM.*.${name}`, why: `${name}: create, info, update, purge, delete` },
    { subject: `$JS.API.STREAM.MSG.*.${name}`, why: `${name}: get or delete a message by sequence` },
    { subject: `$JS.API.DIRECT.GET.${name}`, why: `${name}: direct gets by sequence (KV get)` },
    { subject: `$JS.API.DIRECT.GET.${name}.>`, why: `${name}: direct gets by last subject` },
    { subject: `$JS.API.CONSUMER.*.${name}`, why: `${name}: consumer list, names, unnamed create` },
    { subject: `$JS.API.CONSUMER.*.${name}.>`, why: `${name}: consumer create, info, delete (watches, history, key lists)` },
    { subject: `$JS.API.CONSUMER.DURABLE.CREATE.${name}.*`, why: `${name}: durable consumer create` },
    { subject: `$JS.API.CONSUMER.MSG.NEXT.${name}.*`, why: `${name}: pull consumers' next messages` },
    { subject: `$JS.FC.${name}.>`, why: `${name}: flow control of its push consumers` },
    { subject: `$JS.ACK.${name}.>`, why: `${name}: acknowledgements` },
  ];
}

/**
 * Every account of a secured fleet: the operator's, the three that hold the streams, the one that
 * answers devices' INFO, and one per device in `devices` (whose commands the operator imports).
 */
export function fleetAccounts(operator: OperatorUser, devices: DeviceKey[] = []): AccountBlock[] {
  const operatorImports: ConfigLine[] = [];
  for (const a of STREAM_ACCOUNTS) {
    for (const s of a.streams) for (const x of streamApi(s)) operatorImports.push({ entry: service(a.account, x.subject), why: x.why });
    for (const b of a.buckets) operatorImports.push({ entry: service(a.account, `$KV.${b}.>`), why: `write and delete ${b} keys` });
    operatorImports.push({ entry: stream(a.account, "_INBOX.>"), why: `deliveries of its consumers on ${a.streams.join(", ")} (watches, history, key lists)` });
  }
  operatorImports.push({
    entry: service(ACCOUNT_REPORTS, "$JS.API.INFO"),
    why: "JetStream account info (nats.js checks it before managing streams); its presence also keeps the server from giving this account a JetStream API of its own",
  });
  for (const d of devices) operatorImports.push(operatorImportOfDevice(d.id));

  const storeExports = (a: (typeof STREAM_ACCOUNTS)[number]): ConfigLine[] => [
    { entry: `{ service: "$JS.API.>" }`, why: `JetStream API of ${a.streams.join(", ")}; every importer names the stream-scoped subjects it may use` },
    { entry: `{ service: "$JS.FC.>" }`, why: "flow control of push consumers" },
    { entry: `{ service: "$JS.ACK.>" }`, why: "acknowledgements" },
    { entry: `{ stream: "_INBOX.>" }`, why: "the operator's consumer deliveries" },
    ...(a.account === ACCOUNT_REPORTS ? [] : [{ entry: `{ stream: ${q(`${DEVICE_INBOXES}.>`)} }`, why: "devices' consumer deliveries; each device imports only its own inboxes" }]),
    ...a.buckets.map((b) => ({ entry: `{ service: ${q(`$KV.${b}.>`)} }`, why: `${b} writes; each device imports only its own keys` })),
    ...a.subjects.map((s) => ({ entry: `{ service: ${q(s)} }`, why: "journal events; each device imports only its own subjects" })),
  ];

  return [
    {
      name: ACCOUNT_OPERATOR,
      why: "the operator (fleetctl, the dashboard): every stream's API by name, every key, every device's commands; no JetStream of its own",
      users: [{ entry: `{ user: ${q(operator.user)}, password: ${q(operator.password)} }`, why: "the operator's user (a bcrypt hash from `nats server passwd`)" }],
      imports: operatorImports,
    },
    ...STREAM_ACCOUNTS.map((a) => ({
      name: a.account,
      why: `holds ${a.streams.join(", ")} and nothing else; no users. Exports are open: an account reaches only what its imports in this file name`,
      jetstream: { entry: "jetstream: enabled", why: `${a.streams.join(", ")} live here` },
      exports: storeExports(a),
    })),
    {
      name: ACCOUNT_NO_JETSTREAM,
      why: "no JetStream, no users: answers devices' JetStream INFO with \"not enabled for account\"",
      exports: [{ entry: `{ service: "$JS.API.INFO" }`, why: "devices import it in place of the JetStream API the server would give them" }],
    },
    ...devices.map((d) => deviceAccount(d.id, d.publicKey)),
  ];
}

/** One account in nats-server.conf syntax, a comment line with the reason before every entry. */
export function renderAccount(a: AccountBlock, indent = ""): string {
  const i1 = `${indent}  `;
  const i2 = `${indent}    `;
  const list = (name: string, lines: ConfigLine[] | undefined) =>
    lines === undefined ? [] : [`${i1}${name}: [`, ...lines.flatMap((l) => [`${i2}# ${l.why}`, `${i2}${l.entry}`]), `${i1}]`];
  return [
    `${indent}# ${a.why}`,
    `${indent}${q(a.name)}: {`,
    ...(a.jetstream ? [`${i1}# ${a.jetstream.why}`, `${i1}${a.jetstream.entry}`] : []),
    ...list("users", a.users),
    ...list("imports", a.imports),
    ...list("exports", a.exports),
    `${indent}}`,
  ].join("\n");
}

/** The whole `accounts { … }` block of a secured fleet's nats-server.conf. */
export function accountsBlock(operator: OperatorUser, devices: DeviceKey[] = []): string {
  return `accounts {\n${fleetAccounts(operator, devices).map((a) => renderAccount(a, "  ")).join("\n")}\n}\n`;
}

/** A new nkey user for a device: the public key goes in the server config, the seed to the device. */
export function newDeviceKey(): { publicKey: string; seed: string } {
  const kp = nkeys.createUser();
  const seed = new TextDecoder().decode(kp.getSeed());
  const publicKey = kp.getPublicKey();
  kp.clear();
  return { publicKey, seed };
}
