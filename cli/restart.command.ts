// fleetctl restart <device> <deployment> <service> [--json] [--timeout S]
import { DeviceCommands, COMMAND_TIMEOUT_MS } from "../fleet/device.commands.js";
import { Fleet } from "../fleet/fleet.client.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, deviceDeploymentService, natsTarget, parse, positiveNumber, shortId, type CliIo } from "./common.js";

export const RESTART_HELP = `Usage: fleetctl restart <device> <deployment> <service> [--json] [--timeout S]

Asks the device's agent (fleet.cmd.<device>.restart) to start the service's container anew: the same
container, stopped gracefully first (its stop signal and grace period, then SIGKILL) if it runs.
Only a container the agent itself created and recorded for the service, and only while the
deployment is running or failed (not mid-upgrade). The restart is journaled (fleetctl history shows
"service.restarted <service> (N restarts, by operator)").

Options:
  --timeout S   seconds to wait for the device's answer (default ${COMMAND_TIMEOUT_MS.restart / 1000}; a long grace period takes longer)
  --json        print {device, deployment, service, id}
${COMMON_HELP}

Exit: 0 restarted, 1 the device is offline or refused (no such deployment or service, busy
upgrading, no container), or NATS is unreachable, 2 usage error.
`;

export async function restartCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, ...JSON_OPTION, timeout: { type: "string" } });
  if (values.help) {
    io.out(RESTART_HELP);
    return EXIT.OK;
  }
  const [device, deployment, service] = deviceDeploymentService(ps);
  const timeoutMs = positiveNumber("timeout", values.timeout, COMMAND_TIMEOUT_MS.restart / 1000) * 1000;
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    const { id } = await new DeviceCommands(fleet.nc).restart(device, { deployment, service }, { timeoutMs });
    if (values.json) io.out(JSON.stringify({ device, deployment, service, id }) + "\n");
    else io.out(`restarted ${device}/${deployment} ${service}: container ${shortId(id)} started anew (journaled)\n`);
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}
