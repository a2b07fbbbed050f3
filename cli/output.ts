// How fleetctl's tables meet the terminal: fitted to its width (the long column cut with …), colour
// only on a terminal and never with NO_COLOR, times relative to now. A pipe or a file gets whole
// lines without colour, unless COLUMNS says a width: scripts that want every field use --json.
import type { CliIo } from "./common.js";

export interface OutputStyle {
  color: boolean;
  /** Columns to fit a table to, or null for no limit (not a terminal, or -o wide). */
  width: number | null;
}

export function outputStyle(io: CliIo, wide = false): OutputStyle {
  const noColor = (io.env["NO_COLOR"] ?? "") !== "";
  const columns = Number(io.env["COLUMNS"]);
  const width = wide ? null : io.outIsTty && io.columns ? io.columns : Number.isInteger(columns) && columns > 0 ? columns : null;
  return { color: io.outIsTty === true && !noColor, width };
}

const SGR = { red: 31, green: 32, yellow: 33, magenta: 35, dim: 2, bold: 1 } as const;
export type Colour = keyof typeof SGR;
export const paint = (style: OutputStyle, colour: Colour | null, text: string) => (style.color && colour ? `\x1b[${SGR[colour]}m${text}\x1b[0m` : text);

/** The colour of a phase, of a health, of a stale mark. */
export function colourOf(word: string): Colour | null {
  if (/^(Running|healthy)\b/.test(word)) return "green";
  if (/^(Failed|unhealthy|STALE|forgotten)\b/.test(word) || word.includes("STALE")) return "red";
  if (/^(Pending|starting)\b/.test(word)) return "yellow";
  if (/^Degraded\b/.test(word)) return "magenta";
  return null;
}

export interface TableOptions {
  style: OutputStyle;
  /** The columns that give way, in this order, when the table is wider than the terminal (cut with …). */
  flex?: number[];
  /** Columns whose cells are coloured by colourOf. */
  coloured?: number[];
}

const MIN_FLEX = 12;

/** A text table, columns padded to their widest cell, fitted to the style's width. */
export function fitTable(header: string[], rows: string[][], opts: TableOptions): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const { width } = opts.style;
  if (width !== null) {
    const over = () => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1) - width;
    for (const i of opts.flex ?? []) {
      if (over() <= 0) break;
      widths[i] = Math.max(Math.min(MIN_FLEX, widths[i]!), widths[i]! - over());
    }
    // Still too wide: the first to give way gives what it still has, down to one character and "…".
    const first = opts.flex?.[0];
    if (first !== undefined && over() > 0) widths[first] = Math.max(2, widths[first]! - over());
  }
  const line = (cells: string[], isHeader: boolean) =>
    cells
      .map((c, i) => {
        const cut = c.length > widths[i]! ? `${c.slice(0, widths[i]! - 1)}…` : c;
        const padded = i === cells.length - 1 ? cut : cut.padEnd(widths[i]!);
        return !isHeader && opts.coloured?.includes(i) ? padded.replace(cut, paint(opts.style, colourOf(cut), cut)) : padded;
      })
      .join("  ")
      .trimEnd();
  return [line(header, true), ...rows.map((r) => line(r, false))].join("\n") + "\n";
}

/** 12 s → "12s ago", 3 min → "3m ago", a time to come → "in 40s". */
export function ago(at: string | number | null | undefined, now = Date.now()): string {
  if (at === null || at === undefined) return "-";
  const t = typeof at === "number" ? at : Date.parse(at);
  if (!Number.isFinite(t)) return "-";
  const ms = now - t;
  const span = compact(Math.abs(ms));
  return ms >= 0 ? `${span} ago` : `in ${span}`;
}

/** A span in its largest unit and the next: 45s, 3m12s, 5h3m, 2d4h. */
export function compact(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d}d${h % 24}h` : `${d}d`;
}
