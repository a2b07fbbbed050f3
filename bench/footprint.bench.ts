// (3) Footprint of the shipped agent (node dist/fleet-agent.mjs, as shipped: Podman runtime, settle
// 1 s, tick 30 s): start-up time from spawn to the first heartbeat in KV, RSS idle with 0 and with
// 10 deployments, CPU while idle over a minute (/proc/<pid>/stat). For scale: a bare node process,
// and node with the agent's modules imported but nothing started.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { BUCKET_DEVICE_HEARTBEAT } from "../contracts/wire-names.js";
import { LibpodClient } from "../runtime/podman/libpod.client.js";
import { startPodmanEnv, TEST_IMAGES } from "../test/support/podman.env.js";
import { fmt, PODMAN_DIR, procCpuMs, procRssMb, REPO, Report, SHARED_NATS, sleep, stats } from "./lib.js";
import { cleanupDevice, connectBench, openKv, removeDeviceContainers, scoreJson, StateWaiter } from "./support.js";

const MAIN = join(REPO, "dist/fleet-agent.mjs");
if (!existsSync(MAIN)) throw new Error("dist/fleet-agent.mjs is missing: run npm run build first");
const STARTS = Number(process.env.BENCH_STARTS ?? 5);
const IDLE_SECS = Number(process.env.BENCH_IDLE_SECS ?? 60);
const report = new Report("footprint", "Footprint of the compiled agent");
const env = await startPodmanEnv({ dir: PODMAN_DIR, stopService: false });
const nc = await connectBench(SHARED_NATS);
const { desired, states } = await openKv(nc);
const hbKv = await new Kvm(nc).open(BUCKET_DEVICE_HEARTBEAT);
const run = randomBytes(3).toString("hex");
const devices: string[] = [];
const procs: ChildProcess[] = [];
const dirs: string[] = [];

function startAgentProcess(device: string): ChildProcess {
  const stateDir = mkdtempSync(join(tmpdir(), `bench-fp-${device}-`));
  dirs.push(stateDir);
  const p = spawn(process.execPath, [MAIN, "--device-id", device, "--nats", SHARED_NATS, "--state-dir", stateDir, "--log-level", "warn"], {
    env: { ...process.env, CONTAINER_HOST: env.containerHost },
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

  // 10 deployments of one service (real containers), then a minute idle: RSS every second, CPU.
  const device = `fp10-${run}`;
  devices.push(device);
  const idle0Device = `fp0-${run}`;
  devices.push(idle0Device);
  const p10 = startAgentProcess(device);
  const p0 = startAgentProcess(idle0Device);
  const waiter = await StateWaiter.start(states, `${device}.>`);
  await sleep(1500);
  const waits: Promise<unknown>[] = [];
  for (let d = 0; d < 10; d++) {
    const key = `${device}.${device}-d${d}`;
    const rev = await desired.put(key, scoreJson([{ name: "web", image: TEST_IMAGES.v1 }], 5));
    waits.push(waiter.wait(key, (s) => s.desired_revision === rev && s.phase !== "Pending", 180_000));
  }
  await Promise.all(waits);
  waiter.stop();
  await sleep(3000);
  const rss10: number[] = [];
  const rss0idle: number[] = [];
  const cpu10a = procCpuMs(p10.pid!);
  const cpu0a = procCpuMs(p0.pid!);
  const t0 = performance.now();
  for (let s = 0; s < IDLE_SECS; s++) {
    await sleep(1000);
    rss10.push(procRssMb(p10.pid!));
    rss0idle.push(procRssMb(p0.pid!));
  }
  const wall = performance.now() - t0;
  const cpu10 = procCpuMs(p10.pid!) - cpu10a;
  const cpu0 = procCpuMs(p0.pid!) - cpu0a;
  const r10 = report.samples("footprint.rss10", `RSS idle, 10 deployments (sampled every 1 s for ${IDLE_SECS} s)`, "MB", rss10);
  report.samples("footprint.rss0.minute", `RSS idle, 0 deployments (sampled every 1 s for ${IDLE_SECS} s)`, "MB", rss0idle);
  report.value("footprint.cpu10", `CPU while idle over ${fmt(wall / 1000)} s, 10 deployments (2 ticks of 30 s)`, "ms", cpu10, `${fmt((100 * cpu10) / wall)} % of one core`);
  report.value("footprint.cpu0", `CPU while idle over ${fmt(wall / 1000)} s, 0 deployments`, "ms", cpu0, `${fmt((100 * cpu0) / wall)} % of one core`);
  await stopProcess(p10);
  await stopProcess(p0);

  // Scale: what node and the modules cost before the agent does anything.
  const bare = await rssOfBare("setInterval(() => {}, 1e6)");
  const mods = await rssOfBare("await import('./dist/agent/agent.js'); await import('./dist/runtime/podman/podman.runtime.js'); setInterval(() => {}, 1e6)");
  report.value("footprint.rss.node", "RSS of a bare node process (for scale)", "MB", bare);
  report.value("footprint.rss.modules", "RSS of node with the agent's modules imported, nothing started", "MB", mods);

  const maxRss = Math.max(r0.median, r10.median);
  if (maxRss >= 60) {
    // Where the memory goes: RSS with each dependency imported alone (a bare node is the baseline).
    const rows: string[] = [];
    for (const [name, imp] of [
      ["xstate", "xstate"],
      ["@nats-io/transport-node + jetstream + kv", "@nats-io/transport-node', '@nats-io/jetstream', '@nats-io/kv"],
      ["io-ts + fp-ts", "io-ts', 'fp-ts"],
      ["pino", "pino"],
    ] as const) {
      const mods = imp.split("', '");
      const rss = await rssOfBare(`for (const m of ${JSON.stringify(mods)}) await import(m); setInterval(() => {}, 1e6)`);
      rows.push(`| ${name} | ${fmt(rss)} | +${fmt(rss - bare)} |`);
    }
    rows.push(`| all of the agent's modules (dist/agent/agent.js, podman runtime) | ${fmt(mods)} | +${fmt(mods - bare)} |`);
    rows.push(`| the running agent, 0 deployments | ${fmt(r0.median)} | +${fmt(r0.median - bare)} |`);
    report.table(["**Where the RSS goes: node with one dependency imported (3 s after start)**", "", "| imported | RSS MB | over bare node |", "|---|---:|---:|", `| nothing (bare node) | ${fmt(bare)} | 0 |`, ...rows].join("\n"));
  }
  report.target("rss", "idle RSS < 60 MB", `${fmt(r0.median)} MB (0 deployments), ${fmt(r10.median)} MB (10 deployments); node alone ${fmt(bare)} MB, modules loaded ${fmt(mods)} MB`, maxRss < 60, ["footprint.rss0", "footprint.rss10"]);
  report.target("startup", "first heartbeat < 1 s after start", `${fmt(st.median)} ms median (max ${fmt(st.max)})`, st.median < 1000, ["footprint.start"]);
  report.note(`Agent started as \`node dist/fleet-agent.mjs --device-id … --nats ${SHARED_NATS} --state-dir <tmp> --log-level warn\` with CONTAINER_HOST on the bench's Podman service (tick 30 s, settle 1 s). Median idle CPU: see above; spread of RSS0 over ${STARTS} cold starts: ${fmt(stats(rss0).min)}–${fmt(stats(rss0).max)} MB.`);
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
