// The machine as a Mermaid stateDiagram-v2, walked from the definition itself so the drawing can
// never drift from the code. The dashboard's visualiser and `npm run statechart` both use it.
import type { AnyStateMachine, AnyStateNode } from "xstate";

export interface Edge {
  from: string;
  to: string;
  /** The event type, or "always" for an eventless transition. */
  event: string;
  guard: string | null;
}

/** Every transition of the machine's top-level states, in definition order. */
export function machineEdges(machine: AnyStateMachine): Edge[] {
  const edges: Edge[] = [];
  for (const node of Object.values(machine.root.states) as AnyStateNode[]) {
    const all = [...node.transitions.entries()].flatMap(([event, ts]) => ts.map((t) => ({ event, t })));
    for (const t of node.always ?? []) all.push({ event: "always", t });
    for (const { event, t } of all) {
      const guard = typeof t.guard === "string" ? t.guard : (t.guard as { type?: string } | undefined)?.type ?? null;
      // A targetless transition that only updates context is not an edge of the chart.
      for (const to of t.target ?? []) edges.push({ from: node.key, to: to.key, event, guard });
    }
  }
  return edges;
}

/** `xstate.done.actor.pull` → `pull done`: readable edge labels. */
export const edgeLabel = (e: Edge) => {
  const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(e.event);
  const base = m ? `${m[2]} ${m[1] === "done" ? "done" : "error"}` : e.event;
  return e.guard ? `${base} [${e.guard}]` : base;
};

export function toMermaid(machine: AnyStateMachine): string {
  const lines = ["stateDiagram-v2", `  [*] --> ${String(machine.root.initial?.target[0]?.key ?? "")}`];
  for (const node of Object.values(machine.root.states) as AnyStateNode[]) {
    if (node.type === "final") lines.push(`  ${node.key} --> [*]`);
  }
  for (const e of machineEdges(machine)) lines.push(`  ${e.from} --> ${e.to}: ${edgeLabel(e)}`);
  return lines.join("\n");
}
