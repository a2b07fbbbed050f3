// The deployment machine's statechart as SVG, from the machine definition itself (machineEdges), so
// the drawing can never drift from the code, laid out by dagre (a layered layout: ranks, then an
// order that minimises crossings, edge labels placed as nodes of their own so none overlaps a state
// or another label). Runs once at server start, in node: the page gets finished SVG, no library.
// Every state carries `data-state`, every edge `data-from`/`data-to`; the page highlights by class.
import dagre, { type EdgeLabel, type GraphLabel, type NodeLabel } from "@dagrejs/dagre";
import type { AnyStateMachine, AnyStateNode } from "xstate";
import { domainTypeOf } from "../machines/journal.vocabulary.js";
import { machineEdges, type Edge } from "../machines/statechart.js";

export interface ChartState {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
  final: boolean;
  initial: boolean;
}
export interface ChartEdge {
  from: string;
  to: string;
  /** Every transition of this edge in domain words, as the tooltip lists them. */
  words: string[];
  /** The lines drawn on the chart (queued variants of a drawn word folded into it). */
  lines: string[];
  points: Array<{ x: number; y: number }>;
  label: { x: number; y: number; width: number; height: number };
}
export interface ChartLayout {
  states: ChartState[];
  edges: ChartEdge[];
  width: number;
  height: number;
}

const NODE_H = 36;
const FONT_STATE = 13;
const FONT_LABEL = 11;
const LINE_H = 14;
/** Average glyph widths of the page's sans-serif at these sizes (the page sets the font). */
const charW = (px: number, bold: boolean) => px * (bold ? 0.62 : 0.56);

/** The queued-kind guard's params → the desired event that waited for the step to end. */
const QUEUED: Record<string, string> = { update: "desired.updated", delete: "desired.deleted", reject: "desired.rejected" };

/**
 * One transition in the journal's words (docs/design.md, journal events v2; the names from the
 * vocabulary module): the event an operator sees in the timeline, not XState's actor ids or the
 * machine's guard names. A transition taken because a desired value waited for the step to end says
 * so: `desired.updated (queued)`; a step that ended with a failed service: `stop.done, a service failed`.
 */
export function edgeWords(e: Edge): string {
  if (e.guard === "queued" && e.params && QUEUED[e.params]) return `${QUEUED[e.params]} (queued)`;
  if (e.event === "always") return e.guard === "hasPlan" ? "plan made" : "then";
  const name = domainTypeOf(e.event) ?? e.event;
  return e.guard === "hasFailure" ? `${name}, a service failed` : name;
}

export function layoutChart(machine: AnyStateMachine): ChartLayout {
  const nodes = Object.values(machine.root.states) as AnyStateNode[];
  const initial = String(machine.root.initial?.target[0]?.key ?? nodes[0]?.key ?? "");
  const grouped = new Map<string, { from: string; to: string; words: string[]; guarded: boolean }>();
  for (const e of machineEdges(machine)) {
    const k = `${e.from}>${e.to}`;
    const g = grouped.get(k) ?? { from: e.from, to: e.to, words: [], guarded: true };
    if (e.guard === null) g.guarded = false;
    const w = edgeWords(e);
    if (!g.words.includes(w)) g.words.push(w);
    grouped.set(k, g);
  }

  const g = new dagre.graphlib.Graph<GraphLabel, NodeLabel, EdgeLabel>();
  g.setGraph({ rankdir: "TB", nodesep: 24, ranksep: 26, edgesep: 10, marginx: 16, marginy: 16, ranker: "network-simplex", align: "UL" });
  for (const n of nodes) g.setNode(n.key, { width: Math.round(n.key.length * charW(FONT_STATE, true) + 28), height: NODE_H });
  const edges = [...grouped.values()].map((e) => ({ ...e, lines: drawnLines(e.words) }));
  const forward = forwardPath(initial, edges);
  // The way forward first: dagre breaks cycles along the order edges are given in, so the returns
  // (a retry back to a step, a repair) are the edges it turns, not a step of the way.
  const ordered = [...edges.filter((e) => forward.has(`${e.from}>${e.to}`)), ...edges.filter((e) => !forward.has(`${e.from}>${e.to}`))];
  // A state's edges to itself (a service restarted while it runs) are drawn beside it, not laid out.
  for (const e of ordered.filter((x) => x.from !== x.to)) {
    const width = e.lines.length ? Math.round(Math.max(...e.lines.map((l) => l.length)) * charW(FONT_LABEL, false) + 8) : 0;
    // The way forward (an upgrade's steps, a removal) is held straight; returns and failures bend around it.
    const weight = forward.has(`${e.from}>${e.to}`) ? 8 : e.to === initial ? 1 : 2;
    g.setEdge(e.from, e.to, { width, height: e.lines.length ? e.lines.length * LINE_H + 2 : 0, labelpos: "c", weight });
  }
  dagre.layout(g);

  const states: ChartState[] = nodes.map((n) => {
    const p = g.node(n.key);
    const [x, y] = [p.x ?? 0, p.y ?? 0];
    return { id: n.key, x: x - p.width / 2, y: y - p.height / 2, width: p.width, height: p.height, final: n.type === "final", initial: n.key === initial };
  });
  const laid: ChartEdge[] = edges.map((e) => {
    if (e.from === e.to) return selfLoop(e, g.node(e.from));
    const p = g.edge(e.from, e.to);
    return { from: e.from, to: e.to, words: e.words, lines: e.lines, points: p.points ?? [], label: { x: p.x ?? 0, y: p.y ?? 0, width: p.width ?? 0, height: p.height ?? 0 } };
  });
  const graph = g.graph();
  return { states, edges: laid, width: Math.ceil(graph.width ?? 0), height: Math.ceil(graph.height ?? 0) };
}

