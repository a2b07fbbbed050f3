// fleetctl status [device] [--watch] [--json] [--tick-secs N]
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, UsageError, duration, natsTarget, parse, positionals, positiveNumber, shortId, sleep, table, type CliIo } from "./common.js";
import { Fleet, STALE_TICKS, type DeviceSummary } from "../fleet/fleet.client.js";

export const STATUS_HELP = `Usage: fleetctl status [device] [--watch] [--json] [--tick-secs N]

A table of every deployment the agents report (of one device when given): device, deployment,
phase, machine state, container ids, last error, and the device's heartbeat age. A device whose
heartbeat is older than ${STALE_TICKS} ticks is marked STALE. Devices without deployments get one row.

TRUST says what the row can be trusted for: "ok", or UNSIGNED (the device applies desired states
without an operator's signature: started without --operator-keys), FORGED info|heartbeat|state (a
report its device did not sign: someone else wrote it under its keys), UNVERIFIED (no key recorded
for the device: \`fleetctl device add\` or \`device record-key\`), signing unknown (no device-info).

Options:
  --tick-secs N   the agents' tick in seconds, for the stale mark (default 30)
  --watch         redraw every 2 s until interrupted
  --interval S    seconds between redraws with --watch (default 2)
  --json          print [{device, heartbeat_age_ms, stale, info, heartbeat, deployments: [DeploymentState],
                  signing, device_key, checks: {info, heartbeat, deployments: {name: check}}}], a
                  check being {verdict: verified|forged|unverified, why?}
${COMMON_HELP}

Exit: 0 ok, 1 NATS unreachable, 2 usage error.
`;

export function statusRows(summary: DeviceSummary[]): string[][] {
  const rows: string[][] = [];
  for (const d of summary) {
    const hb = d.heartbeatAgeMs === null ? "never" : duration(d.heartbeatAgeMs);
    const age = d.stale ? `${hb} STALE` : hb;
    if (d.deployments.length === 0) rows.push([d.device, "-", "-", "-", "-", "-", age, trustOf(d, null)]);
    for (const s of d.deployments) {
      const ids = Object.entries(s.container_ids).map(([svc, id]) => `${svc}=${shortId(id)}`).join(",") || "-";
      rows.push([s.device, s.deployment, s.phase, s.state, ids, s.last_error ?? "-", age, trustOf(d, s.deployment)]);
    }
  }
  return rows;
}

export const STATUS_HEADER = ["DEVICE", "DEPLOYMENT", "PHASE", "STATE", "CONTAINERS", "LAST ERROR", "HEARTBEAT", "TRUST"];

/** What a status row can be trusted for (see STATUS_HELP): "ok", or the problems, comma separated. */
export function trustOf(d: DeviceSummary, deployment: string | null): string {
  const notes: string[] = [];
  if (d.signing === "off") notes.push("UNSIGNED");
  if (d.signing === "unknown") notes.push("signing unknown");
  const checks = [
    ["info", d.checks.info],
    ["heartbeat", d.checks.heartbeat],
    ["state", deployment === null ? null : d.checks.deployments[deployment] ?? null],
  ] as const;
  const forged = checks.filter(([, c]) => c?.verdict === "forged").map(([what]) => what);
  if (forged.length) notes.push(`FORGED ${forged.join("|")}`);
  if (checks.some(([, c]) => c?.verdict === "unverified")) notes.push("UNVERIFIED");
  return notes.join(", ") || "ok";
}

export const summaryJson = (summary: DeviceSummary[]) =>
  summary.map((d) => ({
    device: d.device,
    heartbeat_age_ms: d.heartbeatAgeMs,
    stale: d.stale,
    info: d.info,
    heartbeat: d.heartbeat,
    deployments: d.deployments,
    signing: d.signing,
    device_key: d.deviceKey,
    checks: d.checks,
  }));

export async function statusCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, ...JSON_OPTION, watch: { type: "boolean" }, "tick-secs": { type: "string" }, interval: { type: "string" } });
  if (values.help) {
    io.out(STATUS_HELP);
    return EXIT.OK;
  }
  const [device] = positionals(ps, ["device"], 0);
  if (device !== undefined) {
    const p = deviceOrDeploymentNameProblem(device);
    if (p) throw new UsageError(`invalid device ${JSON.stringify(device.slice(0, 60))}: ${p}`);
  }
  const tickSecs = positiveNumber("tick-secs", values["tick-secs"], 30);
  const interval = positiveNumber("interval", values.interval, 2);
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    for (;;) {
      const summary = await fleet.summary({ tickSecs, ...(device ? { device } : {}) });
      if (values.json) io.out(JSON.stringify(summaryJson(summary), null, values.watch ? 0 : 2) + "\n");
      else {
        if (values.watch) io.out(`\x1b[H\x1b[2J${new Date().toISOString()}  (every ${interval}s, Ctrl-C to stop)\n`);
        io.out(summary.length ? table(STATUS_HEADER, statusRows(summary)) : "no devices known\n");
      }
      if (!values.watch || io.signal?.aborted) return EXIT.OK;
      await sleep(interval * 1000, io.signal);
      if (io.signal?.aborted) return EXIT.OK;
    }
  } finally {
    await fleet.close();
  }
}
