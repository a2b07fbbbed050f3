// e2e: the world going away under the agent: its NATS server stopped mid-upgrade, a boot with NATS
// unreachable, and the Podman service restarted under it. NATS here is always a private server of
// the test's own (stopped and restarted on the same store), never the shared one.
import { expect } from "chai";
import { canonicalHash } from "../../contracts/canonical-json.js";
import type { JournalEvent } from "../../contracts/journal-event.codec.js";
import { PrivateNats } from "../support/nats.js";
import { TEST_IMAGES } from "../support/podman.env.js";
import { score, sleep, useScenario, type Scenario } from "./support/scenario.js";
import { startPodmanService, stopPodmanService } from "./support/suite.js";

const hashOf = (s: unknown) => canonicalHash(s as never);
const lastTo = (state: string) => (ev: JournalEvent[]) => ev.at(-1)?.to === state;

async function privateNats(s: Scenario): Promise<PrivateNats> {
  const nats = await PrivateNats.start();
  s.cleanups.push(() => nats.destroy());
  s.useNats([nats.url]);
  await s.conn();
  return nats;
}

describe("e2e: outages", function () {
  const sc = useScenario();

  it("4. NATS outage — NATS stopped ≥ 10 s mid-upgrade; containers unaffected, the upgrade completes offline, queued events published in order, device-state catches up", async () => {
    const s = sc.current;
    const nats = await privateNats(s);
    const events = await s.podmanEvents();
    const port = await s.podman.freePort();
    s.startAgent();
    const v1 = score([{ name: "web", image: TEST_IMAGES.stubborn, hostPort: port }, { name: "side", image: TEST_IMAGES.v1 }], { grace_period_secs: 3 });
    await s.put("app", v1);
    const r1 = await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
    await s.caughtUp(["app"]);
    const v2 = score([{ name: "web", image: TEST_IMAGES.v2, hostPort: port }, { name: "side", image: TEST_IMAGES.v1 }], { grace_period_secs: 3 });
    await s.put("app", v2);
    await s.waitJournal("app", lastTo("stoppingOld"), "in stoppingOld");
    const published = await s.lastStreamN("app");
    const tDown = Date.now();
    await nats.stop();
    const offline = await s.waitJournal("app", lastTo("running"), "upgrade completed offline", 30_000);
    const newWeb = (await s.containersOf("app")).find((c) => c.Labels?.["io.fleet.service"] === "web" && c.State === "running");
    expect(newWeb?.Labels?.["io.fleet.score-hash"]).to.equal(hashOf(v2));
    expect(await s.http(port), "the new container serves while NATS is away").to.equal("v2");
    await sleep(Math.max(0, 10_500 - (Date.now() - tDown)));
    expect(s.agent!.running).to.equal(true);
    const queued = s.journal("app").length - published;
    const mark = events.length;
    const tUp = Date.now();
    await nats.start();
    await s.caughtUp(["app"], 60_000);
    s.recoveryMs = Date.now() - tUp;
    s.recoveryWhat = `NATS back → ${queued} queued events published and device-state caught up (outage ${((tUp - tDown) / 1000).toFixed(1)} s)`;
    const r2 = (await s.state("app"))!;
    expect(r2.score_hash).to.equal(hashOf(v2));
    expect(r2.container_ids["web"]).to.equal(newWeb!.Id);
    expect(r2.container_ids["side"], "unchanged service untouched").to.equal(r1.container_ids["side"]);
    expect(offline.length).to.be.greaterThan(published);
    await sleep(1500);
    expect(events.slice(mark).filter((e) => e.action !== "exec_died" && e.action !== "health_status"), "no container touched after the reconnect").to.deep.equal([]);
    await s.verify(["app"]);
  });

  it("5. offline boot — started with NATS unreachable it keeps the last applied deployment running from its state dir, recreates a missing container, and publishes what it queued once NATS is up", async () => {
    const s = sc.current;
    const nats = await privateNats(s);
    s.startAgent();
    const v1 = score([{ name: "web", image: TEST_IMAGES.v1 }, { name: "side", image: TEST_IMAGES.v1 }]);
    await s.put("app", v1);
    const r1 = await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
    await s.caughtUp(["app"]);
    const stopped = await s.agent!.stop();
    expect(stopped.code, "graceful stop on SIGTERM").to.equal(0);
    await nats.stop();
    const webBefore = await s.podman.client.inspect(r1.container_ids["web"]!);
    await s.podman.client.remove(r1.container_ids["side"]!, { force: true, timeout: 0 });
    const n0 = s.journal("app").length;

    const t0 = Date.now();
    s.startAgent();
    const repaired = await s.waitJournal("app", (ev) => ev.length > n0 && ev.at(-1)!.to === "running", "the tick recreated the missing container", 30_000);
    const repairMs = Date.now() - t0;
    const sideNow = (await s.containersOf("app")).find((c) => c.Labels?.["io.fleet.service"] === "side");
    expect(sideNow?.State).to.equal("running");
    expect(sideNow!.Id).to.not.equal(r1.container_ids["side"]);
    const webNow = await s.podman.client.inspect(r1.container_ids["web"]!);
    expect(webNow.State.Running && webNow.State.StartedAt === webBefore.State.StartedAt, "the healthy container untouched").to.equal(true);
    await sleep(2000);
    expect(s.agent!.logs("connected to NATS"), "still offline").to.have.length(0);

    const tUp = Date.now();
    await nats.start();
    await s.caughtUp(["app"], 60_000);
    s.recoveryMs = Date.now() - tUp;
    s.recoveryWhat = `NATS up → ${repaired.length - n0} queued events published, device-state caught up`;
    s.notes.push(`offline boot → missing container recreated in ${repairMs} ms`);
    const r2 = (await s.state("app"))!;
    expect(r2.container_ids["side"]).to.equal(sideNow!.Id);
    expect(r2.container_ids["web"]).to.equal(r1.container_ids["web"]);
    await s.waitState("app", () => true, "device-state");
    await waitHeartbeat(s, tUp);
    await s.verify(["app"]);
  });

  it("6. Podman restart — the Podman service restarted mid-run: no healthy container recreated; the agent reconnects and upgrades again", async () => {
    const s = sc.current;
    let events = await s.podmanEvents();
    const port = await s.podman.freePort();
    s.startAgent();
    const v1 = score([{ name: "web", image: TEST_IMAGES.v1, hostPort: port }, { name: "side", image: TEST_IMAGES.v1 }]);
    await s.put("app", v1);
    const r1 = await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
    const startedAt = Object.fromEntries(await Promise.all(Object.entries(r1.container_ids).map(async ([svc, id]) => [svc, (await s.podman.client.inspect(id)).State.StartedAt] as const)));
    const n0 = s.journal("app").length;

    const tDown = Date.now();
    await stopPodmanService(s.w);
    try {
      await sleep(3000); // three failed ticks
      expect(await s.http(port), "containers keep running without the service").to.equal("v1");
      expect(s.agent!.running).to.equal(true);
    } finally {
      await startPodmanService(s.w);
    }
    const tUp = Date.now();
    events = await s.podmanEvents();
    await sleep(3000); // three ticks against the restarted service
    expect(s.agent!.logs(/listing containers failed/).length, "the ticks noticed the outage").to.be.greaterThan(0);
    expect(s.journal("app").length, "no transition: nothing repaired").to.equal(n0);
    for (const [svc, id] of Object.entries(r1.container_ids)) {
      const c = await s.podman.client.inspect(id);
      expect(c.State.Running && c.State.StartedAt === startedAt[svc], `${svc} untouched`).to.equal(true);
    }
    expect(events.filter((e) => ["create", "start", "died", "remove"].includes(e.action))).to.deep.equal([]);

    const v2 = score([{ name: "web", image: TEST_IMAGES.v2, hostPort: port }, { name: "side", image: TEST_IMAGES.v1 }]);
    await s.put("app", v2);
    await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v2), "v2 Running after the restart");
    s.recoveryMs = Date.now() - tUp;
    s.recoveryWhat = "Podman back → an upgrade completed through it (3 s of ticks in between)";
    s.notes.push(`service down ${((tUp - tDown) / 1000).toFixed(1)} s`);
    expect(await s.http(port)).to.equal("v2");
    await s.verify(["app"]);
  });
});

async function waitHeartbeat(s: Scenario, after: number) {
  const until = Date.now() + 15_000;
  for (;;) {
    const at = await s.heartbeatAt().catch(() => null);
    if (at && Date.parse(at) >= after) return;
    if (Date.now() > until) throw new Error("no heartbeat after NATS came up");
    await sleep(200);
  }
}
