// The operator's side of the device commands (docs/design.md, "Device commands"), shared by fleetctl
// and the dashboard: a NATS request to `fleet.cmd.<device>.<verb>`, the reply decoded exactly. A
// device whose agent does not answer is offline, said as such: at once when the server knows no
// responder, after OFFLINE_MS when a ping gets no answer. A server tells no responder only within
// one account: across the import of a device's commands (a secured fleet) silence is all there is,
// so logs and restart ping first and are told offline in OFFLINE_MS, not after their own wait.
import { errors, type NatsConnection } from "@nats-io/transport-node";
import type * as t from "io-ts";
import {
  CommandFailure,
  COMMANDS,
  type CommandVerb,
  type LogsReply,
  type LogsRequest,
  type PingReply,
  type RestartReply,
  type RestartRequest,
} from "../contracts/command.codec.js";
import { decode, decodeJson } from "../contracts/decode.js";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { commandSubject } from "../contracts/wire-names.js";
import { OperationError, UsageError } from "./errors.js";

/** How long a device has to answer a ping before it counts as offline. */
export const OFFLINE_MS = 2_000;
/** What the operator waits for by default: the agent's own bounds plus the trip (agent/nats/command.responder.ts). */
export const COMMAND_TIMEOUT_MS: Record<CommandVerb, number> = { ping: OFFLINE_MS, logs: 25_000, restart: 120_000 };

/** The device's agent did not answer: no responder, or no answer to a ping in time. */
export class DeviceOffline extends OperationError {
  constructor(
    readonly device: string,
    why: string,
  ) {
    super(`${device} is offline: ${why}`);
    this.name = "DeviceOffline";
  }
}

/** The device answered `{ok: false, error}`: its words, naming what was wrong. */
export class CommandFailed extends OperationError {
  constructor(
    readonly device: string,
    readonly verb: CommandVerb,
    readonly reason: string,
  ) {
    super(`${device} refused ${verb}: ${reason}`);
    this.name = "CommandFailed";
  }
}

export interface CommandOptions {
  /** How long to wait for the reply (default COMMAND_TIMEOUT_MS of the verb). */
  timeoutMs?: number;
  /** The device answered just now (a follow asking again): no ping first. */
  answered?: boolean;
}

export class DeviceCommands {
  constructor(private readonly nc: NatsConnection) {}

  ping(device: string, o: CommandOptions = {}): Promise<PingReply> {
    return this.send(device, "ping", COMMANDS.ping, {}, o);
  }

  async logs(device: string, request: LogsRequest, o: CommandOptions = {}): Promise<LogsReply> {
    if (!o.answered) await this.ping(device);
    return this.send(device, "logs", COMMANDS.logs, request, o);
  }

  async restart(device: string, request: RestartRequest, o: CommandOptions = {}): Promise<RestartReply> {
    if (!o.answered) await this.ping(device);
    return this.send(device, "restart", COMMANDS.restart, request, o);
  }

  private async send<Req, ReqOut, Success, RepOut>(
    device: string,
    verb: CommandVerb,
    codecs: { request: t.Type<Req, ReqOut, unknown>; reply: t.Type<Success | CommandFailure, RepOut, unknown> },
    request: Req,
    o: CommandOptions,
  ): Promise<Success> {
    const bad = deviceOrDeploymentNameProblem(device);
    if (bad) throw new UsageError(`invalid device ${JSON.stringify(device.slice(0, 60))}: ${bad}`);
    // The request is checked here too: a bad one is the caller's mistake, not the device's.
    const checked = decode(codecs.request, request);
    if (!checked.ok) throw new UsageError(`invalid ${verb} request`, checked.errors);
    const timeoutMs = o.timeoutMs ?? COMMAND_TIMEOUT_MS[verb];
    let text: string;
    try {
      const m = await this.nc.request(commandSubject(device, verb), JSON.stringify(codecs.request.encode(checked.value)), { timeout: timeoutMs });
      text = m.string();
    } catch (e) {
      throw requestFailure(device, verb, e, timeoutMs);
    }
    const r = decodeJson(codecs.reply, text);
    if (!r.ok) throw new OperationError(`${device}'s ${verb} reply does not decode: ${r.errors.slice(0, 5).join("; ")}`);
    if (CommandFailure.is(r.value)) throw new CommandFailed(device, verb, r.value.error);
    return r.value;
  }
}

function requestFailure(device: string, verb: CommandVerb, e: unknown, timeoutMs: number): Error {
  if (e instanceof errors.RequestError && e.isNoResponders()) return new DeviceOffline(device, "no agent answers its commands (no responders)");
  const secs = `${timeoutMs / 1000} s`;
  if (e instanceof errors.TimeoutError) {
    return verb === "ping"
      ? new DeviceOffline(device, `no answer to a ping within ${secs}`)
      : new OperationError(`no answer from ${device} to ${verb} within ${secs}: its agent may be busy, or cut off from NATS`);
  }
  return new OperationError(`${verb} to ${device} failed: ${(e as Error).message}`);
}
