// What changes per service between two desired scores, as the agent's planner decides it (add,
// replace, remove, unchanged) and, for a replaced service, in which fields. `fleetctl deploy
// --dry-run` prints it before a write; the dashboard's timeline shows it at each update, from the
// scores the journal carries (env values redacted there, so only variable names can differ).
import { resolveLifecycle, type PodmanService, type PodmanV0Score } from "../contracts/score.codec.js";
import { appliedFromScore, planUpgrade, type ServiceAction } from "./upgrade.plan.js";

export interface ServiceChange {
  service: string;
  action: ServiceAction;
  /** What differs: for an added service its image, for a replaced one each changed field. Never an env value. */
  details: string[];
}

/**
 * Per service of `after` and of `before`, in the order the planner reports them: the services of
 * `after` first, then the removed ones. `before` null is a first deployment: every service is added.
 */
export function scoreChanges(before: PodmanV0Score | null, after: PodmanV0Score): ServiceChange[] {
  // The planner decides by spec hash only; the hash passed here labels nothing it compares.
  const applied = before ? appliedFromScore(before, "") : {};
  const plan = planUpgrade(applied, after, "");
  const byName = new Map(after.services.map((s) => [s.name, s]));
  return Object.entries(plan.actions).map(([service, action]) => {
    const old = applied[service]?.service;
    const now = byName.get(service);
    const details: string[] = [];
    if (action === "add" && now) details.push(`image ${now.image}`);
    if (action === "replace" && old && now) details.push(...serviceDifferences(old, now));
    if (action === "replace" && before && details.length === 0) details.push(...lifecycleDifferences(before, after));
    return { service, action, details };
  });
}

/** The fields in which two specs of one service differ; env by variable name only. */
export function serviceDifferences(a: PodmanService, b: PodmanService): string[] {
  const out: string[] = [];
  if (a.image !== b.image) out.push(`image ${a.image} → ${b.image}`);
  const same = (x: unknown, y: unknown) => JSON.stringify(x ?? null) === JSON.stringify(y ?? null);
  if (!same(a.command, b.command)) out.push("command changed");
  const ea = a.env ?? {};
  const eb = b.env ?? {};
  const added = Object.keys(eb).filter((k) => !(k in ea));
  const removed = Object.keys(ea).filter((k) => !(k in eb));
  const changed = Object.keys(eb).filter((k) => k in ea && ea[k] !== eb[k]);
  if (added.length) out.push(`env + ${added.join(",")}`);
  if (removed.length) out.push(`env - ${removed.join(",")}`);
  if (changed.length) out.push(`env value of ${changed.join(",")} changed`);
  for (const f of ["ports", "volumes", "health", "depends_on"] as const) if (!same(a[f], b[f])) out.push(`${f} changed`);
  return out;
}

/** A service whose own spec is the same is still replaced when the score's lifecycle changed. */
function lifecycleDifferences(before: PodmanV0Score, after: PodmanV0Score): string[] {
  const a = resolveLifecycle(before.lifecycle);
  const b = resolveLifecycle(after.lifecycle);
  const out: string[] = [];
  if (a.stop_signal !== b.stop_signal) out.push(`stop_signal ${a.stop_signal} → ${b.stop_signal}`);
  if (a.grace_period_secs !== b.grace_period_secs) out.push(`grace_period_secs ${a.grace_period_secs} → ${b.grace_period_secs}`);
  return out;
}
