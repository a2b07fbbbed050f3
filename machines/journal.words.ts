// A journaled event in the domain's words (docs/design.md, "Journal events, version 2"): its name
// (`pull.done`, `desired.updated`, …) and the payload fields that name carries, read the same way
// from a v1 event (XState's own names: `xstate.done.actor.pull` with its `output`) and a v2 one.
// Until the v2 vocabulary module of machines/ lands this is the dashboard's reading of v1; v2 names
// pass through unchanged.

/** A journaled event as a domain name and a flat payload (v1's `output` / `error` unwrapped). */
export interface DomainEvent {
  name: string;
  payload: Record<string, unknown>;
}

const V1_STEP: Record<string, string> = { pull: "pull", stopOld: "stop", startNew: "start", removeAll: "remove" };
const V1_DESIRED: Record<string, string> = { UPDATE: "desired.updated", REJECT: "desired.rejected", DELETE: "desired.deleted", TICK: "service.exited" };

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u);

/** `from` is the state the event left: a v1 deadline names no step, the state it timed out in does. */
export function domainEvent(event: Record<string, unknown>, from: string): DomainEvent {
  const type = typeof event["type"] === "string" ? event["type"] : "";
  const { type: _type, ...rest } = event;
  const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(type);
  if (m) {
    const [, outcome, actor] = m as unknown as [string, string, string];
    if (actor === "deadline") return { name: "step.timed_out", payload: { step: from } };
    const step = V1_STEP[actor] ?? actor;
    if (outcome === "done") return { name: `${step}.done`, payload: isRecord(event["output"]) ? event["output"] : {} };
    const error = isRecord(event["error"]) && typeof event["error"]["message"] === "string" ? event["error"]["message"] : "failed";
    return { name: `${step}.failed`, payload: { error } };
  }
  const v1 = V1_DESIRED[type];
  if (v1) return { name: v1, payload: rest };
  return { name: type, payload: rest };
}

const str = (u: unknown) => (typeof u === "string" ? u : u === undefined || u === null ? "" : JSON.stringify(u));
const names = (u: unknown) => (Array.isArray(u) ? u.map(str).join(", ") : isRecord(u) ? Object.keys(u).join(", ") : "");
const failureOf = (p: Record<string, unknown>) => (isRecord(p["failure"]) ? `${str(p["failure"]["service"])}: ${str(p["failure"]["message"])}` : null);

/** One line an operator reads: the name and what it carried (never a score's env values: none reach the journal). */
export function eventSummary(e: DomainEvent): string {
  const p = e.payload;
  const failure = failureOf(p);
  switch (e.name) {
    case "desired.updated":
      return `revision ${str(p["revision"])} · ${str(p["hash"]).slice(7, 19)}`;
    case "desired.retried":
      return `revision ${str(p["revision"])} · retry of ${str(p["hash"]).slice(7, 19)}`;
    case "desired.rejected":
      return `revision ${str(p["revision"])}: ${str(p["error"])}`;
    case "desired.deleted":
      return `revision ${str(p["revision"])}`;
    case "pull.done":
      return Array.isArray(p["images"]) ? names(p["images"]) : "";
    case "stop.done":
      return failure ? `failed ${failure}` : names(p["stopped"]) ? `stopped ${names(p["stopped"])}` : "nothing to stop";
    case "start.done":
      return failure ? `failed ${failure}` : `started ${names(p["started"]) || "nothing"}`;
    case "remove.done":
      return failure ? `failed ${failure}` : "every container removed";
    case "step.timed_out":
      return `${str(p["step"])} ran past its deadline`;
    case "service.exited":
      if (typeof p["service"] === "string") return `${p["service"]}${p["exit_code"] !== undefined && p["exit_code"] !== null ? ` exit ${str(p["exit_code"])}` : ""}`;
      // v1: the liveness tick's view of the deployment's containers.
      if (Array.isArray(p["containers"])) {
        const down = p["containers"].filter((c) => isRecord(c) && c["state"] !== "running").map((c) => (isRecord(c) ? str(c["service"]) : ""));
        return down.length ? `seen not running: ${down.join(", ")}` : "a recorded container is missing";
      }
      return "";
    case "service.restarted":
      return `${str(p["service"])} → ${str(p["id"]).slice(0, 12)}${p["by"] === "operator" ? " (by an operator)" : ""}`;
    case "service.unhealthy":
    case "service.healthy":
      return `${str(p["service"])}${p["output"] ? `: ${str(p["output"])}` : ""}`;
    case "verify.failed":
      return `${str(p["service"])}: ${str(p["reason"])}`;
    case "agent.resumed":
      return `in ${str(p["state"])}`;
    default:
      return typeof p["error"] === "string" ? p["error"] : "";
  }
}
