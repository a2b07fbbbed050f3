// The dashboard in Debian's Chromium (playwright-core, headless) against `fleetctl serve` run in
// process, with a live in-process agent on FakeRuntime feeding it through the real NATS server.
import { expect } from "chai";
import { copyFileSync, mkdirSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { ensureFleetResources } from "../../fleet/resources.js";
import { run } from "../../cli/main.js";
import { decodeJson } from "../../contracts/decode.js";
import { DeploymentState } from "../../contracts/deployment-state.codec.js";
import { BUCKET_DEVICE_STATE, deploymentKey } from "../../contracts/wire-names.js";
import { ScoreFiles, fleetctl, scoreJson, startTestAgent, type TestAgent } from "../integration/cli/cli.helpers.js";
import { SHARED_NATS, cleanupDevice, connectTest, uniqueDevice, waitFor } from "../support/nats.js";

const ARTIFACTS = ".test-artifacts";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

describe("dashboard and visualiser in Chromium", function () {
  let nc: NatsConnection;
  let states: KV;
  let browser: Browser;
  let page: Page;
  let agent: TestAgent;
  let files: ScoreFiles;
  let url: string;
  let served: Promise<number>;
  const stopServe = new AbortController();
  const device = uniqueDevice();
  const pageErrors: string[] = [];
  const offSite: string[] = [];

  const stateOf = async () => {
    const e = await states.get(deploymentKey(device, "app"));
    if (!e || e.operation !== "PUT") return null;
    const r = decodeJson(DeploymentState, e.string());
    return r.ok ? r.value : null;
  };
  const shot = (name: string) => page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    nc = await connectTest();
    await ensureFleetResources(nc);
    states = await new Kvm(nc).open(BUCKET_DEVICE_STATE);
    files = new ScoreFiles();
    agent = await startTestAgent(device);
    const d = await fleetctl(["deploy", device, "app", "-f", files.write(scoreJson("img/web:1"))]);
    expect(d.code, d.err).to.equal(0);
    await waitFor("Running v1", async () => (await stateOf())?.phase === "Running");
    await agent.agent.publisher.idle(10_000);

    // `fleetctl serve --port 0`, in process, until stopServe aborts.
    const listening = new Promise<string>((resolve) => {
      served = run(["serve", "--port", "0", "--tick-secs", "5"], {
        out: () => undefined,
        err: (s) => process.stderr.write(s),
        env: { FLEET_NATS_URL: SHARED_NATS },
        signal: stopServe.signal,
        hooks: { onListening: resolve },
      });
    });
    url = await listening;

    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on("pageerror", (e) => pageErrors.push(e.message));
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
    await agent?.stop();
    await cleanupDevice(nc, device);
    files?.remove();
    await nc?.close();
  });

  it("the device row shows the container ids from device-state, with heartbeat age", async () => {
    const s = (await stateOf())!;
    await page.goto(url);
    const row = page.locator(`tr.deployment-row[data-device="${device}"][data-deployment="app"]`);
    await row.waitFor();
    const web = row.locator('.container[data-service="web"] .container-id');
    expect(await web.textContent()).to.equal(s.container_ids["web"]!.slice(0, 12));
    expect(await web.getAttribute("title")).to.equal(s.container_ids["web"]);
    expect(await row.locator(".state").textContent()).to.equal("running");
    const hb = await page.locator(`tr.device-row[data-device="${device}"] .heartbeat`).textContent();
    expect(hb).to.not.include("never");
    await shot("01-devices");
  });

  it("opening the deployment shows the statechart with the current state highlighted", async () => {
    await page.locator(`tr.deployment-row[data-device="${device}"] a.open`).click();
    await page.locator('#visualiser svg.statechart .state.current[data-state="running"]').waitFor();
    expect(await page.locator("#visualiser svg.statechart .state.current").count()).to.equal(1);
    // Drawn from the machine definition: all eight states are there.
    const drawn = await page.locator("#visualiser svg.statechart .state").evaluateAll((gs) => gs.map((g) => g.getAttribute("data-state")).sort());
    expect(drawn).to.deep.equal(["failed", "pending", "pulling", "removed", "removing", "running", "startingNew", "stoppingOld"]);
    expect(await page.locator("ol.timeline li").count()).to.equal(4);
    expect(await page.locator(".desired").textContent()).to.include("SECRET").and.not.include("s3cr3t-value");
    expect(await page.content()).to.not.include("s3cr3t-value");
    await shot("02-visualiser-current");
  });

  it("stepping the timeline back highlights the earlier state, with that step's event and container ids", async () => {
    await page.locator("#visualiser button.prev").click();
    await page.locator('#visualiser svg.statechart .state.current[data-state="startingNew"]').waitFor();
    expect(await page.locator("#visualiser svg.statechart .state.current").count()).to.equal(1);
    expect(await page.locator('#visualiser svg .edge.taken[data-from="stoppingOld"][data-to="startingNew"]').count()).to.equal(1);
    expect(await page.locator("ol.timeline li.selected").getAttribute("data-n")).to.equal("3");
    // In the journal's vocabulary, never XState's names.
    expect(await page.locator(".step-detail .payload").textContent()).to.include('"type": "stop.done"').and.not.include("xstate");
    // Before startNew ran, the machine had no container ids: this step shows none.
    expect(await page.locator(".step-detail .step-containers .container").count()).to.equal(0);
    await page.locator("#visualiser button.first").click();
    await page.locator('#visualiser svg.statechart .state.current[data-state="pulling"]').waitFor();
    expect(await page.locator(".step-detail .payload").textContent()).to.include('"type": "desired.updated"');
    await page.locator("#visualiser button.next").click();
    await page.locator("#visualiser button.next").click();
    await page.locator('#visualiser svg.statechart .state.current[data-state="startingNew"]').waitFor();
    await shot("03-visualiser-step-back");
  });

  it("a new upgrade appears live, without a reload", async () => {
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));
    const before = (await stateOf())!;
    const d = await fleetctl(["deploy", device, "app", "-f", files.write(scoreJson("img/web:2"))]);
    expect(d.code, d.err).to.equal(0);
    await page.locator("ol.timeline li").nth(7).waitFor({ timeout: 15_000 });
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).to.equal(true);
    // The operator was looking at an earlier step: the view stays there while new steps arrive.
    expect(await page.locator("#visualiser svg.statechart .state.current").getAttribute("data-state")).to.equal("startingNew");
    await page.locator("#visualiser button.last").click();
    await page.locator('#visualiser svg.statechart .state.current[data-state="running"]').waitFor();
    const after = await waitFor("Running v2", async () => {
      const s = await stateOf();
      return s && s.phase === "Running" && s.container_ids["web"] !== before.container_ids["web"] ? s : undefined;
    });
    await page.locator(`.step-detail .step-containers .container-id[title="${after.container_ids["web"]}"]`).waitFor();
    expect(await page.locator(".summary .live-state").textContent()).to.equal("running");
    await shot("04-visualiser-live-upgrade");
    // Step back onto the upgrade's pulling step for the README's picture.
    for (let i = 0; i < 3; i++) await page.locator("#visualiser button.prev").click();
    await page.locator('#visualiser svg.statechart .state.current[data-state="pulling"]').waitFor();
    await page.locator("#visualiser").screenshot({ path: `${ARTIFACTS}/visualiser.png` });
  });

  it("exports a timeline as JSON and compares two deployments side by side", async () => {
    const exp = await page.evaluate(async (q) => (await fetch(`/api/export?${q}`)).json(), `device=${device}&deployment=app`);
    expect((exp as { timeline: { steps: unknown[] } }).timeline.steps).to.have.length(8);
    expect(JSON.stringify(exp)).to.not.include("s3cr3t-value");
    // A second deployment on the same device, then both timelines side by side.
    const d = await fleetctl(["deploy", device, "cache", "-f", files.write(scoreJson("img/web:1", "img/cache:1"))]);
    expect(d.code, d.err).to.equal(0);
    await waitFor("cache Running", async () => {
      const e = await states.get(deploymentKey(device, "cache"));
      return e?.operation === "PUT" && (e.json() as { phase: string }).phase === "Running";
    });
    await page.goto(`${url}#/compare?a=${device}/app&b=${device}/cache`);
    await page.locator("#p0 ol.timeline li").nth(7).waitFor();
    await page.locator("#p1 ol.timeline li").nth(3).waitFor();
    expect(await page.locator('#p0 svg .state.current[data-state="running"]').count()).to.equal(1);
    expect(await page.locator('#p1 svg .state.current[data-state="running"]').count()).to.equal(1);
    await shot("05-compare");
    expect(pageErrors).to.deep.equal([]);
    expect(offSite).to.deep.equal([]);
  });
});
