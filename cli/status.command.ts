// fleetctl status [device] [-o wide] [--watch] [--json] [--tick-secs N]
import type { DeploymentState, ServiceStatus } from "../contracts/deployment-state.codec.js";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { didYouMean } from "../contracts/suggest.js";
import { Fleet, STALE_TICKS, type DeviceSummary } from "../fleet/fleet.client.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, OperationError, UsageError, natsTarget, parse, positionals, positiveNumber, shortId, sleep, type CliIo } from "./common.js";
import { ago, fitTable, outputStyle, type OutputStyle } from "./output.js";

export const STATUS_HELP = `Usage: fleetctl status [device] [-o wide] [--watch] [--json] [--tick-secs N]

A table of every deployment the agents report (of one device when given): phase (with the machine's
state when it says more, e.g. "Pending (pulling)"), image, restarts and health of its services, when
it last changed, the last error, and the device's heartbeat age. A device whose heartbeat is older
than ${STALE_TICKS} of its ticks is marked STALE. Devices without deployments get one row. A deployment whose
removal is on record is left out (fleetctl history still shows it). IMAGE, RESTARTS and HEALTH come
from agents that report per-service status; "-" where an agent does not.

On a terminal the table fits its width (the last error, then the images, cut with …) and is coloured
(never with NO_COLOR). Into a pipe or a file every line is whole and plain (COLUMNS=N fits it to N);
--json gives every field.

What the devices can be trusted for is said on stderr, under the table, one line per problem with
the devices it concerns (-o wide has it as a TRUST column, "ok" where there is none): UNSIGNED (the
device applies desired states without an operator's signature: started without --operator-keys),
FORGED info|heartbeat|state (a report its device did not sign: someone else wrote it under its
keys), UNVERIFIED (no key recorded for the device: \`fleetctl device add\` or \`device record-key\`),
signing unknown (no device-info).

Options:
  -o wide         every column (machine state, revision, score hash, container ids, trust), nothing cut
  --tick-secs N   the tick to judge staleness by when a heartbeat does not carry its own (default 30)
  --watch         redraw every 2 s until interrupted
  --interval S    seconds between redraws with --watch (default 2)
  --json          print [{device, heartbeat_age_ms, tick_secs, stale, info, heartbeat, deployments: [DeploymentState],
                  signing, device_key, checks: {info, heartbeat, deployments: {name: check}}}], a
                  check being {verdict: verified|forged|unverified, why?}
${COMMON_HELP}

Exit: 0 ok, 1 the device never reported or NATS unreachable, 2 usage error.
`;

/** Phase, with the machine's state only where it says more than the phase does. */
export function phaseText(s: DeploymentState, now = Date.now()): string {
  const implied = s.phase === "Running" ? "running" : s.phase === "Failed" ? "failed" : s.phase === "Pending" ? "pending" : null;
  const extra: string[] = [];
  if (s.state !== implied && !(s.phase === "Degraded" && s.state === "running")) extra.push(s.state);
  if (s.retry_at) extra.push(`retry ${ago(s.retry_at, now)}`);
  return extra.length ? `${s.phase} (${extra.join(", ")})` : s.phase;
}

const services = (s: DeploymentState): Array<[string, ServiceStatus]> => Object.entries(s.services ?? {});

export function imageText(s: DeploymentState): string {
  const list = services(s);
  if (list.length === 0) return "-";
  if (list.length === 1) return list[0]![1].image;
  return list.map(([name, v]) => `${name}=${v.image}`).join(",");
}

export function restartsText(s: DeploymentState): string {
  const list = services(s);
  return list.length ? String(list.reduce((n, [, v]) => n + v.restarts, 0)) : "-";
}

/** The worst health first: `unhealthy (web)`, `starting (db)`, `healthy`, `none` (no check). */
export function healthText(s: DeploymentState): string {
  const list = services(s);
  if (list.length === 0) return "-";
  for (const h of ["unhealthy", "starting"] as const) {
    const names = list.filter(([, v]) => v.health === h).map(([n]) => n);
    if (names.length) return list.length === 1 ? h : `${h} (${names.join(",")})`;
  }
  return list.some(([, v]) => v.health === "healthy") ? "healthy" : "none";
}

