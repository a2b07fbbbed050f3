// What a new score changes per service against the one before, as the agent's planner decides it:
// `deploy` prints it before writing, `history` at every accepted update.
import type { PodmanService, PodmanV0Score } from "../contracts/score.codec.js";
import { resolveLifecycle } from "../contracts/score.codec.js";
import { appliedFromScore, planUpgrade, type ServiceAction } from "../machines/upgrade.plan.js";

export interface ServiceChange {
  service: string;
  action: ServiceAction;
  /** For a replaced service: what differs (env values are never shown, only variable names). */
  details: string[];
}

/** Per service: added, replaced (and why), removed or unchanged. `before` null: nothing ran yet. */
export function serviceChanges(before: { score: PodmanV0Score; hash: string } | null, next: PodmanV0Score, nextHash: string): ServiceChange[] {
  const applied = before ? appliedFromScore(before.score, before.hash) : {};
  const plan = planUpgrade(applied, next, nextHash);
  const byName = new Map(next.services.map((s) => [s.name, s]));
  return Object.entries(plan.actions).map(([service, action]) => {
    const was = applied[service]?.service;
    const after = byName.get(service);
    const details: string[] = [];
    if (action === "add" && after) details.push(`image ${after.image}`);
    if (action === "replace" && was && after) details.push(...differences(was, after));
    if (action === "replace" && before && details.length === 0) {
      const a = resolveLifecycle(before.score.lifecycle);
      const b = resolveLifecycle(next.lifecycle);
      if (a.stop_signal !== b.stop_signal) details.push(`stop_signal ${a.stop_signal} → ${b.stop_signal}`);
      if (a.grace_period_secs !== b.grace_period_secs) details.push(`grace_period_secs ${a.grace_period_secs} → ${b.grace_period_secs}`);
    }
    return { service, action, details };
  });
}

function differences(a: PodmanService, b: PodmanService): string[] {
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

const SIGN: Record<ServiceAction, string> = { add: "+", replace: "~", remove: "-", unchanged: "=" };

export function formatChanges(changes: ServiceChange[], indent = "  "): string {
  const w = Math.max(...changes.map((c) => c.service.length));
  return changes.map((c) => `${indent}${SIGN[c.action]} ${c.service.padEnd(w)}  ${c.action.padEnd(9)} ${c.details.join("; ")}`.trimEnd()).join("\n") + "\n";
}
