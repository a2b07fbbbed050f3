// e2e: the roll-forward upgrade path of the real agent process on real Podman and NATS.
import { expect } from "chai";
import { closeSync, openSync, readFileSync } from "node:fs";
import { canonicalHash } from "../../contracts/canonical-json.js";
import { TEST_IMAGES } from "../support/podman.env.js";
import { score, sleep, startsSeen, useScenario, type ContainerEvent, type Scenario } from "./support/scenario.js";

const hashOf = (s: unknown) => canonicalHash(s as never);

/**
 * A container's log file (k8s-file), opened now: the open descriptor still reads the file after the
 * agent has removed the container, so the last line written before the exit is never missed.
 */
async function openLog(s: Scenario, id: string): Promise<{ text: () => string; close: () => void }> {
  const path = (await s.podman.podman(["inspect", "--format", "{{.HostConfig.LogConfig.Path}}", id])).stdout.trim();
  const fd = openSync(path, "r");
  s.cleanups.push(() => closeSync(fd));
  return { text: () => readFileSync(fd, "utf8"), close: () => undefined };
}

const ofAction = (events: ContainerEvent[], action: string, id?: string) => events.filter((e) => e.action === action && (id === undefined || e.id === id));

describe("e2e: upgrades", function () {
  const sc = useScenario();

  it("1. v1 → v2 → v3 → v4 — v2 names an image no registry serves, v4 exits at start: Failed keeps v1 serving; v3 replaces v1 by recorded ids; v4 fails with no revert", async () => {
    const s = sc.current;
    const events = await s.podmanEvents();
    const port = await s.podman.freePort();
    s.startAgent();
    const v1 = score([{ name: "web", image: TEST_IMAGES.v1, hostPort: port }, { name: "side", image: TEST_IMAGES.v1 }]);
    await s.put("app", v1);
    const r1 = await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v1), "v1 Running");
    expect(await s.http(port)).to.equal("v1");

    // v2: the web image is one no registry serves. Nothing may be stopped before the images are there.
    const absent = s.w.registry.ref(`absent/${s.device}`, "v2");
    const v2 = score([{ name: "web", image: absent, hostPort: port }, { name: "side", image: TEST_IMAGES.v2 }]);
    await s.put("app", v2);
    const r2 = await s.waitState("app", (x) => x.phase === "Failed" && x.score_hash === hashOf(v2), "v2 Failed");
    expect(r2.last_error).to.include(absent);
    expect(r2.state).to.equal("failed");
    expect(r2.container_ids).to.deep.equal(r1.container_ids);
    for (const id of Object.values(r1.container_ids)) expect((await s.podman.client.inspect(id)).State.Running, `v1 container ${id} running`).to.equal(true);
    expect(await s.http(port), "v1 still answers after the failed pull").to.equal("v1");
    expect(ofAction(events, "died").length + ofAction(events, "remove").length, "nothing stopped or removed by the failed v2").to.equal(0);

    // v3: roll forward from Failed; v1's containers are stopped by their recorded ids before v3's start.
    const v3 = score([{ name: "web", image: TEST_IMAGES.v3, hostPort: port }, { name: "side", image: TEST_IMAGES.v3 }]);
    const n3 = s.journal("app").length;
    const t3 = Date.now();
    await s.put("app", v3);
    const r3 = await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v3), "v3 Running");
    s.recoveryMs = Date.now() - t3;
    s.recoveryWhat = "put v3 after the failed v2 → Running";
    expect(await s.http(port)).to.equal("v3");
    const stopEvent = s.journal("app").slice(n3).find((e) => e.event.type === "stop.done" && e.to === "startingNew");
    expect(stopEvent?.event.type === "stop.done" ? [...stopEvent.event.stopped].sort() : null).to.deep.equal(["side", "web"]);
    await startsSeen(events, Object.values(r3.container_ids));
    for (const [service, oldId] of Object.entries(r1.container_ids)) {
      const removed = ofAction(events, "remove", oldId);
      expect(removed, `v1 ${service} removed`).to.have.length(1);
      const firstStart = ofAction(events, "start", r3.container_ids[service]!)[0];
      expect(firstStart, `v3 ${service} started`).to.not.equal(undefined);
      expect(removed[0]!.at, `v1 ${service} gone before v3 ${service} started`).to.be.at.most(firstStart!.at);
      expect(ofAction(events, "died", oldId)[0]?.exitCode, `v1 ${service} exited 0 on SIGTERM`).to.equal(0);
    }

    // v4: web exits at start → Failed; no revert: v3's web stays gone, nothing restarts it.
    const v4 = score([{ name: "web", image: TEST_IMAGES.crash, hostPort: port }, { name: "side", image: TEST_IMAGES.v3 }]);
    const mark = events.length;
    await s.put("app", v4);
    const r4 = await s.waitState("app", (x) => x.phase === "Failed" && x.score_hash === hashOf(v4), "v4 Failed");
    expect(r4.last_error).to.match(/web exited at start/);
    expect(r4.container_ids["side"], "unchanged service untouched").to.equal(r3.container_ids["side"]);
    const crashId = r4.container_ids["web"]!;
    await sleep(3500); // three ticks
    const later = events.slice(mark);
    expect(ofAction(later, "start", r3.container_ids["web"]), "v3 web never restarted").to.have.length(0);
    expect(later.filter((e) => e.action === "create" && e.scoreHash === hashOf(v3)), "no container of v3 created again").to.have.length(0);
    expect(ofAction(later, "start", crashId), "the crashing container is not restarted by ticks").to.have.length(1);
    const webs = (await s.containersOf("app")).filter((c) => c.Labels?.["io.fleet.service"] === "web");
    expect(webs.map((c) => c.Id)).to.deep.equal([crashId]);
    expect(webs[0]!.State).to.equal("exited");
    await s.verify(["app"]);
  });

  it("2. graceful stop — the replaced container logs its SIGTERM line and exits 0; a SIGTERM-ignoring one is killed after grace_period_secs and the upgrade completes", async () => {
    const s = sc.current;
    const events = await s.podmanEvents();
    s.startAgent();
    const v1 = score([{ name: "web", image: TEST_IMAGES.v1 }], { grace_period_secs: 5 });
    await s.put("app", v1);
    const r1 = await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v1), "v1 Running");
    const logs = await openLog(s, r1.container_ids["web"]!);
    const v2 = score([{ name: "web", image: TEST_IMAGES.v2 }], { grace_period_secs: 5 });
    const t2 = Date.now();
    await s.put("app", v2);
    await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v2), "v2 Running");
    const gracefulMs = Date.now() - t2;
    expect(logs.text()).to.include("fleet-test v1: SIGTERM, exiting");
    expect(ofAction(events, "died", r1.container_ids["web"])[0]?.exitCode).to.equal(0);

    // stubborn ignores SIGTERM; grace 2 s, then Podman's SIGKILL; the next upgrade still completes.
    const stub = score([{ name: "web", image: TEST_IMAGES.stubborn }], { grace_period_secs: 2 });
    await s.put("app", stub);
    const rs = await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(stub), "stubborn Running");
    const stubId = rs.container_ids["web"]!;
    const v3 = score([{ name: "web", image: TEST_IMAGES.v3 }], { grace_period_secs: 2 });
    const n3 = s.journal("app").length;
    const t3 = Date.now();
    await s.put("app", v3);
    const r3 = await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v3), "v3 Running");
    s.recoveryMs = Date.now() - t3;
    s.recoveryWhat = "upgrade off a SIGTERM-ignoring container (grace 2 s) → Running";
    const died = ofAction(events, "died", stubId)[0];
    expect(died?.exitCode, "stubborn killed by SIGKILL").to.equal(137);
    const stopping = s.journal("app").slice(n3).find((e) => e.to === "stoppingOld");
    const stopMs = died!.at - Date.parse(stopping!.at);
    expect(stopMs, "killed only after the grace period").to.be.at.least(1900);
    expect(r3.container_ids["web"]).to.not.equal(stubId);
    s.notes.push(`graceful v1→v2 ${gracefulMs} ms; stubborn killed ${Math.round(stopMs)} ms after stoppingOld (grace 2 s)`);
    await s.verify(["app"]);
  });

  it("10. two deployments at once — two deployments on one device upgrade at the same time without interfering", async () => {
    const s = sc.current;
    const events = await s.podmanEvents();
    const [pa, pb] = [await s.podman.freePort(), await s.podman.freePort()];
    s.startAgent();
    const a1 = score([{ name: "web", image: TEST_IMAGES.v1, hostPort: pa }, { name: "side", image: TEST_IMAGES.v1 }]);
    const b1 = score([{ name: "web", image: TEST_IMAGES.v1, hostPort: pb }]);
    await Promise.all([s.put("alpha", a1), s.put("beta", b1)]);
    const [ra, rb] = await Promise.all([
      s.waitState("alpha", (x) => x.phase === "Running" && x.score_hash === hashOf(a1), "alpha v1"),
      s.waitState("beta", (x) => x.phase === "Running" && x.score_hash === hashOf(b1), "beta v1"),
    ]);
    const a2 = score([{ name: "web", image: TEST_IMAGES.v2, hostPort: pa }, { name: "side", image: TEST_IMAGES.v1 }]);
    const b2 = score([{ name: "web", image: TEST_IMAGES.v3, hostPort: pb }]);
    const [na, nb] = [s.journal("alpha").length, s.journal("beta").length];
    const t0 = Date.now();
    await Promise.all([s.put("alpha", a2), s.put("beta", b2)]);
    const [ra2, rb2] = await Promise.all([
      s.waitState("alpha", (x) => x.phase === "Running" && x.score_hash === hashOf(a2), "alpha v2"),
      s.waitState("beta", (x) => x.phase === "Running" && x.score_hash === hashOf(b2), "beta v3"),
    ]);
    s.recoveryMs = Date.now() - t0;
    s.recoveryWhat = "both puts → both Running";
    expect(await s.http(pa)).to.equal("v2");
    expect(await s.http(pb)).to.equal("v3");
    expect(ra2.container_ids["side"], "alpha's unchanged service untouched").to.equal(ra.container_ids["side"]);
    // Each upgrade removed exactly its own old web container and nothing of the other deployment.
    const removed = ofAction(events, "remove");
    expect(removed.map((e) => e.id).sort()).to.deep.equal([ra.container_ids["web"], rb.container_ids["web"]].sort());
    for (const e of removed) expect(e.deployment).to.equal(e.id === ra.container_ids["web"] ? "alpha" : "beta");
    // The two upgrades overlapped in time (they really ran at once).
    const span = (d: string) => {
      const j = s.journal(d).slice(d === "alpha" ? na : nb);
      return [Date.parse(j.find((e) => e.to === "pulling")!.at), Date.parse(j.find((e) => e.to === "running")!.at)] as const;
    };
    const [sa, sb] = [span("alpha"), span("beta")];
    s.notes.push(`alpha ${sa[1] - sa[0]} ms, beta ${sb[1] - sb[0]} ms, overlap ${Math.max(0, Math.min(sa[1], sb[1]) - Math.max(sa[0], sb[0]))} ms`);
    expect(rb2.container_ids["web"]).to.not.equal(rb.container_ids["web"]);
    await s.verify(["alpha", "beta"]);
  });
});
