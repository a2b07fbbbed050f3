// (7) Service health: (a) from a container's death to its restart, on the first crash (restarted at
// once), on real Podman through the agent: the kill, the died event the agent follows, its restart
// call, and Podman's start; (b) the agent's CPU for the health checks of 100 services (two
// deployments of 50, a check every 2 s each), on real Podman and on FakeRuntime (the agent's own
// share without Podman's), over a measured window with the tick out of the way.
import { randomBytes } from "node:crypto";
import { LibpodClient } from "../runtime/podman/libpod.client.js";
import { FakeRuntime } from "../runtime/fake.runtime.js";
import type { ContainerEvent, ContainerRuntime } from "../runtime/container-runtime.js";
import { startPodmanEnv, TEST_IMAGES, type PodmanTestEnv } from "../test/support/podman.env.js";
import { fmt, PODMAN_DIR, Report, SHARED_NATS, selfCpuMs, sleep } from "./lib.js";
import { cleanupDevice, connectBench, openKv, removeDeviceContainers, startBenchAgent, StateWaiter } from "./support.js";

const KILLS = Number(process.env.BENCH_KILLS ?? 10);
const WINDOW_MS = Number(process.env.BENCH_HEALTH_WINDOW_SECS ?? 30) * 1000;
const INTERVAL_SECS = 2;
const report = new Report("health", "Service health: restart after a death, CPU of health checks");
const run = randomBytes(3).toString("hex");
const nc = await connectBench(SHARED_NATS);
const { desired, states } = await openKv(nc);
let env: PodmanTestEnv | null = null;
const devices: string[] = [];

const score = (services: object[], minReady = 0) => JSON.stringify({ type: "PodmanV0", data: { services, lifecycle: { grace_period_secs: 1, min_ready_secs: minReady } } });
const check = { cmd: ["CMD-SHELL", "true"], interval_secs: INTERVAL_SECS, timeout_secs: 2, retries: 3 };

/** Deploys `deployments` × `per` services and waits until each is Running. */
async function deploy(device: string, deployments: number, per: number, image: string, health: boolean) {
  const waiter = await StateWaiter.start(states, `${device}.>`);
  const waits: Promise<unknown>[] = [];
  for (let d = 0; d < deployments; d++) {
    const dep = `${device}-d${d}`;
    const services = Array.from({ length: per }, (_, i) => ({ name: `s${i}`, image, ...(health ? { health: check } : {}) }));
    const rev = await desired.put(`${device}.${dep}`, score(services));
    waits.push(
      waiter.wait(`${device}.${dep}`, (s) => s.desired_revision === rev && s.phase !== "Pending", 600_000).then(({ s }) => {
        if (s.phase !== "Running") throw new Error(`${dep}: ${s.phase} ${s.last_error}`);
        return s;
      }),
    );
  }
  const out = await Promise.all(waits);
  waiter.stop();
  return out as Array<{ container_ids: Record<string, string> }>;
}

