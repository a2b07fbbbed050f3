// LibpodClient against a real Podman 4.3.1 (scripts/podman-env.sh). No mocks.
import { expect } from "chai";
import { LibpodClient, LibpodError, isImageNotKnown, isNameInUse, isNotFound, resolveSocketPath, type LibpodEvent } from "../../../runtime/podman/libpod.client.js";
import { startPodmanEnv, TEST_IMAGES, type PodmanTestEnv } from "../../support/podman.env.js";

describe("LibpodClient on real Podman", function () {
  this.timeout(120_000);
  let env: PodmanTestEnv;
  let client: LibpodClient;

  before(async function () {
    this.timeout(600_000);
    env = await startPodmanEnv();
    client = env.client;
  });
  after(async () => {
    await env?.cleanup();
  });

  it("resolves the socket from CONTAINER_HOST, else root's, else XDG_RUNTIME_DIR's", () => {
    expect(resolveSocketPath({ CONTAINER_HOST: "unix:///tmp/x.sock" }, 1000)).to.equal("/tmp/x.sock");
    expect(resolveSocketPath({}, 0)).to.equal("/run/podman/podman.sock");
    expect(resolveSocketPath({ XDG_RUNTIME_DIR: "/run/user/1000" }, 1000)).to.equal("/run/user/1000/podman/podman.sock");
    expect(() => resolveSocketPath({ CONTAINER_HOST: "tcp://h:1" }, 0)).to.throw(/unix:\/\//);
    expect(() => resolveSocketPath({}, 1000)).to.throw(/XDG_RUNTIME_DIR/);
  });

  it("pings and reads the version", async () => {
    expect(await client.ping()).to.equal("OK");
    const v = await client.version();
    expect(v.Version).to.match(/^\d+\.\d+\.\d+/);
    expect(v.Components?.some((c) => c.Name === "Podman Engine")).to.equal(true);
  });

  it("counts its requests", async () => {
    const before = client.requestCount;
    await client.ping();
    await client.imageExists(TEST_IMAGES.v1);
    expect(client.requestCount - before).to.equal(2);
  });

  it("says whether an image exists", async () => {
    expect(await client.imageExists(TEST_IMAGES.v1)).to.equal(true);
    expect(await client.imageExists(`localhost/fleet-test-nope-${env.runId}:1`)).to.equal(false);
  });

  it("turns a pull's in-band {error} (under status 200) into a LibpodError naming the image", async () => {
    const ref = "localhost:5999/nope:1";
    const err = await client.pull(ref).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(LibpodError);
    const e = err as LibpodError;
    expect(e.status).to.equal(200);
    expect(e.method).to.equal("POST");
    expect(e.path).to.equal("/v4.0.0/libpod/images/pull");
    expect(e.message).to.include(ref);
    expect(await client.imageExists(ref)).to.equal(false);
  });

  it("reports 404 on a missing container as a LibpodError with Podman's cause", async () => {
    const name = env.unique("missing");
    for (const call of [() => client.inspect(name), () => client.stop(name, 1), () => client.remove(name, { force: true })]) {
      const e = await call().then(() => null, (x: unknown) => x);
      expect(e).to.be.instanceOf(LibpodError);
      expect((e as LibpodError).status).to.equal(404);
      expect((e as LibpodError).cause).to.equal("no such container");
      expect(isNotFound(e)).to.equal(true);
    }
  });

  it("create: a missing image and a taken name are typed errors; start/stop answer 304 when already so", async () => {
    const name = env.unique("cl");
    const missing = await client.create({ name, image: `localhost/fleet-test-nope-${env.runId}:1`, labels: env.runLabels }).then(() => null, (x: unknown) => x);
    expect(isImageNotKnown(missing)).to.equal(true);

    const { Id } = await client.create({ name, image: TEST_IMAGES.v1, labels: env.runLabels, stop_signal: 15, stop_timeout: 3 });
    const taken = await client.create({ name, image: TEST_IMAGES.v1, labels: env.runLabels }).then(() => null, (x: unknown) => x);
    expect(isNameInUse(taken)).to.equal(true);
    expect((taken as LibpodError).status).to.equal(500); // 4.3.1; 409 in 5.x

    expect(await client.start(Id)).to.equal("started");
    expect(await client.start(Id)).to.equal("already-running");
    const c = await client.inspect(Id);
    expect(c.State.Running).to.equal(true);
    expect(c.Config.StopSignal).to.equal(15);
    expect(c.Config.StopTimeout).to.equal(3);
    expect(await client.stop(Id, 5)).to.equal("stopped");
    expect(await client.stop(Id, 5)).to.equal("already-stopped");
    expect((await client.inspect(Id)).State.ExitCode).to.equal(0);
    expect(await client.logs(Id)).to.include("fleet-test v1: SIGTERM, exiting");
    const reports = await client.remove(Id, { force: true });
    expect(reports.map((r) => r.Id)).to.deep.equal([Id]);
  });

  it("lists with label and name filters", async () => {
    const name = env.unique("ls");
    const { Id } = await client.create({ name, image: TEST_IMAGES.v1, labels: { ...env.runLabels, "io.fleet.test-list": name } });
    try {
      const byLabel = await client.list({ all: true, filters: { label: [`io.fleet.test-list=${name}`] } });
      expect(byLabel.map((c) => c.Id)).to.deep.equal([Id]);
      expect(byLabel[0]!.Names).to.deep.equal([name]);
      expect(byLabel[0]!.State).to.equal("created");
      const byName = await client.list({ all: true, filters: { name: [`^${name}$`] } });
      expect(byName.map((c) => c.Id)).to.deep.equal([Id]);
      expect(await client.list({ all: false, filters: { label: [`io.fleet.test-list=${name}`] } })).to.deep.equal([]);
    } finally {
      await client.remove(Id, { force: true, timeout: 0 });
    }
  });

  it("runs a health check on demand (nanosecond durations in healthconfig)", async () => {
    const name = env.unique("hc");
    const { Id } = await client.create({
      name,
      image: TEST_IMAGES.v1,
      labels: env.runLabels,
      healthconfig: { Test: ["CMD-SHELL", "wget -qO- http://127.0.0.1:8080/ | grep -q v1"], Interval: 30e9, Timeout: 5e9, StartPeriod: 0, Retries: 3 },
    });
    try {
      await client.start(Id);
      let status = "";
      for (let i = 0; i < 20 && status !== "healthy"; i++) {
        status = (await client.healthcheck(Id)).Status;
        if (status !== "healthy") await sleep(100);
      }
      expect(status).to.equal("healthy");
    } finally {
      await client.remove(Id, { force: true, timeout: 0 });
    }
  });

  it("streams events: `died` for a container the test kills; close() ends the iteration", async () => {
    const name = env.unique("ev");
    const stream = await client.events({ type: ["container"], label: [`io.fleet.test-run=${env.runId}`] });
    const seen: LibpodEvent[] = [];
    const died = (async () => {
      for await (const ev of stream) {
        seen.push(ev);
        if (ev.Action === "died" && ev.Actor.Attributes?.name === name) return ev;
      }
      return null;
    })();
    const { Id } = await client.create({ name, image: TEST_IMAGES.v1, labels: env.runLabels });
    await client.start(Id);
    await client.kill(Id, "KILL");
    const ev = await withTimeout(died, 15_000);
    expect(ev?.Actor.ID).to.equal(Id);
    expect(ev?.Actor.Attributes?.containerExitCode).to.equal("137");
    expect(seen.map((e) => e.Action)).to.include.members(["create", "start", "died"]);
    expect(await client.wait(Id)).to.equal(137);
    stream.close();
    await client.remove(Id, { force: true, timeout: 0 });
  });

  it("an aborted event stream ends without an error", async () => {
    const ac = new AbortController();
    const stream = await client.events({ type: ["container"], label: [`io.fleet.test-run=${env.runId}-none`] }, ac.signal);
    const done = (async () => {
      let n = 0;
      for await (const _ of stream) n++;
      return n;
    })();
    setTimeout(() => ac.abort(), 100);
    expect(await withTimeout(done, 5_000)).to.equal(0);
  });

  it("a socket nobody serves is a LibpodError without a status", async () => {
    const lost = new LibpodClient({ socketPath: `/tmp/fleet-no-such-${env.runId}.sock` });
    const e = await lost.ping().then(() => null, (x: unknown) => x);
    expect(e).to.be.instanceOf(LibpodError);
    expect((e as LibpodError).status).to.equal(null);
    expect((e as LibpodError).cause).to.match(/ENOENT/);
    lost.close();
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms).unref())]);
}
