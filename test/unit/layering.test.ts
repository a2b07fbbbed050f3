// The architecture of docs/design.md ("Layout"), checked on every import of every source file:
// which top folders a folder may import, which packages the pure folders may use, the order of the
// agent's own parts, and no import circles anywhere.
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";

const ROOT = join(dirname(new URL(import.meta.url).pathname), "..", "..");

/** Top folder → the top folders its files may import (besides its own). The design's table. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  contracts: [],
  machines: ["contracts"],
  runtime: ["contracts"],
  fleet: ["contracts"],
  agent: ["contracts", "machines", "runtime", "fleet"],
  inspector: ["contracts", "machines", "fleet"],
  cli: ["contracts", "machines", "fleet"],
};
/** The one door from cli/ to inspector/: `fleetctl serve` starts the dashboard. */
const CLI_TO_INSPECTOR = ["cli/serve.command.ts"];

/** Inside agent/: each part and the parts below it that it may import; the process wiring (agent/*.ts) may import all. */
const AGENT_PARTS: Record<string, readonly string[]> = {
  nats: [],
  journal: ["nats"],
  deployments: ["journal", "nats"],
};

/** Packages of the folders that do no I/O: the machine reaches the world only through its actors. */
const PURE_PACKAGES = [/^io-ts(\/|$)/, /^fp-ts(\/|$)/, /^xstate$/, /^node:crypto$/, /^@nats-io\/nkeys$/];
const PURE = ["contracts", "machines"];

interface Import {
  file: string;
  spec: string;
  /** The imported file, relative to the root, for a relative import. */
  target: string | null;
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return name === "static" ? [] : sources(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+"([^"]+)"/gms), ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)].map((m) => {
    const spec = m[1]!;
    const target = spec.startsWith(".") ? normalize(join(dirname(file), spec)).replace(/\.js$/, ".ts") : null;
    return { file, spec, target };
  });
}

const top = (path: string) => path.split("/")[0]!;
const agentPart = (path: string) => {
  const parts = path.split("/");
  return parts[0] === "agent" && parts.length > 2 ? parts[1]! : null;
};

const all = Object.keys(MAY_IMPORT).flatMap((dir) => sources(dir).flatMap(importsOf));

describe("layering (docs/design.md, Layout)", () => {
  for (const [dir, allowed] of Object.entries(MAY_IMPORT)) {
    it(`${dir}/ imports only ${allowed.length ? allowed.map((d) => `${d}/`).join(", ") : "nothing of ours"}${dir === "cli" ? " (and inspector/ where `fleetctl serve` starts it)" : ""}`, () => {
      const own = all.filter((i) => top(i.file) === dir);
      expect(own.length, `imports found in ${dir}/`).to.be.greaterThan(3);
      const bad = own.filter((i) => {
        if (!i.target) return false;
        const to = top(i.target);
        if (to === dir || allowed.includes(to)) return false;
        return !(dir === "cli" && to === "inspector" && CLI_TO_INSPECTOR.includes(i.file));
      });
      expect(bad.map((i) => `${i.file} → ${i.spec}`)).to.deep.equal([]);
    });
  }

  for (const dir of PURE) {
    it(`${dir}/ does no I/O: no fs, net, http, NATS or Podman packages`, () => {
      const bad = all.filter((i) => top(i.file) === dir && !i.target && !PURE_PACKAGES.some((re) => re.test(i.spec)));
      expect(bad.map((i) => `${i.file} → ${i.spec}`)).to.deep.equal([]);
    });
  }

  it("agent/'s parts import only the parts below them (nats ← journal ← deployments), never the process wiring above", () => {
    const bad = all.filter((i) => {
      const from = agentPart(i.file);
      if (!from || !i.target || top(i.target) !== "agent") return false;
      const to = agentPart(i.target);
      if (to === from) return false;
      return to === null || !AGENT_PARTS[from]!.includes(to);
    });
    expect(bad.map((i) => `${i.file} → ${i.spec}`)).to.deep.equal([]);
  });

  it("no import circles: the file graph of every folder above is acyclic", () => {
    const edges = new Map<string, string[]>();
    for (const i of all) if (i.target) edges.set(i.file, [...(edges.get(i.file) ?? []), i.target]);
    const state = new Map<string, "open" | "done">();
    const circles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === "done") return;
      if (state.get(f) === "open") {
        circles.push([...path.slice(path.indexOf(f)), f].join(" → "));
        return;
      }
      state.set(f, "open");
      for (const t of edges.get(f) ?? []) visit(t, [...path, f]);
      state.set(f, "done");
    };
    for (const f of edges.keys()) visit(f, []);
    expect(circles).to.deep.equal([]);
  });

  it("no tracked file names a path outside the repository (the design is docs/design.md)", () => {
    const tracked = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter((f) => f && f !== "package-lock.json" && !/\.(png|jpg)$/.test(f));
    expect(tracked.length).to.be.greaterThan(50);
    const outside = /(^|[^.\w])\/work\/|\.\.\/shared\/|\bshared\/DESIGN\.md/;
    const bad = tracked.filter((f) => outside.test(readFileSync(join(ROOT, f), "utf8")));
    expect(bad).to.deep.equal([]);
  });
});
