// fleetctl delete <device> <deployment>
import { deploymentKey } from "../contracts/wire-names.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, OperationError, deviceAndDeployment, natsTarget, parse, type CliIo } from "./common.js";
import { Fleet } from "../fleet/fleet.client.js";

export const DELETE_HELP = `Usage: fleetctl delete <device> <deployment> [--json]

Deletes the deployment's desired state (with a compare-and-set on the revision read). The agent then
stops and removes the deployment's containers and reports it as removed.

Options:
  --json   print {device, deployment, deleted_revision}
${COMMON_HELP}

Exit: 0 deleted, 1 no such desired state or the delete failed, 2 usage error.
`;

export async function deleteCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, ...JSON_OPTION });
  if (values.help) {
    io.out(DELETE_HELP);
    return EXIT.OK;
  }
  const [device, deployment] = deviceAndDeployment(ps);
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    const key = deploymentKey(device, deployment);
    const e = await fleet.desired.get(key);
    if (!e || e.operation !== "PUT") throw new OperationError(`no desired state for ${device}/${deployment}: nothing to delete`);
    try {
      await fleet.desired.delete(key, { previousSeq: e.revision });
    } catch (err) {
      throw new OperationError(`refused: ${key} changed since it was read (revision ${e.revision}): ${(err as Error).message}`);
    }
    if (values.json) io.out(JSON.stringify({ device, deployment, deleted_revision: e.revision }) + "\n");
    else io.out(`deleted: desired-state ${key} (was revision ${e.revision}); the agent will remove its containers\n`);
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}
