// (1) Upgrade latency of one service on real Podman, interleaved rounds:
//   a1000  the agent as shipped (start settle 1 s): desired-state put → Running in device-state
//   a0     the same agent with start settle 0 (like for like with b and c)
//   b      the same libpod calls made directly: stop old by id (same grace), remove, create, start
//   b+s    b plus the agent's settle check (wait 1 s, inspect): like for like with a1000
//   c      the Podman CLI: podman stop -t, podman rm, podman run -d
// Each variant has its own device and container and alternates localhost/fleet-test:v1 ↔ v2, which
// exits promptly on SIGTERM, so every stop measures Podman, not the grace period.
import { randomBytes } from "node:crypto";
import { LABEL_DEVICE } from "../contracts/wire-names.js";
import type { DeploymentState } from "../contracts/deployment-state.codec.js";
import { LibpodClient } from "../runtime/podman/libpod.client.js";
import { startPodmanEnv, TEST_IMAGES } from "../test/support/podman.env.js";
import { benchArgs, fmt, interleaved, PODMAN_DIR, Report, SHARED_NATS, sleep, stats } from "./lib.js";
import { profileDuring, summariseProfile, writeProfileSummary } from "./profile.js";
import {
  cleanupDevice,
  connectBench,
  openKv,
  removeDeviceContainers,
  scoreHashOf,
  scoreJson,
  startBenchAgent,
  StateWaiter,
  traceClient,
  type BenchAgent,
  type TracedRequest,
} from "./support.js";

const args = benchArgs();
const QUICK = args.has("--quick"); // profile re-run: agent (settle 0) only, fewer rounds
const ROUNDS = QUICK ? 6 : Number(process.env.BENCH_UPGRADE_ROUNDS ?? 12);
const GRACE = 10;
const SERVICE = "web";
const images = [TEST_IMAGES.v1, TEST_IMAGES.v2];

const report = new Report("upgrade", "Upgrade latency, one service, real Podman");
console.log(`upgrade latency: ${ROUNDS} interleaved rounds (+1 warm-up)${QUICK ? " [quick/profile]" : ""}`);
const env = await startPodmanEnv({ dir: PODMAN_DIR, stopService: false });
const nc = await connectBench(SHARED_NATS);
const { desired, states } = await openKv(nc);
const run = randomBytes(3).toString("hex");
const devices: string[] = [];
const agents: BenchAgent[] = [];
const clients: LibpodClient[] = [];

interface Round {
  ms: number;
  requests?: number;
  trace?: TracedRequest[];
  phases?: Record<string, number>;
}
const results: Record<string, Round[]> = {};
const record = (k: string, r: Round, counted: boolean) => {
  if (counted) (results[k] ??= []).push(r);
};

/** `settleMs`: the score's `min_ready_secs` (in ms): how long a started service runs before it counts. */
async function agentVariant(name: string, settleMs: number) {
  const device = `bench-${name}-${run}`;
  devices.push(device);
  const client = new LibpodClient({ containerHost: env.containerHost });
  clients.push(client);
  const trace = traceClient(client);
  const runtime = env.runtime(device, { client });
  const a = await startBenchAgent(device, runtime, SHARED_NATS);
  agents.push(a);
  const key = `${device}.${device}`; // deployment named like the device: container names are <deployment>.<service>
  const waiter = await StateWaiter.start(states, key);
  const transitions: Array<{ to: string; at: number }> = [];
  a.agent.journal.onAppend((ev) => transitions.push({ to: ev.to, at: performance.now() }));
  let i = 0;
  const step = async (counted: boolean) => {
    const score = scoreJson([{ name: SERVICE, image: images[i++ % 2]! }], GRACE, settleMs / 1000);
    const hash = scoreHashOf(score);
    transitions.length = 0;
    const req0 = client.requestCount;
    const tr0 = trace.length;
    const t0 = performance.now();
    const rev = await desired.put(key, score);
    const { at } = await waiter.wait(key, (s: DeploymentState) => s.desired_revision === rev && (s.phase === "Running" || s.phase === "Failed"));
    const s = waiter.latest.get(key)!;
    if (s.phase !== "Running" || s.score_hash !== hash) throw new Error(`${name}: upgrade ended ${s.phase}: ${s.last_error}`);
    const phases: Record<string, number> = {};
    for (const t of transitions) phases[t.to] = t.at - t0;
    phases["observed"] = at - t0;
    record(name, { ms: at - t0, requests: client.requestCount - req0, trace: trace.slice(tr0), phases }, counted);
  };
  await step(false); // initial deploy
  return step;
}

