import { expect } from "chai";
import { waitFor } from "xstate";
import type { PodmanV0Score } from "../../contracts/score.codec.js";
import { FakeRuntime } from "../../runtime/fake.runtime.js";
import { DeploymentHarness } from "../support/deployment.harness.js";

const svc = (name: string, image: string, extra: object = {}) => ({ name, image, ...extra });
// min_ready_secs 0: started is ready, so these tests wait for no readiness (the tests of it set their own).
const score = (...services: PodmanV0Score["services"]): PodmanV0Score => ({ services, lifecycle: { stop_signal: "SIGTERM", grace_period_secs: 7, min_ready_secs: 0 } });

/** Resolves once `pred` holds: for what changes in the runtime without a machine event (a restart). */
async function until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe("deployment machine on FakeRuntime", () => {
  let fake: FakeRuntime;
  let h: DeploymentHarness;
  beforeEach(() => {
    fake = new FakeRuntime({ device: "d1" });
    // A short backoff: a crash loop's restarts come within milliseconds, in the same order.
    h = new DeploymentHarness(fake, { device: "d1", deployment: "app", backoff: { baseMs: 20, capMs: 80, resetAfterMs: 60_000 } });
  });
  afterEach(() => h.stop());

  const containerOf = (service: string) => fake.snapshot().filter((c) => c.service === service);

  it("deploys a new score: pending → pulling → stoppingOld → startingNew → running, one container per service", async () => {
    h.update(score(svc("web", "img/web:1"), svc("db", "img/db:1")));
    const s = await h.settled();
    expect(s.value).to.equal("running");
    expect(h.path()).to.deep.equal(["pending→pulling", "pulling→stoppingOld", "stoppingOld→startingNew", "startingNew→running"]);
    for (const name of ["web", "db"]) {
      const cs = containerOf(name);
      expect(cs).to.have.length(1);
      expect(cs[0]!.id).to.equal(s.context.containerIds[name]);
      expect(cs[0]!.state).to.equal("running");
    }
  });

  it("replaces only the changed service; unchanged services are not touched", async () => {
    h.update(score(svc("web", "img/web:1"), svc("db", "img/db:1")));
    const before = (await h.settled()).context.containerIds;
    fake.clearCalls();
    h.update(score(svc("web", "img/web:2"), svc("db", "img/db:1")));
    const after = (await h.settled()).context.containerIds;
    expect(after["db"]).to.equal(before["db"]);
    expect(after["web"]).to.not.equal(before["web"]);
    const touched = fake.mutations().map((c) => `${c.op}:${c.arg}`);
    expect(touched).to.deep.equal([`stopAndRemove:${before["web"]}`, "startService:app.web"]);
    expect(fake.calls.filter((c) => c.op === "stopAndRemove")[0]).to.deep.include({ graceSecs: 7, recorded: true });
  });

  it("a lifecycle change replaces every service (the stop signal is baked in at create)", async () => {
    h.update(score(svc("web", "img/web:1")));
    const id1 = (await h.settled()).context.containerIds["web"];
    h.update({ ...score(svc("web", "img/web:1")), lifecycle: { stop_signal: "SIGINT", grace_period_secs: 7, min_ready_secs: 0 } });
    const s = await h.settled();
    expect(s.context.containerIds["web"]).to.not.equal(id1);
  });

  it("stops and removes a service dropped from the score", async () => {
    h.update(score(svc("web", "img/web:1"), svc("db", "img/db:1")));
    const ids = (await h.settled()).context.containerIds;
    h.update(score(svc("web", "img/web:1")));
    const s = await h.settled();
    expect(s.context.containerIds).to.deep.equal({ web: ids["web"] });
    expect(fake.peek(ids["db"]!)).to.equal(null);
    expect(Object.keys(s.context.applied)).to.deep.equal(["web"]);
  });

  it("DELETE stops and removes every container and ends removed", async () => {
    h.update(score(svc("web", "img/web:1"), svc("db", "img/db:1")));
    await h.settled();
    h.delete();
    const s = await h.settled();
    expect(s.value).to.equal("removed");
    expect(fake.snapshot()).to.deep.equal([]);
    expect(h.replayMatches()).to.equal(true);
  });

  it("a version 1 journal's tick repair still replays: it restarts an exited container and recreates a missing one", async () => {
    h.update(score(svc("a", "img/a:1"), svc("b", "img/b:1"), svc("c", "img/c:1")));
    const ids = (await h.settled()).context.containerIds;
    fake.crash(ids["a"]!);
    fake.vanish(ids["b"]!);
    fake.clearCalls();
    const s = await h.tick();
    expect(s.value).to.equal("running");
    expect(s.context.containerIds["a"], "restarted in place").to.equal(ids["a"]);
    expect(s.context.containerIds["b"]).to.not.equal(ids["b"]);
    expect(s.context.containerIds["c"]).to.equal(ids["c"]);
    const starts = fake.calls.filter((c) => c.op === "startService").map((c) => `${c.arg}:${c.outcome}`);
    expect(starts).to.deep.equal(["app.a:restarted", "app.b:created"]);
    expect(fake.calls.filter((c) => c.op === "stop" || c.op === "remove" || c.op === "stopAndRemove")).to.deep.equal([]);
    expect(fake.peek(ids["a"]!)!.state).to.equal("running");
    expect(h.replayMatches()).to.equal(true);
  });

  it("coalesces ten updates that arrive mid-upgrade into one more upgrade, to the newest", async () => {
    h.update(score(svc("web", "img/web:1")));
    await h.settled();
    const gate = fake.hold("stopAndRemove");
    h.update(score(svc("web", "img/web:2")));
    await gate.reached;
    let last = "";
    for (let i = 3; i <= 12; i++) last = h.update(score(svc("web", `img/web:${i}`)));
    expect(h.snapshot.context.next).to.include({ kind: "update", hash: last });
    gate();
    const s = await h.settled();
    expect(s.value).to.equal("running");
    expect(s.context.target!.hash).to.equal(last);
    const images = fake.calls.filter((c) => c.op === "ensureImage").map((c) => c.arg);
    expect(images).to.deep.equal(["img/web:1", "img/web:2", "img/web:12"]);
    expect(fake.snapshot().map((c) => c.image)).to.deep.equal(["img/web:12"]);
    expect(h.replayMatches()).to.equal(true);
  });

  it("an update that arrives while pulling replaces the pending one before anything is touched", async () => {
    h.update(score(svc("web", "img/web:1")));
    const id1 = (await h.settled()).context.containerIds["web"];
    const gate = fake.hold("ensureImage");
    h.update(score(svc("web", "img/web:2")));
    await gate.reached;
    h.update(score(svc("web", "img/web:3")));
    fake.clearCalls();
    gate();
    const s = await h.settled();
    expect(s.context.target!.score.services[0]!.image).to.equal("img/web:3");
    expect(fake.mutations().map((c) => `${c.op}:${c.arg}`)).to.deep.equal([`stopAndRemove:${id1}`, "startService:app.web"]);
  });

  it("a desired value that fails to decode fails the deployment and leaves the runtime untouched", async () => {
    h.update(score(svc("web", "img/web:1")));
    const id = (await h.settled()).context.containerIds["web"];
    fake.clearCalls();
    h.desired({ type: "PodmanV0", data: { services: [{ name: "web", image: "img/web:2" }], lifecycle: { grace_period_sec: 3 } } });
    const s = await h.settled();
    expect(s.value).to.equal("failed");
    expect(s.context.lastError).to.equal("data.lifecycle.grace_period_sec: unknown field (did you mean grace_period_secs?)");
    expect(fake.calls).to.deep.equal([]);
    expect(fake.peek(id!)!.state).to.equal("running");
    expect(s.context.containerIds["web"]).to.equal(id);
  });

  it("recovers from a rejected value when the operator writes the last good score again", async () => {
    const good = score(svc("web", "img/web:1"));
    h.update(good);
    const id = (await h.settled()).context.containerIds["web"];
    h.desired({ type: "Docker" });
    expect((await h.settled()).value).to.equal("failed");
    fake.clearCalls();
    h.update(good);
    const s = await h.settled();
    expect(s.value).to.equal("running");
    expect(s.context.containerIds["web"]).to.equal(id);
    expect(fake.mutations()).to.deep.equal([]);
  });

  it("a pull failure fails before anything running is touched, and is retried forward with the backoff until it passes", async () => {
    h.update(score(svc("web", "img/web:1")));
    const id = (await h.settled()).context.containerIds["web"];
    fake.failPull("img/web:2", "manifest unknown");
    fake.clearCalls();
    h.update(score(svc("web", "img/web:2")));
    const s = await waitFor(h.actor, (x) => x.value === "failed" && (x.context.retry?.tries.streak ?? 0) >= 3);
    expect(s.context.lastError).to.match(/img\/web:2.*manifest unknown/);
    expect(s.context.retry).to.deep.include({ step: "pull" });
    expect(fake.mutations()).to.deep.equal([]);
    expect(fake.peek(id!)!.state).to.equal("running");
    // Tries at once, then after 20 ms, 40 ms…: the pulls are that far apart.
    const pulls = fake.calls.filter((c) => c.op === "ensureImage").map((c) => c.at);
    expect(pulls.length).to.be.at.least(3);
    expect(pulls[2]! - pulls[1]!).to.be.at.least(20);
    fake.clearFaults();
    const done = await waitFor(h.actor, (x) => x.value === "running");
    expect(done.context.retry).to.equal(null);
    expect(fake.snapshot().map((c) => `${c.image}:${c.state}`)).to.deep.equal(["img/web:2:running"]);
    const types = h.journal.map((t) => t.event.type);
    expect(types).to.include.members(["pull.failed", "step.retried"]);
    expect(h.replayMatches()).to.equal(true);
  });

  it("the same score at a newer revision while failed is retried at once (desired.retried)", async () => {
    h.update(score(svc("web", "img/web:1")));
    await h.settled();
    fake.failPull("img/web:2", "registry down");
    const v2 = score(svc("web", "img/web:2"));
    const slow = new DeploymentHarness(fake, { device: "d1", deployment: "slow", backoff: { baseMs: 3_600_000, capMs: 3_600_000 } });
    try {
      slow.update(v2);
      await waitFor(slow.actor, (x) => x.value === "failed" && x.context.retry?.tries.streak === 2);
      fake.clearFaults();
      const revision = slow.snapshot.context.revision!;
      slow.update(v2);
      const s = await waitFor(slow.actor, (x) => x.value === "running");
      expect(s.context.revision).to.equal(revision + 1);
      expect(slow.journal.map((t) => t.event.type)).to.include("desired.retried");
      expect(slow.replayMatches()).to.equal(true);
    } finally {
      slow.stop();
    }
  });

  it("after a failure, the next new score rolls forward from what actually runs", async () => {
    h.update(score(svc("web", "img/web:1")));
    await h.settled();
    fake.failStop("web", "stuck");
    h.update(score(svc("web", "img/web:2")));
    const failed = await h.settled();
    expect(failed.value).to.equal("failed");
    // A failed stop is not retried: it would touch the old container again.
    expect(failed.context.retry).to.equal(null);
    fake.clearFaults();
    h.update(score(svc("web", "img/web:3")));
    const s = await h.settled();
    expect(s.value).to.equal("running");
    expect(fake.snapshot().map((c) => `${c.image}:${c.state}`)).to.deep.equal(["img/web:3:running"]);
    expect(h.replayMatches()).to.equal(true);
  });

  it("a step that outlives its deadline fails the deployment", async () => {
    const slow = new DeploymentHarness(fake, { device: "d1", deployment: "slow", budgets: { pullSecs: 0.05 } });
    try {
      const gate = fake.hold("ensureImage");
      slow.update(score(svc("web", "img/web:1")));
      const s = await slow.settled();
      gate();
      expect(s.value).to.equal("failed");
      expect(s.context.lastError).to.equal("pulling timed out");
      expect(slow.replayMatches()).to.equal(true);
    } finally {
      slow.stop();
    }
  });

  it("a start abandoned at its deadline is retried forward at once: what it started is adopted, nothing is started twice", async () => {
    const slow = new DeploymentHarness(fake, { device: "d1", deployment: "late", budgets: { startSecs: 0.05 } });
    try {
      slow.update(score(svc("web", "img/web:1")));
      await slow.settled();
      const gate = fake.hold("startService");
      slow.update(score(svc("web", "img/web:2"), svc("db", "img/db:2")));
      await waitFor(slow.actor, (x) => x.context.lastError === "startingNew timed out");
      gate();
      const s = await waitFor(slow.actor, (x) => x.value === "running");
      expect(fake.snapshot().map((c) => `${c.name}:${c.image}:${c.state}`).sort()).to.deep.equal(["late.db:img/db:2:running", "late.web:img/web:2:running"]);
      expect(fake.snapshot().map((c) => c.id).sort()).to.deep.equal(Object.values(s.context.containerIds).sort());
      expect(slow.journal.map((t) => t.event.type)).to.include.members(["step.timed_out", "step.retried"]);
      expect(slow.replayMatches()).to.equal(true);
    } finally {
      slow.stop();
    }
  });

  it("never touches a same-named container it does not manage", async () => {
    const foreign = fake.addForeign("app.web");
    h.update(score(svc("web", "img/web:1")));
    const s = await h.settled();
    expect(s.value).to.equal("failed");
    expect(s.context.lastError).to.match(/not manage/);
    expect(fake.peek(foreign)!.state).to.equal("running");
    h.delete();
    await h.settled();
    expect(fake.peek(foreign)!.state).to.equal("running");
  });

  it("readiness: without a health check a started service counts after min_ready_secs; the journal says verify.done", async () => {
    h.update({ services: [svc("web", "img/web:1")], lifecycle: { min_ready_secs: 1 } });
    const s = await h.settled();
    expect(s.value).to.equal("running");
    expect(h.path()).to.deep.equal(["pending→pulling", "pulling→stoppingOld", "stoppingOld→startingNew", "startingNew→verifying", "verifying→running"]);
    const verifyingAt = h.journal.find((t) => t.to === "verifying")!.event.at;
    const ready = h.journal.at(-1)!.event;
    expect(ready).to.deep.include({ type: "verify.done", ready: ["web"] });
    expect(ready.at - verifyingAt).to.be.at.least(1000);
    expect(h.replayMatches()).to.equal(true);
  });

  it("readiness: a service that dies while it is verified fails the step, and the start is retried forward", async () => {
    fake.crashAfterStart("web", 3, { afterMs: 5, times: 1 });
    h.update({ services: [svc("web", "img/web:1")], lifecycle: { min_ready_secs: 1 } });
    const s = await waitFor(h.actor, (x) => x.value === "running");
    const types = h.journal.map((t) => t.event.type);
    expect(types.slice(types.indexOf("start.done"))).to.deep.equal(["start.done", "verify.failed", "step.retried", "start.done", "verify.done"]);
    expect(h.journal.find((t) => t.event.type === "verify.failed")!.event).to.deep.include({ service: "web", reason: "service web exited with code 3" });
    // The retry started the same container again: one container, recorded.
    expect(fake.snapshot().map((c) => c.id)).to.deep.equal([s.context.containerIds["web"]]);
    expect(h.replayMatches()).to.equal(true);
  });

  it("liveness: a dead service is restarted at once, then with the backoff; restarts and exit codes are on record", async () => {
    h.update(score(svc("web", "img/web:1"), svc("db", "img/db:1")));
    const s0 = await h.settled();
    const web = s0.context.containerIds["web"]!;
    for (let i = 1; i <= 3; i++) {
      await until("web runs again", () => fake.peek(web)!.state === "running");
      fake.crash(web, 1);
      h.actor.send({ type: "SERVICE_EXITED", service: "web", exitCode: 1, at: Date.now() });
      const rec = h.snapshot.context.services["web"]!;
      expect(rec).to.deep.include({ restarts: i, lastExitCode: 1 });
    }
    await until("web runs again", () => fake.peek(web)!.state === "running");
    const restarts = fake.calls.filter((c) => c.op === "restart");
    expect(restarts.map((c) => c.arg)).to.deep.equal([web, web, web]);
    // At once, then 20 ms, then 40 ms after each death.
    const exits = h.journal.filter((t) => t.event.type === "service.exited").map((t) => t.event as { at: number; restart_at: number });
    expect(exits.map((e) => e.restart_at - e.at)).to.deep.equal([0, 20, 40]);
    // One journal event per restart; the healthy db untouched; the container id kept.
    expect(h.journal.slice(-3).map((t) => `${t.from}→${t.to} ${t.event.type}`)).to.deep.equal(Array(3).fill("running→running service.exited"));
    expect(h.snapshot.context.containerIds).to.deep.equal(s0.context.containerIds);
    expect(fake.calls.filter((c) => c.arg === s0.context.containerIds["db"])).to.deep.equal([]);
    expect(h.replayMatches()).to.equal(true);
  });

  it("liveness: a container that is gone is created again, its new id recorded; unhealthy turns are recorded, a pass clears it", async () => {
    h.update(score(svc("web", "img/web:1")));
    const s0 = await h.settled();
    fake.vanish(s0.context.containerIds["web"]!);
    h.actor.send({ type: "SERVICE_EXITED", service: "web", exitCode: null, at: Date.now() });
    const s1 = await waitFor(h.actor, (x) => x.context.containerIds["web"] !== s0.context.containerIds["web"]);
    expect(fake.peek(s1.context.containerIds["web"]!)!.state).to.equal("running");
    expect(h.journal.at(-1)!.event).to.deep.include({ type: "service.restarted", service: "web", restarts: 1 });
    h.actor.send({ type: "SERVICE_UNHEALTHY", service: "web", output: "connection refused", at: Date.now() });
    expect(h.snapshot.context.services["web"]).to.deep.include({ unhealthy: true, restarts: 2 });
    h.actor.send({ type: "SERVICE_HEALTHY", service: "web", output: "ok", at: Date.now() });
    expect(h.snapshot.context.services["web"]).to.deep.include({ unhealthy: false });
    // A pass heard again changes nothing and records nothing.
    const n = h.journal.length;
    h.actor.send({ type: "SERVICE_HEALTHY", service: "web", output: "ok", at: Date.now() });
    expect(h.journal.length).to.equal(n);
    expect(h.journal.slice(-2).map((t) => t.event.type)).to.deep.equal(["service.unhealthy", "service.healthy"]);
    expect(h.replayMatches()).to.equal(true);
  });

  it("a failed deployment keeps its running services alive; it never creates a container of an earlier score", async () => {
    h.update(score(svc("web", "img/web:1"), svc("db", "img/db:1")));
    const s0 = await h.settled();
    fake.failStop("web", "stuck");
    h.update(score(svc("web", "img/web:2"), svc("db", "img/db:1")));
    expect((await h.settled()).value).to.equal("failed");
    const db = s0.context.containerIds["db"]!;
    fake.crash(db, 9);
    h.actor.send({ type: "SERVICE_EXITED", service: "db", exitCode: 9, at: Date.now() });
    await until("db runs again", () => fake.peek(db)!.state === "running");
    expect(h.snapshot.value).to.equal("failed");
    fake.vanish(s0.context.containerIds["web"]!);
    const calls = fake.calls.length;
    h.actor.send({ type: "SERVICE_EXITED", service: "web", exitCode: null, at: Date.now() });
    await until("the restart looked at web", () => fake.calls.slice(calls).some((c) => c.op === "status"));
    expect(fake.calls.slice(calls).filter((c) => c.op === "startService")).to.deep.equal([]);
    expect(h.replayMatches()).to.equal(true);
  });

  it("depends_on: a service starts after what it depends on", async () => {
    h.update(score(svc("web", "img/web:1", { depends_on: ["api"] }), svc("api", "img/api:1", { depends_on: ["db"] }), svc("db", "img/db:1")));
    await h.settled();
    expect(fake.calls.filter((c) => c.op === "startService").map((c) => c.arg)).to.deep.equal(["app.db", "app.api", "app.web"]);
  });
});
