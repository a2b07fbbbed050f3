// (3) Footprint of the shipped agent (node dist/fleet-agent.mjs, as shipped: Podman runtime, tick
// 30 s): start-up time from spawn to the first heartbeat in KV; RSS idle with 0 deployments; RSS of
// one device running 10 deployments of 5 services (50 containers, each with a health check the agent
// runs) as they come up and over a minute idle; CPU while idle, and the health checks' share of it;
// what grows per container (V8's heap spaces at every 10 containers, a heap snapshot's growth from 0
// to 50). For scale: a bare node process, and node with the agent's modules imported.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { BUCKET_DEVICE_HEARTBEAT, LABEL_DEVICE } from "../contracts/wire-names.js";
import { LibpodClient } from "../runtime/podman/libpod.client.js";
import { startPodmanEnv, TEST_IMAGES } from "../test/support/podman.env.js";
import { heapGrowth, summariseHeap, totalBytes } from "./heap.js";
import { BENCH_DIR, fmt, PODMAN_DIR, procCpuMs, procCpuWithChildrenMs, procRssMb, REPO, Report, SHARED_NATS, sleep, stats } from "./lib.js";
import { cleanupDevice, connectBench, openKv, removeDeviceContainers, type ServiceDef, StateWaiter } from "./support.js";

const MAIN = process.env.FP_MAIN ?? join(REPO, "dist/fleet-agent.mjs");
if (!existsSync(MAIN)) throw new Error("dist/fleet-agent.mjs is missing: run npm run build first");
const STARTS = Number(process.env.BENCH_STARTS ?? 5);
const IDLE_SECS = Number(process.env.BENCH_IDLE_SECS ?? 60);
const DEPLOYMENTS = 10;
const PER_DEPLOYMENT = 5;
/** Each service's health check: `true` in the container, every HEALTH_INTERVAL_SECS. */
const HEALTH_INTERVAL_SECS = 10;
const HEALTH = true;
const report = new Report("footprint", "Footprint of the compiled agent");
const n = DEPLOYMENTS * PER_DEPLOYMENT;
const env = await startPodmanEnv({ dir: PODMAN_DIR, stopService: false });
const nc = await connectBench(SHARED_NATS);
const { desired, states } = await openKv(nc);
const hbKv = await new Kvm(nc).open(BUCKET_DEVICE_HEARTBEAT);
const run = randomBytes(3).toString("hex");
const devices: string[] = [];
const procs: ChildProcess[] = [];
const dirs: string[] = [];
const probeDir = mkdtempSync(join(tmpdir(), "bench-fp-probe-"));
dirs.push(probeDir);

function startAgentProcess(device: string, opts: { probe?: boolean } = {}): ChildProcess {
  const stateDir = mkdtempSync(join(tmpdir(), `bench-fp-${device}-`));
  dirs.push(stateDir);
  // The probe (a SIGUSR2 handler) and --expose-gc, for the memory profile only.
  const pre = opts.probe ? ["--expose-gc", "--import", join(BENCH_DIR, "footprint.probe.mjs")] : [];
  const p = spawn(process.execPath, [...pre, ...(process.env.FP_NODE_ARGS ? process.env.FP_NODE_ARGS.split(" ") : []), MAIN, "--device-id", device, "--nats", SHARED_NATS, "--state-dir", stateDir, "--log-level", "warn"], {
    env: { ...process.env, CONTAINER_HOST: env.containerHost, ...(opts.probe ? { FLEET_BENCH_PROBE_DIR: probeDir } : {}) },
    stdio: ["ignore", "ignore", "inherit"],
  });
  procs.push(p);
  return p;
}
async function stopProcess(p: ChildProcess) {
  if (p.exitCode !== null) return;
  const exited = new Promise<void>((r) => p.once("exit", () => r()));
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(t);
}
async function firstHeartbeat(device: string, start: () => void): Promise<number> {
  const it = await hbKv.watch({ key: device });
  const t0 = performance.now();
  start();
  for await (const e of it) {
    if (e.operation === "PUT") {
      const ms = performance.now() - t0;
      it.stop();
      return ms;
    }
  }
  throw new Error("heartbeat watch ended");
}
async function rssOfBare(script: string): Promise<number> {
  const p = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: "ignore", cwd: REPO });
  await sleep(3000);
  const rss = procRssMb(p.pid!);
  p.kill("SIGKILL");
  return rss;
}

