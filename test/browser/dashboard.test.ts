// The operator console in Debian's Chromium (playwright-core, headless) against `fleetctl serve` run
// in process, on a nats-server of this suite's own (so the fleet summary counts only what the suite
// wrote). Two live in-process agents on FakeRuntime feed it (and answer its device commands: ping,
// logs, restart); a third device is written by hand as a newer agent reports (per-service status,
// its own tick, signing off), stale and degraded, with no agent to answer.
import { expect } from "chai";
import { mkdirSync, rmSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { startAgent, type RunningAgent } from "../../agent/agent.js";
import { silentLogger } from "../../agent/logger.js";
import { ensureFleetResources } from "../../fleet/resources.js";
import { run } from "../../cli/main.js";
import { canonicalHash } from "../../contracts/canonical-json.js";
import { decodeJson } from "../../contracts/decode.js";
import { DeploymentState } from "../../contracts/deployment-state.codec.js";
import { DeviceInfo } from "../../contracts/device-info.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO, BUCKET_DEVICE_STATE, deploymentKey } from "../../contracts/wire-names.js";
import { FakeRuntime } from "../../runtime/fake.runtime.js";
import { ScoreFiles, scoreJson, type CliResult } from "../integration/cli/cli.helpers.js";
import { PrivateNats, connectTest, tempDir, uniqueDevice, waitFor } from "../support/nats.js";

const SHOTS = ".test-artifacts/screenshots";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

describe("operator console in Chromium", function () {
  let nats: PrivateNats;
  let nc: NatsConnection;
  let states: KV;
  let desired: KV;
  let browser: Browser;
  let page: Page;
  let files: ScoreFiles;
  let url: string;
  let served: Promise<number>;
  const stopServe = new AbortController();
  const agents: Array<{ agent: RunningAgent; dir: string; runtime: FakeRuntime }> = [];
  const [a, b, c] = [uniqueDevice(), uniqueDevice(), uniqueDevice()];
  const pageErrors: string[] = [];
  const offSite: string[] = [];
  const failedRequests: string[] = [];

  const fleetctl = async (argv: string[]): Promise<CliResult> => {
    let out = "";
    let err = "";
    const code = await run(argv, { out: (s) => void (out += s), err: (s) => void (err += s), env: { FLEET_NATS_URL: nats.url } });
    return { code, out, err };
  };
  const stateOf = async (device: string, deployment: string) => {
    const e = await states.get(deploymentKey(device, deployment));
    if (!e || e.operation !== "PUT") return null;
    const r = decodeJson(DeploymentState, e.string());
    return r.ok ? r.value : null;
  };
  const running = (device: string, deployment: string, image?: string) =>
    waitFor(`${device}/${deployment} Running`, async () => {
      const s = await stateOf(device, deployment);
      return s?.phase === "Running" && (!image || s.score_hash === canonicalHash(JSON.parse(scoreJson(image)))) ? s : undefined;
    });
  const deploy = async (device: string, deployment: string, text: string) => {
    const d = await fleetctl(["deploy", device, deployment, "-f", files.write(text)]);
    expect(d.code, d.err).to.equal(0);
  };
  const shot = (name: string) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  /** The page is no wider than the window: nothing scrolls sideways. */
  const noOverflow = async (what: string) => {
    const w = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, win: window.innerWidth }));
    expect(Math.max(w.doc, w.body), `${what}: page ${w.doc}/${w.body} px wide in a ${w.win} px window`).to.be.at.most(w.win);
  };

  before(async function () {
    this.timeout(120_000);
    rmSync(SHOTS, { recursive: true, force: true });
    mkdirSync(SHOTS, { recursive: true });
    nats = await PrivateNats.start();
    nc = await connectTest(nats.url);
    await ensureFleetResources(nc);
    const kvm = new Kvm(nc);
    states = await kvm.open(BUCKET_DEVICE_STATE);
    desired = await kvm.open(BUCKET_DESIRED_STATE);
    files = new ScoreFiles();
    for (const device of [a, b]) {
      const dir = tempDir("console-agent-");
      const runtime = new FakeRuntime({ device });
      const agent = await startAgent(
        { deviceId: device, natsServers: [nats.url], stateDir: dir, tickSecs: 3600, logLevel: "silent", containerHost: undefined },
        { runtime, logger: silentLogger() },
      );
      agents.push({ agent, dir, runtime });
      await agent.online;
    }
    await deploy(a, "app", scoreJson("img/web:1"));
    await deploy(b, "app", scoreJson("img/web:1"));
    await Promise.all([running(a, "app"), running(b, "app")]);
    for (const { agent } of agents) await agent.publisher.idle(10_000);

    // Device c, as an agent of the new contract reports it: stale (its own 5 s tick, last heard 10 minutes ago), signing off,
    // one deployment degraded with per-service status and one failed.
    const old = new Date(Date.now() - 600_000).toISOString();
    const id = (n: string) => n.repeat(64).slice(0, 64);
    const info: DeviceInfo = { device: c, hostname: "pi-kitchen", arch: "arm64", podman_version: "4.3.1", agent_version: "0.2.0", signing: "off" };
    await (await kvm.open(BUCKET_DEVICE_INFO)).put(c, JSON.stringify(info));
    await (await kvm.open(BUCKET_DEVICE_HEARTBEAT)).put(c, JSON.stringify({ device: c, agent_version: "0.2.0", at: old, deployments: { web: "Degraded", api: "Failed" }, tick_secs: 5 }));
    const degraded: DeploymentState = {
      device: c, deployment: "web", phase: "Degraded", state: "running", score_hash: canonicalHash({ web: 7 }), desired_revision: 3,
      container_ids: { web: id("a"), db: id("b") }, last_error: null, last_event_seq: 0, last_event_at: null, retry_at: null,
      services: {
        web: { container_id: id("a"), image: "img/web:7", state: "running", health: "unhealthy", restarts: 3, last_exit_code: 1, restart_at: null },
        db: { container_id: id("b"), image: "img/db:1", state: "running", health: "healthy", restarts: 0, last_exit_code: null, restart_at: null },
      },
    };
    const failed: DeploymentState = {
      device: c, deployment: "api", phase: "Failed", state: "failed", score_hash: canonicalHash(JSON.parse(scoreJson("img/api:9"))), desired_revision: 1,
      container_ids: {}, last_error: "pulling image img/api:9: manifest unknown", last_event_seq: 0, last_event_at: null, retry_at: new Date(Date.now() + 60_000).toISOString(),
    };
    for (const s of [degraded, failed]) await states.put(deploymentKey(c, s.deployment), JSON.stringify(s));
    await desired.put(deploymentKey(c, "api"), scoreJson("img/api:9"));

    const listening = new Promise<string>((resolve) => {
      served = run(["serve", "--port", "0", "--tick-secs", "3600"], {
        out: () => undefined,
        err: (s) => process.stderr.write(s),
        env: { FLEET_NATS_URL: nats.url },
        signal: stopServe.signal,
        hooks: { onListening: resolve },
      });
    });
    url = await listening;

    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("response", (r) => {
      // The actions' refusals are asserted where they are provoked.
      if (r.status() >= 400 && !r.url().includes("/api/actions/") && !r.url().includes("/api/commands/")) failedRequests.push(`${r.status()} ${r.url()}`);
    });
    // Every asset must come from the package itself: note any request that leaves the server.
    await page.route("**/*", (route) => {
      const u = route.request().url();
      if (!u.startsWith(url)) {
        offSite.push(u);
        return route.abort();
      }
      return route.continue();
    });
  });

  after(async () => {
    await browser?.close();
    stopServe.abort();
    expect(await served).to.equal(0);
    for (const { agent, dir } of agents) {
      await agent.stop(5000);
      rmSync(dir, { recursive: true, force: true });
    }
    files?.remove();
    await nc?.close();
    await nats?.destroy();
  });

  it("the fleet summary counts deployments by phase, stale and unsigned devices, as device-state and device-info say", async () => {
    await page.goto(url);
    await page.locator(`tr.deployment-row[data-device="${c}"]`).first().waitFor();
    const expected: Record<string, number> = { Pending: 0, Running: 0, Degraded: 0, Failed: 0 };
    for await (const k of await states.keys()) {
      const s = await stateOf(...(k.split(".") as [string, string]));
      if (s) expected[s.phase]!++;
    }
    expect(expected).to.deep.equal({ Pending: 0, Running: 2, Degraded: 1, Failed: 1 });
    for (const [phase, n] of Object.entries(expected)) {
      expect(await page.locator(`.summary-card[data-key="${phase}"] .value`).textContent(), phase).to.equal(String(n));
    }
    expect(await page.locator('.summary-card[data-key="all"] .value').textContent()).to.equal("3");
    expect(await page.locator('.summary-card[data-key="stale"] .value').textContent()).to.equal("1");
    expect(await page.locator(`tr.device-row[data-device="${c}"] .badge.stale`).count()).to.equal(1);
    expect(await page.locator(`tr.device-row[data-device="${a}"] .badge.stale`).count()).to.equal(0);
    // Agents without operator keys and without a recorded device key: both marked on the device's row.
    for (const d of [a, c]) expect(await page.locator(`tr.device-row[data-device="${d}"] .trust .badge`).allTextContents()).to.deep.equal(["UNSIGNED", "UNVERIFIED"]);
    // The row shows what device-state says: container ids, and the images per service.
    const s = (await stateOf(a, "app"))!;
    const row = page.locator(`tr.deployment-row[data-device="${a}"][data-deployment="app"]`);
    expect(await row.locator('.container[data-service="web"] .container-id').getAttribute("title")).to.equal(s.container_ids["web"]);
    expect(await row.locator('.image-line[data-service="web"] .image').textContent()).to.equal("img/web:1");
    await noOverflow("fleet");
    await shot("01-fleet");
  });

  it("links are styled, not the browser's blue, and the favicon is served", async () => {
    const color = await page.locator("a.open").first().evaluate((el) => getComputedStyle(el).color);
    expect(color).to.not.be.oneOf(["rgb(0, 0, 238)", "rgb(85, 26, 139)"]);
    // Fetched from here: Chromium does not route a page's own favicon requests through playwright.
    const icon = await fetch(new URL("/favicon.ico", url));
    expect({ status: icon.status, type: icon.headers.get("content-type") }).to.deep.equal({ status: 200, type: "image/svg+xml" });
    expect(await page.locator('link[rel="icon"]').getAttribute("href")).to.equal("/favicon.svg");
  });

  it("search and the phase filter hide the devices and deployments that do not match", async () => {
    await page.locator("#search").fill(a);
    await page.locator(`tr.device-row[data-device="${b}"]`).waitFor({ state: "detached" });
    expect(await page.locator("tr.device-row").evaluateAll((rs) => rs.map((r) => r.getAttribute("data-device")))).to.deep.equal([a]);
    await page.locator("#search").fill("img/web:7");
    await page.locator(`tr.device-row[data-device="${a}"]`).waitFor({ state: "detached" });
    expect(await page.locator("tr.deployment-row").evaluateAll((rs) => rs.map((r) => `${r.getAttribute("data-device")}/${r.getAttribute("data-deployment")}`))).to.deep.equal([`${c}/web`]);
    await page.locator("#search").fill("");
    await page.locator('.summary-card[data-key="Failed"]').click();
    await page.locator(`tr.device-row[data-device="${a}"]`).waitFor({ state: "detached" });
    expect(await page.locator("tr.deployment-row").evaluateAll((rs) => rs.map((r) => r.getAttribute("data-phase")))).to.deep.equal(["Failed"]);
    await noOverflow("fleet, filtered");
    await shot("02-fleet-filtered");
    expect(page.url()).to.include("filter=Failed");
    await page.locator('.chip[data-filter="all"]').click();
    await page.locator(`tr.device-row[data-device="${a}"]`).waitFor();
  });

  it("the device page shows each service's image, health, restarts and container id", async () => {
    await page.goto(`${url}#/device/${c}`);
    const web = page.locator('.deployment-card[data-deployment="web"] tr.service-row[data-service="web"]');
    await web.waitFor();
    expect(await web.locator(".image").textContent()).to.equal("img/web:7");
    expect(await web.locator(".health").textContent()).to.equal("unhealthy");
    expect(await web.locator(".restarts").textContent()).to.equal("3");
    expect(await web.locator(".container-id").getAttribute("title")).to.equal("a".repeat(64));
    expect(await page.locator('.deployment-card[data-deployment="web"] tr.service-row[data-service="db"] .health').textContent()).to.equal("healthy");
    expect(await page.locator("#device-info").textContent()).to.include("pi-kitchen").and.include("applies unsigned desired state");
    // No agent answers for this device (its reports were written by hand): offline, said beside them; its logs likewise.
    await page.locator("#device-ping.offline").filter({ hasText: "offline: its agent does not answer a ping" }).waitFor();
    await web.locator("button.logs-toggle").click();
    await page.locator('.deployment-card[data-deployment="web"] .service-logs[data-service="web"] .logs-status.bad').filter({ hasText: `${c} is offline` }).waitFor();
    await noOverflow("device");
    await shot("03-device");
    // An agent that does not report per-service status yet: the image is the desired one, said so.
    await page.goto(`${url}#/device/${a}`);
    const aweb = page.locator('.deployment-card[data-deployment="app"] tr.service-row[data-service="web"]');
    await aweb.waitFor();
    expect(await aweb.locator(".image").textContent()).to.equal("img/web:1desired");
    expect(await aweb.locator(".container-id").getAttribute("title")).to.equal((await stateOf(a, "app"))!.container_ids["web"]);
  });

  it("opens a deployment: a clean statechart with the current state, and the timeline in domain words", async () => {
    await page.goto(`${url}#/d/${a}/app`);
    await page.locator('#visualiser svg.statechart .state.current[data-state="running"]').waitFor();
    expect(await page.locator("#visualiser svg.statechart .state.current").count()).to.equal(1);
    const drawn = await page.locator("#visualiser svg.statechart .state").evaluateAll((gs) => gs.map((g) => g.getAttribute("data-state")).sort());
    expect(drawn).to.deep.equal(["failed", "pending", "pulling", "removed", "removing", "running", "startingNew", "stoppingOld"]);
    const labels = await page.locator("#visualiser svg.statechart .edge text").allTextContents();
    expect(labels.join(" ")).to.include("stop.done").and.not.match(/xstate|isNewHash|nextIs|UPDATE|always/);
    const names = await page.locator("ol.timeline li .ev-name").allTextContents();
    expect(names).to.deep.equal(["start.done", "stop.done", "pull.done", "desired.updated"]);
    // The first update adds every service.
    expect(await page.locator('ol.timeline li[data-n="1"] .change.add').allTextContents()).to.deep.equal(["+ web image img/web:1", "+ db image img/db:1"]);
    expect(await page.content()).to.not.include("s3cr3t-value");
    await noOverflow("deployment");
    await shot("04-deployment");
  });

  it("stepping back highlights the earlier state and edge, with that step's payload and container ids", async () => {
    await page.locator("#visualiser button.prev").click();
    await page.locator('#visualiser svg.statechart .state.current[data-state="startingNew"]').waitFor();
    expect(await page.locator('#visualiser svg .edge.taken[data-from="stoppingOld"][data-to="startingNew"]').count()).to.equal(1);
    expect(await page.locator("ol.timeline li.selected").getAttribute("data-n")).to.equal("3");
    expect(await page.locator(".step-detail .step-name").textContent()).to.equal("stop.done");
    // Before start.done, the machine had no containers: this step shows none, and knows it (from the first event).
    expect(await page.locator(".step-detail .step-containers .container").count()).to.equal(0);
    await page.locator("#visualiser button.first").click();
    await page.locator('#visualiser svg.statechart .state.current[data-state="pulling"]').waitFor();
    expect(await page.locator(".step-detail .payload").textContent()).to.include('"revision": 1');
    await shot("05-deployment-step-back");
  });

  it("a new upgrade appears live with its per-service change; the view stays on the step the operator picked", async () => {
    await page.locator("#visualiser button.next").click();
    await page.locator('#visualiser svg.statechart .state.current[data-state="stoppingOld"]').waitFor();
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));
    await deploy(a, "app", scoreJson("img/web:2"));
    await page.locator("ol.timeline li").nth(7).waitFor({ timeout: 15_000 });
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).to.equal(true);
    expect(await page.locator("#visualiser svg.statechart .state.current").getAttribute("data-state")).to.equal("stoppingOld");
    expect(await page.locator('ol.timeline li[data-n="5"] .change.replace').textContent()).to.equal("~ web image img/web:1 → img/web:2");
    expect(await page.locator('ol.timeline li[data-n="5"] .change[data-service="db"]').textContent()).to.equal("= db");
    await page.locator("#visualiser button.last").click();
    const after = await running(a, "app", "img/web:2");
    await page.locator(`.step-detail .step-containers .container-id[title="${after.container_ids["web"]}"]`).waitFor();
    expect(await page.locator(".page-head .live-state").textContent()).to.equal("running");
    for (let i = 0; i < 3; i++) await page.locator("#visualiser button.prev").click();
    await page.locator('#visualiser svg.statechart .state.current[data-state="pulling"]').waitFor();
    // The chart and the timeline, below the sticky header (an element screenshot would scroll under it).
    await page.evaluate(() => window.scrollTo(0, 0));
    const box = (await page.locator("#visualiser").boundingBox())!;
    await page.screenshot({ path: `${SHOTS}/visualiser.png`, fullPage: true, clip: { x: box.x - 8, y: box.y - 8, width: box.width + 16, height: box.height + 16 } });
  });

  it("exports a timeline as JSON without env values", async () => {
    const exp = await page.evaluate(async (q) => (await fetch(`/api/export?${q}`)).json(), `device=${a}&deployment=app`);
    expect((exp as { timeline: { steps: unknown[] } }).timeline.steps).to.have.length(8);
    expect(JSON.stringify(exp)).to.not.include("s3cr3t-value");
  });

  it("compares two deployments and highlights what differs: the changed image, not the same one", async () => {
    await page.goto(`${url}#/compare?a=${a}/app&b=${b}/app`);
    const web = page.locator('table.compare tr[data-row="web.image"]');
    await web.waitFor();
    await page.locator("#p0 ol.timeline li").nth(7).waitFor();
    expect(await web.locator("td.differs").allTextContents()).to.deep.equal(["img/web:2", "img/web:1"]);
    expect(await page.locator('table.compare tr[data-row="db.image"] td.differs').count()).to.equal(0);
    expect(await page.locator('table.compare tr[data-row="phase"] td.differs').count()).to.equal(0);
    expect(await page.locator('#p0 svg .state.current[data-state="running"]').count()).to.equal(1);
    await noOverflow("compare deployments");
    await shot("06-compare");
    await page.goto(`${url}#/compare-devices?a=${a}&b=${c}`);
    await page.locator('table.compare tr[data-row="hostname"]').waitFor();
    expect(await page.locator('table.compare tr[data-row="arch"] td.differs').count()).to.equal(2);
    await noOverflow("compare devices");
    await shot("07-compare-devices");
  });

  it("retry writes the same desired value again, only after the operator confirms", async () => {
    const before = (await desired.get(deploymentKey(c, "api")))!;
    await page.goto(`${url}#/device/${c}`);
    const retry = page.locator('.deployment-card[data-deployment="api"] button[data-action="retry"]');
    await retry.click();
    await page.locator("dialog.confirm[open]").waitFor();
    await page.locator("dialog.confirm button.cancel").click();
    await page.locator("dialog.confirm[open]").waitFor({ state: "detached" });
    expect((await desired.get(deploymentKey(c, "api")))!.revision, "cancelled: nothing written").to.equal(before.revision);
    await retry.click();
    await page.locator("dialog.confirm button.ok").click();
    await page.locator("#toast").filter({ hasText: "retry written" }).waitFor();
    const now = (await desired.get(deploymentKey(c, "api")))!;
    expect(now.revision).to.be.greaterThan(before.revision);
    expect(now.string()).to.equal(before.string());
  });

  it("delete asks for the deployment's name, then deletes its desired state; the agent removes it", async () => {
    await deploy(a, "cache", scoreJson("img/web:1", "img/cache:1"));
    await running(a, "cache");
    await page.goto(`${url}#/d/${a}/cache`);
    await page.locator('.page-head button[data-action="delete"]').click();
    const ok = page.locator("dialog.confirm button.ok");
    expect(await ok.isDisabled()).to.equal(true);
    await page.locator("dialog.confirm input[name=typed]").fill("cach");
    expect(await ok.isDisabled()).to.equal(true);
    await page.locator("dialog.confirm input[name=typed]").fill("cache");
    await noOverflow("confirmation");
    await shot("08-confirm-delete");
    await ok.click();
    await page.locator("#toast").filter({ hasText: "deleted" }).waitFor();
    expect(await desired.get(deploymentKey(a, "cache")).then((e) => e?.operation)).to.not.equal("PUT");
    await waitFor("cache removed", async () => (await stateOf(a, "cache"))?.state === "removed");
  });

  it("the device page shows the agent's own answer to a ping", async () => {
    await page.goto(`${url}#/device/${a}`);
    const ping = page.locator("#device-ping.online");
    await ping.waitFor();
    expect(await ping.textContent()).to.match(/^answers a ping in \d+ ms · agent \S+ · up \d+/);
  });

  it("the logs panel shows a live service's lines (env values hidden), follows a new line, and downloads them", async () => {
    const { agent, runtime } = agents[0]!;
    const id = agent.supervisor.snapshot("app")!.context.containerIds["web"]!;
    runtime.writeLog(id, "listening on :8080\nsecret is s3cr3t-value");
    runtime.writeLog(id, "cache cold", { stream: "stderr" });
    await page.goto(`${url}#/device/${a}`);
    const row = page.locator('.deployment-card[data-deployment="app"] tr.service-row[data-service="web"]');
    await row.locator("button.logs-toggle").click();
    const panel = page.locator('.deployment-card[data-deployment="app"] .service-logs[data-service="web"]');
    await panel.locator(".logs-status").filter({ hasText: "3 lines" }).waitFor();
    const texts = () => panel.locator(".log-line").evaluateAll((ls) => ls.map((l) => `${l.querySelector(".log-stream")!.textContent} ${l.querySelector(".log-text")!.textContent}`));
    expect(await texts()).to.deep.equal(["out listening on :8080", "out secret is <redacted>", "err cache cold"]);
    expect(await panel.textContent()).to.not.include("s3cr3t-value");
    // Follow: a line the service prints now appears, once, after the others.
    await panel.locator("input.logs-follow").check();
    runtime.writeLog(id, "new request from 10.0.0.7");
    await panel.locator(".log-line .log-text").filter({ hasText: "new request from 10.0.0.7" }).waitFor();
    await panel.locator(".logs-status").filter({ hasText: "4 lines · following" }).waitFor();
    expect(await texts()).to.deep.equal(["out listening on :8080", "out secret is <redacted>", "err cache cold", "out new request from 10.0.0.7"]);
    // A report redraws the page (a heartbeat here): the panel stays open and goes on following.
    await page.evaluate(() => document.querySelector("#device-info")!.setAttribute("data-drawn-before", ""));
    await agent.tick();
    await page.waitForFunction(() => document.querySelector("#device-info") !== null && !document.querySelector("#device-info[data-drawn-before]"));
    runtime.writeLog(id, "second request");
    await panel.locator(".log-line .log-text").filter({ hasText: "second request" }).waitFor();
    expect(await panel.locator(".log-line").count()).to.equal(5);
    await noOverflow("logs panel");
    await shot("10-logs-panel");
    await panel.locator("input.logs-follow").uncheck();
    // Download: the same lines as a text file.
    const [download] = await Promise.all([page.waitForEvent("download"), panel.locator("a.logs-download").click()]);
    expect(download.suggestedFilename()).to.equal(`${a}-app-web.log`);
    const text = await download.createReadStream().then(async (s) => {
      let t = "";
      for await (const chunk of s) t += String(chunk);
      return t;
    });
    expect(text.split("\n").filter(Boolean).map((l) => l.replace(/^\S+ /, ""))).to.deep.equal(["stdout listening on :8080", "stdout secret is <redacted>", "stderr cache cold", "stdout new request from 10.0.0.7", "stdout second request"]);
    // A bad query is refused naming the field.
    const bad = await page.evaluate(async (device) => (await fetch(`/api/commands/logs?device=${device}&deployment=app&service=web&tial=5`)).json(), a);
    expect(bad).to.deep.equal({ error: "tial: unknown field (did you mean tail?)" });
  });

  it("restart asks first, then restarts the service's container through its agent, and the journal says so", async () => {
    const { agent, runtime } = agents[0]!;
    const id = agent.supervisor.snapshot("app")!.context.containerIds["web"]!;
    const before = runtime.count("restart");
    await page.goto(`${url}#/device/${a}`);
    await page.locator('.deployment-card[data-deployment="app"] tr.service-row[data-service="web"] button[data-action="restart"]').click();
    await page.locator("dialog.confirm button.cancel").click();
    expect(runtime.count("restart"), "cancelled: nothing restarted").to.equal(before);
    await page.locator('.deployment-card[data-deployment="app"] tr.service-row[data-service="web"] button[data-action="restart"]').click();
    await page.locator("dialog.confirm button.ok").click();
    await page.locator("#toast").filter({ hasText: `restarted web: ${id.slice(0, 12)}` }).waitFor();
    expect(runtime.count("restart")).to.equal(before + 1);
    await agent.publisher.idle(10_000);
    await page.goto(`${url}#/d/${a}/app`);
    const step = page.locator("ol.timeline li.step").filter({ has: page.locator(".ev-name", { hasText: "service.restarted" }) });
    await step.waitFor();
    expect(await step.locator(".ev-summary").textContent()).to.equal(`web → ${id.slice(0, 12)} (by an operator)`);
    expect(await step.locator(".ev-move").textContent()).to.equal("running → running");
    const r = await page.evaluate(async () => (await fetch("/api/actions/restart", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ device: "x", deployment: "y", service: "web", confirm: "x/y/web" }) })).json());
    expect(r).to.deep.equal({ error: "x is offline: no agent answers its commands (no responders)" });
    // Nothing acts without naming its target, nor from another origin's form.
    const bad = await page.evaluate(async () => (await fetch("/api/actions/delete", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ device: "x", deployment: "y", confirm: "x/z" }) })).json());
    expect(bad).to.deep.equal({ error: 'confirm: expected "x/y", got "x/z"' });
    const form = await page.evaluate(async () => (await fetch("/api/actions/delete", { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" })).status);
    expect(form).to.equal(415);
  });

  it("loaded nothing from elsewhere, threw nothing, and no request failed", () => {
    expect(pageErrors).to.deep.equal([]);
    expect(offSite).to.deep.equal([]);
    expect(failedRequests).to.deep.equal([]);
  });
});
