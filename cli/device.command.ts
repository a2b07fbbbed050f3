// fleetctl device add <id> [--seed-out FILE]: a new nkey user for one device, printed as the
// nats-server authorization entry with its least-privilege permissions (README: Securing a fleet),
// its public key recorded in `device-keys` so its reports can be checked.
import { rmSync, writeFileSync } from "node:fs";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { userPublicKeyProblem } from "../contracts/nkey.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, OperationError, UsageError, natsTarget, parse, positionals, type CliIo } from "./common.js";
import { deviceUserEntry, newDeviceKey } from "../fleet/device.permissions.js";
import { Fleet } from "../fleet/fleet.client.js";
import { deviceRmCommand } from "./device-rm.command.js";

export const DEVICE_HELP = `Usage: fleetctl device add <device> [--seed-out FILE] [--offline]
       fleetctl device record-key <device> <public-key>

add: creates an nkey identity for one device and prints the entry to add to the \`users\` list of the
nats-server authorization block: the device may read only its own desired state, write only its own
device-state, heartbeat and info keys, publish only its own events, and use only the JetStream API
requests the agent needs for those (README: "Securing a fleet").

The seed is the device's secret: give it to the agent (--nkey FILE / FLEET_NATS_NKEY).
  --seed-out FILE   write the seed to FILE (created with mode 0600; an existing file is not
                    overwritten) instead of printing it. Without it the seed is printed once,
                    on a comment line after the entry: remove that line before using the output.
  --offline         don't connect to NATS (see below); record the key later with record-key.
  -h, --help        this text

The device signs its reports and journal events with that seed. add records the device's public key
in the device-keys bucket (only the operator writes it), and fleetctl and the dashboard check each
report against it: a report the device did not sign shows as forged, one of a device without a
recorded key as unverified. record-key records (or replaces) a key made elsewhere, e.g. for a device
that authenticates with a credentials file.
${COMMON_HELP}

Exit: 0 ok, 1 the seed file could not be written or NATS refused the key, 2 usage error.

fleetctl device rm <device> [--force] [--yes]: forget a device (fleetctl device rm --help).
`;

export async function deviceCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv[0] === "rm") return deviceRmCommand(argv.slice(1), io);
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, "seed-out": { type: "string" }, offline: { type: "boolean" } });
  if (values.help) {
    io.out(DEVICE_HELP);
    return EXIT.OK;
  }
  const sub = ps[0];
  if (sub === "record-key") return recordKey(ps, values, io);
  const [, id] = positionals(ps, ["subcommand", "device"]);
  if (sub !== "add") throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: "device add <device>", "device record-key <device> <public-key>" or "device rm <device>" (see --help)`);
  const problem = deviceOrDeploymentNameProblem(id!);
  if (problem) throw new UsageError(`invalid device ${JSON.stringify(id!.slice(0, 60))}: ${problem}`);
  // Connected before anything is made, so an unreachable NATS leaves no seed behind.
  const fleet = values.offline ? null : await Fleet.connect(natsTarget(values, io.env));
  try {
    const key = newDeviceKey();
    const seedOut = values["seed-out"];
    if (seedOut !== undefined) {
      try {
        writeFileSync(seedOut, `${key.seed}\n`, { mode: 0o600, flag: "wx" });
      } catch (e) {
        throw new OperationError(`--seed-out ${JSON.stringify(seedOut)}: ${(e as NodeJS.ErrnoException).code ?? "cannot write it"}`);
      }
    }
    if (fleet) {
      try {
        await fleet.recordDeviceKey(id!, key.publicKey);
      } catch (e) {
        if (seedOut !== undefined) rmSync(seedOut, { force: true });
        throw new OperationError(`recording the key of ${id} in device-keys failed: ${(e as Error).message}; nothing kept`);
      }
    }
    io.out(`${deviceUserEntry(id!, key.publicKey)}\n`);
    if (seedOut === undefined) io.out(`# seed of ${id} (shown once; give it to the device's --nkey file, then delete this line): ${key.seed}\n`);
    else io.err(`seed of ${id} written to ${seedOut} (mode 0600); public key ${key.publicKey}\n`);
    io.err(fleet ? `public key of ${id} recorded in device-keys: its reports are checked against it\n` : `not recorded (--offline): record it with \`fleetctl device record-key ${id} ${key.publicKey}\`\n`);
    return EXIT.OK;
  } finally {
    await fleet?.close();
  }
}

async function recordKey(ps: string[], values: Readonly<Record<string, unknown>>, io: CliIo): Promise<number> {
  const [, id, publicKey] = positionals(ps, ["subcommand", "device", "public-key"]) as [string, string, string];
  const problem = deviceOrDeploymentNameProblem(id);
  if (problem) throw new UsageError(`invalid device ${JSON.stringify(id.slice(0, 60))}: ${problem}`);
  const keyProblem = userPublicKeyProblem(publicKey);
  if (keyProblem) throw new UsageError(`<public-key>: ${keyProblem}`);
  if (values["offline"] || values["seed-out"] !== undefined) throw new UsageError("record-key takes neither --offline nor --seed-out (see --help)");
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    await fleet.recordDeviceKey(id, publicKey);
    io.out(`public key of ${id} recorded in device-keys: ${publicKey}\n`);
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}
