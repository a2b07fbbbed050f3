// fleetctl device rm <device> [--force] [--yes]: forget a device that is gone.
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { didYouMean } from "../contracts/suggest.js";
import { BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO, BUCKET_DEVICE_STATE } from "../contracts/wire-names.js";
import { Fleet, STALE_TICKS } from "../fleet/fleet.client.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, OperationError, UsageError, natsTarget, parse, positionals, type CliIo } from "./common.js";
import { ago } from "./output.js";

export const DEVICE_RM_HELP = `Usage: fleetctl device rm <device> [--force] [--yes] [--json]

Forgets a device: purges its device-state entries, its heartbeat and its device-info, so status and
the dashboard no longer list it. Its journal events stay in the stream (fleetctl history still reads
them) until the stream's retention drops them.

Refused, with nothing deleted, while
  - desired state is still written for the device (the agent would keep those containers running):
    delete each deployment first (fleetctl delete), or pass --force to delete them too (an agent
    that is still running then removes their containers);
  - its heartbeat is fresh (younger than ${STALE_TICKS} of its ticks): the agent is running and would report
    again at once; stop it first, or pass --force.
On a terminal it lists what it will delete and asks first (--yes does not ask); elsewhere it does
not ask.

Options:
  --force   delete the device's desired state too, and forget a device whose agent still runs
  --yes     do not ask
  --json    print {device, purged: [bucket/key], deleted_desired: [key]}
${COMMON_HELP}

Exit: 0 forgotten, 1 refused, declined or not known, 2 usage error.
`;

export async function deviceRmCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, ...JSON_OPTION, force: { type: "boolean" }, yes: { type: "boolean", short: "y" } });
  if (values.help) {
    io.out(DEVICE_RM_HELP);
    return EXIT.OK;
  }
  const [device] = positionals(ps, ["device"]) as [string];
  const problem = deviceOrDeploymentNameProblem(device);
  if (problem) throw new UsageError(`invalid device ${JSON.stringify(device.slice(0, 60))}: ${problem}`);
  const force = values.force === true;
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    const [desiredKeys, stateKeys, [summary]] = await Promise.all([fleet.desiredKeys(device), fleet.stateKeys(device), fleet.summary({ device, tickSecs: 30 })]);
    const hasInfo = summary!.info !== null || (await fleet.infos.get(device))?.operation === "PUT";
    const hasHeartbeat = summary!.heartbeat !== null || (await fleet.heartbeats.get(device))?.operation === "PUT";
    if (desiredKeys.length === 0 && stateKeys.length === 0 && !hasInfo && !hasHeartbeat) {
      throw new OperationError(`no device ${JSON.stringify(device)} is known: nothing to forget${didYouMean(device, await fleet.knownDevices())}`);
    }
    const deployments = desiredKeys.map((k) => k.slice(device.length + 1));
    if (desiredKeys.length && !force) {
      throw new OperationError(
        `refused, nothing deleted: ${device} still has desired state for ${deployments.join(", ")} (its agent would keep running them); delete ${deployments.length === 1 ? "it" : "them"} first (fleetctl delete ${device} <deployment>) or pass --force to delete ${deployments.length === 1 ? "it" : "them"} too`,
      );
    }
    if (summary!.heartbeat && !summary!.stale && !force) {
      throw new OperationError(`refused, nothing deleted: ${device}'s last heartbeat was ${ago(summary!.heartbeat.at)}, so its agent is running and would report again at once; stop it first, or pass --force`);
    }
    const plan = [
      ...stateKeys.map((k) => `device-state ${k}`),
      ...(hasHeartbeat ? [`device-heartbeat ${device}`] : []),
      ...(hasInfo ? [`device-info ${device}`] : []),
      ...desiredKeys.map((k) => `desired-state ${k} (delete: its agent, if running, removes the containers)`),
    ];
    if (io.stdinIsTty && io.confirm && values.yes !== true) {
      io.err(`forget device ${device}: purge\n${plan.map((p) => `  ${p}\n`).join("")}(its journal events stay in the stream)\n`);
      if (!(await io.confirm(`forget ${device}?`))) throw new OperationError("declined: nothing deleted");
    }
    for (const k of desiredKeys) await fleet.desired.delete(k);
    for (const k of stateKeys) await fleet.purgeKey(BUCKET_DEVICE_STATE, k);
    if (hasHeartbeat) await fleet.purgeKey(BUCKET_DEVICE_HEARTBEAT, device);
    if (hasInfo) await fleet.purgeKey(BUCKET_DEVICE_INFO, device);
    const purged = [...stateKeys.map((k) => `device-state/${k}`), ...(hasHeartbeat ? [`device-heartbeat/${device}`] : []), ...(hasInfo ? [`device-info/${device}`] : [])];
    if (values.json) io.out(JSON.stringify({ device, purged, deleted_desired: desiredKeys }, null, 2) + "\n");
    else {
      io.out(`forgot ${device}: purged ${purged.length} entr${purged.length === 1 ? "y" : "ies"} (${stateKeys.length} device-state${hasHeartbeat ? ", heartbeat" : ""}${hasInfo ? ", device-info" : ""})${desiredKeys.length ? `; deleted desired state ${deployments.join(", ")}` : ""}\n`);
      if (summary!.heartbeat && !summary!.stale) io.err(`warning: ${device}'s agent was still running; it will report again unless it is stopped\n`);
    }
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}