interface ProbeStats {
  memoryUsage: NodeJS.MemoryUsage;
  heapSpaces: Array<{ name: string; size: number; used: number }>;
}
/** Asks the probed agent for its memory figures (and a heap snapshot); waits for the answer. */
async function probe(p: ChildProcess, what: "stats" | "snapshot", name: string): Promise<{ before: ProbeStats; afterGc: ProbeStats }> {
  const out = join(probeDir, `${name}.json`);
  writeFileSync(join(probeDir, "cmd"), `${what} ${name}`);
  p.kill("SIGUSR2");
  for (let i = 0; i < 600 && !existsSync(out); i++) await sleep(100);
  return JSON.parse(readFileSync(out, "utf8")) as { before: ProbeStats; afterGc: ProbeStats };
}
const MB = 2 ** 20;
const space = (s: ProbeStats, name: string) => s.heapSpaces.find((x) => x.name === name)?.size ?? 0;

function score(): string {
  const services: Array<ServiceDef & { health?: { cmd: string[]; interval_secs: number } }> = Array.from({ length: PER_DEPLOYMENT }, (_, k) => ({
    name: `s${k}`,
    image: TEST_IMAGES.v1,
    ...(HEALTH ? { health: { cmd: ["CMD", "true"], interval_secs: HEALTH_INTERVAL_SECS } } : {}),
  }));
  return JSON.stringify({ type: "PodmanV0", data: { services, lifecycle: { grace_period_secs: 5 } } });
}

