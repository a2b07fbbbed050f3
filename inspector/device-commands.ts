// The dashboard's device commands (docs/design.md, "Device commands"): ping, a service's logs (as
// JSON for the logs panel, or as a text file to download) and a service's restart, each through the
// operator's command client that fleetctl uses too. Query strings are decoded exactly; a device's
// answer maps to an HTTP status: offline 503 (a ping says `online: false` instead), refused 409, a
// bad request 400.
import type { IncomingMessage, ServerResponse } from "node:http";
import { LogsRequest, type LogLine } from "../contracts/command.codec.js";
import { decode } from "../contracts/decode.js";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { CommandFailed, DeviceCommands, DeviceOffline } from "../fleet/device.commands.js";
import { OperationError, UsageError } from "../fleet/errors.js";
import type { NatsConnection } from "@nats-io/transport-node";

/** A failure with the HTTP status it is answered with. */
export class CommandHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly offline = false,
  ) {
    super(message);
  }
}

/** The routes this module answers, under `/api/commands/`. */
export const COMMAND_ROUTES = ["/api/commands/ping", "/api/commands/logs", "/api/commands/logs.txt"] as const;

function httpErrorOf(e: unknown): CommandHttpError {
  if (e instanceof CommandHttpError) return e;
  if (e instanceof DeviceOffline) return new CommandHttpError(503, e.message, true);
  if (e instanceof CommandFailed) return new CommandHttpError(409, e.message);
  if (e instanceof UsageError) return new CommandHttpError(400, [e.message, ...e.lines].join("; "));
  if (e instanceof OperationError) return new CommandHttpError(502, e.message);
  return new CommandHttpError(500, (e as Error).message);
}

function deviceOf(u: URL): string {
  const device = u.searchParams.get("device") ?? "";
  const p = deviceOrDeploymentNameProblem(device);
  if (p) throw new CommandHttpError(400, `device: ${p}`);
  return device;
}

/** `?deployment=&service=&tail=&since=` as a LogsRequest, decoded exactly (tail must be a whole number). */
export function logsRequestOf(u: URL): LogsRequest {
  const raw: Record<string, unknown> = {};
  for (const [k, v] of u.searchParams) {
    if (k === "device") continue;
    raw[k] = k === "tail" && /^\d+$/.test(v) ? Number(v) : v;
  }
  const r = decode(LogsRequest, raw);
  if (!r.ok) throw new CommandHttpError(400, r.errors.join("; "));
  return r.value;
}

const lineText = (l: LogLine) => `${l.at} ${l.stream} ${l.text}\n`;

/**
 * Answers `req` if it is one of COMMAND_ROUTES (ping and logs are GETs), and says whether it was.
 * Failures are answered here as `{error, offline?}` with their status.
 */
export async function answerCommandRoute(nc: NatsConnection, u: URL, res: ServerResponse, req: IncomingMessage): Promise<boolean> {
  if (!(COMMAND_ROUTES as readonly string[]).includes(u.pathname)) return false;
  const commands = new DeviceCommands(nc);
  try {
    if (req.method !== "GET") throw new CommandHttpError(405, "GET only");
    const device = deviceOf(u);
    if (u.pathname === "/api/commands/ping") {
      // Offline is an answer to a ping, not a failure of it (as fleetctl ping --json says it).
      const t0 = performance.now();
      const reply = await commands.ping(device).catch((e: unknown) => {
        if (e instanceof DeviceOffline) return null;
        throw e;
      });
      if (reply === null) send(res, 200, { device, online: false, error: `${device} is offline: its agent does not answer` });
      else {
        const { ok: _ok, ...rest } = reply;
        send(res, 200, { ...rest, online: true, rtt_ms: Math.round(performance.now() - t0) });
      }
    } else {
      const request = logsRequestOf(u);
      const { lines, truncated } = await commands.logs(device, request);
      if (u.pathname === "/api/commands/logs") send(res, 200, { device, ...request, lines, truncated });
      else {
        res.writeHead(200, {
          "content-type": "text/plain; charset=utf-8",
          "content-disposition": `attachment; filename="${device}-${request.deployment}-${request.service}.log"`,
          "cache-control": "no-store",
        });
        res.end(lines.map(lineText).join("") + (truncated ? "# older lines were left out: a reply holds at most the server's max payload\n" : ""));
      }
    }
  } catch (e) {
    const h = httpErrorOf(e);
    if (!res.headersSent) send(res, h.status, { error: h.message, ...(h.offline ? { offline: true } : {}) });
    else res.end();
  }
  return true;
}

/** A restart of a service, for the dashboard's confirmed action: the restarted container's id. */
export async function restartOf(nc: NatsConnection, device: string, deployment: string, service: string): Promise<{ id: string }> {
  try {
    const { id } = await new DeviceCommands(nc).restart(device, { deployment, service });
    return { id };
  } catch (e) {
    throw httpErrorOf(e);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}
