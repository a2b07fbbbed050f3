// The pure planner: what an upgrade must do to each service, decided from two values alone.
import { canonicalHash } from "../contracts/canonical-json.js";
import { resolveLifecycle, type Lifecycle, type PodmanService, type PodmanV0Score } from "../contracts/score.codec.js";

/** What one service's recorded container runs: the spec it was created from. */
export interface AppliedService {
  service: PodmanService;
  lifecycle: Lifecycle;
  /** Hash of the score that created the container (its `io.fleet.score-hash` label). */
  scoreHash: string;
}

/** Per service, what the deployment's containers run now. */
export type Applied = Record<string, AppliedService>;

export type ServiceAction = "add" | "replace" | "remove" | "unchanged";

export interface Plan {
  actions: Record<string, ServiceAction>;
  /** Images of added and replaced services, each once. */
  pull: string[];
  /** Replaced and removed services, stopped by their recorded ids. */
  stop: string[];
  /** Added and replaced services, with the spec to start. */
  start: AppliedService[];
}

/** A service's identity for change detection: its canonical spec and the lifecycle it was built with. */
export const specHash = (service: PodmanService, lifecycle: Lifecycle) => canonicalHash({ service, lifecycle });

export function appliedFromScore(score: PodmanV0Score, scoreHash: string): Applied {
  const lifecycle = resolveLifecycle(score.lifecycle);
  return Object.fromEntries(score.services.map((service) => [service.name, { service, lifecycle, scoreHash }]));
}

/**
 * Diffs what runs against what is wanted. A service is replaced when its canonical spec or the
 * score's lifecycle changed; one whose spec is the same is left alone even if the score's hash moved.
 */
export function planUpgrade(applied: Applied, desired: PodmanV0Score, desiredHash: string): Plan {
  const lifecycle = resolveLifecycle(desired.lifecycle);
  const actions: Record<string, ServiceAction> = {};
  const start: AppliedService[] = [];
  for (const service of dependencyOrder(desired.services)) {
    const old = applied[service.name];
    const action: ServiceAction = !old ? "add" : specHash(old.service, old.lifecycle) === specHash(service, lifecycle) ? "unchanged" : "replace";
    actions[service.name] = action;
    if (action !== "unchanged") start.push({ service, lifecycle, scoreHash: desiredHash });
  }
  for (const name of Object.keys(applied)) if (!(name in actions)) actions[name] = "remove";
  // A service is stopped before what it depends on, as declared by the score its container runs.
  const stopping = Object.keys(actions).filter((n) => actions[n] === "replace" || actions[n] === "remove");
  const running = stopping.map((name) => applied[name]!.service);
  return {
    actions,
    pull: [...new Set(start.map((s) => s.service.image))],
    stop: stopOrder(running).map((s) => s.name),
    start,
  };
}

/** The part of a service the order of its start and stop depends on. */
export interface Dependent {
  name: string;
  depends_on?: readonly string[];
}

/**
 * Services ordered so that each comes after what it depends on (docs/design.md, `depends_on`),
 * otherwise in the order given. The score's codec refuses unknown names and cycles; a name that is
 * not in `services` is ignored here, and a cycle keeps the given order of its members.
 */
export function dependencyOrder<S extends Dependent>(services: readonly S[]): S[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  return ordered(services, (s) => (s.depends_on ?? []).flatMap((d) => byName.get(d) ?? []));
}

/** Services ordered so that each comes before what it depends on: the order to stop them in. */
export function stopOrder<S extends Dependent>(services: readonly S[]): S[] {
  return ordered(services, (s) => services.filter((x) => (x.depends_on ?? []).includes(s.name)));
}

/**
 * For each of `stopping`, the others of `stopping` that must be stopped before it: those whose
 * recorded spec depends on it (the stop step runs them side by side otherwise).
 */
export function stopsBefore(applied: Applied, stopping: readonly string[]): Record<string, string[]> {
  return Object.fromEntries(stopping.map((name) => [name, stopping.filter((other) => other !== name && (applied[other]?.service.depends_on ?? []).includes(name))]));
}

/** A depth-first order in which every service follows those `first(s)` names; otherwise as given. */
function ordered<S extends Dependent>(services: readonly S[], first: (s: S) => readonly S[]): S[] {
  const out: S[] = [];
  const seen = new Set<string>();
  const visit = (s: S) => {
    if (seen.has(s.name)) return;
    seen.add(s.name);
    for (const f of first(s)) visit(f);
    out.push(s);
  };
  for (const s of services) visit(s);
  return out;
}

/** The plan of a tick that found some of the applied services not running: start just those. */
export function repairPlan(applied: Applied, services: string[]): Plan {
  const start = services.flatMap((name) => (applied[name] ? [applied[name]] : []));
  return { actions: Object.fromEntries(start.map((s) => [s.service.name, "unchanged" as const])), pull: [], stop: [], start };
}

/** What a container looks like to a liveness check: the fields a device-wide list gives. */
export interface ObservedContainer {
  id: string;
  service: string;
  state: string;
}

/**
 * Liveness only: the applied services whose recorded container is not seen running. A running
 * container is never a reason to act, whatever its spec, so a healthy one is never recreated.
 */
export function servicesNeedingRepair(applied: Applied, containerIds: Record<string, string>, observed: readonly ObservedContainer[]): string[] {
  const running = new Set(observed.filter((c) => c.state === "running").map((c) => c.id));
  return Object.keys(applied).filter((name) => {
    const id = containerIds[name];
    return id === undefined || !running.has(id);
  });
}
