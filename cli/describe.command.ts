// fleetctl describe <device> [<deployment>] [--json]: everything about one device or one deployment.
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import type { DeploymentState } from "../contracts/deployment-state.codec.js";
import { Fleet, scoreWithoutEnvValues, STALE_TICKS } from "../fleet/fleet.client.js";
import { buildTimeline } from "../machines/timeline.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, OperationError, UsageError, natsTarget, parse, positionals, positiveNumber, shortId, type CliIo } from "./common.js";
import { eventName } from "./history.command.js";
import { yamlOf } from "./score.reference.js";
import { ago, colourOf, fitTable, outputStyle, paint, type OutputStyle } from "./output.js";
import { healthText, heartbeatText, imageText, phaseText, reportChecksText, requireKnownDevice, restartsText, shown } from "./status.command.js";

export const DESCRIBE_HELP = `Usage: fleetctl describe <device> [deployment] [--events N] [--json]

Everything about one device (what it runs, its agent, its heartbeat, each deployment's phase, desired
state not reported on yet) or one deployment (phase and state, the desired revision and the score it
runs, each service's image, container, state, health, restarts and last exit code, the last error,
the next retry, and its most recent journal events).

Options:
  --events N   how many recent events to show for a deployment (default 10)
  --json       print it as JSON
${COMMON_HELP}

Exit: 0 ok, 1 no such device or deployment (or NATS unreachable), 2 usage error.
`;

export async function describeCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, ...JSON_OPTION, events: { type: "string" } });
  if (values.help) {
    io.out(DESCRIBE_HELP);
    return EXIT.OK;
  }
  const [device, deployment] = positionals(ps, ["device", "deployment"], 1) as [string, string | undefined];
  for (const [what, name] of [["device", device], ["deployment", deployment]] as const) {
    const p = name === undefined ? null : deviceOrDeploymentNameProblem(name);
    if (p) throw new UsageError(`invalid ${what} ${JSON.stringify(name!.slice(0, 60))}: ${p}`);
  }
  const eventCount = positiveNumber("events", values.events, 10);
  const style = outputStyle(io);
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    await requireKnownDevice(fleet, device);
    if (deployment === undefined) return await describeDevice(fleet, device, io, style, values.json === true);
    return await describeDeployment(fleet, device, deployment, io, style, values.json === true, eventCount);
  } finally {
    await fleet.close();
  }
}

const field = (label: string, value: string) => `${label.padEnd(13)} ${value}\n`;

async function describeDevice(fleet: Fleet, device: string, io: CliIo, style: OutputStyle, json: boolean): Promise<number> {
  const [d] = await fleet.summary({ device, tickSecs: 30 });
  const desiredKeys = await fleet.desiredKeys(device);
  const deployments = d!.deployments.filter(shown);
  const reported = new Set(d!.deployments.map((s) => `${s.device}.${s.deployment}`));
  const unreported = desiredKeys.filter((k) => !reported.has(k)).map((k) => k.slice(device.length + 1));
  if (json) {
    io.out(JSON.stringify({ device, info: d!.info, heartbeat: d!.heartbeat, heartbeat_age_ms: d!.heartbeatAgeMs, tick_secs: d!.tickSecs, stale: d!.stale, deployments, desired_not_reported: unreported, signing: d!.signing, device_key: d!.deviceKey, checks: d!.checks }, null, 2) + "\n");
    return EXIT.OK;
  }
  const info = d!.info;
  io.out(field("Device", device));
  io.out(field("Agent", info ? `${info.agent_version} on ${info.hostname} (${info.arch}), Podman ${info.podman_version ?? "unknown"}` : "no device-info"));
  const hb = heartbeatText(d!);
  io.out(field("Heartbeat", `${paint(style, colourOf(hb), hb)} (tick ${d!.tickSecs}s${d!.heartbeat?.tick_secs === undefined ? ", assumed" : ""}; stale after ${STALE_TICKS} ticks)`));
  // docs/design.md, "Signed desired state" and "Report signatures".
  const keys = info?.operator_keys?.map((k) => `${k.slice(0, 12)}…`).join(", ");
  io.out(field("Signing", d!.signing === "on" ? `on: applies only desired states signed by ${keys}` : d!.signing === "off" ? "OFF: applies desired states nobody signed (started without --operator-keys)" : "unknown (no device-info)"));
  const checked = [d!.checks.info, d!.checks.heartbeat, ...Object.values(d!.checks.deployments)].filter((c) => c !== null);
  const problems = [...new Set(deployments.flatMap((s) => reportChecksText(d!, s.deployment)).concat(reportChecksText(d!, null)))];
  io.out(field("Reports", `${problems.join(", ") || (checked.length ? "signed by the device, verified" : "none")}${d!.deviceKey ? ` (device key ${d!.deviceKey.slice(0, 12)}…)` : " (no device key recorded)"}`));
  io.out(field("Deployments", String(deployments.length)));
  if (deployments.length) {
    const rows = deployments.map((s) => [s.deployment, phaseText(s), imageText(s), restartsText(s), healthText(s), ago(s.last_event_at), s.last_error ?? "-"]);
    io.out(indent(fitTable(["DEPLOYMENT", "PHASE", "IMAGE", "RESTARTS", "HEALTH", "CHANGED", "LAST ERROR"], rows, { style: narrower(style), flex: [6, 2], coloured: [1, 4] })));
  }
  if (unreported.length) io.out(field("Not reported", `${unreported.join(", ")} (desired state the agent has not reported on)`));
  return EXIT.OK;
}

