#!/usr/bin/env node
// fleetctl: the operator's command line. `run(argv, io)` is the whole program (tests call it in
// process); run as a script it binds stdout/stderr/env and SIGINT/SIGTERM, and exits with its code.
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { EXIT, OperationError, UsageError, type CliIo } from "./common.js";
import { deleteCommand } from "./delete.command.js";
import { deployCommand } from "./deploy.command.js";
import { deviceCommand } from "./device.command.js";
import { historyCommand } from "./history.command.js";
import { retryCommand } from "./retry.command.js";
import { rolloutCommand } from "./rollout.command.js";
import { serveCommand } from "./serve.command.js";
import { statusCommand } from "./status.command.js";

export { EXIT, type CliIo } from "./common.js";

export const HELP = `fleetctl: deploy to, watch and debug a fleet of fleet-agent devices through NATS.

Usage: fleetctl <command> [options]      (fleetctl <command> --help for each)

Commands:
  deploy <device> <deployment> -f FILE [--dry-run]   validate a score, show the per-service changes, write it
  status [device] [--watch]                          deployments: phase, state, containers, errors, heartbeat age
  history <device> <deployment>                      the journal as a timeline, with time spent in each state
  rollout <deployment> -f FILE --devices|--selector  roll a score out in waves, each soaking healthy; halts on a Degraded or failed device
  retry <device> <deployment>                        write the same desired state again: a failed deployment retries at once
  delete <device> <deployment>                       delete a deployment's desired state
  serve [--port N]                                   the dashboard and transition visualiser on 127.0.0.1
  device add <device> [--seed-out FILE]              a device's nkey user and NATS permissions (README: Securing a fleet)

Every read takes --json. Every command takes --nats URL (or FLEET_NATS_URL; default nats://127.0.0.1:4222).

Exit status: 0 ok; 1 the operation failed or was refused; 2 usage error or invalid score (nothing
written); 3 a rollout halted (a device failed, a wave timed out, or it was interrupted).
`;

const COMMANDS: Record<string, (argv: string[], io: CliIo) => Promise<number>> = {
  deploy: deployCommand,
  status: statusCommand,
  history: historyCommand,
  rollout: rolloutCommand,
  retry: retryCommand,
  delete: deleteCommand,
  serve: serveCommand,
  device: deviceCommand,
};

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "-h" || cmd === "--help" || cmd === "help") {
    io.out(HELP);
    return cmd === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const command = COMMANDS[cmd];
  if (!command) {
    io.err(`fleetctl: unknown command ${JSON.stringify(cmd)} (see fleetctl --help)\n`);
    return EXIT.USAGE;
  }
  try {
    return await command(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`fleetctl ${cmd}: ${e.message}\n${e.lines.map((l) => `  ${l}\n`).join("")}`);
      return EXIT.USAGE;
    }
    if (e instanceof OperationError) {
      io.err(`fleetctl ${cmd}: ${e.message}\n`);
      return EXIT.FAILED;
    }
    io.err(`fleetctl ${cmd}: ${(e as Error).message}\n`);
    return EXIT.FAILED;
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const abort = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => abort.abort());
  }
  const code = await run(process.argv.slice(2), {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    env: process.env,
    errIsTty: process.stderr.isTTY === true,
    signal: abort.signal,
  });
  process.exitCode = code;
  // NATS sockets are closed by each command; don't wait on stray timers.
  setTimeout(() => process.exit(code), 200).unref();
}
