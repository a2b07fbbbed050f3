import { expect } from "chai";
import { DEFAULT_LIFECYCLE } from "../../contracts/score.codec.js";
import type { ServiceSpec } from "../../runtime/container-runtime.js";
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
