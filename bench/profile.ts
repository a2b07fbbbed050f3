// CPU profiles for missed targets: record one around a section (node:inspector, the same V8 profiler
// and .cpuprofile format as `node --cpu-prof`, scoped to what is measured), or summarise a
// .cpuprofile written by `node --cpu-prof`: top frames by self time, and self time by package.
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { join } from "node:path";
import { OUT_DIR, REPO } from "./lib.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Runs `fn` with the V8 CPU profiler on; writes bench/out/<name>.cpuprofile; returns the profile. */
export async function profileDuring<T>(name: string, fn: () => Promise<T>): Promise<{ result: T; profile: CpuProfile; file: string }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  let result: T;
  let profile: CpuProfile;
  try {
    result = await fn();
  } finally {
    ({ profile } = (await session.post("Profiler.stop")) as unknown as { profile: CpuProfile });
    session.disconnect();
  }
  mkdirSync(OUT_DIR, { recursive: true });
  const file = join(OUT_DIR, `${name}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  return { result: result!, profile, file };
}

const shortUrl = (url: string) => {
  if (!url) return "";
  let u = url.replace(/^file:\/\//, "");
  if (u.startsWith(REPO)) u = u.slice(REPO.length + 1);
  const nm = u.lastIndexOf("node_modules/");
  if (nm >= 0) u = u.slice(nm + "node_modules/".length);
  return u;
};

function packageOf(url: string, fn: string): string {
  if (!url) return fn.startsWith("(") ? fn : "(native/V8 builtins)";
  if (url.startsWith("node:")) return "node internals";
  const u = url.replace(/^file:\/\//, "");
  const nm = u.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = u.slice(nm + "node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (u.startsWith(REPO)) return `fleet-agent ${u.slice(REPO.length + 1).split("/")[0]}/`;
  return u;
}

/** Markdown: sampled time, top frames by self time, self time by package. */
export function summariseProfile(p: CpuProfile, top = 12): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self].filter(([id]) => byId.get(id)?.callFrame.functionName === "(idle)").reduce((a, [, ms]) => a + ms, 0);
  const busy = total - idle;
  const frames = new Map<string, number>();
  const pkgs = new Map<string, number>();
  for (const [id, ms] of self) {
    const cf = byId.get(id)!.callFrame;
    if (cf.functionName === "(idle)") continue;
    const key = `${cf.functionName || "(anonymous)"} — ${shortUrl(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ""}`;
    frames.set(key, (frames.get(key) ?? 0) + ms);
    const pkg = packageOf(cf.url, cf.functionName);
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + ms);
  }
  // Inclusive time per project function (the caller in our code that the time is spent under).
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, number>();
  for (const [id, ms] of self) {
    if (byId.get(id)!.callFrame.functionName === "(idle)") continue;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      const u = cf.url.replace(/^file:\/\//, "");
      if (!u.startsWith(REPO) || u.includes("node_modules") || u.includes("/bench/")) continue;
      const key = `${cf.functionName || "(anonymous)"} — ${shortUrl(cf.url)}:${cf.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + ms);
    }
  }
  const pct = (ms: number) => `${((100 * ms) / (busy || 1)).toFixed(1)}%`;
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `Sampled ${total.toFixed(0)} ms, of which busy (not idle) ${busy.toFixed(1)} ms.`,
    "",
    "| top frames by self time | self ms | % of busy |",
    "|---|---:|---:|",
    ...sorted(frames).map(([k, ms]) => `| ${k.replace(/\|/g, "\\|")} | ${ms.toFixed(1)} | ${pct(ms)} |`),
    "",
    "| self time by package | ms | % of busy |",
    "|---|---:|---:|",
    ...sorted(pkgs).map(([k, ms]) => `| ${k} | ${ms.toFixed(1)} | ${pct(ms)} |`),
    "",
    "| project functions by inclusive time | ms | % of busy |",
    "|---|---:|---:|",
    ...sorted(incl).slice(0, 8).map(([k, ms]) => `| ${k} | ${ms.toFixed(1)} | ${pct(ms)} |`),
  ].join("\n");
}

/** Merges every .cpuprofile in `dir` (worker profiles from `node --cpu-prof`) into one summary. */
export function summariseDir(dir: string, top = 12): string {
  const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  const merged: CpuProfile = { nodes: [], startTime: 0, endTime: 0, samples: [], timeDeltas: [] };
  let offset = 0;
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), "utf8")) as CpuProfile;
    let max = 0;
    for (const n of p.nodes) {
      merged.nodes.push({ ...n, id: n.id + offset, ...(n.children ? { children: n.children.map((c) => c + offset) } : {}) });
      max = Math.max(max, n.id);
    }
    merged.samples.push(...p.samples.map((s) => s + offset));
    merged.timeDeltas.push(...p.timeDeltas);
    offset += max + 1;
  }
  return `${files.length} profile(s) merged. ` + summariseProfile(merged, top);
}

export function writeProfileSummary(name: string, md: string): void {
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(join(OUT_DIR, `${name}.profile.md`), md);
}
