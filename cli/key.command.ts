// fleetctl key create --seed-out FILE: an operator signing key (docs/design.md, "Signed desired state").
import { writeFileSync } from "node:fs";
import { newUserKey } from "../contracts/nkey.js";
import { EXIT, OperationError, UsageError, parse, positionals, type CliIo } from "./common.js";

export const KEY_HELP = `Usage: fleetctl key create --seed-out FILE

Creates an operator signing key: an ed25519 key pair in nkey form. The seed (SU...) is written to
FILE, created with mode 0600 (an existing file is not overwritten); the public key (U...) is printed.
Nothing is written to NATS.

Sign with the seed: fleetctl deploy/rollout --signing-key FILE (or FLEET_SIGNING_KEY). Give the
public key to every device: fleet-agent --operator-keys U... (or FLEET_OPERATOR_KEYS; several,
comma separated, while rotating from one key to the next). A device started with operator keys
applies only desired states one of them signed for it.

  --seed-out FILE   where the seed goes (required: a seed is never printed)
  -h, --help        this text

Exit: 0 ok, 1 the seed file could not be written, 2 usage error.
`;

export async function keyCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { help: { type: "boolean", short: "h" }, "seed-out": { type: "string" } });
  if (values.help) {
    io.out(KEY_HELP);
    return EXIT.OK;
  }
  const [sub] = positionals(ps, ["subcommand"]);
  if (sub !== "create") throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: only "key create" (see --help)`);
  const seedOut = values["seed-out"];
  if (!seedOut) throw new UsageError("missing --seed-out FILE: where the seed is written (see --help)");
  const key = newUserKey();
  try {
    writeFileSync(seedOut, `${key.seed}\n`, { mode: 0o600, flag: "wx" });
  } catch (e) {
    throw new OperationError(`--seed-out ${JSON.stringify(seedOut)}: ${(e as NodeJS.ErrnoException).code ?? "cannot write it"}`);
  }
  io.out(`${key.publicKey}\n`);
  io.err(`operator signing key: seed written to ${seedOut} (mode 0600); public key above (give it to devices: --operator-keys)\n`);
  return EXIT.OK;
}
