// The deployment machine's statechart as SVG, laid out from the machine definition itself
// (machineEdges), so the drawing can never drift from the code. No library, no network: every
// node carries `data-state`, every edge `data-from`/`data-to`, and the page highlights by class.
import type { AnyStateMachine, AnyStateNode } from "xstate";
import { domainTypeOf } from "../machines/journal.vocabulary.js";
import { edgeLabel, machineEdges, type Edge } from "../machines/statechart.js";

export interface ChartLayout {
  states: Array<{ id: string; x: number; y: number; final: boolean; initial: boolean }>;
  edges: Array<{ from: string; to: string; labels: string[] }>;
  width: number;
  height: number;
}

const COL = 175;
const ROW = 120;
const W = 120;
const H = 40;
const PAD = 30;
/** Room above the top row for edges that bend upwards. */
const TOP = 70;

/** Progress edges first (eventless, a step done), failures last, so the happy path takes the top row. */
function priority(e: Edge): number {
  if (e.event === "always") return 0;
  const type = domainTypeOf(e.event) ?? "";
  return type.endsWith(".done") ? 1 : type.endsWith(".failed") || type === "step.timed_out" ? 3 : 2;
}

export function layoutChart(machine: AnyStateMachine): ChartLayout {
  const nodes = Object.values(machine.root.states) as AnyStateNode[];
  const initial = String(machine.root.initial?.target[0]?.key ?? nodes[0]?.key ?? "");
  const edges = machineEdges(machine);
  const out = new Map<string, Edge[]>();
  for (const e of edges) out.set(e.from, [...(out.get(e.from) ?? []), e]);
  for (const list of out.values()) list.sort((a, b) => priority(a) - priority(b));

  // Breadth-first ranks (columns); a node takes its parent's row when free.
  const rank = new Map<string, number>([[initial, 0]]);
  const row = new Map<string, number>([[initial, 0]]);
  const used = new Set<string>([`0:0`]);
  const queue = [initial];
  while (queue.length) {
    const n = queue.shift()!;
    for (const e of out.get(n) ?? []) {
      if (rank.has(e.to)) continue;
      const r = rank.get(n)! + 1;
      let y = row.get(n)!;
      while (used.has(`${r}:${y}`)) y++;
      rank.set(e.to, r);
      row.set(e.to, y);
      used.add(`${r}:${y}`);
      queue.push(e.to);
    }
  }
  // Unreachable states (none today) go in a last column.
  const maxRank = Math.max(...rank.values());
  let extra = 0;
  for (const n of nodes) if (!rank.has(n.key)) (rank.set(n.key, maxRank + 1), row.set(n.key, extra++));

  const states = nodes.map((n) => ({
    id: n.key,
    x: PAD + rank.get(n.key)! * COL,
    y: TOP + row.get(n.key)! * ROW,
    final: n.type === "final",
    initial: n.key === initial,
  }));
  const grouped = new Map<string, { from: string; to: string; labels: string[] }>();
  for (const e of edges) {
    const k = `${e.from}>${e.to}`;
    const g = grouped.get(k) ?? { from: e.from, to: e.to, labels: [] };
    const l = edgeLabel(e);
    if (!g.labels.includes(l)) g.labels.push(l);
    grouped.set(k, g);
  }
  return {
    states,
    edges: [...grouped.values()],
    width: PAD * 2 + Math.max(...states.map((s) => s.x)) + W - PAD,
    height: Math.max(...states.map((s) => s.y)) + H + TOP,
  };
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function renderChartSvg(machine: AnyStateMachine): string {
  const l = layoutChart(machine);
  const pos = new Map(l.states.map((s) => [s.id, s]));
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" viewBox="0 0 ${l.width} ${l.height}" width="${l.width}" height="${l.height}" role="img" aria-label="deployment statechart">`,
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>`,
  );
  for (const e of l.edges) {
    const a = pos.get(e.from)!;
    const b = pos.get(e.to)!;
    const [x1, y1] = [a.x + W / 2, a.y + H / 2];
    const [x2, y2] = [b.x + W / 2, b.y + H / 2];
    const dx = x2 - x1;
    const dy = y2 - y1;
    const len = Math.hypot(dx, dy) || 1;
    // Bend sideways (a→b and b→a bend to opposite sides); longer edges bend more.
    const bend = Math.min(90, 18 + len * 0.12);
    const cx = (x1 + x2) / 2 + (-dy / len) * bend;
    const cy = (y1 + y2) / 2 + (dx / len) * bend;
    const [sx, sy] = clip(x1, y1, cx, cy);
    const [ex, ey] = clip(x2, y2, cx, cy);
    const mx = 0.25 * sx + 0.5 * cx + 0.25 * ex;
    const my = 0.25 * sy + 0.5 * cy + 0.25 * ey;
    parts.push(
      `<g class="edge" data-from="${esc(e.from)}" data-to="${esc(e.to)}"><title>${esc(`${e.from} → ${e.to}: ${e.labels.join(" | ")}`)}</title>`,
      `<path d="M${r(sx)},${r(sy)} Q${r(cx)},${r(cy)} ${r(ex)},${r(ey)}" marker-end="url(#arrow)"/>`,
      `<text x="${r(mx)}" y="${r(my)}" text-anchor="middle">${esc(shorten(e.labels))}</text></g>`,
    );
  }
  for (const s of l.states) {
    if (s.initial) parts.push(`<circle class="initial-dot" cx="${s.x - 14}" cy="${s.y + H / 2}" r="5"/>`);
    parts.push(
      `<g class="state${s.final ? " final" : ""}" data-state="${esc(s.id)}" transform="translate(${s.x},${s.y})">`,
      `<rect width="${W}" height="${H}" rx="12"/>${s.final ? `<rect class="inner" x="3" y="3" width="${W - 6}" height="${H - 6}" rx="10"/>` : ""}`,
      `<text x="${W / 2}" y="${H / 2 + 5}" text-anchor="middle">${esc(s.id)}</text></g>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");

  /** Where the line from a node's centre towards (tx, ty) leaves its box. */
  function clip(x: number, y: number, tx: number, ty: number): [number, number] {
    const dx = tx - x;
    const dy = ty - y;
    const sx = dx === 0 ? Infinity : W / 2 / Math.abs(dx);
    const sy = dy === 0 ? Infinity : H / 2 / Math.abs(dy);
    const s = Math.min(sx, sy);
    return [x + dx * s, y + dy * s];
  }
}

const r = (n: number) => Math.round(n * 10) / 10;
const shorten = (labels: string[]) => (labels.length > 2 ? `${labels.slice(0, 2).join(" / ")} …` : labels.join(" / "));
