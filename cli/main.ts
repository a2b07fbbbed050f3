#!/usr/bin/env node
// fleetctl: the operator's command line. `run(argv, io)` is the whole program (tests call it in
// process); run as a script it binds stdout/stderr/env and SIGINT/SIGTERM, and exits with its code.
import { realpathSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { fileURLToPath } from "node:url";
import { EXIT, OperationError, UsageError, type CliIo } from "./common.js";
import { deleteCommand } from "./delete.command.js";
import { deployCommand } from "./deploy.command.js";
import { describeCommand } from "./describe.command.js";
import { deviceCommand } from "./device.command.js";
import { explainCommand, schemaCommand } from "./explain.command.js";
import { historyCommand } from "./history.command.js";
import { retryCommand } from "./retry.command.js";
import { logsCommand } from "./logs.command.js";
import { pingCommand } from "./ping.command.js";
import { restartCommand } from "./restart.command.js";
import { keyCommand } from "./key.command.js";
import { rolloutCommand } from "./rollout.command.js";
import { serveCommand } from "./serve.command.js";
import { statusCommand } from "./status.command.js";

export { EXIT, type CliIo } from "./common.js";

export const HELP = `fleetctl: deploy to, watch and debug a fleet of fleet-agent devices through NATS.

Usage: fleetctl <command> [options]      (fleetctl <command> --help for each)

Commands:
  deploy <device> <deployment> -f FILE [--dry-run]   validate a score (or a Compose file), show the per-service changes, write it
  status [device] [-o wide] [--watch]                deployments: phase, image, restarts, health, errors, heartbeat age
  describe <device> [deployment]                     everything about one device or deployment: services, health, events
  history <device> <deployment>                      the journal as a timeline: what each update changed, time in each state
  ping <device>                                      is its agent there now: version, uptime, its deployments' phases
  logs <device> <deployment> <service> [-f]          a service's output, stdout and stderr (--tail N, --since T), env values hidden
  restart <device> <deployment> <service>            start a service's container anew (journaled)
  rollout <deployment> -f FILE --devices|--selector  roll a score out in waves, each soaking healthy; halts on a Degraded or failed device
  retry <device> <deployment>                        write the same desired state again: a failed deployment retries at once
  delete <device> <deployment>                       delete a deployment's desired state
  explain [field]                                    what a score may hold: every field, its type, default, limits, example
  schema                                             the score's JSON Schema, for editors
  serve [--port N]                                   the dashboard and transition visualiser on 127.0.0.1
  device add <device> [--seed-out FILE]              a device's nkey user and its own NATS account (README: Securing a fleet)
  device accounts [--device ID=KEY ...]              the nats-server accounts of a secured fleet
  device rm <device> [--force]                       forget a device: its device-state, heartbeat and device-info
  key create --seed-out FILE                         an operator signing key (deploy/rollout --signing-key)

Every read takes --json. Every command takes --nats URL (or FLEET_NATS_URL; default nats://127.0.0.1:4222).

Exit status: 0 ok; 1 the operation failed or was refused; 2 usage error or invalid score (nothing
written); 3 a rollout halted (a device failed, a wave timed out, or it was interrupted).
Output to a pipe that closes early (| head) ends quietly: the rest is dropped, the exit status is the
command's own. Colour only on a terminal, never with NO_COLOR set.
`;

const COMMANDS: Record<string, (argv: string[], io: CliIo) => Promise<number>> = {
  deploy: deployCommand,
  status: statusCommand,
  history: historyCommand,
  ping: pingCommand,
  logs: logsCommand,
  restart: restartCommand,
  rollout: rolloutCommand,
  retry: retryCommand,
  delete: deleteCommand,
  serve: serveCommand,
  device: deviceCommand,
  describe: describeCommand,
  explain: explainCommand,
  schema: schemaCommand,
  key: keyCommand,
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
  // A reader that goes away (`fleetctl history … | head -1`) is not an error: drop the rest of the
  // output and stop what only runs to be watched (as Ctrl-C would), without a stack trace.
  // The command still finishes what it was doing (a deploy's write), so its exit status stays true.
  const closed = { out: false, err: false };
  const onStreamError = (which: "out" | "err") => (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    closed[which] = true;
    abort.abort();
  };
  process.stdout.on("error", onStreamError("out"));
  process.stderr.on("error", onStreamError("err"));
  const code = await run(process.argv.slice(2), {
    out: (s) => void (closed.out || process.stdout.write(s)),
    err: (s) => void (closed.err || process.stderr.write(s)),
    env: process.env,
    errIsTty: process.stderr.isTTY === true,
    outIsTty: process.stdout.isTTY === true,
    ...(process.stdout.isTTY ? { columns: process.stdout.columns } : {}),
    stdinIsTty: process.stdin.isTTY === true,
    confirm: async (question) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
      } finally {
        rl.close();
      }
    },
    signal: abort.signal,
  });
  process.exitCode = code;
  // NATS sockets are closed by each command; don't wait on stray timers.
  setTimeout(() => process.exit(code), 200).unref();
}
