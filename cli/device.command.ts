// fleetctl device add <id> [--seed-out FILE]: a new nkey user for one device, printed as the
// nats-server authorization entry with its least-privilege permissions (README: Securing a fleet).
import { writeFileSync } from "node:fs";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { EXIT, OperationError, UsageError, parse, positionals, type CliIo } from "./common.js";
import { deviceUserEntry, newDeviceKey } from "../fleet/device.permissions.js";
import { deviceRmCommand } from "./device-rm.command.js";

export const DEVICE_HELP = `Usage: fleetctl device add <device> [--seed-out FILE]

Creates an nkey identity for one device and prints the entry to add to the \`users\` list of the
nats-server authorization block: the device may read only its own desired state, write only its own
device-state, heartbeat and info keys, publish only its own events, and use only the JetStream API
requests the agent needs for those (README: "Securing a fleet"). Nothing is written to NATS.

The seed is the device's secret: give it to the agent (--nkey FILE / FLEET_NATS_NKEY).
  --seed-out FILE   write the seed to FILE (created with mode 0600; an existing file is not
                    overwritten) instead of printing it. Without it the seed is printed once,
                    on a comment line after the entry: remove that line before using the output.
  -h, --help        this text

Exit: 0 ok, 1 the seed file could not be written, 2 usage error.

fleetctl device rm <device> [--force] [--yes]: forget a device (fleetctl device rm --help).
`;

export async function deviceCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv[0] === "rm") return deviceRmCommand(argv.slice(1), io);
  const { values, positionals: ps } = parse(argv, { help: { type: "boolean", short: "h" }, "seed-out": { type: "string" } });
  if (values.help) {
    io.out(DEVICE_HELP);
    return EXIT.OK;
  }
  const [sub, id] = positionals(ps, ["subcommand", "device"]);
  if (sub !== "add") throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: "device add <device>" or "device rm <device>" (see --help)`);
  const problem = deviceOrDeploymentNameProblem(id!);
  if (problem) throw new UsageError(`invalid device ${JSON.stringify(id!.slice(0, 60))}: ${problem}`);
  const key = newDeviceKey();
  const seedOut = values["seed-out"];
  if (seedOut !== undefined) {
    try {
      writeFileSync(seedOut, `${key.seed}\n`, { mode: 0o600, flag: "wx" });
    } catch (e) {
      throw new OperationError(`--seed-out ${JSON.stringify(seedOut)}: ${(e as NodeJS.ErrnoException).code ?? "cannot write it"}`);
    }
  }
  io.out(`${deviceUserEntry(id!, key.publicKey)}\n`);
  if (seedOut === undefined) io.out(`# seed of ${id} (shown once; give it to the device's --nkey file, then delete this line): ${key.seed}\n`);
  else io.err(`seed of ${id} written to ${seedOut} (mode 0600); public key ${key.publicKey}\n`);
  return EXIT.OK;
}
