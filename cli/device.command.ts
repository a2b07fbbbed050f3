// fleetctl device add <id> [--seed-out FILE]: a new nkey identity for one device, the nats-server
// accounts config that isolates it, and its public key recorded in `device-keys` so its reports can
// be checked; fleetctl device accounts: the accounts every secured fleet shares (README: Securing a
// fleet; fleet/device.permissions.ts says why each line is there).
import { rmSync, writeFileSync } from "node:fs";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { userPublicKeyProblem } from "../contracts/nkey.js";
import {
  ACCOUNT_OPERATOR,
  accountsBlock,
  deviceAccount,
  newDeviceKey,
  operatorImportOfDevice,
  renderAccount,
  type DeviceKey,
} from "../fleet/device.permissions.js";
import { Fleet } from "../fleet/fleet.client.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, OperationError, UsageError, natsTarget, parse, positionals, type CliIo } from "./common.js";
import { deviceRmCommand } from "./device-rm.command.js";

export const DEVICE_HELP = `Usage: fleetctl device add <device> [--seed-out FILE] [--offline]
       fleetctl device accounts [--operator-user NAME] [--operator-password HASH] [--device ID=KEY ...]
       fleetctl device record-key <device> <public-key>

add: creates an nkey identity for one device and prints what nats-server.conf needs for it: the
device's own account (paste it inside \`accounts { }\`) and one line for the imports of the
${ACCOUNT_OPERATOR} account (its commands). In its account the device reaches only its own desired
state, device-state, heartbeat and info keys, its own events and its own commands; no reply subject,
header or consumer of its can write anywhere else (README: "Securing a fleet").
The seed is the device's secret: give it to the agent (--nkey FILE / FLEET_NATS_NKEY).
  --seed-out FILE   write the seed to FILE (created with mode 0600; an existing file is not
                    overwritten) instead of printing it. Without it the seed is printed once,
                    on a comment line after the entries: remove that line before using the output.
  --offline         don't connect to NATS (see below); record the key later with record-key.

The device signs its reports and journal events with that seed. add records the device's public key
in the device-keys bucket (only the operator writes it), and fleetctl and the dashboard check each
report against it: a report the device did not sign shows as forged, one of a device without a
recorded key as unverified. record-key records (or replaces) a key made elsewhere, e.g. for a device
that authenticates with a credentials file.

accounts: prints the whole \`accounts { }\` block: the operator's account, the three accounts that
hold the fleet's streams, the one that answers devices' JetStream INFO, and with --device (repeat
it; KEY is the device's public nkey, U...) each device's account and its operator import.
  --operator-user NAME       the operator's user (default operator)
  --operator-password HASH   its password, a bcrypt hash from \`nats server passwd\` (default: a
                             placeholder to replace)
${COMMON_HELP}

Exit: 0 ok, 1 the seed file could not be written or NATS refused the key, 2 usage error.

fleetctl device rm <device> [--force] [--yes]: forget a device (fleetctl device rm --help).
`;

const PASSWORD_PLACEHOLDER = "<bcrypt hash from `nats server passwd`>";

export async function deviceCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv[0] === "rm") return deviceRmCommand(argv.slice(1), io);
  const { values, positionals: ps } = parse(argv, {
    ...COMMON_OPTIONS,
    "seed-out": { type: "string" },
    offline: { type: "boolean" },
    "operator-user": { type: "string" },
    "operator-password": { type: "string" },
    device: { type: "string", multiple: true },
  });
  if (values.help) {
    io.out(DEVICE_HELP);
    return EXIT.OK;
  }
  const sub = ps[0];
  if (sub === "accounts") {
    if (ps.length > 1) throw new UsageError(`device accounts takes no positional arguments, got ${JSON.stringify(ps[1]!.slice(0, 60))}`);
    const devices = (values.device ?? []).map(parseDeviceKey);
    io.out(accountsBlock({ user: values["operator-user"] ?? "operator", password: values["operator-password"] ?? PASSWORD_PLACEHOLDER }, devices));
    return EXIT.OK;
  }
  if (sub === "record-key") return recordKey(ps, values, io);
  const [, id] = positionals(ps, ["subcommand", "device"]);
  if (sub !== "add") {
    throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: "device add <device>", "device accounts", "device record-key <device> <public-key>" or "device rm <device>" (see --help)`);
  }
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
    io.out(deviceEntries(id!, key.publicKey));
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

/** What `device add` prints: the device's account and the operator's import of its commands. */
export function deviceEntries(id: string, publicKey: string): string {
  const imp = operatorImportOfDevice(id);
  return [
    `# 1. inside accounts { } of nats-server.conf:`,
    renderAccount(deviceAccount(id, publicKey)),
    `# 2. in the imports of ${JSON.stringify(ACCOUNT_OPERATOR)}:`,
    `# ${imp.why}`,
    imp.entry,
    `# Then reload the server (nats-server --signal reload). The accounts every fleet shares: fleetctl device accounts.`,
    "",
  ].join("\n");
}

function parseDeviceKey(arg: string): DeviceKey {
  const eq = arg.indexOf("=");
  const id = eq < 0 ? arg : arg.slice(0, eq);
  const publicKey = eq < 0 ? "" : arg.slice(eq + 1);
  const problem = deviceOrDeploymentNameProblem(id);
  if (problem) throw new UsageError(`--device ${JSON.stringify(arg.slice(0, 60))}: invalid device: ${problem}`);
  const keyProblem = userPublicKeyProblem(publicKey);
  if (keyProblem) throw new UsageError(`--device ${JSON.stringify(arg.slice(0, 60))}: expected ID=KEY with KEY a public nkey of a user (U...): ${keyProblem}`);
  return { id, publicKey };
}
