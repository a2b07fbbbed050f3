// The machine as a Mermaid stateDiagram-v2, walked from the definition itself so the drawing can
// never drift from the code. The dashboard's visualiser and `npm run statechart` both use it.
import type { AnyStateMachine, AnyStateNode } from "xstate";
import { domainTypeOf } from "./journal.vocabulary.js";

export interface Edge {
  from: string;
  to: string;
  /** The machine's event type, or "always" for an eventless transition. */
  event: string;
  guard: string | null;
  /** The guard's static params, as words (`update` for the queued-kind guard), or null. */
  params: string | null;
}

/** Every transition of the machine's top-level states, in definition order. */
export function machineEdges(machine: AnyStateMachine): Edge[] {
  const edges: Edge[] = [];
  for (const node of Object.values(machine.root.states) as AnyStateNode[]) {
    const all = [...node.transitions.entries()].flatMap(([event, ts]) => ts.map((t) => ({ event, t })));
    for (const t of node.always ?? []) all.push({ event: "always", t });
    for (const { event, t } of all) {
      const g = t.guard as string | { type?: string; params?: unknown } | undefined;
      const guard = typeof g === "string" ? g : (g?.type ?? null);
      const params = typeof g === "object" && isStaticParams(g.params) ? Object.values(g.params).join(" ") : null;
      // A targetless transition that only updates context is not an edge of the chart.
      for (const to of t.target ?? []) edges.push({ from: node.key, to: to.key, event, guard, params });
    }
  }
  return edges;
}

/** Edge labels in the journal's vocabulary: `xstate.done.actor.stopOld` → `stop.done`, UPDATE → `desired.updated`. */
export const edgeLabel = (e: Edge) => {
  const base = e.event === "always" ? "always" : (domainTypeOf(e.event) ?? e.event);
  return e.guard ? `${base} [${e.params ? `${e.guard} ${e.params}` : e.guard}]` : base;
};

/** Params written in the definition (not computed from the event): an object of strings and numbers. */
function isStaticParams(p: unknown): p is Record<string, string | number> {
  return typeof p === "object" && p !== null && Object.values(p).every((v) => typeof v === "string" || typeof v === "number");
}

export function toMermaid(machine: AnyStateMachine): string {
  const lines = ["stateDiagram-v2", `  [*] --> ${String(machine.root.initial?.target[0]?.key ?? "")}`];
  for (const node of Object.values(machine.root.states) as AnyStateNode[]) {
    if (node.type === "final") lines.push(`  ${node.key} --> [*]`);
  }
  for (const e of machineEdges(machine)) lines.push(`  ${e.from} --> ${e.to}: ${edgeLabel(e)}`);
  return lines.join("\n");
}
