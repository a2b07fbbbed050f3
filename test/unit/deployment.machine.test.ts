import { expect } from "chai";
import type { PodmanV0Score } from "../../contracts/score.codec.js";
import { FakeRuntime } from "../../runtime/fake.runtime.js";
import { DeploymentHarness } from "../support/deployment.harness.js";

const svc = (name: string, image: string, extra: object = {}) => ({ name, image, ...extra });
const score = (...services: PodmanV0Score["services"]): PodmanV0Score => ({ services, lifecycle: { stop_signal: "SIGTERM", grace_period_secs: 7 } });

describe("deployment machine on FakeRuntime", () => {
  let fake: FakeRuntime;
  let h: DeploymentHarness;
  beforeEach(() => {
    fake = new FakeRuntime({ device: "d1" });
    h = new DeploymentHarness(fake, { device: "d1", deployment: "app" });
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
    expect(touched).to.deep.equal([`stop:${before["web"]}`, `remove:${before["web"]}`, "startService:app.web"]);
    expect(fake.calls.filter((c) => c.op === "stop")[0]!.graceSecs).to.equal(7);
  });

  it("a lifecycle change replaces every service (the stop signal is baked in at create)", async () => {
    h.update(score(svc("web", "img/web:1")));
    const id1 = (await h.settled()).context.containerIds["web"];
    h.update({ ...score(svc("web", "img/web:1")), lifecycle: { stop_signal: "SIGINT", grace_period_secs: 7 } });
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

  it("a tick restarts an exited container and recreates a missing one, leaving the healthy one alone", async () => {
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
    expect(fake.calls.filter((c) => c.op === "stop" || c.op === "remove")).to.deep.equal([]);
    expect(fake.peek(ids["a"]!)!.state).to.equal("running");
    expect(h.replayMatches()).to.equal(true);
  });

  it("coalesces ten updates that arrive mid-upgrade into one more upgrade, to the newest", async () => {
    h.update(score(svc("web", "img/web:1")));
    await h.settled();
    const gate = fake.hold("stop");
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
    expect(fake.mutations().map((c) => `${c.op}:${c.arg}`)).to.deep.equal([`stop:${id1}`, `remove:${id1}`, "startService:app.web"]);
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

  it("a pull failure fails before anything running is touched", async () => {
    h.update(score(svc("web", "img/web:1")));
    const id = (await h.settled()).context.containerIds["web"];
    fake.failPull("img/web:2", "manifest unknown");
    fake.clearCalls();
    h.update(score(svc("web", "img/web:2")));
    const s = await h.settled();
    expect(s.value).to.equal("failed");
    expect(s.context.lastError).to.match(/img\/web:2.*manifest unknown/);
    expect(fake.mutations()).to.deep.equal([]);
    expect(fake.peek(id!)!.state).to.equal("running");
  });

  it("after a failure, the next new score rolls forward from what actually runs", async () => {
    h.update(score(svc("web", "img/web:1")));
    await h.settled();
    fake.exitAtStart("web", 3, { once: true });
    h.update(score(svc("web", "img/web:2")));
    const failed = await h.settled();
    expect(failed.value).to.equal("failed");
    const exitedId = failed.context.containerIds["web"];
    expect(fake.peek(exitedId!)!.state).to.equal("exited");
    h.update(score(svc("web", "img/web:1")));
    const s = await h.settled();
    expect(s.value).to.equal("running");
    expect(fake.peek(exitedId!)).to.equal(null);
    expect(fake.snapshot().map((c) => `${c.image}:${c.state}`)).to.deep.equal(["img/web:1:running"]);
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

  it("a step abandoned at its deadline starts nothing more, and its strays are swept by the next upgrade", async () => {
    const slow = new DeploymentHarness(fake, { device: "d1", deployment: "late", budgets: { startSecs: 0.05 } });
    try {
      slow.update(score(svc("web", "img/web:1")));
      await slow.settled();
      const gate = fake.hold("startService");
      slow.update(score(svc("web", "img/web:2"), svc("db", "img/db:2")));
      const failed = await slow.settled();
      expect(failed.context.lastError).to.equal("startingNew timed out");
      gate();
      await new Promise((r) => setTimeout(r, 20));
      // The held start of web completed behind the machine's back; db was never started.
      expect(fake.snapshot().map((c) => c.name)).to.deep.equal(["late.web"]);
      slow.update(score(svc("db", "img/db:2")));
      const s = await slow.settled();
      expect(s.value).to.equal("running");
      expect(fake.snapshot().map((c) => `${c.name}:${c.id === s.context.containerIds["db"]}`)).to.deep.equal(["late.db:true"]);
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
});