try {
  env = await startPodmanEnv({ dir: PODMAN_DIR, stopService: false });

  // (a) death → restart, first crash of each of KILLS services.
  {
    const device = `health-kill-${run}`;
    devices.push(device);
    const client = new LibpodClient({ containerHost: env.containerHost });
    const runtime = env.runtime(device, { client });
    const a = await startBenchAgent(device, runtime, SHARED_NATS);
    const [s] = await deploy(device, 1, KILLS, TEST_IMAGES.v1, false);
    const ids = Object.values(s!.container_ids);
    const events: Array<ContainerEvent & { got: number }> = [];
    const abort = new AbortController();
    let connected = false;
    void env.runtime(device).watchContainers({ connected: () => (connected = true), event: (e) => void events.push({ ...e, got: performance.now() }) }, abort.signal);
    while (!connected) await sleep(10);
    const total: number[] = [];
    const toEvent: number[] = [];
    for (const id of ids) {
      const t0 = performance.now();
      await client.kill(id, "KILL");
      for (let i = 0; i < 500 && !events.some((e) => e.id === id && e.type === "started" && e.got >= t0); i++) await sleep(2);
      const died = events.find((e) => e.id === id && e.type === "died" && e.got >= t0);
      const started = events.find((e) => e.id === id && e.type === "started" && e.got >= t0);
      if (!started || !died) throw new Error(`container ${id.slice(0, 12)} was not restarted within 1 s of its kill`);
      total.push(started.got - t0);
      toEvent.push(died.got - t0);
      await sleep(300);
    }
    abort.abort();
    const st = report.samples("health.restart.total", "death → restarted (kill to Podman's start event), first crash", "ms", total);
    report.samples("health.restart.died", "kill → the died event reaches a watcher", "ms", toEvent);
    report.target("restart-under-1s", "a death restarted in under 1 s on the first crash", `median ${fmt(st.median)} ms, max ${fmt(st.max)} ms over ${total.length} kills`, st.max < 1000, ["health.restart.total"]);
    await a.close();
    await removeDeviceContainers(client, device);
    client.close();
  }

  // (b) CPU of the health checks of 100 services.
  const cases: Array<{ rt: "podman" | "fake" }> = [{ rt: "fake" }, { rt: "podman" }];
  const rows: string[] = [];
  for (const c of cases) {
    const device = `health-cpu-${c.rt}-${run}`;
    devices.push(device);
    let runtime: ContainerRuntime;
    let client: LibpodClient | null = null;
    if (c.rt === "fake") runtime = new FakeRuntime({ device });
    else {
      client = new LibpodClient({ containerHost: env.containerHost });
      runtime = env.runtime(device, { client });
    }
    const a = await startBenchAgent(device, runtime, SHARED_NATS);
    const t0 = performance.now();
    await deploy(device, 2, 50, c.rt === "fake" ? "img/app:1" : TEST_IMAGES.v1, true);
    const setupMs = performance.now() - t0;
    await a.agent.publisher.idle(30_000).catch(() => undefined);
    await a.agent.reporter.flush(30_000).catch(() => undefined);
    await sleep(INTERVAL_SECS * 1000 * 2); // the first checks of every service scheduled
    const liveness = a.agent.supervisor.liveness;
    const checks0 = liveness.checksRun;
    const cpu0 = selfCpuMs();
    const w0 = performance.now();
    await sleep(WINDOW_MS);
    const cpuMs = selfCpuMs() - cpu0;
    const secs = (performance.now() - w0) / 1000;
    const checks = liveness.checksRun - checks0;
    const label = c.rt === "fake" ? "FakeRuntime" : "real Podman";
    report.value(`health.cpu.${c.rt}.per_sec`, `agent CPU for 100 services' health checks (every ${INTERVAL_SECS} s), ${label}`, "ms/s", cpuMs / secs);
    report.value(`health.cpu.${c.rt}.per_check`, `agent CPU per health check, ${label}`, "ms", checks ? cpuMs / checks : NaN);
    report.value(`health.checks.${c.rt}`, `health checks run in the ${fmt(secs)} s window, ${label}`, "checks", checks);
    rows.push(`| ${label} | ${fmt(secs)} | ${checks} | ${fmt(checks / secs)} | ${fmt(cpuMs)} | ${fmt(cpuMs / secs)} | ${fmt(checks ? cpuMs / checks : NaN)} | ${fmt(setupMs / 1000)} |`);
    await a.close();
    if (client) {
      await removeDeviceContainers(client, device);
      client.close();
    }
  }
  report.table(
    [
      "| runtime | window s | checks | checks/s | agent CPU ms | agent CPU ms/s | CPU ms per check | setup (deploy 100) s |",
      "|---|---:|---:|---:|---:|---:|---:|---:|",
      ...rows,
    ].join("\n"),
  );
  report.note(
    `The agent's CPU is its whole process (process.cpuUsage) over the window: the checks, the liveness's event stream and the NATS client; no tick runs (an hour). ` +
      `On Podman the check itself (an exec in the container) is Podman's CPU, not the agent's; each check is one healthcheck request and one inspect.`,
  );
} finally {
  for (const d of devices) await cleanupDevice(nc, d);
  if (env) await env.cleanup();
  await nc.close();
}
console.log(`wrote ${report.write()}`);
process.exit(0);
