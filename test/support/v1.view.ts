// What of a snapshot a version 1 journal can speak for: the state and the record the previous release
// kept (its context's fields), without the clock of a settled step, which a v1 start moved at a
// different instant (it knew no readiness step). The fields added since (services, retry, backoff)
// are checked to hold their values for a deployment that has seen none of the new events.
import type { DeploymentSnapshot } from "../../machines/deployment.machine.js";

const V1_CONTEXT = ["device", "deployment", "target", "desiredHash", "revision", "next", "plan", "applied", "containerIds", "lastError"] as const;
const STEP_STATES = new Set(["pulling", "stoppingOld", "startingNew", "verifying", "removing"]);

type View = { value: unknown; done?: boolean; status?: string; context: Record<string, unknown> };

export function v1View(s: DeploymentSnapshot | unknown): string {
  const v = s as View;
  const done = v.done ?? v.status === "done";
  const ctx: Record<string, unknown> = {};
  for (const k of V1_CONTEXT) ctx[k] = v.context[k];
  if (STEP_STATES.has(String(v.value))) ctx["stepStartedAt"] = v.context["stepStartedAt"];
  const budgets = v.context["budgets"] as Record<string, unknown>;
  ctx["budgets"] = { pullSecs: budgets["pullSecs"], stopSlackSecs: budgets["stopSlackSecs"], startSecs: budgets["startSecs"] };
  return JSON.stringify({ value: v.value, done, context: ctx });
}
