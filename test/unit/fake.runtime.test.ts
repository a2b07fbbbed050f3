import { expect } from "chai";
import { DEFAULT_LIFECYCLE } from "../../contracts/score.codec.js";
import type { ContainerEvent, ContainerWatcher, ServiceSpec } from "../../runtime/container-runtime.js";
import { RuntimeError } from "../../runtime/container-runtime.js";
import { FakeRuntime } from "../../runtime/fake.runtime.js";

const H1 = `sha256:${"1".repeat(64)}`;
const H2 = `sha256:${"2".repeat(64)}`;

function spec(service = "web", scoreHash = H1, image = "localhost/app:v1", deployment = "shop"): ServiceSpec {
  return { deployment, service: { name: service, image }, lifecycle: DEFAULT_LIFECYCLE, scoreHash };
}

async function rejects(p: Promise<unknown>): Promise<RuntimeError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(RuntimeError);
    return e as RuntimeError;
  }
  throw new Error("expected a rejection");
}

describe("FakeRuntime", () => {
  let rt: FakeRuntime;
  beforeEach(() => {
    rt = new FakeRuntime({ device: "pi-1" });
  });

  describe("images", () => {
    it("pulls any image by default, then finds it present", async () => {
      await rt.ensureImage("localhost/app:v1");
      await rt.ensureImage("localhost/app:v1");
      expect(rt.calls.map((c) => [c.op, c.arg, c.outcome])).to.deep.equal([
        ["ensureImage", "localhost/app:v1", "pulled"],
        ["ensureImage", "localhost/app:v1", "present"],
      ]);
    });

    it("with an image list, only those are there and nothing else can be pulled", async () => {
      rt = new FakeRuntime({ device: "pi-1", images: ["localhost/app:v1"] });
      await rt.ensureImage("localhost/app:v1");
      const e = await rejects(rt.ensureImage("localhost/app:v2"));
      expect(e.message).to.equal("pulling image localhost/app:v2: not found in any registry");
      expect(e.subject).to.equal("localhost/app:v2");
    });

    it("refuses to create a container whose image is not present", async () => {
      const e = await rejects(rt.startService(spec()));
      expect(e.message).to.equal("creating service web: image localhost/app:v1 not known");
      expect(await rt.list()).to.deep.equal([]);
    });
  });

  describe("startService", () => {
    beforeEach(async () => {
      await rt.ensureImage("localhost/app:v1");
      await rt.ensureImage("localhost/app:v2");
      rt.clearCalls();
    });

    it("creates <deployment>.<service>, running, with labels read back", async () => {
      const id = await rt.startService(spec());
      expect(id).to.match(/^[0-9a-f]{64}$/);
      expect(await rt.status(id)).to.deep.equal({ id, name: "shop.web", deployment: "shop", service: "web", scoreHash: H1, state: "running", exitCode: null });
      expect(await rt.status("shop.web")).to.deep.include({ id });
      expect(rt.calls[0]).to.deep.include({ op: "startService", arg: "shop.web", outcome: "created" });
    });

    it("gives unique ids, the same sequence for the same device every time", async () => {
      const a = [await rt.startService(spec("a")), await rt.startService(spec("b"))];
      const rt2 = new FakeRuntime({ device: "pi-1" });
      await rt2.ensureImage("localhost/app:v1");
      const b = [await rt2.startService(spec("a")), await rt2.startService(spec("b"))];
      expect(a[0]).to.not.equal(a[1]);
      expect(b).to.deep.equal(a);
      const rt3 = new FakeRuntime({ device: "pi-2" });
      await rt3.ensureImage("localhost/app:v1");
      expect(await rt3.startService(spec("a"))).to.not.equal(a[0]);
    });

    it("adopts a running container of the same name and hash without touching it", async () => {
      const id = await rt.startService(spec());
      expect(await rt.startService(spec())).to.equal(id);
      expect(rt.calls[1]).to.deep.include({ outcome: "adopted" });
      expect(await rt.list()).to.have.length(1);
    });

    it("restarts a stopped container of the same name and hash and returns its id", async () => {
      const id = await rt.startService(spec());
      await rt.stop(id, 10);
      expect((await rt.status(id))?.state).to.equal("exited");
      expect(await rt.startService(spec())).to.equal(id);
      expect(rt.calls.at(-1)).to.deep.include({ outcome: "restarted" });
      expect(await rt.status(id)).to.deep.include({ state: "running", exitCode: null });
    });

    it("removes and recreates a same-name container of another score hash", async () => {
      const old = await rt.startService(spec("web", H1));
      const id = await rt.startService(spec("web", H2, "localhost/app:v2"));
      expect(id).to.not.equal(old);
      expect(rt.calls.at(-1)).to.deep.include({ outcome: "created", replaced: old });
      expect(await rt.status(old)).to.equal(null);
      const all = await rt.list();
      expect(all.map((c) => [c.id, c.scoreHash])).to.deep.equal([[id, H2]]);
    });

    it("keeps deployments apart: same service name, different containers", async () => {
      const a = await rt.startService(spec("web", H1, "localhost/app:v1", "a"));
      const b = await rt.startService(spec("web", H1, "localhost/app:v1", "b"));
      expect(a).to.not.equal(b);
      expect((await rt.list()).map((c) => c.name)).to.deep.equal(["a.web", "b.web"]);
    });
  });

  describe("stop, remove, status", () => {
    let id: string;
    beforeEach(async () => {
      await rt.ensureImage("localhost/app:v1");
      id = await rt.startService(spec());
      rt.clearCalls();
    });

    it("stop exits the container with 128 + its stop signal and records the grace period", async () => {
      await rt.stop(id, 7);
      expect(await rt.status(id)).to.deep.include({ state: "exited", exitCode: 143 });
      expect(rt.calls[0]).to.deep.include({ op: "stop", arg: id, graceSecs: 7 });
    });

    it("stopping a stopped or missing container succeeds", async () => {
      await rt.stop(id, 1);
      await rt.stop(id, 1);
      await rt.stop("f".repeat(64), 1);
      expect(rt.calls.every((c) => c.error === undefined)).to.equal(true);
    });

    it("remove removes (stopping first), removing a missing one succeeds", async () => {
      await rt.remove(id);
      await rt.remove(id);
      expect(await rt.status(id)).to.equal(null);
      expect(await rt.list()).to.deep.equal([]);
    });

    it("status finds by id, by name and by a 12+ character id prefix", async () => {
      expect((await rt.status(id))?.id).to.equal(id);
      expect((await rt.status("shop.web"))?.id).to.equal(id);
      expect((await rt.status(id.slice(0, 12)))?.id).to.equal(id);
      expect(await rt.status(id.slice(0, 4))).to.equal(null);
      expect(await rt.status("shop.nope")).to.equal(null);
    });

    it("returns copies: a status held by the caller does not change under it", async () => {
      const s = await rt.status(id);
      await rt.stop(id, 1);
      expect(s?.state).to.equal("running");
    });
  });

  describe("call recording", () => {
    it("records every call in order, with its time, outcome and error", async () => {
      let t = 100;
      rt = new FakeRuntime({ device: "pi-1", now: () => t++ });
      await rt.ensureImage("localhost/app:v1");
      const id = await rt.startService(spec());
      await rt.status(id);
      await rt.list();
      await rt.stop(id, 30);
      await rt.remove(id);
      rt.failPull("localhost/bad:v1");
      await rejects(rt.ensureImage("localhost/bad:v1"));
      expect(rt.calls).to.deep.equal([
        { op: "ensureImage", arg: "localhost/app:v1", at: 100, outcome: "pulled" },
        { op: "startService", arg: "shop.web", at: 101, outcome: "created" },
        { op: "status", arg: id, at: 102 },
        { op: "list", arg: "", at: 103 },
        { op: "stop", arg: id, at: 104, graceSecs: 30 },
        { op: "remove", arg: id, at: 105 },
        { op: "ensureImage", arg: "localhost/bad:v1", at: 106, error: "pulling image localhost/bad:v1: simulated pull failure" },
      ]);
      expect(rt.count("ensureImage")).to.equal(2);
      expect(rt.count("list")).to.equal(1);
      expect(rt.mutations().map((c) => c.op)).to.deep.equal(["startService", "stop", "remove"]);
    });

    it("reads (status, list, ensureImage) are not mutations", async () => {
      await rt.ensureImage("localhost/app:v1");
      await rt.status("x");
      await rt.list();
      expect(rt.mutations()).to.deep.equal([]);
    });
  });

  describe("faults", () => {
    beforeEach(async () => {
      await rt.ensureImage("localhost/app:v1");
    });

    it("failPull names the image; persistent until clearFaults", async () => {
      rt.failPull("localhost/app:v9", "registry unreachable");
      for (let i = 0; i < 2; i++) {
        const e = await rejects(rt.ensureImage("localhost/app:v9"));
        expect(e.message).to.equal("pulling image localhost/app:v9: registry unreachable");
      }
      rt.clearFaults();
      await rt.ensureImage("localhost/app:v9");
    });

    it("a fault with { once: true } fires once", async () => {
      rt.failCreate("web", "no space left", { once: true });
      const e = await rejects(rt.startService(spec()));
      expect(e.message).to.equal("creating service web: no space left");
      expect(e.subject).to.equal("web");
      expect(await rt.list()).to.deep.equal([]);
      await rt.startService(spec());
    });

    it("failCreate by container name hits only that deployment", async () => {
      rt.failCreate("a.web");
      await rejects(rt.startService(spec("web", H1, "localhost/app:v1", "a")));
      await rt.startService(spec("web", H1, "localhost/app:v1", "b"));
    });

    it("failStart leaves a created container that a later startService restarts", async () => {
      rt.failStart("web", "port in use", { once: true });
      const e = await rejects(rt.startService(spec()));
      expect(e.message).to.equal("starting service web: port in use");
      const [c] = await rt.list();
      expect(c).to.deep.include({ name: "shop.web", state: "created" });
      const id = await rt.startService(spec());
      expect(id).to.equal(c?.id);
      expect(rt.calls.at(-1)).to.deep.include({ outcome: "restarted" });
    });

    it("failStop makes stop reject and leaves the container running", async () => {
      const id = await rt.startService(spec());
      rt.failStop("web");
      const e = await rejects(rt.stop(id, 5));
      expect(e.message).to.equal(`stopping container shop.web (${id}): simulated stop failure`);
      expect((await rt.status(id))?.state).to.equal("running");
    });

    it("exitAtStart: startService returns the id of a container that has already exited, as Podman's start does", async () => {
      rt.exitAtStart("web", 3);
      const id = await rt.startService(spec());
      expect(rt.calls.at(-1)).to.deep.include({ outcome: "created" });
      expect(await rt.status(id)).to.deep.include({ state: "exited", exitCode: 3 });
    });

    it("crash exits a running container; vanish removes one", async () => {
      const id = await rt.startService(spec());
      rt.crash(id, 137);
      expect(await rt.status(id)).to.deep.include({ state: "exited", exitCode: 137 });
      rt.vanish("shop.web");
      expect(await rt.status(id)).to.equal(null);
      expect(await rt.startService(spec())).to.not.equal(id);
    });

    it("dropImage makes the next create fail until the image is pulled again", async () => {
      rt.dropImage("localhost/app:v1");
      await rejects(rt.startService(spec()));
      await rt.ensureImage("localhost/app:v1");
      await rt.startService(spec());
    });

    it("hold keeps a step in flight, recorded, until released", async () => {
      const id = await rt.startService(spec());
      const release = rt.hold("stop");
      let done = false;
      const p = rt.stop(id, 30).then(() => (done = true));
      const reached = await release.reached;
      expect(reached).to.deep.include({ op: "stop", arg: id });
      await new Promise((r) => setTimeout(r, 5));
      expect(done).to.equal(false);
      expect((await rt.status(id))?.state).to.equal("running");
      release();
      await p;
      expect((await rt.status(id))?.state).to.equal("exited");
      await rt.stop(id, 1); // no longer held
    });

    it("clearFaults releases held steps", async () => {
      rt.hold("list");
      const p = rt.list();
      rt.clearFaults();
      expect(await p).to.deep.equal([]);
    });

    it("latency delays an op", async () => {
      rt.latency("status", 30);
      const t0 = Date.now();
      await rt.status("x");
      expect(Date.now() - t0).to.be.at.least(25);
      rt.latency("status", 0);
    });
  });

  describe("foreign containers", () => {
    let foreign: string;
    beforeEach(async () => {
      await rt.ensureImage("localhost/app:v1");
      foreign = rt.addForeign("shop.web");
      rt.addForeign("someone-else");
    });

    it("are never listed nor reported by status", async () => {
      expect(await rt.list()).to.deep.equal([]);
      expect(await rt.status(foreign)).to.equal(null);
      expect(await rt.status("someone-else")).to.equal(null);
    });

    it("startService on a foreign name rejects and leaves it alone", async () => {
      const e = await rejects(rt.startService(spec()));
      expect(e.message).to.equal("service web: the name shop.web is taken by a container fleet-agent does not manage");
      expect(rt.peek(foreign)).to.deep.include({ state: "running", foreign: true });
    });

    it("stop and remove of a foreign id are refused", async () => {
      expect((await rejects(rt.stop(foreign, 1))).message).to.match(/^refusing to stop container [0-9a-f]{64}: not managed/);
      expect((await rejects(rt.remove(foreign))).message).to.match(/^refusing to remove container [0-9a-f]{64}: not managed/);
      expect(rt.snapshot().filter((c) => c.foreign && c.state === "running")).to.have.length(2);
    });
  });
});

