// fleetctl ping <device> [--json]: is the device's agent there, right now?
import { DeviceCommands, DeviceOffline, OFFLINE_MS } from "../fleet/device.commands.js";
import { Fleet } from "../fleet/fleet.client.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, deviceArg, natsTarget, parse, positionals, table, type CliIo } from "./common.js";
import { compact } from "./output.js";

export const PING_HELP = `Usage: fleetctl ping <device> [--json]

Asks the device's agent to answer (a request on fleet.cmd.<device>.ping): its agent version, uptime
and each deployment's phase, as it has them now, and how long the answer took. A device whose agent
does not answer (no responder at all, or no answer within ${OFFLINE_MS / 1000} s) is offline.

Options:
  --json   print {device, online, rtt_ms, agent_version, uptime_secs, at, deployments} (online: false
           with an error when it is offline)
${COMMON_HELP}

Exit: 0 it answered, 1 it is offline (or NATS is unreachable), 2 usage error.
`;

export async function pingCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, ...JSON_OPTION });
  if (values.help) {
    io.out(PING_HELP);
    return EXIT.OK;
  }
  const [device] = positionals(ps, ["device"]).map((d) => deviceArg(d));
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    const t0 = performance.now();
    const reply = await new DeviceCommands(fleet.nc).ping(device!).catch((e: unknown) => {
      // With --json an offline device is an answer too (exit 1 all the same).
      if (values.json && e instanceof DeviceOffline) return e;
      throw e;
    });
    if (reply instanceof DeviceOffline) {
      io.out(JSON.stringify({ device, online: false, error: reply.message }) + "\n");
      return EXIT.FAILED;
    }
    const rtt = Math.round(performance.now() - t0);
    if (values.json) {
      const { ok: _ok, ...rest } = reply;
      io.out(JSON.stringify({ ...rest, online: true, rtt_ms: rtt }) + "\n");
      return EXIT.OK;
    }
    io.out(`${reply.device}: online, answered in ${rtt} ms; agent ${reply.agent_version}, up ${compact(reply.uptime_secs * 1000)}\n`);
    const rows = Object.entries(reply.deployments).sort(([a], [b]) => a.localeCompare(b));
    if (rows.length) io.out(table(["DEPLOYMENT", "PHASE"], rows.map(([d, p]) => [d, p])));
    else io.out("no deployments\n");
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}
