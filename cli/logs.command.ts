// fleetctl logs <device> <deployment> <service> [--tail N] [--since T] [-f] [--json]
import { decode } from "../contracts/decode.js";
import { IsoTime } from "../contracts/deployment-state.codec.js";
import { LOGS_DEFAULT_TAIL, LOGS_MAX_TAIL, type LogLine, type LogsRequest } from "../contracts/command.codec.js";
import { DeviceCommands } from "../fleet/device.commands.js";
import { Fleet } from "../fleet/fleet.client.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, UsageError, deviceDeploymentService, natsTarget, parse, positiveNumber, sleep, type CliIo } from "./common.js";

export const LOGS_HELP = `Usage: fleetctl logs <device> <deployment> <service> [--tail N] [--since T] [-f] [--json]

The output of a service's container on the device, stdout and stderr in the order it wrote them,
each line as "<time> <stream> <text>" (the time as the container's runtime stamped it: Podman, to the
second). Asked of the device's agent (fleet.cmd.<device>.logs): env values of the deployment are
shown as <redacted>, and a reply is capped at the server's max payload, keeping the newest lines
(a note on stderr says when older ones were left out).

Options:
  --tail N        the last N lines (1 to ${LOGS_MAX_TAIL}, default ${LOGS_DEFAULT_TAIL})
  --since T       only lines from T on: an ISO time (2026-12-01T10:00:00Z) or an age (90s, 10m, 2h, 1d)
  -f, --follow    keep printing new lines (asks again every --interval with --since the last line's
                  time) until interrupted
  --interval S    seconds between asks with -f (default 1)
  --json          print {device, deployment, service, lines: [{at, stream, text}], truncated};
                  with -f, one {at, stream, text} object a line
${COMMON_HELP}

Exit: 0 ok (also when a follow is interrupted), 1 the device is offline or refused (no such
deployment or service, no container), or NATS is unreachable, 2 usage error.
`;

/** `--since`: an ISO time, or an age before `now`. */
export function sinceArg(v: string, now = Date.now()): string {
  const age = /^(\d+)(s|m|h|d)$/.exec(v);
  if (age) return new Date(now - Number(age[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as "s" | "m" | "h" | "d"]).toISOString();
  if (decode(IsoTime, v).ok) return new Date(Date.parse(v)).toISOString();
  throw new UsageError(`--since: expected an ISO time (2026-12-01T10:00:00Z) or an age (90s, 10m, 2h, 1d), got ${JSON.stringify(v.slice(0, 40))}`);
}

export function tailArg(v: string | undefined): number {
  if (v === undefined) return LOGS_DEFAULT_TAIL;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > LOGS_MAX_TAIL) throw new UsageError(`--tail: expected a whole number of lines from 1 to ${LOGS_MAX_TAIL}, got ${JSON.stringify(v)}`);
  return n;
}

const lineText = (l: LogLine) => `${l.at} ${l.stream} ${l.text}\n`;

/**
 * What a follow has printed of the newest second: the runtime stamps lines to the second, so asking
 * again from the last line's time gets that second's lines again; they are skipped by count.
 */
export class FollowCursor {
  private at: string | null = null;
  private seenAtLast = 0;

  constructor(first: readonly LogLine[]) {
    this.advance(first);
  }

  get since(): string | null {
    return this.at;
  }

  /** The lines of a later answer not printed yet, and the cursor moved past them. */
  fresh(lines: readonly LogLine[]): LogLine[] {
    let skip = 0;
    while (skip < lines.length && skip < this.seenAtLast && lines[skip]!.at === this.at) skip++;
    const out = lines.slice(skip);
    this.advance(out);
    return out;
  }

  private advance(lines: readonly LogLine[]): void {
    for (const l of lines) {
      if (l.at === this.at) this.seenAtLast++;
      else {
        this.at = l.at;
        this.seenAtLast = 1;
      }
    }
  }
}

export async function logsCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, {
    ...COMMON_OPTIONS,
    ...JSON_OPTION,
    tail: { type: "string" },
    since: { type: "string" },
    follow: { type: "boolean", short: "f" },
    interval: { type: "string" },
  });
  if (values.help) {
    io.out(LOGS_HELP);
    return EXIT.OK;
  }
  const [device, deployment, service] = deviceDeploymentService(ps);
  const tail = tailArg(values.tail);
  const since = values.since !== undefined ? sinceArg(values.since) : undefined;
  const intervalMs = positiveNumber("interval", values.interval, 1) * 1000;
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    const commands = new DeviceCommands(fleet.nc);
    const request: LogsRequest = { deployment, service, tail, ...(since !== undefined ? { since } : {}) };
    const first = await commands.logs(device, request);
    const print = (lines: readonly LogLine[]) => {
      for (const l of lines) io.out(values.json && values.follow ? JSON.stringify(l) + "\n" : lineText(l));
    };
    const noteCut = (truncated: boolean) => {
      if (truncated) io.err(`fleetctl logs: older lines were left out: a reply holds at most the server's max payload (ask for fewer with --tail or --since)\n`);
    };
    if (values.json && !values.follow) {
      io.out(JSON.stringify({ device, deployment, service, lines: first.lines, truncated: first.truncated }) + "\n");
      return EXIT.OK;
    }
    print(first.lines);
    noteCut(first.truncated);
    if (!values.follow) return EXIT.OK;
    const cursor = new FollowCursor(first.lines);
    // Before the first line, ask without a time: the device's clock, not ours, stamps its lines.
    let from = cursor.since ?? since ?? null;
    // Ctrl-C ends a follow at once, also while an ask is on its way.
    const interrupted = new Promise<null>((resolve) => {
      if (io.signal?.aborted) resolve(null);
      io.signal?.addEventListener("abort", () => resolve(null), { once: true });
    });
    while (!io.signal?.aborted) {
      await sleep(intervalMs, io.signal);
      if (io.signal?.aborted) break;
      const next = await Promise.race([commands.logs(device, { deployment, service, tail: LOGS_MAX_TAIL, ...(from !== null ? { since: from } : {}) }, { answered: true }), interrupted]);
      if (next === null) break;
      print(cursor.fresh(next.lines));
      noteCut(next.truncated);
      from = cursor.since ?? from;
    }
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}
