// (1) Upgrades of a deployment of 8 services on real Podman, side by side, interleaved rounds. Two
// changes: one service's image, and all 8 images. Four ways of making each change:
//   agent    the agent (in this process, on its own libpod client): desired-state put → Running
//            with the new score hash in device-state
//   compose  docker-compose 1.29 (Debian's package) over Podman's Docker API: edit the file, `up -d`
//   seq      direct libpod calls, one service after another: DELETE ?force&timeout, create, start
//   conc     the same calls, every service at once: all removes, then each service's create + start
// Each (way, change) has its own device and containers and alternates localhost/fleet-test:v1 ↔ v2,
// which exits promptly on SIGTERM, so every stop measures Podman, not the grace period.
// Then: libpod requests per upgrade (per route; compose through a counting proxy), and the time
// from a service's death to the agent having restarted it.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LABEL_DEVICE } from "../contracts/wire-names.js";
import type { DeploymentState } from "../contracts/deployment-state.codec.js";
import { resolveLifecycle } from "../contracts/score.codec.js";
import { LibpodClient } from "../runtime/podman/libpod.client.js";
import { startPodmanEnv, TEST_IMAGES } from "../test/support/podman.env.js";
import { ComposeProject, composeVersion, CountingProxy } from "./compose.js";
import { benchArgs, fmt, interleaved, PODMAN_DIR, Report, SHARED_NATS, stats, type Stats } from "./lib.js";
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
  type BenchAgent,
  type ServiceDef,
} from "./support.js";

const args = benchArgs();
const QUICK = args.has("--quick"); // profile re-run: the agent only, fewer rounds
const ROUNDS = QUICK ? 4 : Number(process.env.BENCH_UPGRADE_ROUNDS ?? 9);
const GRACE = 10;
const N_SERVICES = 8;
/** The agent's `min_ready_secs`: no readiness wait, like compose and the direct calls. */
const MIN_READY_SECS: number | undefined = 0;
const images = [TEST_IMAGES.v1, TEST_IMAGES.v2];
const SERVICES = Array.from({ length: N_SERVICES }, (_, i) => `s${i}`);
type Change = "one" | "all";
const CHANGES: Change[] = ["one", "all"];
type Way = "agent" | "compose" | "seq" | "conc";

const report = new Report("upgrade", `Upgrades of ${N_SERVICES} services, real Podman: the agent, docker-compose, direct libpod calls`);
const compose = QUICK ? null : await composeVersion();
const WAYS: Way[] = QUICK ? ["agent"] : compose ? ["agent", "compose", "seq", "conc"] : ["agent", "seq", "conc"];
console.log(`upgrades: ${ROUNDS} interleaved rounds (+1 warm-up) of ${WAYS.join(", ")} × ${CHANGES.join(", ")}${QUICK ? " [quick/profile]" : ""}`);
const env = await startPodmanEnv({ dir: PODMAN_DIR, stopService: false });
const nc = await connectBench(SHARED_NATS);
const { desired, states } = await openKv(nc);
const run = randomBytes(3).toString("hex");
const composeDir = mkdtempSync(join(tmpdir(), "bench-compose-"));
const devices: string[] = [];
const agents: BenchAgent[] = [];
const clients: LibpodClient[] = [];
const projects: ComposeProject[] = [];

/** Round i's images: `one` flips s0 only, `all` flips every service. */
const servicesAt = (change: Change, i: number): ServiceDef[] =>
  SERVICES.map((name, k) => ({ name, image: images[(change === "all" || k === 0 ? i : 0) % 2]! }));
const changedAt = (change: Change) => (change === "all" ? SERVICES : SERVICES.slice(0, 1));

interface Round {
  ms: number;
  requests?: Map<string, number>;
  phases?: Record<string, number>;
}
const results = new Map<string, Round[]>();
const key = (w: Way, c: Change) => `${w}.${c}`;
const record = (k: string, r: Round, counted: boolean) => {
  if (counted) (results.get(k) ?? results.set(k, []).get(k)!).push(r);
};
const routesSince = (client: LibpodClient, before: Map<string, number>) => {
  const d = new Map<string, number>();
  for (const [route, n] of client.requestsByRoute) if (n - (before.get(route) ?? 0) > 0) d.set(route, n - (before.get(route) ?? 0));
  return d;
};
const sumOf = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

