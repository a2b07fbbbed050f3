// (5) Fleet simulation: N agents on FakeRuntime in a few worker processes (each agent with its own
// NATS connection and device id) against one private nats-server (JetStream, monitoring on). An
// initial deploy to all N, then a rollout of a new score to all N: time until every device-state
// says Running with the new hash; NATS messages per agent per tick over an idle window (/varz).
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { freemem, tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { ensureFleetResources } from "../fleet/resources.js";
import type { DeploymentState } from "../contracts/deployment-state.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE } from "../contracts/wire-names.js";
import { BENCH_DIR, fmt, OUT_DIR, procCpuMs, procRssMb, Report, sleep, stats } from "./lib.js";
import { PrivateNats } from "./private-nats.js";
import { summariseDir, writeProfileSummary } from "./profile.js";
import { connectBench, scoreHashOf, scoreJson } from "./support.js";

const SIZES = (process.env.BENCH_FLEET_SIZES ?? "100,1000,5000").split(",").map(Number);
const WORKERS = Number(process.env.BENCH_FLEET_WORKERS ?? 4);
const TICK_SECS = 5;
// BENCH_FLEET_TAG names a separate report (bench/out/fleet<tag>.json), e.g. for a lone N = 5000 run.
const report = new Report(`fleet${process.env.BENCH_FLEET_TAG ?? ""}`, "Fleet simulation on one NATS server");
const stateRoot = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "bench-fleet-"));
const DEPLOYMENT = "app";
const scoreV1 = scoreJson([{ name: "web", image: "img/web:1" }, { name: "db", image: "img/db:1" }], 5);
const scoreV2 = scoreJson([{ name: "web", image: "img/web:2" }, { name: "db", image: "img/db:1" }], 5);
const [h1, h2] = [scoreHashOf(scoreV1), scoreHashOf(scoreV2)];

interface Outcome {
  n: number;
  startMs: number;
  initialMs: number;
  rolloutMs: number;
  putsMs: number;
  perDevice: number[];
  inPerTick: number;
  outPerTick: number;
  natsCpuMs: number;
  natsCpuIdleMs: number;
  workerRss: number[];
  /** What the nats-server holds with no agent connected (the operator and its watch only) and with all N. */
  server: { before: ServerFigures; idle: ServerFigures; afterRollout: ServerFigures };
  idleWindowMs: number;
}

interface ServerFigures {
  rssMb: number;
  connections: number;
  subscriptions: number;
  consumers: number;
  storageBytes: number;
}

async function serverFigures(nats: PrivateNats): Promise<ServerFigures> {
  const [v, j] = await Promise.all([nats.varz(), nats.jsz()]);
  return { rssMb: procRssMb(nats.pid), connections: v.connections, subscriptions: v.subscriptions, consumers: j.consumers, storageBytes: j.storage };
}