function directVariant(name: string, settleMs: number) {
  const device = `bench-${name}-${run}`;
  devices.push(device);
  const client = new LibpodClient({ containerHost: env.containerHost });
  clients.push(client);
  const trace = traceClient(client);
  const rt = env.runtime(device, { client });
  let id: string | null = null;
  let i = 0;
  const specOf = (image: string) =>
    rt.createSpec({ deployment: device, service: { name: SERVICE, image }, lifecycle: { stop_signal: "SIGTERM", grace_period_secs: GRACE }, scoreHash: scoreHashOf(scoreJson([{ name: SERVICE, image }], GRACE)) });
  return async (counted: boolean) => {
    const spec = specOf(images[i++ % 2]!);
    const req0 = client.requestCount;
    const tr0 = trace.length;
    const t0 = performance.now();
    if (id) {
      await client.stop(id, GRACE);
      await client.remove(id, { force: true, timeout: GRACE });
    }
    id = (await client.create(spec)).Id;
    await client.start(id);
    if (settleMs > 0) {
      await sleep(settleMs);
      const c = await client.inspect(id);
      if (!c.State.Running) throw new Error(`${name}: exited at start`);
    }
    record(name, { ms: performance.now() - t0, requests: client.requestCount - req0, trace: trace.slice(tr0) }, counted);
  };
}

function cliVariant(name: string) {
  const device = `bench-${name}-${run}`;
  devices.push(device);
  const cname = `${device}.${SERVICE}`;
  let exists = false;
  let i = 0;
  return async (counted: boolean) => {
    const image = images[i++ % 2]!;
    const t0 = performance.now();
    if (exists) {
      await env.podman(["stop", "-t", String(GRACE), cname]);
      await env.podman(["rm", cname]);
    }
    await env.podman(["run", "-d", "--name", cname, "--label", `${LABEL_DEVICE}=${device}`, "--label", `io.fleet.test-run=${env.runId}`, "--stop-timeout", String(GRACE), image]);
    exists = true;
    record(name, { ms: performance.now() - t0 }, counted);
  };
}

