// A journaled event in the domain's words (docs/design.md, "Journal events, version 2") as the
// visualiser reads a page of them: its name (`pull.done`, `desired.updated`, …) and its payload.
// A v2 event is that already; a v1 one (XState's own names) is translated by the vocabulary module
// (machines/journal.vocabulary.ts) without the snapshot it was taken in, which a page does not
// fold: what v1 did not record (a pull's images, the services a tick repaired) reads as empty.
import { initialTransition } from "xstate";
import type { JournalCause } from "../contracts/journal-event.codec.js";
import { deploymentMachine, type DeploymentContext } from "./deployment.machine.js";
import { fromV1, isDomainCause } from "./journal.vocabulary.js";

/** A journaled event as a domain name and a flat payload. */
export interface DomainEvent {
  name: string;
  payload: Record<string, unknown>;
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u);

let blank: DeploymentContext | null = null;
/** A context with nothing recorded: what a v1 event is translated against when no fold ran before it. */
const blankContext = () => (blank ??= initialTransition(deploymentMachine, { device: "-", deployment: "-" })[0].context);

/** `from` is the state the event left (a v1 deadline names no step: the state it timed out in does). */
export function domainEvent(cause: JournalCause, from: string): DomainEvent {
  let e: Record<string, unknown> = cause;
  if (!isDomainCause(cause)) {
    try {
      e = fromV1(cause, { value: from, context: blankContext() });
    } catch {
      // A v1 event the vocabulary cannot read is shown under its own name, as it was journaled.
    }
  }
  const { type, ...payload } = e;
  return { name: String(type), payload };
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
      return names(p["images"]);
    case "stop.done":
      return failure ? `failed ${failure}` : names(p["stopped"]) ? `stopped ${names(p["stopped"])}` : "nothing to stop";
    case "start.done":
      return failure ? `failed ${failure}` : `started ${names(p["started"]) || "nothing"}`;
    case "remove.done":
      return failure ? `failed ${failure}` : "every container removed";
    case "step.timed_out":
      return `${str(p["step"])} ran past its deadline`;
    case "service.exited":
      return `${str(p["service"])}${p["exit_code"] !== undefined && p["exit_code"] !== null ? ` exit ${str(p["exit_code"])}` : ""}`;
    case "liveness.repair": {
      if (names(p["services"])) return `restarting ${names(p["services"])}`;
      // Translated from v1, which did not record the services: the containers the tick saw down.
      const down = Array.isArray(p["observed"]) ? p["observed"].filter((c) => isRecord(c) && c["state"] !== "running").map((c) => (isRecord(c) ? str(c["service"]) : "")) : [];
      return down.length ? `seen not running: ${down.join(", ")}` : "a recorded container is missing";
    }
    case "service.restarted":
      return `${str(p["service"])} → ${str(p["id"]).slice(0, 12)}${p["by"] === "operator" ? " (by an operator)" : ""}`;
    case "service.unhealthy":
    case "service.healthy":
      return `${str(p["service"])}${p["output"] ? `: ${str(p["output"])}` : ""}`;
    case "verify.failed":
      return `${str(p["service"])}: ${str(p["reason"])}`;
    case "agent.resumed":
      return `in ${str(p["state"])}`;
    case "verify.done":
      return names(p["ready"]) ? `ready: ${names(p["ready"])}` : "";
    default:
      return typeof p["error"] === "string" ? p["error"] : "";
  }
}