/** `until`: a time (epoch ms) the run must not outlast; past it, it stops with an error and cleans up. */
async function simulate(n: number, profileDir?: string, until = Infinity): Promise<Outcome> {
  const inTime = (what: string) => {
    if (Date.now() > until) throw new Error(`out of the bench's time budget (${what})`);
  };
  const nats = await PrivateNats.start({ monitor: true });
  const prefix = `sim${n}-${randomBytes(2).toString("hex")}`;
  const workers: ChildProcess[] = [];
  try {
    const nc = await connectBench(nats.url, "fleet-bench-operator");
    await ensureFleetResources(nc);
    // The operator's puts wait up to 30 s for their acks: at the larger N the one nats-server is busy.
    const kvm = new Kvm(jetstream(nc, { timeout: 30_000 }));
    const desired = await kvm.open(BUCKET_DESIRED_STATE);
    const states = await kvm.open(BUCKET_DEVICE_STATE);
    const latest = new Map<string, DeploymentState>();
    type Waiter = { hash: string; need: number; seen: Set<string>; at: Map<string, number>; done: () => void };
    let waiting = null as Waiter | null;
    const watch = await states.watch({ key: ">" });
    void (async () => {
      for await (const e of watch) {
        if (e.operation !== "PUT") continue;
        const s = e.json<DeploymentState>();
        latest.set(s.device, s);
        const w = waiting as Waiter | null;
        if (w && s.phase === "Running" && s.score_hash === w.hash && !w.seen.has(s.device)) {
          w.seen.add(s.device);
          w.at.set(s.device, performance.now());
          if (w.seen.size >= w.need) w.done();
        }
      }
    })();

    await sleep(500);
    const before = await serverFigures(nats);
    // Workers, each with its share of the agents.
    const per = Math.ceil(n / WORKERS);
    const t0 = performance.now();
    const ready: Promise<void>[] = [];
    const rss: number[] = [];
    for (let w = 0; w < WORKERS && w * per < n; w++) {
      const count = Math.min(per, n - w * per);
      const execArgv = ["--import", "tsx", ...(profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [])];
      const child = fork(join(BENCH_DIR, "fleet.worker.ts"), [nats.url, prefix, String(w * per), String(count), String(TICK_SECS), stateRoot], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
      workers.push(child);
      ready.push(
        new Promise((resolve, reject) => {
          child.on("message", (m: { type: string; rssMb?: number }) => {
            if (m.type === "ready") resolve();
            if (m.type === "rss" && m.rssMb) rss.push(m.rssMb);
          });
          child.once("exit", (code) => reject(new Error(`worker exited with ${code}`)));
        }),
      );
    }
    if (until === Infinity) await Promise.all(ready);
    else {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("out of the bench's time budget (starting the agents)")), Math.max(0, until - Date.now()));
      });
      try {
        await Promise.race([Promise.all(ready), late]);
      } finally {
        clearTimeout(timer);
      }
    }
    const startMs = performance.now() - t0;
    const devices = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

    const putAll = async (score: string) => {
      for (let i = 0; i < devices.length; i += 250) {
        inTime("writing the desired states");
        await Promise.all(devices.slice(i, i + 250).map((d) => desired.put(`${d}.${DEPLOYMENT}`, score)));
      }
    };
    const converge = async (score: string, hash: string) => {
      const seen = new Set<string>();
      const at = new Map<string, number>();
      for (const [d, s] of latest) if (s.phase === "Running" && s.score_hash === hash) seen.add(d);
      let done!: () => void;
      const all = new Promise<void>((r) => (done = r));
      waiting = { hash, need: n, seen, at, done };
      const c0 = procCpuMs(nats.pid);
      const t1 = performance.now();
      await putAll(score);
      const putsMs = performance.now() - t1;
      const timeout = setTimeout(() => done(), Math.max(0, Math.min(180_000, until - Date.now())));
      await all;
      clearTimeout(timeout);
      const ms = performance.now() - t1;
      waiting = null;
      if (seen.size < n) throw new Error(`only ${seen.size} of ${n} devices converged to ${hash} within ${fmt(ms / 1000)} s`);
      return { ms, putsMs, perDevice: [...at.values()].map((x) => x - t1), natsCpuMs: procCpuMs(nats.pid) - c0 };
    };

    const initial = await converge(scoreV1, h1);
    // Idle window: messages per agent per tick (heartbeat put + its ack, watch consumers' idle heartbeats).
    await sleep(2000);
    const idle = await serverFigures(nats);
    const v0 = await nats.varz();
    const ci = procCpuMs(nats.pid);
    const windowMs = 2 * TICK_SECS * 1000;
    await sleep(windowMs);
    const v1 = await nats.varz();
    const natsCpuIdleMs = procCpuMs(nats.pid) - ci;
    const ticks = windowMs / 1000 / TICK_SECS;
    const rollout = await converge(scoreV2, h2);
    const afterRollout = await serverFigures(nats);

    for (const w of workers) w.send({ type: "stop" });
    await Promise.all(workers.map((w) => new Promise<void>((r) => (w.exitCode !== null ? r() : w.once("exit", () => r())))));
    watch.stop();
    await nc.close();
    return {
      n,
      startMs,
      initialMs: initial.ms,
      rolloutMs: rollout.ms,
      putsMs: rollout.putsMs,
      perDevice: rollout.perDevice,
      inPerTick: (v1.in_msgs - v0.in_msgs) / n / ticks,
      outPerTick: (v1.out_msgs - v0.out_msgs) / n / ticks,
      natsCpuMs: rollout.natsCpuMs,
      natsCpuIdleMs,
      workerRss: rss,
      server: { before, idle, afterRollout },
      idleWindowMs: windowMs,
    };
  } finally {
    for (const w of workers) if (w.exitCode === null) w.kill("SIGKILL");
    await nats.destroy();
  }
}

