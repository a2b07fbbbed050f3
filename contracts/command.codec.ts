// Device commands: an operator's request to one device on `fleet.cmd.<device>.<verb>` and the
// device's reply, both JSON and decoded exactly on both ends (docs/design.md, "Device commands").
// A reply is `{ok: true, …}` or `{ok: false, error}`.
import * as t from "io-ts";
import { dict, refine, struct } from "./decode.js";
import { IsoTime, Phase } from "./deployment-state.codec.js";
import { DeploymentName, DeviceId, ServiceName } from "./names.js";

export const COMMAND_VERBS = ["ping", "logs", "restart"] as const;
export type CommandVerb = (typeof COMMAND_VERBS)[number];
export const isCommandVerb = (s: string): s is CommandVerb => (COMMAND_VERBS as readonly string[]).includes(s);

/** Lines a logs request gets when it names no `tail`, and the most it may ask for. */
export const LOGS_DEFAULT_TAIL = 200;
export const LOGS_MAX_TAIL = 10_000;

const Tail = refine(
  t.number,
  "Tail",
  (n) => (Number.isInteger(n) && n >= 1 && n <= LOGS_MAX_TAIL ? null : `expected a whole number of lines from 1 to ${LOGS_MAX_TAIL}, got ${n}`),
  { integer: true, minimum: 1, maximum: LOGS_MAX_TAIL },
);

// ---- requests ------------------------------------------------------------------------------

export const PingRequest = struct("PingRequest", {});
export type PingRequest = t.TypeOf<typeof PingRequest>;

export const LogsRequest = struct(
  "LogsRequest",
  { deployment: DeploymentName, service: ServiceName },
  {
    /** The last this many lines (default LOGS_DEFAULT_TAIL). */
    tail: Tail,
    /** Only lines written at or after this time. */
    since: IsoTime,
  },
);
export type LogsRequest = t.TypeOf<typeof LogsRequest>;

export const RestartRequest = struct("RestartRequest", { deployment: DeploymentName, service: ServiceName });
export type RestartRequest = t.TypeOf<typeof RestartRequest>;

// ---- replies -------------------------------------------------------------------------------

export const CommandFailure = struct("CommandFailure", { ok: t.literal(false), error: t.string });
export type CommandFailure = t.TypeOf<typeof CommandFailure>;

const UptimeSecs = refine(t.number, "UptimeSecs", (n) => (Number.isFinite(n) && n >= 0 ? null : `expected a non-negative number of seconds, got ${n}`), { minimum: 0 });

export const PingReply = struct("PingReply", {
  ok: t.literal(true),
  device: DeviceId,
  agent_version: t.string,
  uptime_secs: UptimeSecs,
  at: IsoTime,
  /** deployment → its phase now. */
  deployments: dict("DeploymentPhases", DeploymentName, Phase),
});
export type PingReply = t.TypeOf<typeof PingReply>;

export const LogLine = struct("LogLine", {
  /** When the container's runtime stamped the line (Podman 4.3.1: to the second). */
  at: IsoTime,
  stream: t.keyof({ stdout: null, stderr: null }, "LogStream"),
  /** The line without its newline; env values of the deployment replaced by `<redacted>`. */
  text: t.string,
});
export type LogLine = t.TypeOf<typeof LogLine>;

export const LogsReply = struct("LogsReply", {
  ok: t.literal(true),
  /** Oldest first. */
  lines: t.array(LogLine, "LogLines"),
  /** Older lines were dropped, or the oldest cut, to keep the reply under the server's max payload. */
  truncated: t.boolean,
});
export type LogsReply = t.TypeOf<typeof LogsReply>;

export const RestartReply = struct("RestartReply", {
  ok: t.literal(true),
  /** The restarted container: the same one, started anew. */
  id: t.string,
});
export type RestartReply = t.TypeOf<typeof RestartReply>;

/**
 * A reply that is either `success` or a CommandFailure, told apart by `ok`: one error list for the
 * branch the value claims to be, not one per union member.
 */
export function replyOf<S extends t.Mixed>(success: S) {
  type A = t.TypeOf<S> | CommandFailure;
  return new t.Type<A, t.OutputOf<S> | t.OutputOf<typeof CommandFailure>, unknown>(
    `${success.name} | CommandFailure`,
    (u): u is A => success.is(u) || CommandFailure.is(u),
    (u, ctx) => (typeof u === "object" && u !== null && (u as { ok?: unknown }).ok === false ? CommandFailure.validate(u, ctx) : success.validate(u, ctx)),
    (a) => (CommandFailure.is(a) ? CommandFailure.encode(a) : success.encode(a)),
  );
}

/** Each verb's request and reply codecs. */
export const COMMANDS = {
  ping: { request: PingRequest, reply: replyOf(PingReply) },
  logs: { request: LogsRequest, reply: replyOf(LogsReply) },
  restart: { request: RestartRequest, reply: replyOf(RestartReply) },
} as const;

export type CommandRequest<V extends CommandVerb> = t.TypeOf<(typeof COMMANDS)[V]["request"]>;
export type CommandSuccess<V extends CommandVerb> = V extends "ping" ? PingReply : V extends "logs" ? LogsReply : RestartReply;
export type CommandReply<V extends CommandVerb> = CommandSuccess<V> | CommandFailure;
