// One worker process of the fleet simulation: `count` in-process agents on FakeRuntime, each with its
// own NATS connection, device id and state dir. Talks to bench/fleet.bench.ts over IPC:
//   → {type: "ready", ms, rssMb}   every agent is online (connected, resources checked, watch running)
//   ← {type: "stop"}               → {type: "stopped"}, then exits
import { rmSync } from "node:fs";
import { FakeRuntime } from "../runtime/fake.runtime.js";
import { procRssMb } from "./lib.js";
import { startBenchAgent, type BenchAgent } from "./support.js";

const [url, prefix, from, count, tickSecs, stateRoot] = process.argv.slice(2);
const agents: BenchAgent[] = [];
const t0 = performance.now();
const ids = Array.from({ length: Number(count) }, (_, i) => `${prefix}-${Number(from) + i}`);
const CONCURRENCY = 25;
for (let i = 0; i < ids.length; i += CONCURRENCY) {
  const batch = await Promise.all(
    ids.slice(i, i + CONCURRENCY).map((device) => startBenchAgent(device, new FakeRuntime({ device }), url!, { tickSecs: Number(tickSecs), stateRoot: stateRoot! })),
  );
  agents.push(...batch);
}
process.send!({ type: "ready", ms: performance.now() - t0, rssMb: procRssMb(process.pid) });
process.on("message", async (m: { type: string }) => {
  if (m.type !== "stop") return;
  process.send!({ type: "rss", rssMb: procRssMb(process.pid) });
  await Promise.all(agents.map((a) => a.agent.stop(5000).catch(() => undefined)));
  for (const a of agents) rmSync(a.stateDir, { recursive: true, force: true });
  process.send!({ type: "stopped" }, () => process.exit(0));
});