export function heartbeatText(d: DeviceSummary, now = Date.now()): string {
  const age = d.heartbeat ? ago(d.heartbeat.at, now) : "never";
  return d.stale ? `${age} STALE` : age;
}

/** What status shows of a deployment: not one whose removal is on record. */
export const shown = (s: DeploymentState) => s.state !== "removed";

export const STATUS_HEADER = ["DEVICE", "DEPLOYMENT", "PHASE", "IMAGE", "RESTARTS", "HEALTH", "CHANGED", "HEARTBEAT", "LAST ERROR"];
export const WIDE_HEADER = ["DEVICE", "DEPLOYMENT", "PHASE", "STATE", "IMAGE", "RESTARTS", "HEALTH", "CHANGED", "REVISION", "SCORE", "CONTAINERS", "HEARTBEAT", "TRUST", "LAST ERROR"];

export function statusRows(summary: DeviceSummary[], wide = false, now = Date.now()): string[][] {
  const rows: string[][] = [];
  for (const d of summary) {
    const hb = heartbeatText(d, now);
    const deployments = d.deployments.filter(shown);
    if (deployments.length === 0) rows.push(wide ? [d.device, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", hb, trustOf(d, null), "-"] : [d.device, "-", "-", "-", "-", "-", "-", hb, "-"]);
    for (const s of deployments) {
      const err = s.last_error ?? "-";
      const changed = ago(s.last_event_at, now);
      if (!wide) {
        rows.push([s.device, s.deployment, phaseText(s, now), imageText(s), restartsText(s), healthText(s), changed, hb, err]);
        continue;
      }
      const ids = Object.entries(s.container_ids).map(([svc, id]) => `${svc}=${shortId(id)}`).join(",") || "-";
      rows.push([s.device, s.deployment, s.phase, s.state, imageText(s), restartsText(s), healthText(s), changed, s.desired_revision === null ? "-" : String(s.desired_revision), s.score_hash ? `${s.score_hash.slice(0, 19)}…` : "-", ids, hb, trustOf(d, s.deployment), err]);
    }
  }
  return rows;
}

/** What the checks of a device's reports say (docs/design.md, "Report signatures"): FORGED …, UNVERIFIED, or nothing. */
export function reportChecksText(d: DeviceSummary, deployment: string | null): string[] {
  const checks = [
    ["info", d.checks.info],
    ["heartbeat", d.checks.heartbeat],
    ["state", deployment === null ? null : d.checks.deployments[deployment] ?? null],
  ] as const;
  const notes: string[] = [];
  const forged = checks.filter(([, c]) => c?.verdict === "forged").map(([what]) => what);
  if (forged.length) notes.push(`FORGED ${forged.join("|")}`);
  if (checks.some(([, c]) => c?.verdict === "unverified")) notes.push("UNVERIFIED");
  return notes;
}

/**
 * Under the table, what the devices can be trusted for: one line per problem, naming the devices
 * (at most 10, then how many more). The table keeps its width; -o wide has it as a column.
 */
export function trustWarnings(summary: DeviceSummary[]): string[] {
  const kinds: Array<[string, string, (d: DeviceSummary) => string | null]> = [
    ["FORGED", "reports their device did not sign: someone else wrote them under its keys", (d) => {
      const forged = (c: { verdict: string } | null | undefined) => c?.verdict === "forged";
      const parts = [forged(d.checks.info) ? "info" : null, forged(d.checks.heartbeat) ? "heartbeat" : null, ...Object.entries(d.checks.deployments).filter(([, c]) => forged(c)).map(([dep]) => `state ${dep}`)];
      const named = parts.filter((p) => p !== null);
      return named.length ? `${d.device} (${named.join(", ")})` : null;
    }],
    ["UNSIGNED", "they apply desired states nobody signed (started without --operator-keys)", (d) => (d.signing === "off" ? d.device : null)],
    ["UNVERIFIED", "no device key recorded to check their reports against (fleetctl device add, device record-key)", (d) => (d.deviceKey === null ? d.device : null)],
    ["signing unknown", "no device-info", (d) => (d.signing === "unknown" ? d.device : null)],
  ];
  const out: string[] = [];
  for (const [mark, why, pick] of kinds) {
    const hit = summary.map(pick).filter((x) => x !== null);
    if (hit.length === 0) continue;
    const named = hit.slice(0, 10).join(", ") + (hit.length > 10 ? ` and ${hit.length - 10} more` : "");
    out.push(`${mark}: ${named}: ${why}`);
  }
  return out;
}

/** What a status row can be trusted for (the -o wide TRUST column): "ok", or the problems, comma separated. */
export function trustOf(d: DeviceSummary, deployment: string | null): string {
  const notes: string[] = [];
  if (d.signing === "off") notes.push("UNSIGNED");
  if (d.signing === "unknown") notes.push("signing unknown");
  notes.push(...reportChecksText(d, deployment));
  return notes.join(", ") || "ok";
}

export function statusTable(summary: DeviceSummary[], style: OutputStyle, wide: boolean, now = Date.now()): string {
  const header = wide ? WIDE_HEADER : STATUS_HEADER;
  const col = (name: string) => header.indexOf(name);
  return fitTable(header, statusRows(summary, wide, now), {
    style,
    flex: [col("LAST ERROR"), col("IMAGE")],
    coloured: [col("PHASE"), col("HEALTH"), col("HEARTBEAT")],
  });
}

export const summaryJson = (summary: DeviceSummary[]) =>
  summary.map((d) => ({
    device: d.device,
    heartbeat_age_ms: d.heartbeatAgeMs,
    tick_secs: d.tickSecs,
    stale: d.stale,
    info: d.info,
    heartbeat: d.heartbeat,
    deployments: d.deployments.filter(shown),
    signing: d.signing,
    device_key: d.deviceKey,
    checks: d.checks,
  }));

/** Refuses a device that never reported, naming a known one when the id is close to it. */
export async function requireKnownDevice(fleet: Fleet, device: string, hint = ""): Promise<void> {
  if (await fleet.deviceSeen(device)) return;
  const known = await fleet.knownDevices();
  throw new OperationError(`no device ${JSON.stringify(device)} has ever reported (no device-info, heartbeat or device-state)${didYouMean(device, known)}${hint}`);
}

export function wideOption(values: { output?: string | undefined }): boolean {
  if (values.output === undefined) return false;
  if (values.output === "wide") return true;
  throw new UsageError(`-o: expected "wide", got ${JSON.stringify(values.output)} (see --help)`);
}

export async function statusCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, {
    ...COMMON_OPTIONS,
    ...JSON_OPTION,
    watch: { type: "boolean" },
    "tick-secs": { type: "string" },
    interval: { type: "string" },
    output: { type: "string", short: "o" },
  });
  if (values.help) {
    io.out(STATUS_HELP);
    return EXIT.OK;
  }
  const [device] = positionals(ps, ["device"], 0);
  if (device !== undefined) {
    const p = deviceOrDeploymentNameProblem(device);
    if (p) throw new UsageError(`invalid device ${JSON.stringify(device.slice(0, 60))}: ${p}`);
  }
  const wide = wideOption(values);
  const tickSecs = positiveNumber("tick-secs", values["tick-secs"], 30);
  const interval = positiveNumber("interval", values.interval, 2);
  const style = outputStyle(io, wide);
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    if (device !== undefined) await requireKnownDevice(fleet, device);
    for (;;) {
      const summary = await fleet.summary({ tickSecs, ...(device ? { device } : {}) });
      if (values.json) io.out(JSON.stringify(summaryJson(summary), null, values.watch ? 0 : 2) + "\n");
      else {
        if (values.watch) io.out(`\x1b[H\x1b[2J${new Date().toISOString()}  (every ${interval}s, Ctrl-C to stop)\n`);
        io.out(summary.length ? statusTable(summary, style, wide) : "no devices known\n");
        if (!wide) for (const w of trustWarnings(summary)) io.err(`${w}\n`);
      }
      if (!values.watch || io.signal?.aborted) return EXIT.OK;
      await sleep(interval * 1000, io.signal);
      if (io.signal?.aborted) return EXIT.OK;
    }
  } finally {
    await fleet.close();
  }
}
