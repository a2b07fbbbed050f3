// What a deployment's snapshot says to operators: its DeploymentState in `device-state`. The phase
// and the services' state read the machine's record at a time `now`, and what the agent's liveness
// last saw of each container when it is given: a Running deployment one of whose services waits for
// a restart, has just been restarted in a crash loop, is unhealthy or is seen dead is Degraded
// (docs/design.md, "Service health").
import { phaseOf, type DeploymentState, type MachineState, type Phase, type ServiceStatus } from "../contracts/deployment-state.codec.js";
import type { DeploymentSnapshot } from "./deployment.machine.js";
import { settlesAt } from "./restart.policy.js";

export const machineStateOf = (s: DeploymentSnapshot): MachineState => s.value as MachineState;

/** What the liveness last saw of a container (agent/deployments/liveness.ts), if anything. */
export type SeenContainer = (id: string) => { state: ServiceStatus["state"]; health: ServiceStatus["health"] } | null;

export interface ReportClock {
  /** Epoch ms the report is for. */
  now: number;
  seen?: SeenContainer;
}

/** The deployment's phase at `now`: the machine state's, with Running made Degraded by a service in trouble. */
export function phaseAt(s: DeploymentSnapshot, now: number, seen?: SeenContainer): Phase {
  const phase = phaseOf(machineStateOf(s));
  if (phase !== "Running") return phase;
  return Object.keys(s.context.applied).some((service) => troubleOf(s, service, now, seen)) ? "Degraded" : "Running";
}

/** Why a service of a running deployment does not count as working, or null when it does. */
export function troubleOf(s: DeploymentSnapshot, service: string, now: number, seen?: SeenContainer): string | null {
  const ctx = s.context;
  const rec = ctx.services[service];
  const id = ctx.containerIds[service];
  const view = id ? seen?.(id) : null;
  if (rec?.unhealthy || view?.health === "unhealthy") return "unhealthy";
  if (view && (view.state === "exited" || view.state === "missing")) return view.state;
  if (rec?.restartAt != null) {
    if (now < rec.restartAt) return "waits for its restart";
    // Restarted: it counts as working once it has run as long as its next backoff would be.
    const settles = settlesAt(rec.tries, ctx.backoff);
    if (settles !== null && now < settles) return "restarted recently";
  }
  return null;
}

/** When the phase or a service's restart_at, as of `now`, changes next without an event (null: never). */
export function nextChangeAt(s: DeploymentSnapshot, now: number): number | null {
  let next: number | null = null;
  for (const rec of Object.values(s.context.services)) {
    for (const t of [rec.restartAt, settlesAt(rec.tries, s.context.backoff)]) {
      if (t !== null && t > now && (next === null || t < next)) next = t;
    }
  }
  return next;
}

export function deploymentState(s: DeploymentSnapshot, journal: { seq: number; at: string | null }, clock: ReportClock = { now: Date.now() }): DeploymentState {
  const state = machineStateOf(s);
  const ctx = s.context;
  const { now, seen } = clock;
  const verifying = new Set(state === "verifying" ? (ctx.plan?.start ?? []).map((x) => x.service.name) : []);
  const services: Record<string, ServiceStatus> = {};
  for (const [service, applied] of Object.entries(ctx.applied)) {
    const id = ctx.containerIds[service] ?? null;
    const rec = ctx.services[service];
    const view = id ? seen?.(id) : null;
    const waiting = rec?.restartAt != null && now < rec.restartAt;
    const run: ServiceStatus["state"] = view?.state === "exited" || view?.state === "missing" ? view.state : verifying.has(service) ? "starting" : waiting ? "exited" : (view?.state ?? "running");
    const health: ServiceStatus["health"] = !applied.service.health ? "none" : rec?.unhealthy ? "unhealthy" : (view?.health ?? "starting");
    services[service] = {
      container_id: id,
      image: applied.service.image,
      state: run,
      health,
      restarts: rec?.restarts ?? 0,
      last_exit_code: rec?.lastExitCode ?? null,
      restart_at: waiting ? new Date(rec.restartAt!).toISOString() : null,
    };
  }
  return {
    device: ctx.device,
    deployment: ctx.deployment,
    phase: phaseAt(s, now, seen),
    state,
    score_hash: ctx.target?.hash ?? null,
    desired_revision: ctx.revision,
    container_ids: { ...ctx.containerIds },
    last_error: ctx.lastError,
    last_event_seq: journal.seq,
    last_event_at: journal.at,
    retry_at: state === "failed" && ctx.retry ? new Date(ctx.retry.at).toISOString() : null,
    services,
  };
}