/** A loop on the right of its state, its words beside it. */
function selfLoop(e: { from: string; to: string; words: string[]; lines: string[] }, n: NodeLabel): ChartEdge {
  const [cx, cy, w, h] = [n.x ?? 0, n.y ?? 0, n.width, n.height];
  const right = cx + w / 2;
  const points = [
    { x: right, y: cy - h / 4 },
    { x: right + 18, y: cy - h / 2 - 6 },
    { x: right + 18, y: cy + h / 2 + 6 },
    { x: right, y: cy + h / 4 },
  ];
  const width = e.lines.length ? Math.round(Math.max(...e.lines.map((l) => l.length)) * charW(FONT_LABEL, false) + 8) : 0;
  const height = e.lines.length ? e.lines.length * LINE_H + 2 : 0;
  return { from: e.from, to: e.to, words: e.words, lines: e.lines, points, label: { x: right + 24 + width / 2, y: cy, width, height } };
}

/**
 * The edges of the way forward: from the initial state, each state's first edge that a step's
 * success or a plan takes (`<step>.done`, `plan made`) to a state not yet on the way, to a final
 * state or back to the start. Read from the definition, so a new step joins it by itself.
 */
function forwardPath(initial: string, edges: Array<{ from: string; to: string; words: string[]; guarded: boolean }>): Set<string> {
  const out = new Set<string>();
  const progress = (w: string) => /\.done$/.test(w) || w === "plan made";
  const seen = new Set<string>();
  for (const start of [initial, ...edges.filter((e) => e.words.includes("desired.deleted")).map((e) => e.to)]) {
    let at = start;
    while (!seen.has(at)) {
      seen.add(at);
      // A step's plain success before a guarded shortcut (a start with nothing to verify skips verifying).
      const ways = edges.filter((e) => e.from === at && !seen.has(e.to) && e.words.some(progress));
      const next = ways.find((e) => !e.guarded) ?? ways[0];
      if (!next) break;
      out.add(`${next.from}>${next.to}`);
      at = next.to;
    }
  }
  return out;
}

/**
 * The words drawn on an edge: none for a transition taken only because a desired value waited for a
 * step to end (drawn dashed; the tooltip and the legend say so), and one word per step outcome: a
 * step that ended with a failed service and a step that failed outright read as `<step>.failed`.
 */
function drawnLines(words: string[]): string[] {
  const out: string[] = [];
  for (const w of words) {
    if (w.endsWith(" (queued)")) continue;
    const failed = /^(\w+)\.done, a service failed$/.exec(w);
    const line = failed ? `${failed[1]}.failed` : w;
    if (!out.includes(line)) out.push(line);
  }
  return out;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const r = (n: number) => Math.round(n * 10) / 10;

/** A smooth path through dagre's points: straight ends, quadratic bends at the inner points. */
function pathOf(points: Array<{ x: number; y: number }>): string {
  if (points.length < 2) return "";
  const [p0, ...rest] = points;
  let d = `M${r(p0!.x)},${r(p0!.y)}`;
  if (rest.length === 1) return `${d} L${r(rest[0]!.x)},${r(rest[0]!.y)}`;
  for (let i = 0; i < rest.length - 1; i++) {
    const c = rest[i]!;
    const n = rest[i + 1]!;
    const mx = i === rest.length - 2 ? n.x : (c.x + n.x) / 2;
    const my = i === rest.length - 2 ? n.y : (c.y + n.y) / 2;
    d += ` Q${r(c.x)},${r(c.y)} ${r(mx)},${r(my)}`;
  }
  return d;
}

export function renderChartSvg(machine: AnyStateMachine): string {
  const l = layoutChart(machine);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" viewBox="0 0 ${l.width} ${l.height}" preserveAspectRatio="xMidYMin meet" role="img" aria-label="deployment statechart">`,
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker>` +
      `<marker id="arrow-taken" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead taken"/></marker></defs>`,
  ];
  for (const e of l.edges) {
    const { x, y, height } = e.label;
    const top = y - height / 2 + LINE_H - 3;
    parts.push(
      `<g class="edge${e.lines.length ? "" : " queued"}" data-from="${esc(e.from)}" data-to="${esc(e.to)}"><title>${esc(`${e.from} → ${e.to}: ${e.words.join(" | ")}`)}</title>`,
      `<path d="${pathOf(e.points)}" marker-end="url(#arrow)"/>`,
      e.lines.length ? `<text x="${r(x)}" y="${r(top)}" text-anchor="middle">${e.lines.map((line, i) => `<tspan x="${r(x)}" dy="${i === 0 ? 0 : LINE_H}">${esc(line)}</tspan>`).join("")}</text></g>` : "</g>",
    );
  }
  for (const s of l.states) {
    parts.push(
      `<g class="state${s.final ? " final" : ""}${s.initial ? " initial" : ""}" data-state="${esc(s.id)}" transform="translate(${r(s.x)},${r(s.y)})">`,
      `<rect width="${r(s.width)}" height="${s.height}" rx="${s.height / 2}"/>${s.final ? `<rect class="inner" x="3" y="3" width="${r(s.width - 6)}" height="${s.height - 6}" rx="${(s.height - 6) / 2}"/>` : ""}`,
      `<text x="${r(s.width / 2)}" y="${s.height / 2 + 4.5}" text-anchor="middle">${esc(s.id)}</text></g>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}
