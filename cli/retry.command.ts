// fleetctl retry <device> <deployment>
import { deploymentKey } from "../contracts/wire-names.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, OperationError, deviceAndDeployment, natsTarget, parse, type CliIo } from "./common.js";
import { writeDesired } from "./deploy.command.js";
import { Fleet } from "../fleet/fleet.client.js";

export const RETRY_HELP = `Usage: fleetctl retry <device> <deployment> [--json]

Writes the deployment's desired state again, unchanged (a compare-and-set on the revision read).
The same score at a newer revision is the operator's retry: a deployment that failed on it tries
again at once, from the step that failed (journaled as desired.retried), instead of waiting for its
next forward retry. A deployment that is not failed takes no action on it.

Options:
  --json   print {device, deployment, revision, previous_revision, phase}
${COMMON_HELP}

Exit: 0 written, 1 no desired state, a concurrent change or the write failed, 2 usage error.
`;

export async function retryCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, ...JSON_OPTION });
  if (values.help) {
    io.out(RETRY_HELP);
    return EXIT.OK;
  }
  const [device, deployment] = deviceAndDeployment(ps);
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    const key = deploymentKey(device, deployment);
    const [entry, state] = await Promise.all([fleet.desired.get(key), fleet.deploymentState(device, deployment)]);
    if (!entry || entry.operation !== "PUT") throw new OperationError(`no desired state for ${device}/${deployment}: nothing to retry`);
    // The stored bytes as they are: the same canonical hash, whatever fleetctl's own formatting.
    const revision = await writeDesired(fleet, key, entry.string(), entry.revision);
    const phase = state?.phase ?? null;
    if (values.json) io.out(JSON.stringify({ device, deployment, revision, previous_revision: entry.revision, phase }) + "\n");
    else {
      io.out(`written: desired-state ${key} revision ${revision} (the same value as revision ${entry.revision})\n`);
      io.out(phase === "Failed" ? "the deployment is Failed: the agent retries it at once\n" : `the deployment is ${phase ?? "not reported yet"}: nothing to retry, the agent takes no action\n`);
    }
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}
