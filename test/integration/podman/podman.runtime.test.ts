// PodmanRuntime against a real Podman 4.3.1 (scripts/podman-env.sh). No mocks. Every container
// carries this run's label and is removed at the end; devices and deployments are unique per run.
import { expect } from "chai";
import * as fs from "node:fs/promises";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { createActor, toPromise } from "xstate";
import { deploymentActors } from "../../../agent/deployments/executor.js";
import type { Lifecycle, PodmanService } from "../../../contracts/score.codec.js";
import { LABEL_DEPLOYMENT, LABEL_DEVICE, LABEL_MANAGED, LABEL_SCORE_HASH, LABEL_SERVICE } from "../../../contracts/wire-names.js";
import { RuntimeError, type ServiceSpec } from "../../../runtime/container-runtime.js";
import type { PodmanRuntime } from "../../../runtime/podman/podman.runtime.js";
import { startPodmanEnv, TEST_IMAGES, type PodmanTestEnv } from "../../support/podman.env.js";
import { RecordingRuntime } from "../../support/recording.runtime.js";

describe("PodmanRuntime on real Podman", function () {
  this.timeout(120_000);
  let env: PodmanTestEnv;
  let device: string;
  let rt: PodmanRuntime;
  const createStartMs: number[] = [];
  const stopMs: number[] = [];

  before(async function () {
    this.timeout(600_000);
    env = await startPodmanEnv();
    device = env.unique("dev");
    rt = env.runtime(device);
  });
  after(async () => {
    if (createStartMs.length) console.log(`      [latency] create+start (startService): ${summary(createStartMs)}`);
    if (stopMs.length) console.log(`      [latency] graceful stop (SIGTERM, exits at once): ${summary(stopMs)}`);
    await env?.cleanup();
  });

  const lifecycle = (grace = 10): Lifecycle => ({ stop_signal: "SIGTERM", grace_period_secs: grace });
  async function spec(service: Partial<PodmanService> & { name: string }, opts: { grace?: number; hash?: string; deployment?: string } = {}): Promise<ServiceSpec> {
    return {
      deployment: opts.deployment ?? env.unique("dep"),
      service: { image: TEST_IMAGES.v1, ...service },
      lifecycle: lifecycle(opts.grace),
      scoreHash: opts.hash ?? "sha256:aaaa",
    };
  }
  async function timedStart(s: ServiceSpec, runtime = rt): Promise<string> {
    const t0 = performance.now();
    const id = await runtime.startService(s);
    createStartMs.push(performance.now() - t0);
    return id;
  }

  it("creates and starts a service: running, labelled, stop signal baked in, answering HTTP with its version", async () => {
    const port = await env.freePort();
    const s = await spec({ name: "web", ports: [{ host_port: port, container_port: 8080 }], env: { MODE: "test" } }, { grace: 7 });
    const id = await timedStart(s);
    const st = await rt.status(id);
    expect(st).to.deep.include({ id, name: `${s.deployment}.web`, deployment: s.deployment, service: "web", scoreHash: "sha256:aaaa", state: "running", exitCode: null });
    const c = await env.client.inspect(id);
    expect(c.Config.Labels).to.deep.include({ [LABEL_MANAGED]: "true", [LABEL_DEVICE]: device, [LABEL_DEPLOYMENT]: s.deployment, [LABEL_SERVICE]: "web", [LABEL_SCORE_HASH]: "sha256:aaaa", "io.fleet.test-run": env.runId });
    expect(c.Config.StopSignal).to.equal(15);
    expect(c.Config.StopTimeout).to.equal(7);
    expect(await httpGet(port)).to.equal("v1");
    expect((await rt.status(s.deployment + ".web"))?.id).to.equal(id);
    for (const image of [TEST_IMAGES.v2, TEST_IMAGES.v3]) {
      const p = await env.freePort();
      const other = await spec({ name: "web", image, ports: [{ host_port: p, container_port: 8080, protocol: "tcp" }] });
      await timedStart(other);
      expect(await httpGet(p)).to.equal(image.slice(-2));
    }
  });

  it("passes env, bind volumes (read-only) and a command", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "fleet-vol-"));
    try {
      await fs.writeFile(path.join(dir, "hello.txt"), "from the host\n");
      const s = await spec({
        name: "job",
        command: ["sh", "-c", 'cat /data/hello.txt; echo "MODE=$MODE"; touch /data/x 2>/dev/null && echo writable || echo read-only; sleep 60'],
        env: { MODE: "prod" },
        volumes: [{ source: dir, target: "/data", read_only: true }],
      }, { grace: 1 }); // sh as PID 1 ignores SIGTERM: removal waits out the grace period
      const id = await timedStart(s);
      const logs = await waitForLogs(env, id, "read-only");
      expect(logs).to.include("from the host").and.include("MODE=prod").and.include("read-only");
      await rt.remove(id);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("stops gracefully: the service logs its SIGTERM line and exits 0, well within the grace period", async () => {
    const s = await spec({ name: "web" }, { grace: 10 });
    const id = await timedStart(s);
    await sleep(300); // let the entrypoint install its trap
    const t0 = performance.now();
    await rt.stop(id, 10);
    const elapsed = performance.now() - t0;
    stopMs.push(elapsed);
    // Graceful means it exited on SIGTERM, long before the 10 s grace would have ended in a SIGKILL.
    expect(elapsed).to.be.below(5000);
    const st = await rt.status(id);
    expect(st?.state).to.equal("exited");
    expect(st?.exitCode).to.equal(0);
    expect(await env.client.logs(id)).to.include("fleet-test v1: SIGTERM, exiting");
    for (let i = 0; i < 4; i++) {
      const again = await spec({ name: "web" });
      const againId = await timedStart(again);
      await sleep(300);
      const t1 = performance.now();
      await rt.stop(againId, 10);
      stopMs.push(performance.now() - t1);
    }
  });

  it("kills a service that ignores SIGTERM after grace_period_secs", async () => {
    const grace = 3;
    const s = await spec({ name: "stubborn", image: TEST_IMAGES.stubborn }, { grace });
    const id = await timedStart(s);
    await sleep(300);
    const t0 = performance.now();
    await rt.stop(id, grace);
    const elapsed = (performance.now() - t0) / 1000;
    console.log(`      [latency] stubborn stop with grace ${grace}s: ${elapsed.toFixed(2)} s`);
    expect(elapsed).to.be.within(grace - 1.5, grace + 1.5);
    const st = await rt.status(id);
    expect(st?.state).to.equal("exited");
    expect(st?.exitCode).to.equal(137);
    expect(await env.client.logs(id)).to.include("fleet-test stubborn: SIGTERM ignored");
  });

  it("stopping a stopped container, starting a running one (adopt), removing a missing one: all succeed", async () => {
    const s = await spec({ name: "web" });
    const id = await timedStart(s);
    const before = await env.client.list({ all: true, filters: { label: [`${LABEL_DEPLOYMENT}=${s.deployment}`] } });
    expect(await rt.startService(s)).to.equal(id); // running, same hash: adopted as is
    await rt.stop(id, 5);
    await rt.stop(id, 5); // 304 from Podman
    expect(await rt.startService(s)).to.equal(id); // exited, same hash: adopted and started again
    expect((await rt.status(id))?.state).to.equal("running");
    const after = await env.client.list({ all: true, filters: { label: [`${LABEL_DEPLOYMENT}=${s.deployment}`] } });
    expect(after.map((c) => c.Id)).to.deep.equal(before.map((c) => c.Id));
    await rt.remove(id);
    expect(await rt.status(id)).to.equal(null);
    await rt.remove(id);
    await rt.stop(id, 5);
    await rt.remove(env.unique("never-was"));
    expect(await rt.status(env.unique("never-was"))).to.equal(null);
  });

  it("replaces a leftover of ours with a different score hash", async () => {
    const s = await spec({ name: "web" }, { hash: "sha256:old" });
    const oldId = await timedStart(s);
    const newId = await timedStart({ ...s, scoreHash: "sha256:new" });
    expect(newId).to.not.equal(oldId);
    expect(await rt.status(oldId)).to.equal(null);
    expect((await rt.status(newId))?.scoreHash).to.equal("sha256:new");
  });

  it("never stops, removes, adopts or lists a same-named container without our labels", async () => {
    const s = await spec({ name: "web" });
    const name = `${s.deployment}.web`;
    // A stranger's container under the service's name: only the run label, for cleanup.
    const { Id: foreign } = await env.client.create({ name, image: TEST_IMAGES.v1, labels: { ...env.runLabels } });
    await env.client.start(foreign);
    const foreignRequestsBefore = env.client.requestCount;
    const err = await rt.startService(s).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(RuntimeError);
    expect((err as RuntimeError).message).to.include(name);
    expect((err as RuntimeError).subject).to.equal(name);
    for (const call of [() => rt.stop(foreign, 1), () => rt.remove(foreign), () => rt.stop(name, 1), () => rt.remove(name)]) {
      const e = await call().then(() => null, (x: unknown) => x);
      expect(e).to.be.instanceOf(RuntimeError);
      expect((e as RuntimeError).message).to.include(name).and.include("not managed");
    }
    expect(await rt.status(foreign)).to.equal(null);
    expect(await rt.status(name)).to.equal(null);
    expect((await rt.list()).map((c) => c.id)).to.not.include(foreign);
    const c = await env.client.inspect(foreign);
    expect(c.State.Running).to.equal(true);
    expect(c.Id).to.equal(foreign);
    expect(env.client.requestCount).to.be.above(foreignRequestsBefore);
  });

  it("never touches a same-named container of another device", async () => {
    const s = await spec({ name: "web" });
    const other = env.runtime(env.unique("other-dev"));
    const theirs = await other.startService(s);
    const err = await rt.startService(s).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(RuntimeError);
    expect((err as Error).message).to.include(`${s.deployment}.web`);
    const e2 = await rt.stop(theirs, 1).then(() => null, (x: unknown) => x);
    expect(e2).to.be.instanceOf(RuntimeError);
    expect(await rt.status(theirs)).to.equal(null);
    expect((await other.status(theirs))?.state).to.equal("running");
    expect((await rt.list()).map((c) => c.id)).to.not.include(theirs);
    expect((await other.list()).map((c) => c.id)).to.deep.equal([theirs]);
  });

  it("ensureImage: present is one request; an image no registry serves fails naming it, and nothing else changes", async () => {
    let n = env.client.requestCount;
    await rt.ensureImage(TEST_IMAGES.v1);
    expect(env.client.requestCount - n).to.equal(1);

    const ref = "localhost:5999/nope:1";
    const containersBefore = await env.client.list({ all: true, filters: { label: [`io.fleet.test-run=${env.runId}`] } });
    const imagesBefore = await env.podman(["images", "-q", "--no-trunc"]);
    n = env.client.requestCount;
    const err = await rt.ensureImage(ref).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(RuntimeError);
    expect((err as RuntimeError).message).to.include(ref);
    expect((err as RuntimeError).subject).to.equal(ref);
    expect(env.client.requestCount - n).to.equal(2); // exists? no; pull: failed
    const containersAfter = await env.client.list({ all: true, filters: { label: [`io.fleet.test-run=${env.runId}`] } });
    expect(containersAfter.map((c) => [c.Id, c.State])).to.deep.equal(containersBefore.map((c) => [c.Id, c.State]));
    expect((await env.podman(["images", "-q", "--no-trunc"])).stdout).to.equal(imagesBefore.stdout);
  });

  it("a start with a missing image fails naming the image", async () => {
    const image = `localhost/fleet-test-nope-${env.runId}:1`;
    const err = await rt.startService(await spec({ name: "web", image })).then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(RuntimeError);
    expect((err as RuntimeError).message).to.include(image);
  });

  it("a start that Podman refuses (host port taken) fails naming the service; a retry adopts the created container", async () => {
    const port = await env.freePort();
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(port, "0.0.0.0", r));
    const s = await spec({ name: "web", ports: [{ host_port: port, container_port: 8080 }] });
    try {
      const err = await rt.startService(s).then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(RuntimeError);
      expect((err as RuntimeError).message).to.match(/^service web failed to start: .*address already in use/);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
    const created = await rt.status(`${s.deployment}.web`);
    expect(created?.state).to.equal("created");
    const id = await rt.startService(s);
    expect(id).to.equal(created?.id);
    expect(await httpGet(port)).to.equal("v1");
  });

  it("the readiness step fails a started service that exits, with its exit code, and finds the one that runs ready", async () => {
    const recording = new RecordingRuntime(rt);
    const deployment = env.unique("dep");
    const services = [
      { service: { name: "crash", image: TEST_IMAGES.crash }, lifecycle: lifecycle(), scoreHash: "sha256:ready" },
      { service: { name: "web", image: TEST_IMAGES.v1 }, lifecycle: lifecycle(), scoreHash: "sha256:ready" },
    ];
    const actors = deploymentActors(recording);
    const start = createActor(actors.startNew, { input: { deployment, services } });
    const started = toPromise(start);
    start.start();
    const out = await started;
    // Starting waits for nothing: readiness is the next step's.
    expect(recording.calls.map((c) => c.op)).to.deep.equal(["startService", "startService"]);
    expect(Object.keys(out.started)).to.deep.equal(["crash", "web"]);
    const verify = createActor(actors.verify, {
      input: { deployment, since: out.at, services: Object.entries(out.started).map(([service, id]) => ({ service, id, minReadySecs: 1 })) },
    });
    const verified = toPromise(verify);
    verify.start();
    const v = await verified;
    expect(v.failure).to.deep.equal({ service: "crash", reason: "service crash exited with code 1" });
    expect((await rt.status(out.started["web"]!))?.state).to.equal("running");
  });

  it("list() is exactly one libpod request, and gives this device's containers only", async () => {
    const dev = env.unique("listdev");
    const mine = env.runtime(dev);
    const deployment = env.unique("dep");
    const ids: string[] = [];
    for (const name of ["a", "b", "c"]) ids.push(await timedStart({ deployment, service: { name, image: TEST_IMAGES.v1 }, lifecycle: lifecycle(), scoreHash: "sha256:l" }, mine));
    await mine.stop(ids[2]!, 5);
    const n = env.client.requestCount;
    const listed = await mine.list();
    expect(env.client.requestCount - n).to.equal(1);
    expect(listed.map((c) => c.id).sort()).to.deep.equal([...ids].sort());
    const byService = Object.fromEntries(listed.map((c) => [c.service, c]));
    expect(byService.a).to.deep.include({ name: `${deployment}.a`, deployment, scoreHash: "sha256:l", state: "running", exitCode: null });
    expect(byService.c).to.deep.include({ state: "exited", exitCode: 0 });
  });

  it("one tick over 20 services is one list request", async function () {
    this.timeout(240_000);
    const dev = env.unique("tickdev");
    const mine = env.runtime(dev);
    const deployment = env.unique("dep");
    const started = await Promise.all(
      Array.from({ length: 20 }, (_, i) => mine.startService({ deployment, service: { name: `s${i}`, image: TEST_IMAGES.v1 }, lifecycle: lifecycle(), scoreHash: "sha256:t" })),
    );
    const n = env.client.requestCount;
    const listed = await mine.list();
    expect(env.client.requestCount - n).to.equal(1);
    expect(listed).to.have.length(20);
    expect(listed.every((c) => c.state === "running")).to.equal(true);
    expect(new Set(listed.map((c) => c.id))).to.deep.equal(new Set(started));
  });
});

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const med = s[Math.floor(s.length / 2)]!;
  return `n=${s.length} median ${med.toFixed(0)} ms, min ${s[0]!.toFixed(0)} ms, max ${s[s.length - 1]!.toFixed(0)} ms`;
}

/** GET http://127.0.0.1:port/ until it answers (httpd binds just after start), trimmed body. */
async function httpGet(port: number, deadlineMs = 10_000): Promise<string> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port, path: "/", timeout: 2000 }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () => (res.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`HTTP ${res.statusCode}`))));
        });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", reject);
      });
    } catch (e) {
      if (Date.now() > until) throw e;
      await sleep(100);
    }
  }
}

async function waitForLogs(env: PodmanTestEnv, id: string, needle: string, deadlineMs = 10_000): Promise<string> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const logs = await env.client.logs(id);
    if (logs.includes(needle) || Date.now() > until) return logs;
    await sleep(100);
  }
}
