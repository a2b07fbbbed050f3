// (2) Tick cost for 1, 10 and 100 services (a score holds at most 64 services: 100 are two
// deployments of 50), on FakeRuntime and on real Podman: libpod requests per tick, CPU per tick
// (process.cpuUsage around the tick), wall time per tick. Also 100 deployments of one service on
// FakeRuntime, the case where the tick sends TICK to the most machines.
import { randomBytes } from "node:crypto";
import { LibpodClient } from "../runtime/podman/libpod.client.js";
import { FakeRuntime } from "../runtime/fake.runtime.js";
import type { ContainerRuntime } from "../runtime/container-runtime.js";
import { startPodmanEnv, TEST_IMAGES, type PodmanTestEnv } from "../test/support/podman.env.js";
import { benchArgs, fmt, PODMAN_DIR, Report, SHARED_NATS, selfCpuMs, stats } from "./lib.js";
import { profileDuring, summariseProfile, writeProfileSummary } from "./profile.js";
import { cleanupDevice, connectBench, openKv, removeDeviceContainers, scoreJson, startBenchAgent, StateWaiter } from "./support.js";

const args = benchArgs();
const QUICK = args.has("--quick"); // profile re-run: FakeRuntime and Podman at 100 services only
const PROFILE = args.has("--profile"); // CPU profile of the measured ticks → out/tick-<case>.profile.md
const TICKS = Number(process.env.BENCH_TICKS ?? 40);
const report = new Report("tick", "Tick cost");
const run = randomBytes(3).toString("hex");
const nc = await connectBench(SHARED_NATS);
const { desired, states } = await openKv(nc);
let env: PodmanTestEnv | null = null;
const devices: string[] = [];

interface Case {
  rt: "fake" | "podman";
  services: number;
  /** services per deployment */
  per: number;
}
const cases: Case[] = QUICK
  ? [
      { rt: "fake", services: 100, per: 50 },
      { rt: "fake", services: 100, per: 1 },
      { rt: "podman", services: 100, per: 50 },
    ]
  : [
      { rt: "fake", services: 1, per: 1 },
      { rt: "fake", services: 10, per: 10 },
      { rt: "fake", services: 100, per: 50 },
      { rt: "fake", services: 100, per: 1 },
      { rt: "podman", services: 1, per: 1 },
      { rt: "podman", services: 10, per: 10 },
      { rt: "podman", services: 100, per: 50 },
    ];
console.log(`tick cost: ${TICKS} ticks per case${QUICK ? " [quick/profile]" : ""}`);