const agentOf = new Map<Change, { a: BenchAgent; key: string; waiter: StateWaiter; client: LibpodClient }>();

async function agentWay(change: Change) {
  const device = `bench-up-agent-${change}-${run}`;
  devices.push(device);
  const client = new LibpodClient({ containerHost: env.containerHost });
  clients.push(client);
  const runtime = env.runtime(device, { client });
  const a = await startBenchAgent(device, runtime, SHARED_NATS);
  agents.push(a);
  const k = `${device}.${device}`; // deployment named like the device: container names are <deployment>.<service>
  const waiter = await StateWaiter.start(states, k);
  agentOf.set(change, { a, key: k, waiter, client });
  const transitions: Array<{ to: string; at: number }> = [];
  a.agent.journal.onAppend((ev) => transitions.push({ to: ev.to, at: performance.now() }));
  let i = 0;
  const step = async (counted: boolean) => {
    const score = scoreJson(servicesAt(change, i++), GRACE, MIN_READY_SECS);
    const hash = scoreHashOf(score);
    transitions.length = 0;
    const before = new Map(client.requestsByRoute);
    const t0 = performance.now();
    const rev = await desired.put(k, score);
    const { at, s } = await waiter.wait(k, (s: DeploymentState) => s.desired_revision === rev && (s.phase === "Running" || s.phase === "Failed"));
    if (s.phase !== "Running" || s.score_hash !== hash) throw new Error(`agent ${change}: upgrade ended ${s.phase}: ${s.last_error}`);
    const phases: Record<string, number> = {};
    for (const t of transitions) phases[t.to] ??= t.at - t0;
    phases["observed"] = at - t0;
    record(key("agent", change), { ms: at - t0, requests: routesSince(client, before), phases }, counted);
  };
  await step(false); // initial deploy
  return step;
}

function directWay(way: "seq" | "conc", change: Change) {
  const device = `bench-up-${way}-${change}-${run}`;
  devices.push(device);
  const client = new LibpodClient({ containerHost: env.containerHost });
  clients.push(client);
  const rt = env.runtime(device, { client });
  const lifecycle = resolveLifecycle({ grace_period_secs: GRACE });
  const ids = new Map<string, string>();
  let i = 0;
  const replace = async (svc: ServiceDef, scoreHash: string) => {
    const old = ids.get(svc.name);
    if (old) await client.remove(old, { force: true, timeout: GRACE });
    ids.set(svc.name, (await client.create(rt.createSpec({ deployment: device, service: svc, lifecycle, scoreHash }))).Id);
  };
  return async (counted: boolean) => {
    const first = ids.size === 0;
    const services = servicesAt(change, i++);
    const todo = first ? services : services.filter((s) => changedAt(change).includes(s.name));
    const scoreHash = scoreHashOf(scoreJson(services, GRACE, MIN_READY_SECS));
    const before = new Map(client.requestsByRoute);
    const t0 = performance.now();
    if (way === "seq") {
      for (const svc of todo) {
        await replace(svc, scoreHash);
        await client.start(ids.get(svc.name)!);
      }
    } else {
      // Every old container goes first (as the agent's stop step ends before its start step), then
      // every new one is created and started.
      await Promise.all(todo.map((svc) => (ids.has(svc.name) ? client.remove(ids.get(svc.name)!, { force: true, timeout: GRACE }) : undefined)));
      for (const svc of todo) ids.delete(svc.name);
      await Promise.all(todo.map(async (svc) => {
        await replace(svc, scoreHash);
        await client.start(ids.get(svc.name)!);
      }));
    }
    record(key(way, change), { ms: performance.now() - t0, requests: routesSince(client, before) }, counted && !first);
  };
}