async function describeDeployment(fleet: Fleet, device: string, deployment: string, io: CliIo, style: OutputStyle, json: boolean, eventCount: number): Promise<number> {
  const [state, desired, events] = await Promise.all([fleet.deploymentState(device, deployment), fleet.desiredEntry(device, deployment), fleet.journal(device, deployment)]);
  if (!state && !desired && events.length === 0) {
    const known = (await fleet.stateKeys(device)).map((k) => k.slice(device.length + 1));
    throw new OperationError(`no deployment ${JSON.stringify(deployment)} on ${device} (no desired state, device-state or events)${known.length ? `; it reports ${known.join(", ")}` : ""}`);
  }
  const timeline = events.length ? buildTimeline(device, deployment, events) : null;
  const recent = timeline ? timeline.steps.slice(-eventCount) : [];
  if (json) {
    io.out(
      JSON.stringify(
        {
          device,
          deployment,
          state,
          desired: desired ? { revision: desired.revision, hash: desired.hash, score: desired.score ? scoreWithoutEnvValues(desired.score) : null, signed: desired.signed, errors: desired.errors } : null,
          events: recent.map((s) => ({ n: s.n, at: s.at, from: s.from, to: s.to, event: eventName(s) })),
        },
        null,
        2,
      ) + "\n",
    );
    return EXIT.OK;
  }
  io.out(field("Deployment", `${device}/${deployment}`));
  if (state) {
    const phase = phaseText(state);
    io.out(field("Phase", `${paint(style, colourOf(phase), phase)}   state ${state.state}${state.state === "removed" ? " (its removal is on record)" : ""}`));
  } else io.out(field("Phase", "not reported yet"));
  if (desired) {
    const applied = state?.score_hash === desired.hash ? "applied" : state?.score_hash ? `the agent is on ${state.score_hash.slice(0, 19)}…` : "not applied yet";
    io.out(field("Desired", `revision ${desired.revision}, ${desired.hash ? `${desired.hash.slice(0, 19)}…` : "does not decode"} (${applied})`));
    if (!desired.score) io.out(field("", desired.errors.join("; ")));
    else io.out(field("Signed", desired.signed ? `by ${desired.signed.by.slice(0, 12)}… at ${desired.signed.at}` : "no"));
  } else io.out(field("Desired", state?.state === "removed" ? "none (deleted)" : "none"));
  if (state) {
    io.out(field("Changed", `${ago(state.last_event_at)} (event ${state.last_event_seq})`));
    if (state.retry_at) io.out(field("Retry", ago(state.retry_at)));
    io.out(field("Last error", state.last_error ?? "-"));
  }
  io.out("Services\n");
  io.out(indent(servicesTable(state, desired?.score?.data.services ?? [], narrower(style))));
  if (desired?.score) io.out(`Score (env values not shown)\n${indent(`${yamlOf(scoreWithoutEnvValues(desired.score).data)}\n`)}`);
  if (timeline) {
    io.out(`Recent events (${recent.length} of ${timeline.steps.length}; fleetctl history ${device} ${deployment} for all)\n`);
    const rows = recent.map((s) => [String(s.n), ago(s.at), `${s.from} → ${s.to}`, eventName(s)]);
    io.out(indent(fitTable(["N", "TIME", "TRANSITION", "EVENT"], rows, { style: narrower(style), flex: [3] })));
  }
  return EXIT.OK;
}

function servicesTable(state: DeploymentState | null, wanted: ReadonlyArray<{ name: string; image: string }>, style: OutputStyle): string {
  const names = [...new Set([...wanted.map((s) => s.name), ...Object.keys(state?.services ?? {}), ...Object.keys(state?.container_ids ?? {})])];
  if (names.length === 0) return "(none)\n";
  const rows = names.map((name) => {
    const s = state?.services?.[name];
    const id = s?.container_id ?? state?.container_ids[name] ?? null;
    const image = s?.image ?? wanted.find((w) => w.name === name)?.image ?? "-";
    return [name, image, id ? shortId(id) : "-", s?.state ?? "-", s?.health ?? "-", s ? String(s.restarts) : "-", s?.last_exit_code === null || s?.last_exit_code === undefined ? "-" : String(s.last_exit_code), s?.restart_at ? ago(s.restart_at) : "-"];
  });
  return fitTable(["SERVICE", "IMAGE", "CONTAINER", "STATE", "HEALTH", "RESTARTS", "LAST EXIT", "RESTART"], rows, { style, flex: [1], coloured: [4] });
}

const indent = (text: string) => text.replace(/^(?=.)/gm, "  ");
/** A table indented by two fits two columns less. */
const narrower = (style: OutputStyle): OutputStyle => ({ ...style, width: style.width === null ? null : style.width - 2 });