const rows: string[] = [];
const cpuAt100: Record<string, number> = {};
const reqAt100: Record<string, number> = {};
try {
  for (const c of cases) {
    const device = `tick-${c.rt}-${c.services}x${c.per}-${run}`;
    devices.push(device);
    let runtime: ContainerRuntime;
    let requests: () => number;
    let client: LibpodClient | null = null;
    if (c.rt === "fake") {
      const fake = new FakeRuntime({ device });
      runtime = fake;
      requests = () => fake.count("list") + fake.mutations().length + fake.count("status") + fake.count("ensureImage");
    } else {
      env ??= await startPodmanEnv({ dir: PODMAN_DIR, stopService: false });
      client = new LibpodClient({ containerHost: env.containerHost });
      runtime = env.runtime(device, { client });
      const cl = client;
      requests = () => cl.requestCount;
    }
    const a = await startBenchAgent(device, runtime, SHARED_NATS);
    const waiter = await StateWaiter.start(states, `${device}.>`);
    const deployments = Math.ceil(c.services / c.per);
    const t0 = performance.now();
    const waits: Promise<unknown>[] = [];
    for (let d = 0; d < deployments; d++) {
      const dep = `${device}-d${d}`;
      const n = Math.min(c.per, c.services - d * c.per);
      const services = Array.from({ length: n }, (_, i) => ({ name: `s${i}`, image: c.rt === "fake" ? "img/app:1" : TEST_IMAGES.v1 }));
      const rev = await desired.put(`${device}.${dep}`, scoreJson(services, 5));
      waits.push(waiter.wait(`${device}.${dep}`, (s) => s.desired_revision === rev && s.phase !== "Pending", 300_000).then(({ s }) => {
        if (s.phase !== "Running") throw new Error(`${dep}: ${s.phase} ${s.last_error}`);
      }));
    }
    await Promise.all(waits);
    waiter.stop();
    const setupMs = performance.now() - t0;
    await a.agent.publisher.idle(30_000).catch(() => undefined);
    await a.agent.reporter.flush(30_000).catch(() => undefined);

    const sup = a.agent.supervisor;
    for (let i = 0; i < 5; i++) await sup.tick(); // warm-up
    const cpu: number[] = [];
    const wall: number[] = [];
    const req0 = requests();
    for (let i = 0; i < TICKS; i++) {
      const c0 = selfCpuMs();
      const w0 = performance.now();
      await sup.tick();
      wall.push(performance.now() - w0);
      cpu.push(selfCpuMs() - c0);
    }
    const perTick = (requests() - req0) / TICKS;
    const missed = c.services === 100 && (perTick !== 1 || stats(cpu).median >= 5);
    if (PROFILE || missed || (c.services === 100 && c.per === 1)) {
      const n = c.rt === "podman" ? 60 : 400;
      const { profile, file } = await profileDuring(`tick-${c.rt}.${c.services}x${c.per}`, async () => {
        for (let i = 0; i < n; i++) await sup.tick();
      });
      writeProfileSummary(`tick.${c.rt}.${c.services}x${c.per}`, `CPU profile of ${n} ticks, ${c.rt}, ${c.services} services in ${deployments} deployment(s) (${file.slice(file.indexOf("bench/"))}).\n\n` + summariseProfile(profile));
      console.log(`  profiled ${n} ticks → ${file}`);
    }
    // The agent's whole tick: supervisor tick, then the heartbeat, written to KV before the next.
    const full: number[] = [];
    for (let i = 0; i < Math.min(TICKS, 20); i++) {
      const c0 = selfCpuMs();
      await a.agent.tick();
      await a.agent.reporter.flush(10_000);
      full.push(selfCpuMs() - c0);
    }
    const label = `${c.rt}, ${c.services} service${c.services > 1 ? "s" : ""}${c.per === 1 && c.services > 1 ? ` (${c.services} deployments of 1)` : deployments > 1 ? ` (${deployments} deployments of ${c.per})` : ""}`;
    const key = `${c.rt}.${c.services}x${c.per}`;
    const sc = report.samples(`tick.cpu.${key}`, `CPU per tick, ${label}`, "ms", cpu);
    const sw = report.samples(`tick.wall.${key}`, `wall per tick, ${label}`, "ms", wall);
    const sf = report.samples(`tick.full.${key}`, `CPU per tick incl. heartbeat KV write, ${label}`, "ms", full);
    report.value(`tick.requests.${key}`, `runtime requests per tick, ${label}`, "req", perTick);
    rows.push(`| ${label} | ${fmt(perTick)} | ${fmt(sc.median)} (${fmt(sc.p25)}–${fmt(sc.p75)}, max ${fmt(sc.max)}) | ${fmt(sw.median)} (${fmt(sw.min)}–${fmt(sw.max)}) | ${fmt(sf.median)} (${fmt(sf.p25)}–${fmt(sf.p75)}) | ${fmt(setupMs)} |`);
    if (c.services === 100 && c.per === 50) {
      cpuAt100[c.rt] = sc.median;
      reqAt100[c.rt] = perTick;
    }
    const c0 = performance.now();
    await a.close();
    const c1 = performance.now();
    if (client) {
      await removeDeviceContainers(client, device);
      client.close();
    }
    console.log(`  (${label}: setup ${fmt(setupMs)} ms, agent stop ${fmt(c1 - c0)} ms, container clean-up ${fmt(performance.now() - c1)} ms)`);
  }
  report.table(
    [
      "| case | requests per tick | CPU per tick, ms: median (p25–p75, max) | wall per tick, ms: median (min–max) | CPU incl. heartbeat write, ms | setup (deploy) ms |",
      "|---|---:|---:|---:|---:|---:|",
      ...rows,
    ].join("\n"),
  );
  for (const rt of ["fake", "podman"]) {
    if (cpuAt100[rt] === undefined) continue;
    const ok = reqAt100[rt] === 1 && cpuAt100[rt]! < 5;
    report.target(`tick-${rt}`, `1 request and < 5 ms CPU per tick at 100 services (${rt})`, `${fmt(reqAt100[rt]!)} request(s), ${fmt(cpuAt100[rt]!)} ms CPU (median)`, ok, [`tick.cpu.${rt}.100x50`]);
  }
  const g = (rt: string, n: string) => stats(report.r.figures.find((f) => f.key === `tick.cpu.${rt}.${n}`)?.stats ? [report.r.figures.find((f) => f.key === `tick.cpu.${rt}.${n}`)!.stats!.median] : []).median;
  if (!QUICK) {
    report.note(
      `Growth of CPU per tick from 1 → 10 → 100 services: FakeRuntime ${fmt(g("fake", "1x1"))} → ${fmt(g("fake", "10x10"))} → ${fmt(g("fake", "100x50"))} ms; ` +
        `Podman ${fmt(g("podman", "1x1"))} → ${fmt(g("podman", "10x10"))} → ${fmt(g("podman", "100x50"))} ms. process.cpuUsage has microsecond resolution but counts every thread of the process (GC, libuv).`,
    );
  }
} finally {
  for (const d of devices) await cleanupDevice(nc, d);
  if (env) await env.cleanup();
  await nc.close();
}
console.log(`wrote ${report.write()}`);
process.exit(0);
