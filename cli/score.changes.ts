// What a new score changes per service against the one before, as the agent's planner decides it:
// `deploy` prints it before writing, `history` at every accepted update (the diff itself is
// machines/score.diff.ts, which the dashboard's timeline shares).
import type { PodmanV0Score } from "../contracts/score.codec.js";
import { scoreChanges, type ServiceChange } from "../machines/score.diff.js";
import type { ServiceAction } from "../machines/upgrade.plan.js";

export type { ServiceChange } from "../machines/score.diff.js";

/** Per service: added, replaced (and why), removed or unchanged. `before` null: nothing ran yet. */
export function serviceChanges(before: { score: PodmanV0Score; hash: string } | null, next: PodmanV0Score, _nextHash: string): ServiceChange[] {
  return scoreChanges(before?.score ?? null, next);
}

const SIGN: Record<ServiceAction, string> = { add: "+", replace: "~", remove: "-", unchanged: "=" };

export function formatChanges(changes: ServiceChange[], indent = "  "): string {
  const w = Math.max(...changes.map((c) => c.service.length));
  return changes.map((c) => `${indent}${SIGN[c.action]} ${c.service.padEnd(w)}  ${c.action.padEnd(9)} ${c.details.join("; ")}`.trimEnd()).join("\n") + "\n";
}
