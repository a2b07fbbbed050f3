// What each page of the dashboard shows, assembled from the fleet's buckets and stream: the fleet
// with its summary, one device, one deployment. Fields the agents add over time (per-service status,
// `retry_at`, the heartbeat's own tick, device-info's `signing`) are read where present and shown as
// unknown where not, so the page works against older agents too.
import type { DeploymentState, Phase } from "../contracts/deployment-state.codec.js";
import type { DeviceInfo } from "../contracts/device-info.codec.js";
import type { Heartbeat } from "../contracts/heartbeat.codec.js";
import type { PodmanService } from "../contracts/score.codec.js";
import type { Fleet, DesiredEntry, ReportChecks } from "../fleet/fleet.client.js";
import { journalPage, type JournalPage } from "./journal.pages.js";

export const PHASES: readonly Phase[] = ["Pending", "Running", "Degraded", "Failed"];

export interface ServiceRow {
  service: string;
  /** From the agent's report when it has one, else the desired score's (which may not run yet). */
  image: string | null;
  image_source: "reported" | "desired" | null;
  container_id: string | null;
  state: string | null;
  health: string | null;
  restarts: number | null;
  last_exit_code: number | null;
  restart_at: string | null;
}

export interface DeploymentRow {
  device: string;
  deployment: string;
  phase: Phase;
  state: string;
  score_hash: string | null;
  desired_revision: number | null;
  /** The desired state's hash and revision now (null when deleted or unreadable). */
  desired_hash: string | null;
  desired_current_revision: number | null;
  last_error: string | null;
  last_event_seq: number;
  last_event_at: string | null;
  retry_at: string | null;
  services: ServiceRow[];
}

export interface DeviceRow {
  device: string;
  info: DeviceInfo | null;
  heartbeat: Heartbeat | null;
  heartbeat_age_ms: number | null;
  /** The device's own tick when its heartbeat says, else the dashboard's --tick-secs. */
  tick_secs: number;
  tick_from_device: boolean;
  stale: boolean;
  /** on / off as device-info says (an agent from before signing: off); unknown without device-info. */
  signing: "on" | "off" | "unknown";
  /** The device's recorded public key (`fleetctl device add`), or null. */
  device_key: string | null;
  /** The checks of its reports' signatures: info, heartbeat, each deployment's state. */
  checks: ReportChecks;
  deployments: DeploymentRow[];
}

export interface FleetSummary {
  devices: number;
  stale: number;
  unsigned: number;
  deployments: number;
  phases: Record<Phase, number>;
  /** Deployments Failed or Degraded. */
  failing: number;
}

export function serviceRows(state: DeploymentState | null, desired: DesiredEntry | null): ServiceRow[] {
  const wanted = new Map<string, PodmanService>((desired?.score?.data.services ?? []).map((s) => [s.name, s]));
  const reported = state?.services ?? {};
  const names = [...new Set([...wanted.keys(), ...Object.keys(reported), ...Object.keys(state?.container_ids ?? {})])];
  return names.map((service) => {
    const r = reported[service];
    const w = wanted.get(service);
    return {
      service,
      image: r?.image ?? w?.image ?? null,
      image_source: r ? "reported" : w ? "desired" : null,
      container_id: r?.container_id ?? state?.container_ids[service] ?? null,
      state: r?.state ?? null,
      health: r?.health ?? null,
      restarts: r?.restarts ?? null,
      last_exit_code: r?.last_exit_code ?? null,
      restart_at: r?.restart_at ?? null,
    };
  });
}

export function deploymentRow(state: DeploymentState, desired: DesiredEntry | null): DeploymentRow {
  return {
    device: state.device,
    deployment: state.deployment,
    phase: state.phase,
    state: state.state,
    score_hash: state.score_hash,
    desired_revision: state.desired_revision,
    desired_hash: desired?.hash ?? null,
    desired_current_revision: desired?.revision ?? null,
    last_error: state.last_error,
    last_event_seq: state.last_event_seq,
    last_event_at: state.last_event_at,
    retry_at: state.retry_at ?? null,
    services: serviceRows(state, desired),
  };
}

export async function deviceRows(fleet: Fleet, tickSecs: number, only?: string): Promise<DeviceRow[]> {
  const summary = await fleet.summary({ tickSecs, ...(only ? { device: only } : {}) });
  const states = summary.flatMap((d) => d.deployments);
  const desired = new Map(
    await Promise.all(states.map(async (s) => [`${s.device}/${s.deployment}`, await fleet.desiredEntry(s.device, s.deployment)] as const)),
  );
  return summary.map((d) => ({
    device: d.device,
    info: d.info,
    heartbeat: d.heartbeat,
    heartbeat_age_ms: d.heartbeatAgeMs,
    tick_secs: d.tickSecs,
    tick_from_device: d.heartbeat?.tick_secs !== undefined,
    stale: d.stale,
    signing: d.signing,
    device_key: d.deviceKey,
    checks: d.checks,
    deployments: d.deployments.map((s) => deploymentRow(s, desired.get(`${s.device}/${s.deployment}`) ?? null)),
  }));
}

export function summarise(devices: readonly DeviceRow[]): FleetSummary {
  const phases = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
  let deployments = 0;
  for (const d of devices) for (const s of d.deployments) (phases[s.phase]++, deployments++);
  return {
    devices: devices.length,
    stale: devices.filter((d) => d.stale).length,
    unsigned: devices.filter((d) => d.signing === "off").length,
    deployments,
    phases,
    failing: phases.Failed + phases.Degraded,
  };
}

export interface DesiredView {
  revision: number;
  hash: string | null;
  errors: string[];
  /** The operator key that signed it, and when; null when unsigned. */
  signed: { by: string; at: string } | null;
  /** Each service as operators may see it: env variable names, never values. */
  services: Array<{ name: string; image: string; env: string[]; ports: string[]; volumes: string[]; health: boolean }>;
}

export function desiredView(d: DesiredEntry | null): DesiredView | null {
  if (!d) return null;
  return {
    revision: d.revision,
    hash: d.hash,
    errors: d.errors,
    signed: d.signed && { by: d.signed.by, at: d.signed.at },
    services: (d.score?.data.services ?? []).map((s) => ({
      name: s.name,
      image: s.image,
      env: Object.keys(s.env ?? {}),
      ports: (s.ports ?? []).map((p) => `${p.host_port}:${p.container_port}${p.protocol && p.protocol !== "tcp" ? `/${p.protocol}` : ""}`),
      volumes: (s.volumes ?? []).map((v) => `${v.source}:${v.target}${v.read_only ? ":ro" : ""}`),
      health: s.health !== undefined,
    })),
  };
}

export interface DeploymentView {
  device: string;
  deployment: string;
  state: DeploymentState | null;
  row: DeploymentRow | null;
  desired: DesiredView | null;
  services: ServiceRow[];
  page: JournalPage;
}

export async function deploymentView(fleet: Fleet, device: string, deployment: string, page: { before?: number; size?: number }): Promise<DeploymentView | null> {
  const reading = fleet.deploymentState(device, deployment);
  const [state, desired, p] = await Promise.all([reading, fleet.desiredEntry(device, deployment), journalPage(fleet.js, device, deployment, { ...page, state: reading, deviceKey: fleet.deviceKey(device) })]);
  if (!state && !desired && p.newest_n === null) return null;
  return {
    device,
    deployment,
    state,
    row: state ? deploymentRow(state, desired) : null,
    desired: desiredView(desired),
    services: serviceRows(state, desired),
    page: p,
  };
}
