// fleetctl serve [--port N] [--tick-secs N]
import { startInspector } from "../inspector/server.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, UsageError, natsTarget, parse, positionals, positiveNumber, type CliIo } from "./common.js";
import { Fleet } from "../fleet/fleet.client.js";

export const SERVE_HELP = `Usage: fleetctl serve [--port N] [--tick-secs N]

Serves the operator console on http://127.0.0.1:PORT/ until interrupted: a fleet summary (devices,
deployments by phase, failing, stale and unsigned devices) with search and filters; per device its
deployments and each service's image, state, health, restarts and container id; per deployment the
visualiser (the machine's statechart, the journal's timeline a page at a time with the per-service
change at each update, a step control that replays each transition on the chart); comparison of two
deployments or two devices with the differences highlighted; retry, delete and restart behind a
confirmation; live updates over server-sent events; a timeline's JSON export. Every asset is served
from the package: no network needed beyond NATS. Env values are never shown.

Options:
  --port N        port on 127.0.0.1 (default 8080; 0 picks a free one)
  --tick-secs N   the agents' tick in seconds, for stale marks of devices whose heartbeat
                  does not give its own (default 30)
${COMMON_HELP}

Exit: 0 stopped by a signal, 1 NATS unreachable or the port is taken, 2 usage error.
`;

export async function serveCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, port: { type: "string" }, "tick-secs": { type: "string" } });
  if (values.help) {
    io.out(SERVE_HELP);
    return EXIT.OK;
  }
  positionals(ps, []);
  let port = 8080;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port > 65535) throw new UsageError(`--port: expected 0-65535, got ${JSON.stringify(values.port)}`);
  }
  const tickSecs = positiveNumber("tick-secs", values["tick-secs"], 30);
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    let inspector;
    try {
      inspector = await startInspector({ fleet, port, tickSecs });
    } catch (e) {
      io.err(`fleetctl serve: cannot listen on 127.0.0.1:${port}: ${(e as Error).message}\n`);
      return EXIT.FAILED;
    }
    io.out(`dashboard: ${inspector.url}\n`);
    io.hooks?.onListening?.(inspector.url);
    await new Promise<void>((resolve) => {
      if (!io.signal || io.signal.aborted) return resolve();
      io.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await inspector.close();
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}
