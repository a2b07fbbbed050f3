// Loaded into an agent process by the footprint bench (`node --import …/footprint.probe.mjs
// dist/fleet-agent.mjs …`) to see where its memory goes. On SIGUSR2 it reads the command in
// $FLEET_BENCH_PROBE_DIR/cmd and writes its answer beside it:
//   stats <name>     → <name>.json: process.memoryUsage() and V8's heap spaces, as they are and
//                      after a full GC (when node runs with --expose-gc)
//   snapshot <name>  → <name>.heapsnapshot (v8.writeHeapSnapshot), then <name>.json as for stats
// Plain JavaScript, so that it loads into the bundled agent without tsx.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8";

const dir = process.env.FLEET_BENCH_PROBE_DIR;
if (dir) {
  process.on("SIGUSR2", () => {
    const [what, name] = readFileSync(join(dir, "cmd"), "utf8").trim().split(/\s+/);
    if (!name) return;
    const spaces = () => getHeapSpaceStatistics().map((s) => ({ name: s.space_name, size: s.space_size, used: s.space_used_size }));
    const before = { memoryUsage: process.memoryUsage(), heapSpaces: spaces() };
    if (typeof globalThis.gc === "function") globalThis.gc();
    if (what === "snapshot") writeHeapSnapshot(join(dir, `${name}.heapsnapshot`));
    const out = { before, afterGc: { memoryUsage: process.memoryUsage(), heapSpaces: spaces() } };
    writeFileSync(join(dir, `${name}.json.tmp`), JSON.stringify(out));
    renameSync(join(dir, `${name}.json.tmp`), join(dir, `${name}.json`));
  });
}
