// Shared by the benchmarks: statistics, the result format each bench writes, small process helpers.
// A bench is a script that writes bench/out/<name>.json (a BenchReport) and prints its figures;
// bench/run.ts runs them in order and turns the reports into bench/RESULTS.md.
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO = join(BENCH_DIR, "..");
export const OUT_DIR = join(BENCH_DIR, "out");
export const SHARED_NATS = process.env.FLEET_BENCH_NATS ?? "nats://127.0.0.1:4222";
export const PODMAN_DIR = process.env.PODMAN_ENV_DIR ?? join(REPO, ".run/bench-podman");

export interface Stats {
  n: number;
  median: number;
  mean: number;
  min: number;
  max: number;
  p25: number;
  p75: number;
  p90: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function stats(xs: readonly number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    median: quantile(s, 0.5),
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
    min: s[0] ?? NaN,
    max: s[s.length - 1] ?? NaN,
    p25: quantile(s, 0.25),
    p75: quantile(s, 0.75),
    p90: quantile(s, 0.9),
  };
}

/** One reported figure: a sample set (with spread) or a single value. */
export interface Figure {
  key: string;
  label: string;
  unit: string;
  stats?: Stats;
  value?: number;
  note?: string;
}

export interface TargetCheck {
  id: string;
  target: string;
  measured: string;
  met: boolean;
  /** The figure keys that decide it, for a profile re-run. */
  keys: string[];
}

export interface BenchReport {
  name: string;
  title: string;
  startedAt: string;
  durationMs: number;
  figures: Figure[];
  targets: TargetCheck[];
  /** Free text (method, caveats, breakdowns), markdown. */
  notes: string[];
  /** Extra markdown tables. */
  tables: string[];
}

export class Report {
  readonly r: BenchReport;
  private readonly t0 = Date.now();
  constructor(name: string, title: string) {
    this.r = { name, title, startedAt: new Date().toISOString(), durationMs: 0, figures: [], targets: [], notes: [], tables: [] };
  }
  samples(key: string, label: string, unit: string, xs: readonly number[], note?: string): Stats {
    const s = stats(xs);
    this.r.figures.push({ key, label, unit, stats: s, ...(note ? { note } : {}) });
    console.log(`  ${label}: ${fmtStats(s, unit)}${note ? `  (${note})` : ""}`);
    return s;
  }
  value(key: string, label: string, unit: string, v: number, note?: string): number {
    this.r.figures.push({ key, label, unit, value: v, ...(note ? { note } : {}) });
    console.log(`  ${label}: ${fmt(v)} ${unit}${note ? `  (${note})` : ""}`);
    return v;
  }
  target(id: string, target: string, measured: string, met: boolean, keys: string[]): void {
    this.r.targets.push({ id, target, measured, met, keys });
    console.log(`  TARGET ${met ? "met   " : "MISSED"} ${target}: ${measured}`);
  }
  note(md: string): void {
    this.r.notes.push(md);
  }
  table(md: string): void {
    this.r.tables.push(md);
    console.log(md.split("\n").map((l) => "  " + l).join("\n"));
  }
  write(): string {
    this.r.durationMs = Date.now() - this.t0;
    mkdirSync(OUT_DIR, { recursive: true });
    const file = join(OUT_DIR, `${this.r.name}.json`);
    writeFileSync(file, JSON.stringify(this.r, null, 2));
    return file;
  }
}

export const readReport = (name: string): BenchReport | null => {
  try {
    return JSON.parse(readFileSync(join(OUT_DIR, `${name}.json`), "utf8")) as BenchReport;
  } catch {
    return null;
  }
};

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 10) return v.toFixed(2);
  if (a >= 1) return v.toFixed(3);
  return v.toPrecision(3);
}

export function fmtStats(s: Stats, unit: string): string {
  return `median ${fmt(s.median)} ${unit} (p25–p75 ${fmt(s.p25)}–${fmt(s.p75)}, min–max ${fmt(s.min)}–${fmt(s.max)}, n=${s.n})`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Rounds of `fns` run in turn, the starting one rotating each round (interleaving). */
export async function interleaved(rounds: number, fns: Array<() => Promise<void>>): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) await fns[(r + i) % fns.length]!();
  }
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeout = 120_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** utime + stime of a process in ms, from /proc/<pid>/stat. */
export function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLK_TCK;
}
const CLK_TCK = 100;

/** As procCpuMs, plus the CPU of the children it has waited for (cutime + cstime). */
export function procCpuWithChildrenMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK;
}

/** Resident set size of a process in MB, from /proc/<pid>/status. */
export function procRssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The CPU time of this process (user + system) in ms. */
export const selfCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export const benchArgs = () => new Set(process.argv.slice(2));