describe("FakeRuntime: health, liveness, logs, restart, stop-and-remove", () => {
  let rt: FakeRuntime;
  let clock: number;
  const checked = (service = "web", health: ServiceSpec["service"]["health"] = { cmd: ["true"], retries: 2 }): ServiceSpec => ({
    deployment: "shop",
    service: { name: service, image: "localhost/app:v1", health },
    lifecycle: DEFAULT_LIFECYCLE,
    scoreHash: H1,
  });
  beforeEach(async () => {
    clock = 1_000_000;
    rt = new FakeRuntime({ device: "pi-1", now: () => clock });
    await rt.ensureImage("localhost/app:v1");
  });
  afterEach(() => rt.clearFaults());

  /** A watcher recording what it is told; `next(pred)` resolves at the first event that matches. */
  function watcher() {
    const events: ContainerEvent[] = [];
    const connections: boolean[] = [];
    const errors: string[] = [];
    let wake = () => {};
    const ac = new AbortController();
    const w: ContainerWatcher = {
      connected: (i) => {
        connections.push(i.reconnected);
        wake();
      },
      event: (e) => {
        events.push(e);
        wake();
      },
      error: (e) => {
        errors.push(e.message);
        wake();
      },
    };
    const done = rt.watchContainers(w, ac.signal);
    const until = (pred: () => boolean) =>
      new Promise<void>((resolve) => {
        wake = () => pred() && resolve();
        wake();
      });
    return { events, connections, errors, until, stop: () => (ac.abort(), done), kinds: () => events.map((e) => (e.type === "died" ? `died ${e.exitCode}` : e.type === "health" ? `health ${e.status}` : e.type)) };
  }

  describe("healthcheck", () => {
    it("a service without a check is `none`; one with a check that passes is healthy", async () => {
      const plain = await rt.startService(spec("plain"));
      expect(await rt.healthcheck(plain)).to.deep.equal({ status: "none", failingStreak: 0, output: "" });
      const id = await rt.startService(checked());
      expect(await rt.healthcheck(id)).to.deep.equal({ status: "healthy", failingStreak: 0, output: "" });
      expect(rt.calls.filter((c) => c.op === "healthcheck").map((c) => c.arg)).to.deep.equal([plain, id]);
    });

    it("failing: starting until `retries` failures in a row, then unhealthy; a pass resets the streak (Podman's bookkeeping)", async () => {
      const id = await rt.startService(checked());
      rt.scriptHealth("web", [false, { pass: false, output: "  connection refused \n" }, true, false]);
      expect(await rt.healthcheck(id)).to.deep.equal({ status: "starting", failingStreak: 1, output: "simulated health check failure" });
      expect(await rt.healthcheck(id)).to.deep.equal({ status: "unhealthy", failingStreak: 2, output: "connection refused" });
      expect(await rt.healthcheck(id)).to.deep.equal({ status: "healthy", failingStreak: 0, output: "" });
      expect(await rt.healthcheck(id)).to.deep.equal({ status: "healthy", failingStreak: 1, output: "simulated health check failure" });
      expect((await rt.healthcheck(id)).status).to.equal("healthy"); // the script is used up: passes again
    });

    it("flapping: a repeated script cycles for ever; failHealth fails every check until clearFaults", async () => {
      const id = await rt.startService(checked("web", { cmd: ["true"], retries: 1 }));
      rt.scriptHealth("web", [true, false], { repeat: true });
      const seen = [];
      for (let i = 0; i < 6; i++) seen.push((await rt.healthcheck(id)).status);
      expect(seen).to.deep.equal(["healthy", "unhealthy", "healthy", "unhealthy", "healthy", "unhealthy"]);
      rt.failHealth("web", "disk full");
      expect(await rt.healthcheck(id)).to.deep.equal({ status: "unhealthy", failingStreak: 2, output: "disk full" }); // after the last failure of the cycle
      rt.clearFaults();
      expect((await rt.healthcheck(id)).status).to.equal("healthy");
    });

    it("start_period: failures within it do not count; healthPassesAfter passes from that long after the start", async () => {
      const id = await rt.startService(checked("web", { cmd: ["true"], retries: 1, start_period_secs: 5 }));
      rt.healthPassesAfter("web", 8000);
      clock += 4000;
      expect(await rt.healthcheck(id)).to.deep.include({ status: "starting", failingStreak: 0 });
      clock += 2000;
      expect(await rt.healthcheck(id)).to.deep.include({ status: "unhealthy", failingStreak: 1 });
      clock += 2000;
      expect(await rt.healthcheck(id)).to.deep.equal({ status: "healthy", failingStreak: 0, output: "" });
      await rt.restart(id);
      expect(await rt.healthcheck(id)).to.deep.include({ status: "starting", failingStreak: 0 }); // a new start: a new start period
    });

    it("output is trimmed and cut to 200 characters", async () => {
      const id = await rt.startService(checked());
      rt.failHealth("web", `  ${"e".repeat(500)}  `);
      const { output } = await rt.healthcheck(id);
      expect(output).to.have.length(200);
      expect(output.endsWith("…")).to.equal(true);
    });

    it("not running, missing and foreign are RuntimeErrors with their reason", async () => {
      const id = await rt.startService(checked());
      await rt.stop(id, 1);
      expect((await rejects(rt.healthcheck(id))).reason).to.equal("not-running");
      expect((await rejects(rt.healthcheck("f".repeat(64)))).reason).to.equal("missing");
      expect((await rejects(rt.healthcheck(rt.addForeign("stranger")))).reason).to.equal("not-managed");
    });

    it("emits a health event as a check begins, with the status from before it (as Podman 4.3.1)", async () => {
      const w = watcher();
      const id = await rt.startService(checked());
      await rt.healthcheck(id);
      await rt.healthcheck(id);
      await w.until(() => w.events.length === 3);
      expect(w.kinds()).to.deep.equal(["started", "health starting", "health healthy"]);
      await w.stop();
    });
  });

  describe("crash loops", () => {
    it("crashAfterStart: the container exits with the code that long after each start, with a died event, the given number of times", async () => {
      const w = watcher();
      rt.crashAfterStart("web", 3, { afterMs: 5, times: 2 });
      const id = await rt.startService(spec());
      expect((await rt.status(id))?.state).to.equal("running");
      await w.until(() => w.events.some((e) => e.type === "died"));
      expect(await rt.status(id)).to.deep.include({ state: "exited", exitCode: 3 });
      await rt.restart(id);
      await w.until(() => w.events.filter((e) => e.type === "died").length === 2);
      await rt.restart(id);
      // The third start does not crash: wait for a later signal (a removal) before saying it did not.
      await rt.stopAndRemove(id, 1);
      await w.until(() => w.events.some((e) => e.type === "removed"));
      expect(w.kinds()).to.deep.equal(["started", "died 3", "started", "died 3", "started", "died 143", "removed"]);
      await w.stop();
    });

    it("a stop before the crash is due cancels it", async () => {
      const w = watcher();
      rt.crashAfterStart("web", 9, { afterMs: 20 });
      const id = await rt.startService(spec());
      await rt.stop(id, 1);
      const other = await rt.startService(spec("other"));
      rt.crashAfterStart("other", 4, { afterMs: 40 });
      await rt.restart(other);
      await w.until(() => w.events.some((e) => e.type === "died" && e.exitCode === 4)); // fires after web's would have
      expect((await rt.status(id))?.exitCode).to.equal(143);
      expect(w.events.filter((e) => e.id === id && e.type === "died").map((e) => (e.type === "died" ? e.exitCode : 0))).to.deep.equal([143]);
      await w.stop();
    });
  });

  describe("watchContainers", () => {
    it("connects first, then delivers started, died and removed in order, with the names and labels", async () => {
      const w = watcher();
      await w.until(() => w.connections.length === 1);
      const id = await rt.startService(spec());
      rt.crash(id, 2);
      await rt.remove(id);
      await w.until(() => w.events.length === 3);
      expect(w.connections).to.deep.equal([false]);
      expect(w.events.map((e) => ({ ...e, at: "" }))).to.deep.equal([
        { id, name: "shop.web", deployment: "shop", service: "web", at: "", type: "started" },
        { id, name: "shop.web", deployment: "shop", service: "web", at: "", type: "died", exitCode: 2 },
        { id, name: "shop.web", deployment: "shop", service: "web", at: "", type: "removed" },
      ]);
      expect(w.events[0]!.at).to.equal(new Date(clock).toISOString());
      await w.stop();
    });

    it("interruptWatch: an error, events lost; resumeWatch: connected again as a reconnect", async () => {
      const w = watcher();
      await w.until(() => w.connections.length === 1);
      rt.interruptWatch();
      const lost = await rt.startService(spec());
      rt.resumeWatch();
      await w.until(() => w.connections.length === 2);
      const seen = await rt.startService(spec("seen"));
      await w.until(() => w.events.length === 1);
      expect(w.errors).to.deep.equal(["simulated loss of the event stream"]);
      expect(w.connections).to.deep.equal([false, true]);
      expect(w.events.map((e) => e.id)).to.deep.equal([seen]);
      expect(w.events.map((e) => e.id)).to.not.include(lost);
      await w.stop();
    });

    it("a watcher that subscribes while the stream is down is told `connected` (not as a reconnect) when it comes back", async () => {
      rt.interruptWatch();
      const w = watcher();
      await rt.startService(spec());
      rt.resumeWatch();
      await w.until(() => w.connections.length === 1);
      expect(w.connections).to.deep.equal([false]);
      expect(w.events).to.deep.equal([]);
      await w.stop();
    });

    it("aborting resolves the watch and stops delivery; a watcher that throws is told through error()", async () => {
      const w = watcher();
      await w.stop();
      expect(rt.watcherCount).to.equal(0);
      const errors: string[] = [];
      const ac = new AbortController();
      const done = rt.watchContainers({ connected: () => {}, event: () => { throw new Error("boom"); }, error: (e) => errors.push(e.message) }, ac.signal);
      await rt.startService(spec());
      await new Promise<void>((r) => queueMicrotask(r));
      expect(errors).to.deep.equal(["boom"]);
      expect(w.events).to.deep.equal([]);
      ac.abort();
      await done;
    });
  });

  describe("logs", () => {
    it("both streams in order; tail, since and maxBytes (the newest lines that fit, truncated)", async () => {
      const id = await rt.startService(spec());
      rt.writeLog(id, "one\ntwo\n");
      rt.writeLog(id, "oops", { stream: "stderr" });
      rt.writeLog(id, "three", { at: new Date(clock + 5000) });
      expect(await rt.logs(id, { maxBytes: 10_000 })).to.deep.equal({
        lines: [
          { at: new Date(clock).toISOString(), stream: "stdout", text: "one" },
          { at: new Date(clock).toISOString(), stream: "stdout", text: "two" },
          { at: new Date(clock).toISOString(), stream: "stderr", text: "oops" },
          { at: new Date(clock + 5000).toISOString(), stream: "stdout", text: "three" },
        ],
        truncated: false,
      });
      expect((await rt.logs(id, { tail: 2, maxBytes: 10_000 })).lines.map((l) => l.text)).to.deep.equal(["oops", "three"]);
      expect((await rt.logs(id, { since: new Date(clock + 1), maxBytes: 10_000 })).lines.map((l) => l.text)).to.deep.equal(["three"]);
      const cut = await rt.logs(id, { maxBytes: 120 });
      expect(cut.truncated).to.equal(true);
      expect(cut.lines.map((l) => l.text)).to.deep.equal(["three"]);
      expect(rt.calls.filter((c) => c.op === "logs")).to.have.length(4);
    });

    it("a bad query is refused naming what is wrong, as PodmanRuntime does", async () => {
      const id = await rt.startService(spec());
      expect((await rejects(rt.logs(id, { maxBytes: 1 }))).message).to.equal("logs: maxBytes must be a whole number of at least 2, got 1");
      expect((await rejects(rt.logs(id, { tail: 1.5, maxBytes: 100 }))).message).to.equal("logs: tail must be a whole number, got 1.5");
      expect((await rejects(rt.logs(id, { since: new Date("nope"), maxBytes: 100 }))).message).to.equal("logs: since is not a valid time");
    });

    it("missing and foreign are refused with their reason", async () => {
      expect((await rejects(rt.logs("shop.nope", { maxBytes: 100 }))).reason).to.equal("missing");
      expect((await rejects(rt.logs(rt.addForeign("stranger"), { maxBytes: 100 }))).reason).to.equal("not-managed");
    });
  });

  describe("restart and stopAndRemove", () => {
    it("restart: a running container dies with 128 + its stop signal and starts again, same id; a stopped one just starts", async () => {
      const w = watcher();
      const id = await rt.startService(spec());
      expect(await rt.restart(id)).to.equal(id);
      await rt.stop(id, 1);
      expect(await rt.restart(id)).to.equal(id);
      expect((await rt.status(id))?.state).to.equal("running");
      await w.until(() => w.events.length === 5);
      expect(w.kinds()).to.deep.equal(["started", "died 143", "started", "died 143", "started"]);
      expect(rt.mutations().map((c) => c.op)).to.deep.equal(["startService", "restart", "stop", "restart"]);
      await w.stop();
    });

    it("restart applies start faults; refuses foreign and missing containers", async () => {
      const id = await rt.startService(spec());
      rt.exitAtStart("web", 7, { once: true });
      await rt.restart(id);
      expect(await rt.status(id)).to.deep.include({ state: "exited", exitCode: 7 });
      expect((await rejects(rt.restart(rt.addForeign("stranger")))).reason).to.equal("not-managed");
      expect((await rejects(rt.restart("f".repeat(64)))).reason).to.equal("missing");
    });

    it("stopAndRemove: one call, recorded with its grace; missing succeeds; foreign refused unless recorded; recorded needs a full id", async () => {
      const id = await rt.startService(spec());
      await rt.stopAndRemove(id, 7);
      expect(await rt.status(id)).to.equal(null);
      await rt.stopAndRemove(id, 7);
      const foreign = rt.addForeign("stranger");
      expect((await rejects(rt.stopAndRemove(foreign, 1))).reason).to.equal("not-managed");
      expect(rt.peek(foreign)).to.deep.include({ state: "running" });
      expect((await rejects(rt.stopAndRemove("shop.web", 1, { recorded: true }))).message).to.match(/full 64-hex id/);
      const other = await rt.startService(spec("other"));
      await rt.stopAndRemove(other, 3, { recorded: true });
      expect(rt.calls.filter((c) => c.op === "stopAndRemove").map((c) => [c.arg, c.graceSecs, c.recorded, c.error === undefined])).to.deep.equal([
        [id, 7, undefined, true],
        [id, 7, undefined, true],
        [foreign, 1, undefined, false],
        ["shop.web", 1, true, false],
        [other, 3, true, true],
      ]);
      expect(rt.mutations().filter((c) => c.op === "stopAndRemove")).to.have.length(5);
    });

    it("stopAndRemove fails as stop or remove would under their faults", async () => {
      const id = await rt.startService(spec());
      rt.failRemove("web", "device busy", { once: true });
      expect((await rejects(rt.stopAndRemove(id, 1))).message).to.equal(`stopping and removing container shop.web (${id}): device busy`);
      expect((await rt.status(id))?.state).to.equal("running");
    });
  });
});