try {
  // Start-up and idle RSS with 0 deployments, over several cold starts.
  const startMs: number[] = [];
  const rss0: number[] = [];
  for (let i = 0; i < STARTS; i++) {
    const device = `fp-${run}-${i}`;
    devices.push(device);
    let p: ChildProcess | null = null;
    startMs.push(await firstHeartbeat(device, () => (p = startAgentProcess(device))));
    await sleep(3000);
    rss0.push(procRssMb(p!.pid!));
    await stopProcess(p!);
  }
  const st = report.samples("footprint.start", "start-up: spawn → first heartbeat in KV", "ms", startMs);
  const r0 = report.samples("footprint.rss0", "RSS idle, 0 deployments (3 s after the first heartbeat)", "MB", rss0);

  // One device brought to 10 deployments of 5 services, 2 deployments at a time; its memory at each
  // stage. Beside it, an agent with no deployments for the same minute.
  const device = `fp50-${run}`;
  devices.push(device);
  const idle0Device = `fp0-${run}`;
  devices.push(idle0Device);
  const p50 = startAgentProcess(device, { probe: true });
  const p0 = startAgentProcess(idle0Device, { probe: true });
  const waiter = await StateWaiter.start(states, `${device}.>`);
  await sleep(3000);
  // Heap snapshots inflate a process's RSS for good: only once the measuring is done (below).
  const stages: Array<{ containers: number; rss: number; s: ProbeStats }> = [{ containers: 0, rss: procRssMb(p50.pid!), s: (await probe(p50, "stats", "s0")).before }];
  for (let d = 0; d < DEPLOYMENTS; d += 2) {
    const waits: Promise<unknown>[] = [];
    for (const k of [d, d + 1]) {
      const key = `${device}.${device}-d${k}`;
      const rev = await desired.put(key, score());
      waits.push(waiter.wait(key, (s) => s.desired_revision === rev && s.phase !== "Pending", 300_000));
    }
    await Promise.all(waits);
    await sleep(3000);
    stages.push({ containers: (d + 2) * PER_DEPLOYMENT, rss: procRssMb(p50.pid!), s: (await probe(p50, "stats", `s${(d + 2) * PER_DEPLOYMENT}`)).before });
  }
  waiter.stop();
  const notRunning = [...waiter.latest.values()].filter((s) => s.phase !== "Running");
  if (notRunning.length) throw new Error(`deployments not Running: ${notRunning.map((s) => `${s.deployment} ${s.phase} ${s.last_error}`).join("; ")}`);

  // A minute idle: RSS every second, CPU of both agents and of the Podman service; the health
  // checks the agent runs meanwhile, counted by Podman's health_status events (one per check run).
  await sleep(3000);
  const rss50: number[] = [];
  const rss0idle: number[] = [];
  const servicePid = Number(readFileSync(join(PODMAN_DIR, "service.pid"), "utf8").trim());
  const checks = await env.client.events({ type: ["container"], label: [`${LABEL_DEVICE}=${device}`], event: ["health_status"] });
  let checksRun = 0;
  const counting = (async () => {
    for await (const _ of checks) checksRun++;
  })();
  const cpu50a = procCpuMs(p50.pid!);
  const cpu0a = procCpuMs(p0.pid!);
  const podA = procCpuWithChildrenMs(servicePid);
  const t0 = performance.now();
  for (let s = 0; s < IDLE_SECS; s++) {
    await sleep(1000);
    rss50.push(procRssMb(p50.pid!));
    rss0idle.push(procRssMb(p0.pid!));
  }
  const wall = performance.now() - t0;
  const cpu50 = procCpuMs(p50.pid!) - cpu50a;
  const cpu0 = procCpuMs(p0.pid!) - cpu0a;
  const podCpu = procCpuWithChildrenMs(servicePid) - podA;
  const checksInWindow = checksRun;
  checks.close();
  await counting;
  const r50 = report.samples("footprint.rss50", `RSS idle, ${DEPLOYMENTS} deployments of ${PER_DEPLOYMENT} services: ${DEPLOYMENTS * PER_DEPLOYMENT} containers (sampled every 1 s for ${IDLE_SECS} s)`, "MB", rss50);
  const r0m = report.samples("footprint.rss0.minute", `RSS idle, 0 deployments (sampled every 1 s for ${IDLE_SECS} s)`, "MB", rss0idle);
  report.value("footprint.cpu50", `CPU while idle over ${fmt(wall / 1000)} s, ${DEPLOYMENTS * PER_DEPLOYMENT} containers (2 ticks of 30 s)`, "ms", cpu50, `${fmt((100 * cpu50) / wall)} % of one core`);
  report.value("footprint.cpu0", `CPU while idle over ${fmt(wall / 1000)} s, 0 deployments`, "ms", cpu0, `${fmt((100 * cpu0) / wall)} % of one core`);
  if (HEALTH) {
    report.value("health.checks", `health checks run over the ${fmt(wall / 1000)} s (${n} services, every ${HEALTH_INTERVAL_SECS} s)`, "checks", checksInWindow);
    report.value("health.cpuAgent", "agent CPU per health check (the 50-container agent's CPU less the idle agent's, over the checks)", "ms", (cpu50 - cpu0) / Math.max(1, checksInWindow));
    report.value("health.cpuPodman", "Podman service CPU per health check (with the processes it reaped)", "ms", podCpu / Math.max(1, checksInWindow));
  }

  // What grew from 0 to 50 containers: heap snapshots (after a full GC) of the agent with none and
  // of the one with 50, both after the same minute.
  const snap50 = await probe(p50, "snapshot", "c50");
  await probe(p0, "snapshot", "c0");
  stages.push({ containers: DEPLOYMENTS * PER_DEPLOYMENT, rss: procRssMb(p50.pid!), s: snap50.afterGc });
  const h0 = summariseHeap(join(probeDir, "c0.heapsnapshot"));
  const h50 = summariseHeap(join(probeDir, "c50.heapsnapshot"));
  await stopProcess(p50);
  await stopProcess(p0);
  const xs = stages.slice(0, -1).map((s) => s.containers);
  const ys = stages.slice(0, -1).map((s) => s.rss);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0) / xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  report.value("footprint.rssPerContainer", "RSS growth per container (least squares over the stages)", "KB", slope * 1024);
  report.table(
    [
      "**Memory of the 50-container agent as its deployments come up** (3 s after each pair of deployments is Running: RSS, process.memoryUsage and V8's heap spaces as they are; the last row after the idle minute and a full GC)",
      "",
      "| containers | RSS MB | V8 heap total MB | heap used MB | new space MB | old space MB | code MB | external (Buffers, incl. array buffers) MB | outside both (native: sockets, libuv, malloc) MB |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...stages.map(
        (st, i) =>
          `| ${st.containers}${i === stages.length - 1 ? " (after the minute, after a full GC)" : ""} | ${fmt(st.rss)} | ${fmt(st.s.memoryUsage.heapTotal / MB)} | ${fmt(st.s.memoryUsage.heapUsed / MB)} | ${fmt(space(st.s, "new_space") / MB)} | ${fmt(space(st.s, "old_space") / MB)} | ${fmt((space(st.s, "code_space") + space(st.s, "code_large_object_space")) / MB)} | ${fmt(st.s.memoryUsage.external / MB)} | ${fmt(st.rss - (st.s.memoryUsage.heapTotal + st.s.memoryUsage.external) / MB)} |`,
      ),
    ].join("\n"),
  );
  const growth = heapGrowth(h0, h50, 15);
  report.table(
    [
      `**What the live heap holds for ${n} containers** (heap snapshots after a full GC, the agent with no deployments vs the one with ${n} containers, both after the idle minute: ${fmt(totalBytes(h0) / MB)} MB → ${fmt(totalBytes(h50) / MB)} MB), largest first`,
      "",
      "| kind (constructor or closure) | + objects | + KB | KB per container |",
      "|---|---:|---:|---:|",
      ...growth.map((g) => `| ${g.key.replace(/\|/g, "\\|")} | ${g.count} | ${fmt(g.bytes / 1024)} | ${fmt(g.bytes / 1024 / n)} |`),
    ].join("\n"),
  );

  // Scale: what node and the modules cost before the agent does anything.
  const bare = await rssOfBare("setInterval(() => {}, 1e6)");
  const mods = await rssOfBare("await import('./dist/agent/agent.js'); await import('./dist/runtime/podman/podman.runtime.js'); setInterval(() => {}, 1e6)");
  report.value("footprint.rss.node", "RSS of a bare node process (for scale)", "MB", bare);
  report.value("footprint.rss.modules", "RSS of node with the agent's modules imported, nothing started (for scale)", "MB", mods);

  const idle = Math.max(r0.median, r0m.median);
  report.target("rss", "idle RSS < 60 MB", `${fmt(r0.median)} MB 3 s after start, ${fmt(r0m.median)} MB over a minute (0 deployments); node alone ${fmt(bare)} MB`, idle < 60, ["footprint.rss0", "footprint.rss0.minute"]);
  report.target("rss50", `RSS with ${n} containers up < 64 MB`, `${fmt(r50.median)} MB (max ${fmt(r50.max)}); ${fmt(slope * 1024)} KB per container`, r50.median < 64, ["footprint.rss50"]);
  report.target("startup", "first heartbeat < 1 s after start", `${fmt(st.median)} ms median (max ${fmt(st.max)})`, st.median < 1000, ["footprint.start"]);
  report.note(
    `Agents started as \`node dist/fleet-agent.mjs --device-id … --nats ${SHARED_NATS} --state-dir <tmp> --log-level warn\` with CONTAINER_HOST on the bench's Podman service (tick 30 s). ` +
      `The ${n}-container agent and the idle one beside it also load bench/footprint.probe.mjs and run with --expose-gc (a signal handler, idle until asked; their heap snapshots and GCs come after the sampled minute). ` +
      `Spread of RSS0 over ${STARTS} cold starts: ${fmt(stats(rss0).min)}–${fmt(stats(rss0).max)} MB.`,
  );
} finally {
  for (const p of procs) await stopProcess(p).catch(() => undefined);
  const client = new LibpodClient({ containerHost: env.containerHost });
  for (const d of devices) {
    await removeDeviceContainers(client, d).catch(() => undefined);
    await cleanupDevice(nc, d);
  }
  client.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await nc.close();
}
console.log(`wrote ${report.write()}`);
process.exit(0);