const outcomes: Outcome[] = [];
try {
  for (const n of SIZES) {
    const prev = outcomes.at(-1);
    // 5,000 only if it fits: the previous size's whole run scaled up must stay within ~4 minutes,
    // and ~3 MB per agent must be free.
    const deadline = Number(process.env.BENCH_DEADLINE ?? Infinity);
    const projected = prev ? (prev.startMs + prev.initialMs + prev.rolloutMs + 15_000) * (n / prev.n) : 0;
    if (n > 1000 && prev && (projected > 240_000 || Date.now() + projected + 30_000 > deadline || freemem() < n * 3e6)) {
      report.note(`N = ${n} skipped: from N = ${prev.n} it would take about ${fmt(projected / 1000)} s, more than the time left in the bench's 10-minute budget (or not enough free memory).`);
      console.log(`  N = ${n}: skipped (would not fit in the time budget)`);
      continue;
    }
    console.log(`fleet: N = ${n} agents in ${Math.min(WORKERS, n)} workers`);
    const tN = performance.now();
    let o: Outcome;
    try {
      // Beyond the target's N, the run must end in time for the report (the bench's 10 minutes).
      o = await simulate(n, undefined, n > 1000 ? deadline - 20_000 : Infinity);
    } catch (e) {
      // Beyond the target's N the run is best effort: say how far it got, keep the figures so far.
      if (n <= 1000) throw e;
      const why = `N = ${n} attempted and did not complete: ${(e as Error).message} after ${fmt((performance.now() - tN) / 1000)} s (one nats-server sharing 2 cores with ${WORKERS} worker processes).`;
      report.note(why);
      console.log(`  ${why}`);
      continue;
    }
    outcomes.push(o);
    report.value(`fleet.${n}.start`, `N=${n}: all agents online (start of ${n} agents)`, "ms", o.startMs);
    report.value(`fleet.${n}.initial`, `N=${n}: initial deploy, put → every device Running`, "ms", o.initialMs);
    report.value(`fleet.${n}.puts`, `N=${n}: rollout, writing the ${n} desired-state puts`, "ms", o.putsMs);
    report.samples(`fleet.${n}.perDevice`, `N=${n}: rollout, put start → each device Running v2`, "ms", o.perDevice);
    report.value(`fleet.${n}.rollout`, `N=${n}: rollout converged (every device Running v2)`, "ms", o.rolloutMs);
    report.value(`fleet.${n}.msgsIn`, `N=${n}: NATS messages in per agent per tick (idle)`, "msg", o.inPerTick);
    report.value(`fleet.${n}.msgsOut`, `N=${n}: NATS messages out per agent per tick (idle)`, "msg", o.outPerTick);
    report.value(`fleet.${n}.natsCpu`, `N=${n}: nats-server CPU during the rollout`, "ms", o.natsCpuMs);
    report.value(`fleet.${n}.natsCpuIdle`, `N=${n}: nats-server CPU over the ${2 * TICK_SECS} s idle window`, "ms", o.natsCpuIdleMs);
    if (o.workerRss.length) report.value(`fleet.${n}.rss`, `N=${n}: worker RSS per agent`, "MB", o.workerRss.reduce((a, b) => a + b, 0) / n);
  }
  const rows = outcomes.map((o) => {
    const s = stats(o.perDevice);
    return `| ${o.n} | ${fmt(o.startMs / 1000)} | ${fmt(o.initialMs / 1000)} | ${fmt(o.rolloutMs / 1000)} | ${fmt(s.median / 1000)} / ${fmt(s.p90 / 1000)} / ${fmt(s.max / 1000)} | ${fmt(o.rolloutMs / o.n)} | ${fmt(o.inPerTick)} / ${fmt(o.outPerTick)} | ${fmt(o.natsCpuMs / 1000)} |`;
  });
  report.table(
    [
      "| N | agents online s | initial deploy s | rollout converged s | per device s: median / p90 / max | ms per device | msgs per agent per tick in / out | nats-server CPU s in rollout |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...rows,
    ].join("\n"),
  );
  // What the nats-server spends per connected device: the difference between all N agents online
  // (after the initial deploy, idle) and the server with only the operator's connection, over N.
  const perDevice = outcomes
    .filter((o) => o.n >= 1000)
    .map((o) => {
      const { before, idle, afterRollout } = o.server;
      const pd = {
        n: o.n,
        rssKb: ((idle.rssMb - before.rssMb) * 1024) / o.n,
        rssAfterRolloutKb: ((afterRollout.rssMb - before.rssMb) * 1024) / o.n,
        connections: (idle.connections - before.connections) / o.n,
        subscriptions: (idle.subscriptions - before.subscriptions) / o.n,
        consumers: (idle.consumers - before.consumers) / o.n,
        storageBytes: (idle.storageBytes - before.storageBytes) / o.n,
        idleCpuUsPerSec: (o.natsCpuIdleMs * 1000) / (o.idleWindowMs / 1000) / o.n,
        rolloutCpuMs: o.natsCpuMs / o.n,
        baseRssMb: before.rssMb,
      };
      const k = `fleet.${o.n}.server`;
      report.value(`${k}.rss`, `N=${o.n}: nats-server RSS per connected device (idle, after the initial deploy)`, "KB", pd.rssKb);
      report.value(`${k}.rssRollout`, `N=${o.n}: nats-server RSS per device after the rollout`, "KB", pd.rssAfterRolloutKb);
      report.value(`${k}.consumers`, `N=${o.n}: JetStream consumers per device`, "consumers", pd.consumers);
      report.value(`${k}.subscriptions`, `N=${o.n}: subscriptions per device`, "subs", pd.subscriptions);
      report.value(`${k}.connections`, `N=${o.n}: connections per device`, "conns", pd.connections);
      report.value(`${k}.storage`, `N=${o.n}: JetStream storage per device (KV values, history, events)`, "bytes", pd.storageBytes);
      report.value(`${k}.idleCpu`, `N=${o.n}: nats-server CPU per device while idle`, "µs/s", pd.idleCpuUsPerSec);
      report.value(`${k}.rolloutCpu`, `N=${o.n}: nats-server CPU per device for a rollout`, "ms", pd.rolloutCpuMs);
      return pd;
    });
  if (perDevice.length) {
    const last = perDevice.at(-1)!;
    const P = 100_000;
    const proj = (x: number) => x * P;
    report.table(
      [
        "**What one nats-server spends per connected device** (all N agents online and idle, minus the server with the operator alone, over N), and the same projected linearly to 100,000 devices from the largest N",
        "",
        `| per device | ${perDevice.map((p) => `N = ${p.n}`).join(" | ")} | 100,000 devices (from N = ${last.n}) |`,
        `|---|${perDevice.map(() => "---:").join("|")}|---:|`,
        `| server RSS, KB (idle) | ${perDevice.map((p) => fmt(p.rssKb)).join(" | ")} | ${fmt(proj(last.rssKb) / 1024 / 1024)} GB |`,
        `| server RSS, KB (after a rollout) | ${perDevice.map((p) => fmt(p.rssAfterRolloutKb)).join(" | ")} | ${fmt(proj(last.rssAfterRolloutKb) / 1024 / 1024)} GB |`,
        `| JetStream consumers | ${perDevice.map((p) => fmt(p.consumers)).join(" | ")} | ${fmt(proj(last.consumers))} |`,
        `| subscriptions | ${perDevice.map((p) => fmt(p.subscriptions)).join(" | ")} | ${fmt(proj(last.subscriptions))} |`,
        `| connections | ${perDevice.map((p) => fmt(p.connections)).join(" | ")} | ${fmt(proj(last.connections))} |`,
        `| JetStream storage, bytes | ${perDevice.map((p) => fmt(p.storageBytes)).join(" | ")} | ${fmt(proj(last.storageBytes) / 2 ** 30)} GiB |`,
        `| CPU while idle, µs per s | ${perDevice.map((p) => fmt(p.idleCpuUsPerSec)).join(" | ")} | ${fmt(proj(last.idleCpuUsPerSec) / 1e6)} cores |`,
        `| CPU for one rollout, ms | ${perDevice.map((p) => fmt(p.rolloutCpuMs)).join(" | ")} | ${fmt(proj(last.rolloutCpuMs) / 1000)} core-s |`,
      ].join("\n"),
    );
    report.note(
      `Server figures: RSS from /proc of the nats-server process (its RSS with only the operator connected: ${fmt(last.baseRssMb)} MB), consumers from /jsz, subscriptions and connections from /varz, ` +
        `CPU from /proc over the ${2 * TICK_SECS} s idle window (tick ${TICK_SECS} s; a device on the shipped 30 s tick sends a sixth of the heartbeats) and over the rollout.`,
    );
  }
  if (outcomes.length >= 2) {
    const a = outcomes[0]!;
    const b = outcomes.at(-1)!;
    const k = Math.log(b.rolloutMs / a.rolloutMs) / Math.log(b.n / a.n);
    report.note(`Convergence grows as N^${fmt(k)} from N = ${a.n} to N = ${b.n} (${fmt(a.rolloutMs / 1000)} s → ${fmt(b.rolloutMs / 1000)} s); 1 would be linear.`);
  }
  const o1000 = outcomes.find((o) => o.n === 1000);
  if (o1000) {
    const met = o1000.rolloutMs < 15_000;
    report.target("fleet", "1,000 simulated devices converge in < 15 s on one NATS server", `${fmt(o1000.rolloutMs / 1000)} s`, met, ["fleet.1000.rollout"]);
    if (!met || process.argv.includes("--profile")) {
      console.log("fleet: N = 1000 again, workers under node --cpu-prof");
      const dir = join(OUT_DIR, "fleet-cpuprof");
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const p = await simulate(1000, dir);
      await sleep(1000);
      writeProfileSummary(
        "fleet",
        `Workers' CPU profiles (node --cpu-prof, whole worker life: start, initial deploy, idle window, rollout) of a second N = 1000 run (rollout ${fmt(p.rolloutMs / 1000)} s under the profiler; nats-server used ${fmt(p.natsCpuMs / 1000)} s CPU in the rollout, the ${WORKERS} workers share 2 cores with it). bench/out/fleet-cpuprof/.\n\n` +
          summariseDir(dir),
      );
    }
  }
  report.note(
    `${WORKERS} worker processes; each agent is the real startAgent (journal fsynced to a state dir on ${stateRoot.startsWith("/dev/shm") ? "/dev/shm" : "tmp"}, reports, journal publication, desired-state watch) on FakeRuntime, tick ${TICK_SECS} s. ` +
      "Score: two services, the rollout replaces one. The operator's puts are issued 250 at a time. Everything shares this machine's 2 cores with the nats-server.",
  );
} finally {
  rmSync(stateRoot, { recursive: true, force: true });
}
console.log(`wrote ${report.write()}`);
process.exit(0);
