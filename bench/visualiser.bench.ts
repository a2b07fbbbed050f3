// (6) The visualiser on a long history: a deployment with 100,000 journal events opened in the
// dashboard (its current state and the newest page of its timeline), and stepping back a page. The
// dashboard reads one page of the stream by event number (fleet/stream.window.ts: an interpolation search
// of direct gets, then one consumer for the page) and folds only that page
// (machines/journal.window.ts); the current state is the agent's own report in device-state.
// Measured through the HTTP API and, where Debian's Chromium is installed, end to end in a browser.
// The events are real: one deployment's journal recorded by the supervisor on FakeRuntime over two
// upgrades, repeated (desired.updated, pull.done, stop.done, start.done; journal v2), with another deployment's
// events interleaved so the stream's sequences are not this subject's alone.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { DeploymentSupervisor } from "../agent/deployments/supervisor.js";
import { ScoreStore } from "../agent/deployments/score.store.js";
import { EventJournal } from "../agent/journal/journal.js";
import { silentLogger } from "../agent/logger.js";
import { decodeJson } from "../contracts/decode.js";
import type { DeploymentState } from "../contracts/deployment-state.codec.js";
import { JournalEvent, type JournalEventV2 } from "../contracts/journal-event.codec.js";
import { newUserKey, signingKeyFromText } from "../contracts/nkey.js";
import { HEADER_SIG, HEADER_SIGNED_BY, signReport } from "../contracts/report-signature.js";
import { ReconcileScore } from "../contracts/score.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, deploymentKey, eventSubject } from "../contracts/wire-names.js";
import { Fleet } from "../fleet/fleet.client.js";
import { ensureFleetResources } from "../fleet/resources.js";
import { startInspector } from "../inspector/server.js";
import { PAGE_SIZE } from "../inspector/journal.pages.js";
import { foldJournal } from "../machines/journal.fold.js";
import { FakeRuntime } from "../runtime/fake.runtime.js";
import { fmt, Report } from "./lib.js";
import { PrivateNats } from "./private-nats.js";
import { connectBench, scoreHashOf, scoreJson } from "./support.js";

const N = 100_000;
const OTHER_EVERY = 10;
const OPEN_TARGET_MS = 1000;
const STEP_TARGET_MS = 200;
const report = new Report("visualiser", "The visualiser on a long history");
const device = `viz-${randomBytes(3).toString("hex")}`;
const deployment = "app";

// 1. A real journal: initial deploy, then A → B → A; the last two upgrades are the cycle repeated.
const dir = mkdtempSync(join(tmpdir(), "bench-viz-"));
const journal = EventJournal.open(dir, device);
const sup = new DeploymentSupervisor({ device, runtime: new FakeRuntime({ device }), journal, scores: await ScoreStore.open(dir), sink: { deploymentState: () => undefined }, logger: silentLogger() });
const scores = ["img/app:1", "img/app:2"].map((image) => scoreJson([{ name: "web", image }, { name: "db", image: "img/db:1" }], 5));
let revision = 0;
for (const s of [scores[0]!, scores[1]!, scores[0]!]) {
  const r = decodeJson(ReconcileScore, s);
  if (!r.ok) throw new Error(r.errors.join("; "));
  await sup.apply({ kind: "update", deployment, score: r.value, hash: scoreHashOf(s), revision: ++revision });
  await sup.idle();
}
await journal.settled();
const recorded = journal.read(deployment).filter((e): e is JournalEventV2 => e.v === 2);
await sup.shutdown(1000);
rmSync(dir, { recursive: true, force: true });
const firstUpdate = recorded.findIndex((e, i) => i > 0 && e.event.type === "desired.updated");
const head = recorded.slice(0, firstUpdate);
const cycle = recorded.slice(firstUpdate);
const t0 = Date.parse("2026-06-01T00:00:00Z");
const events: JournalEventV2[] = [...head];
for (let k = 0; events.length < N; k++) {
  const e = cycle[k % cycle.length]!;
  const ev = e.event.type === "desired.updated" ? { ...e.event, revision: events.length + 1 } : e.event;
  events.push({ ...e, n: events.length + 1, event: ev });
}
events.splice(N);
events.forEach((e, i) => (e.at = new Date(t0 + i * 1000).toISOString()));
// The state after the last event, as the agent would report it (the fold runs once, here, not in the dashboard).
const last = foldJournal({ device, deployment }, events.map((e) => e.event));

const pair = newUserKey();
const parsed = signingKeyFromText(pair.seed);
if (!parsed.ok) throw new Error(parsed.error);
const deviceKey = parsed.key;