try {
  const variants: Array<[string, (counted: boolean) => Promise<void>]> = [];
  variants.push(["a0", await agentVariant("a0", 0)]);
  if (!QUICK) {
    variants.push(["a1000", await agentVariant("a1000", 1000)]);
    const b = directVariant("b", 0);
    const bs = directVariant("bs", 1000);
    const c = cliVariant("c");
    await b(false);
    await bs(false);
    await c(false);
    variants.push(["b", b], ["bs", bs], ["c", c]);
  }
  // one warm-up round, then ROUNDS counted rounds, the starting variant rotating each round
  await interleaved(1, variants.map(([, f]) => () => f(false)));
  await interleaved(ROUNDS, variants.map(([, f]) => () => f(true)));

  const labels: Record<string, string> = {
    a0: "a  agent, settle 0: put → Running in device-state",
    a1000: "a' agent as shipped, settle 1000 ms: put → Running",
    b: "b  direct libpod: stop, remove, create, start",
    bs: "b' direct libpod + 1 s settle + inspect",
    c: "c  podman CLI: stop -t, rm, run -d",
  };
  const med: Record<string, number> = {};
  for (const [k] of variants) med[k] = report.samples(`upgrade.${k}`, labels[k]!, "ms", results[k]!.map((r) => r.ms)).median;
  for (const k of ["a0", "a1000", "b", "bs"]) {
    if (!results[k]) continue;
    report.value(`requests.${k}`, `libpod requests per upgrade, ${k}`, "req", stats(results[k]!.map((r) => r.requests ?? 0)).median);
  }
  if (!QUICK) {
    const r = (x: string, y: string) => med[x]! / med[y]!;
    report.value("ratio.a0_b", "ratio a/b (settle 0 vs direct)", "×", r("a0", "b"));
    report.value("ratio.a0_c", "ratio a/c (settle 0 vs CLI)", "×", r("a0", "c"));
    report.value("ratio.a1000_bs", "ratio a'/b' (as shipped vs direct with the same settle)", "×", r("a1000", "bs"));
    report.value("ratio.a1000_b", "ratio a'/b (as shipped vs direct, no settle)", "×", r("a1000", "b"));
    report.value("ratio.a1000_c", "ratio a'/c (as shipped vs CLI)", "×", r("a1000", "c"));
    // per-round paired ratios (same round, adjacent in time) give the spread of the ratio
    const paired = (x: string, y: string) => results[x]!.map((rx, i) => rx.ms / results[y]![i]!.ms);
    report.samples("ratio.a0_b.paired", "a/b per round (paired)", "×", paired("a0", "b"));
    report.samples("ratio.a1000_bs.paired", "a'/b' per round (paired)", "×", paired("a1000", "bs"));
    const ab = r("a0", "b");
    if (ab > 1.1) {
      // Where the agent's time goes, beyond the request table: a CPU profile of more agent rounds.
      const a0 = variants.find(([k]) => k === "a0")![1];
      const { profile, file } = await profileDuring("upgrade-agent", async () => {
        for (let i = 0; i < 6; i++) await a0(false);
      });
      writeProfileSummary("upgrade", `CPU profile of this process over 6 more agent (settle 0) upgrades (${file.slice(file.indexOf("bench/"))}); agent and bench share the process.\n\n` + summariseProfile(profile));
    }
    report.target("upgrade", "agent upgrade within 1.10× of direct libpod calls (settle 0 both)", `a/b = ${fmt(ab)}× (${fmt(med.a0!)} ms vs ${fmt(med.b!)} ms)`, ab <= 1.1, ["upgrade.a0", "upgrade.b"]);
    const abs = r("a1000", "bs");
    report.target("upgrade-shipped", "agent as shipped within 1.10× of direct calls with the same 1 s settle", `a'/b' = ${fmt(abs)}× (${fmt(med.a1000!)} ms vs ${fmt(med.bs!)} ms)`, abs <= 1.1, ["upgrade.a1000", "upgrade.bs"]);
  }

  // Where the agent's time goes: state entered (journal append) after the put, and libpod requests.
  for (const k of ["a0", "a1000"]) {
    const rounds = results[k];
    if (!rounds) continue;
    const order = ["pending", "pulling", "stoppingOld", "startingNew", "running", "observed"];
    const rows = order
      .filter((st) => rounds.every((r) => r.phases?.[st] !== undefined))
      .map((st) => {
        const s = stats(rounds.map((r) => r.phases![st]!));
        return `| ${st === "observed" ? "Running seen in device-state" : `journaled → ${st}`} | ${fmt(s.median)} | ${fmt(s.min)}–${fmt(s.max)} |`;
      });
    report.table([`**${labels[k]}: time after the put (ms)**`, "", "| point | median | min–max |", "|---|---:|---:|", ...rows].join("\n"));
  }
  const reqTable = (k: string) => {
    const rounds = results[k];
    if (!rounds) return;
    const by = new Map<string, number[]>();
    for (const r of rounds) for (const t of r.trace ?? []) (by.get(t.method) ?? by.set(t.method, []).get(t.method)!).push(t.ms);
    const rows = [...by].map(([m, xs]) => {
      const s = stats(xs);
      return `| ${m} | ${fmt(xs.length / rounds.length)} | ${fmt(s.median)} | ${fmt((s.mean * xs.length) / rounds.length)} |`;
    });
    report.table([`**libpod requests per upgrade, ${labels[k]}**`, "", "| request | per upgrade | median ms | ms per upgrade |", "|---|---:|---:|---:|", ...rows].join("\n"));
  };
  for (const k of ["a0", "b", "a1000"]) reqTable(k);
  report.note(
    `Grace ${GRACE} s; the image (localhost/fleet-test) exits at once on SIGTERM. The agent's figure is end to end: the KV put, the watch delivering it, ` +
      "the machine's steps (pull check, stop, remove, stray sweep, create, start), every transition fsynced to the journal and reported to device-state, " +
      "and this process seeing the Running value through its own KV watch. The agent as shipped (agent/main.ts) waits START_SETTLE_MS = 1000 after each start " +
      "and checks the container still runs; a' and b' both include that.",
  );
} finally {
  for (const a of agents) await a.close().catch(() => undefined);
  for (const d of devices) {
    await cleanupDevice(nc, d);
    for (const c of clients.slice(0, 1)) await removeDeviceContainers(c, d).catch(() => undefined);
  }
  await env.cleanup();
  for (const c of clients) c.close();
  await nc.close();
}
console.log(`wrote ${report.write()}`);
process.exit(0);