function composeWay(change: Change) {
  const device = `bench-up-compose-${change}-${run}`;
  devices.push(device);
  const project = new ComposeProject(`fbc${change}${run}`, composeDir, env.socketPath, { [LABEL_DEVICE]: device, ...env.runLabels }, GRACE);
  projects.push(project);
  let i = 0;
  return async (counted: boolean, socketPath?: string) => {
    const services = servicesAt(change, i++);
    const t0 = performance.now();
    await project.up(services, socketPath);
    record(key("compose", change), { ms: performance.now() - t0 }, counted);
  };
}

const LABELS: Record<Way, string> = {
  agent: "agent: put → Running in device-state",
  compose: "docker-compose up -d",
  seq: "direct libpod, one service after another",
  conc: "direct libpod, all services at once",
};
const CHANGE_LABEL: Record<Change, string> = { one: "one service changed", all: `all ${N_SERVICES} changed` };

try {
  const fns = new Map<string, (counted: boolean) => Promise<void>>();
  for (const c of CHANGES) {
    for (const w of WAYS) {
      if (w === "agent") fns.set(key(w, c), await agentWay(c));
      else if (w === "compose") fns.set(key(w, c), composeWay(c));
      else fns.set(key(w, c), directWay(w, c));
    }
  }
  // Initial deploys of the others, one warm-up round, then ROUNDS counted rounds, the starting one rotating.
  for (const [k, f] of fns) if (!k.startsWith("agent.")) await f(false);
  const list = [...fns.values()];
  await interleaved(1, list.map((f) => () => f(false)));
  await interleaved(ROUNDS, list.map((f) => () => f(true)));

  const med = new Map<string, Stats>();
  for (const c of CHANGES) for (const w of WAYS) med.set(key(w, c), report.samples(`upgrade.${w}.${c}`, `${CHANGE_LABEL[c]}: ${LABELS[w]}`, "ms", results.get(key(w, c))!.map((r) => r.ms)));
  const m = (w: Way, c: Change) => med.get(key(w, c))!.median;
  // Per-round ratios (the same round, adjacent in time) give each ratio's spread.
  const paired = (x: Way, y: Way, c: Change) => results.get(key(x, c))!.map((r, i) => r.ms / results.get(key(y, c))![i]!.ms);
  const ratioRows: string[] = [];
  if (!QUICK) {
    for (const c of CHANGES) {
      for (const y of WAYS.filter((w) => w !== "agent")) {
        const s = report.samples(`ratio.agent_${y}.${c}`, `${CHANGE_LABEL[c]}: agent / ${y}, per round`, "×", paired("agent", y, c));
        ratioRows.push(`| ${CHANGE_LABEL[c]} | agent / ${y} | ${fmt(m("agent", c) / m(y, c))} | ${fmt(s.median)} (${fmt(s.p25)}–${fmt(s.p75)}, ${fmt(s.min)}–${fmt(s.max)}) |`);
      }
    }
    report.table(["**Ratios** (of the medians; and per round, paired: median (p25–p75, min–max))", "", "| change | ratio | of medians | per round |", "|---|---|---:|---:|", ...ratioRows].join("\n"));
  }

  // Requests per upgrade, per route.
  const reqs = (w: Way, c: Change) => stats(results.get(key(w, c))!.map((r) => sumOf(r.requests ?? new Map()))).median;
  for (const c of CHANGES) for (const w of WAYS.filter((w) => w !== "compose")) report.value(`requests.${w}.${c}`, `${CHANGE_LABEL[c]}: libpod requests per upgrade, ${w}`, "req", reqs(w, c));
  const routeTable = (c: Change, extra: Array<[string, Map<string, number>]>) => {
    const cols: Array<[string, Map<string, number>]> = WAYS.filter((w) => w !== "compose").map((w) => {
      const rounds = results.get(key(w, c))!;
      const mean = new Map<string, number>();
      for (const r of rounds) for (const [route, n] of r.requests ?? []) mean.set(route, (mean.get(route) ?? 0) + n / rounds.length);
      return [w, mean];
    });
    cols.push(...extra);
    const routes = [...new Set(cols.flatMap(([, mm]) => [...mm.keys()]))].sort();
    return [
      `**Requests per upgrade, ${CHANGE_LABEL[c]}** (mean over the counted rounds; compose: one extra round through a counting proxy, Docker API routes)`,
      "",
      `| route | ${cols.map(([w]) => w).join(" | ")} |`,
      `|---|${cols.map(() => "---:").join("|")}|`,
      ...routes.map((r) => `| ${r} | ${cols.map(([, mm]) => (mm.get(r) ? fmt(mm.get(r)!) : "")).join(" | ")} |`),
      `| **total** | ${cols.map(([, mm]) => fmt(sumOf(mm))).join(" | ")} |`,
    ].join("\n");
  };
  const composeRequests = new Map<Change, Map<string, number>>();
  if (WAYS.includes("compose")) {
    const proxy = await CountingProxy.start(join(composeDir, "count.sock"), env.socketPath);
    try {
      for (const c of CHANGES) {
        proxy.reset();
        await (fns.get(key("compose", c)) as (counted: boolean, socketPath?: string) => Promise<void>)(false, proxy.socketPath);
        composeRequests.set(c, new Map(proxy.byRoute));
        report.value(`requests.compose.${c}`, `${CHANGE_LABEL[c]}: Docker API requests per upgrade, compose`, "req", proxy.total);
      }
    } finally {
      await proxy.close();
    }
  }
  for (const c of CHANGES) report.table(routeTable(c, composeRequests.has(c) ? [["compose", composeRequests.get(c)!]] : []));

  // Where the agent's time goes: the state entered (journal append) after the put.
  for (const c of CHANGES) {
    const rounds = results.get(key("agent", c))!;
    const order = ["pending", "pulling", "stoppingOld", "startingNew", "verifying", "running", "observed"];
    const rows = order
      .filter((st) => rounds.every((r) => r.phases?.[st] !== undefined))
      .map((st) => {
        const s = stats(rounds.map((r) => r.phases![st]!));
        return `| ${st === "observed" ? "Running seen in device-state" : `journaled → ${st}`} | ${fmt(s.median)} | ${fmt(s.min)}–${fmt(s.max)} |`;
      });
    report.table([`**agent, ${CHANGE_LABEL[c]}: time after the put (ms)**`, "", "| point | median | min–max |", "|---|---:|---:|", ...rows].join("\n"));
  }

  if (!QUICK) {
    const oneDirect = m("seq", "one");
    const oneRatio = m("agent", "one") / oneDirect;
    const allC = WAYS.includes("compose") ? m("agent", "all") / m("compose", "all") : NaN;
    const allConc = m("agent", "all") / m("conc", "all");
    const missed = [allC > 0.8, allConc > 1.15, oneRatio > 1.05, WAYS.includes("compose") && m("agent", "one") >= m("compose", "one")].some(Boolean);
    if (missed) {
      // Where the agent's time goes beyond the tables: a CPU profile of more agent rounds.
      const { profile, file } = await profileDuring("upgrade-agent", async () => {
        for (let i = 0; i < 3; i++) for (const c of CHANGES) await fns.get(key("agent", c))!(false);
      });
      writeProfileSummary("upgrade", `CPU profile of this process over 3 more agent upgrades of each change (${file.slice(file.indexOf("bench/"))}); the agent and the bench share the process.\n\n` + summariseProfile(profile));
    }
    if (WAYS.includes("compose")) {
      report.target("upgrade.all.compose", `all ${N_SERVICES} changed: agent ≤ 0.8 × docker-compose`, `${fmt(allC)}× (${fmt(m("agent", "all"))} ms vs ${fmt(m("compose", "all"))} ms)`, allC <= 0.8, ["upgrade.agent.all", "upgrade.compose.all"]);
    }
    report.target("upgrade.all.conc", `all ${N_SERVICES} changed: agent ≤ 1.15 × direct concurrent libpod calls`, `${fmt(allConc)}× (${fmt(m("agent", "all"))} ms vs ${fmt(m("conc", "all"))} ms)`, allConc <= 1.15, ["upgrade.agent.all", "upgrade.conc.all"]);
    report.target("upgrade.one.direct", "one changed (min_ready_secs 0): agent ≤ 1.05 × direct libpod calls", `${fmt(oneRatio)}× (${fmt(m("agent", "one"))} ms vs ${fmt(oneDirect)} ms)`, oneRatio <= 1.05, ["upgrade.agent.one", "upgrade.seq.one"]);
    if (WAYS.includes("compose")) {
      report.target("upgrade.one.compose", "one changed: agent < docker-compose", `${fmt(m("agent", "one") / m("compose", "one"))}× (${fmt(m("agent", "one"))} ms vs ${fmt(m("compose", "one"))} ms)`, m("agent", "one") < m("compose", "one"), ["upgrade.agent.one", "upgrade.compose.one"]);
    }
    const ra = reqs("agent", "one");
    const rd = reqs("seq", "one");
    report.target("upgrade.requests", "requests per one-service upgrade ≤ direct + 1", `agent ${fmt(ra)}, direct ${fmt(rd)}`, ra <= rd + 1, ["requests.agent.one", "requests.seq.one"]);
  }

  // Death to restart: SIGKILL one service's container (a crash), then the time until device-state
  // says it runs again with one more restart. Each service's first death is restarted at once (the
  // backoff's first try), so every round kills another service of the one-change deployment.
  const one = agentOf.get("one");
  if (one && !QUICK) {
    const deathMs: number[] = [];
    const podmanStartMs: number[] = [];
    for (const svc of SERVICES.slice(1)) {
      const before = one.waiter.latest.get(one.key)?.services?.[svc];
      if (!before?.container_id) throw new Error(`death bench: no container recorded for ${svc}`);
      const restarted = env.client.events({ type: ["container"], container: [before.container_id], event: ["start"] });
      const stream = await restarted;
      const t0 = performance.now();
      const seenStart = (async () => {
        for await (const _ of stream) return performance.now() - t0;
        return NaN;
      })();
      await env.client.kill(before.container_id, "KILL");
      const { at } = await one.waiter.wait(one.key, (s) => (s.services?.[svc]?.restarts ?? 0) > before.restarts && s.services?.[svc]?.state === "running", 60_000);
      deathMs.push(at - t0);
      podmanStartMs.push(await seenStart);
      stream.close();
    }
    report.samples("death.reported", "a service killed (SIGKILL) → running again in device-state, restarts + 1", "ms", deathMs);
    report.samples("death.started", "a service killed (SIGKILL) → Podman's start event of its restart", "ms", podmanStartMs);
  }

  report.note(
    `${N_SERVICES} services, grace ${GRACE} s, ${MIN_READY_SECS === undefined ? "no readiness wait" : `min_ready_secs ${MIN_READY_SECS}`}; the image (localhost/fleet-test) exits at once on SIGTERM. ` +
      "The agent's figure is end to end: the KV put, the watch delivering it, the machine's steps (image check, stop and remove, create, start), " +
      "every transition fsynced to the journal and reported to device-state, and this process seeing the Running value through its own KV watch. " +
      `docker-compose ${compose ?? "(not installed)"} runs as a user would run it (a Python process per \`up -d\`, its start-up included), over Podman's Docker API on the same service, ` +
      "containers on Podman's default network (`network_mode: bridge`), as the agent's. Direct calls use one LibpodClient (keep-alive) in this process: " +
      "`DELETE /containers/{id}?force=true&timeout=10` (graceful on 4.3.1: the stop signal, the timeout, then SIGKILL), `POST /containers/create`, `POST /containers/{id}/start`.",
  );
} finally {
  for (const a of agents) await a.close().catch(() => undefined);
  for (const w of agentOf.values()) w.waiter.stop();
  for (const p of projects) await p.down();
  for (const d of devices) {
    await cleanupDevice(nc, d);
    await removeDeviceContainers(env.client, d).catch(() => undefined);
  }
  rmSync(composeDir, { recursive: true, force: true });
  await env.cleanup();
  for (const c of clients) c.close();
  await nc.close();
}
console.log(`wrote ${report.write()}`);
process.exit(0);