const nats = await PrivateNats.start();
let exitCode = 0;
try {
  const nc = await connectBench(nats.url);
  await ensureFleetResources(nc);
  const js = jetstream(nc);
  const tp = performance.now();
  const subject = eventSubject(device, deployment);
  const other = eventSubject(device, "other");
  for (let i = 0; i < events.length; i += 1000) {
    await Promise.all(
      events.slice(i, i + 1000).flatMap((e) => {
        // Signed by the device, as an agent with its nkey publishes them: every page checks them.
        const sig = signReport("event", JournalEvent.encode(e), deviceKey);
        const h = headers();
        h.set(HEADER_SIGNED_BY, sig.by);
        h.set(HEADER_SIG, sig.sig);
        const pubs = [js.publish(subject, JSON.stringify(e), { headers: h })];
        if (e.n % OTHER_EVERY === 0) {
          const o = { ...e, deployment: "other", n: e.n / OTHER_EVERY };
          pubs.push(js.publish(other, JSON.stringify(o)));
        }
        return pubs;
      }),
    );
  }
  console.log(`visualiser: published ${N} events (+${N / OTHER_EVERY} of another deployment) in ${fmt((performance.now() - tp) / 1000)} s`);
  const kvm = new Kvm(nc);
  const state: DeploymentState = {
    device,
    deployment,
    phase: "Running",
    state: "running",
    score_hash: last.context.target?.hash ?? null,
    desired_revision: last.context.revision,
    container_ids: last.context.containerIds,
    last_error: last.context.lastError,
    last_event_seq: N,
    last_event_at: events.at(-1)!.at,
  };
  await (await kvm.open(BUCKET_DEVICE_STATE)).put(deploymentKey(device, deployment), JSON.stringify(state));
  await (await kvm.open(BUCKET_DESIRED_STATE)).put(deploymentKey(device, deployment), scores[0]!);

  const fleet = await Fleet.open(nc);
  await fleet.recordDeviceKey(device, deviceKey.publicKey);
  const inspector = await startInspector({ fleet, port: 0 });
  try {
    type PageBody = { state: DeploymentState | null; page: { first_n: number; last_n: number; signatures: { verified: number }; steps: Array<{ n: number; container_ids: Record<string, string> }> } };
    const get = async (before?: number): Promise<{ ms: number; body: PageBody }> => {
      const t = performance.now();
      const r = await fetch(`${inspector.url}api/deployment?device=${device}&deployment=${deployment}${before ? `&before=${before}` : ""}`);
      const body = (await r.json()) as PageBody;
      const ms = performance.now() - t;
      if (!r.ok) throw new Error(`GET /api/deployment: ${r.status} ${JSON.stringify(body)}`);
      return { ms, body };
    };
    // 2. Through the API: open (the newest page), then step back page by page.
    const opens: number[] = [];
    let newest: PageBody | null = null;
    for (let i = 0; i < 9; i++) {
      const { ms, body } = await get();
      opens.push(ms);
      newest = body;
    }
    const np = newest!.page;
    if (np.signatures.verified !== PAGE_SIZE) throw new Error(`the newest page verified ${np.signatures.verified} of ${PAGE_SIZE} signatures`);
    if (np.last_n !== N || np.steps.length !== PAGE_SIZE || newest!.state?.state !== "running") throw new Error(`newest page ${np.first_n}–${np.last_n} (${np.steps.length} steps)`);
    if (JSON.stringify(np.steps.at(-1)!.container_ids) !== JSON.stringify(Object.fromEntries(Object.entries(state.container_ids).sort()))) {
      throw new Error("the newest page's last step does not show the reported container ids");
    }
    const backs: number[] = [];
    let before = np.first_n;
    for (let i = 0; i < 20; i++) {
      const { ms, body } = await get(before);
      backs.push(ms);
      if (body.page.last_n !== before - 1) throw new Error(`page before ${before} ends at ${body.page.last_n}`);
      before = body.page.first_n;
    }
    const far: number[] = [];
    for (const b of [50_001, 25_001, 1_001, 101]) far.push((await get(b)).ms);
    const so = report.samples("viz.api.open", `API: open a ${N}-event deployment (device-state + newest page of ${PAGE_SIZE}, folded)`, "ms", opens.slice(1), "the first, cold, excluded");
    report.value("viz.api.open.cold", "API: the first open (cold: JIT, first consumer)", "ms", opens[0]!);
    const sb = report.samples("viz.api.back", "API: step back one page", "ms", backs);
    report.samples("viz.api.jump", "API: a page anywhere in the history (events 50,000, 25,000, 1,000, 100)", "ms", far);

    // 3. End to end in Chromium: the page opened fresh, until the chart shows the current state and the page's 100 steps.
    let browserOpen: ReturnType<Report["samples"]> | null = null;
    let browserBack: ReturnType<Report["samples"]> | null = null;
    if (existsSync("/usr/bin/chromium")) {
      const { chromium } = await import("playwright-core");
      const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-gpu"] });
      try {
        const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        const opensB: number[] = [];
        const backsB: number[] = [];
        // Timed in the page (performance.now() from navigation start; a MutationObserver sees the
        // step drawn), not by playwright's polling, which waits up to 500 ms between checks.
        const drawn = (n: number) =>
          `new Promise((resolve) => { const seen = () => document.querySelector('ol.timeline li[data-n="${n}"]') && document.querySelector('#visualiser svg .state.current');` +
          ` if (seen()) return resolve(performance.now()); const o = new MutationObserver(() => { if (seen()) { o.disconnect(); resolve(performance.now()); } }); o.observe(document.body, { childList: true, subtree: true }); })`;
        for (let i = 0; i < 6; i++) {
          const page = await ctx.newPage();
          await page.goto(`${inspector.url}#/d/${device}/${deployment}`, { waitUntil: "commit" });
          opensB.push(await page.evaluate<number>(drawn(N - PAGE_SIZE + 1)));
          if (!(await page.locator('#visualiser svg .state.current[data-state="running"]').count())) throw new Error("the chart does not show running");
          for (let k = 1; k <= 3; k++) {
            const ms = await page.evaluate<number>(`(async () => { const t = performance.now(); const done = ${drawn(N - (k + 1) * PAGE_SIZE + 1)}; document.querySelector("#visualiser button.older").click(); return (await done) - t; })()`);
            backsB.push(ms);
          }
          await page.close();
        }
        browserOpen = report.samples("viz.browser.open", `Chromium: open the deployment page (navigation start to the chart and ${PAGE_SIZE} steps drawn)`, "ms", opensB.slice(1), "the first, cold, excluded");
        report.value("viz.browser.open.cold", "Chromium: the first open (cold)", "ms", opensB[0]!);
        browserBack = report.samples("viz.browser.back", "Chromium: step back one page (click to the older page's steps drawn)", "ms", backsB);
      } finally {
        await browser.close();
      }
    } else {
      report.note("Chromium is not installed (/usr/bin/chromium): the browser figures are missing; the API figures stand alone.");
    }
    const open = browserOpen ?? so;
    const back = browserBack ?? sb;
    // Judged on the median; p90 and max are given beside it (on a shared 2-core VM the tail is other processes').
    const measured = (x: typeof open, api: typeof so, where: string) => `${fmt(x.median)} ms median (p90 ${fmt(x.p90)}, max ${fmt(x.max)}; ${where}; API ${fmt(api.median)} ms)`;
    report.target("viz-open", `a ${N}-event deployment opens in the dashboard < 1 s (current state + newest page)`, measured(open, so, browserOpen ? "Chromium" : "API"), open.median < OPEN_TARGET_MS, [browserOpen ? "viz.browser.open" : "viz.api.open"]);
    report.target("viz-back", "stepping back a page < 200 ms", measured(back, sb, browserBack ? "Chromium" : "API"), back.median < STEP_TARGET_MS, [browserBack ? "viz.browser.back" : "viz.api.back"]);
    report.note(`Load average during the run: ${loadavg().map((l) => l.toFixed(1)).join(", ")} (1, 5, 15 min) on ${cpus().length} cores.`);
    report.note(
      `Stream: ${N} events of one deployment, each signed by the device (its key recorded, so every page checks ${PAGE_SIZE} signatures), and ${N / OTHER_EVERY} of another, interleaved, on a private nats-server. A page is ${PAGE_SIZE} events; finding where it starts is an interpolation search of ` +
        `direct gets by stream sequence (a few requests), then one ordered consumer reads it with a margin of events before it. The page's first desired.updated is diffed against the ` +
        `score before it (read back at most ${2000} events). No figure folds the whole history: for that, see the replay bench (a full read of 100,000 events and their fold take seconds).`,
    );
  } finally {
    await inspector.close();
    await fleet.close();
    await nc.close();
  }
} catch (e) {
  console.error(e);
  exitCode = 1;
} finally {
  await nats.destroy();
}
console.log(`wrote ${report.write()}`);
process.exit(exitCode);
