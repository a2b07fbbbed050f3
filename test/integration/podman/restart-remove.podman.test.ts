// PodmanRuntime.restart and stopAndRemove against a real Podman 4.3.1: both stop with the
// container's own stop signal and grace period (proved by a service that records the signal it got
// in a bind-mounted file), and how many libpod requests each, and a one-service upgrade, take.
import { expect } from "chai";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { RuntimeError, type ServiceSpec } from "../../../runtime/container-runtime.js";
import type { PodmanRuntime } from "../../../runtime/podman/podman.runtime.js";
import { startPodmanEnv, TEST_IMAGES, type PodmanTestEnv } from "../../support/podman.env.js";
import { RecordingWatcher, serviceSpec, until } from "./runtime.fixtures.js";

describe("PodmanRuntime restart and stopAndRemove on real Podman", function () {
  this.timeout(120_000);
  let env: PodmanTestEnv;
  let device: string;
  let rt: PodmanRuntime;
  let dir: string;

  before(async function () {
    this.timeout(600_000);
    env = await startPodmanEnv();
    device = env.unique("rdev");
    rt = env.runtime(device);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "fleet-restart-"));
  });
  after(async () => {
    await env?.cleanup();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  /**
   * Stops on SIGINT (its score's stop signal) only after a second of clean-up, writing what it got
   * to /out/signals; says "up" there at each start. SIGTERM is recorded too, and also ends it.
   */
  async function signalRecorder(name: string, grace = 5): Promise<{ spec: ServiceSpec; signals: () => Promise<string[]> }> {
    const host = await fs.mkdtemp(path.join(dir, `${name}-`));
    const script = [
      `trap 'echo INT >> /out/signals; sleep 1; echo cleaned-up >> /out/signals; exit 0' INT`,
      `trap 'echo TERM >> /out/signals; exit 0' TERM`,
      "echo up >> /out/signals",
      "while :; do sleep 1 & wait $!; done",
    ].join("\n");
    return {
      spec: serviceSpec(env, name, { command: ["sh", "-c", script], stopSignal: "SIGINT", grace, volumes: [{ source: host, target: "/out" }] }),
      signals: async () => (await fs.readFile(path.join(host, "signals"), "utf8").catch(() => "")).split("\n").filter((l) => l !== ""),
    };
  }

  it("stopAndRemove on 4.3.1 is one request (DELETE force&timeout), as graceful as stop: the stop signal, the clean-up it needs, then gone", async () => {
    const svc = await signalRecorder("graceful");
    const id = await rt.startService(svc.spec);
    await until("the service to be up", async () => (await svc.signals()).includes("up"));
    const n = env.client.requestCount;
    const t0 = performance.now();
    await rt.stopAndRemove(id, 5);
    const s = (performance.now() - t0) / 1000;
    expect(env.client.requestCount - n).to.equal(1);
    expect(await svc.signals()).to.deep.equal(["up", "INT", "cleaned-up"]);
    expect(s).to.be.within(0.9, 4); // waited for its clean-up, not for the grace period
    expect(await rt.status(id)).to.equal(null);
  });

  it("stopAndRemove kills a service that ignores its stop signal after graceSecs, and removes it", async () => {
    const grace = 2;
    const id = await rt.startService(serviceSpec(env, "stubborn", { image: TEST_IMAGES.stubborn, grace: 30 }));
    await until("the trap to be set", async () => (await env.client.logs(id)).includes("running"));
    const w = new RecordingWatcher();
    const ac = new AbortController();
    const watching = rt.watchContainers(w, ac.signal);
    try {
      await w.waitFor("the watch", () => w.connections[0]);
      const t0 = performance.now();
      await rt.stopAndRemove(id, grace);
      const s = (performance.now() - t0) / 1000;
      console.log(`      [latency] stubborn stopAndRemove with grace ${grace} s: ${s.toFixed(2)} s`);
      expect(s).to.be.within(grace - 0.5, grace + 2);
      expect(await w.event$(id, "died")).to.deep.include({ exitCode: 137 });
      await w.event$(id, "removed");
      expect(await rt.status(id)).to.equal(null);
    } finally {
      ac.abort();
      await watching;
    }
  });

  it("without `recorded`, an id this runtime has not seen costs one inspect more; with it, none; a missing one succeeds", async () => {
    const svc = await signalRecorder("counted", 3);
    const a = await rt.startService(svc.spec);
    const b = await rt.startService({ ...svc.spec, service: { ...svc.spec.service, name: "counted-b" } });
    const fresh = env.runtime(device); // as after an agent restart: nothing seen yet
    let n = env.client.requestCount;
    await fresh.stopAndRemove(a, 3);
    expect(env.client.requestCount - n).to.equal(2);
    n = env.client.requestCount;
    await env.runtime(device).stopAndRemove(b, 3, { recorded: true });
    expect(env.client.requestCount - n).to.equal(1);
    expect(await rt.status(a)).to.equal(null);
    expect(await rt.status(b)).to.equal(null);
    n = env.client.requestCount;
    await fresh.stopAndRemove(b, 3, { recorded: true }); // gone: 404, which is success
    await fresh.stopAndRemove(env.unique("never-was"), 3);
    expect(env.client.requestCount - n).to.equal(2);
  });

  it("stopAndRemove refuses a container not ours (it keeps running), and a `recorded` id that is not a full id", async () => {
    const name = env.unique("stranger");
    const { Id } = await env.client.create({ name, image: TEST_IMAGES.v1, labels: { ...env.runLabels } });
    await env.client.start(Id);
    const e = await rt.stopAndRemove(Id, 1).then(() => null, (x: unknown) => x);
    expect(e).to.be.instanceOf(RuntimeError);
    expect((e as RuntimeError).reason).to.equal("not-managed");
    expect((e as RuntimeError).message).to.include(name);
    const short = await rt.stopAndRemove(name, 1, { recorded: true }).then(() => null, (x: unknown) => x);
    expect((short as RuntimeError).message).to.match(/full 64-hex id/);
    expect((await env.client.inspect(Id)).State.Running).to.equal(true);
  });

  it("restart of a running container: its own stop signal and clean-up, then a new start of the same container, in one request", async () => {
    const svc = await signalRecorder("restarted");
    const id = await rt.startService(svc.spec);
    await until("the service to be up", async () => (await svc.signals()).includes("up"));
    const before = (await env.client.inspect(id)).State.StartedAt;
    const n = env.client.requestCount;
    expect(await rt.restart(id)).to.equal(id);
    expect(env.client.requestCount - n).to.equal(1);
    const after = await env.client.inspect(id);
    expect(after.State.Running).to.equal(true);
    expect(after.State.StartedAt).to.not.equal(before);
    await until("the new start to be up", async () => (await svc.signals()).length === 4);
    expect(await svc.signals()).to.deep.equal(["up", "INT", "cleaned-up", "up"]);
  });

  it("restart of an exited container starts it; of a stubborn one, kills it after its grace period", async () => {
    const svc = await signalRecorder("exited");
    const id = await rt.startService(svc.spec);
    await until("the service to be up", async () => (await svc.signals()).includes("up"));
    await rt.stop(id, 5);
    expect((await rt.status(id))?.state).to.equal("exited");
    expect(await env.runtime(device).restart(id)).to.equal(id); // an id not seen before: inspected first
    expect((await rt.status(id))?.state).to.equal("running");
    await until("the new start to be up", async () => (await svc.signals()).length === 4);

    const grace = 2;
    const stubborn = await rt.startService(serviceSpec(env, "stubborn-r", { image: TEST_IMAGES.stubborn, grace }));
    await until("the trap to be set", async () => (await env.client.logs(stubborn)).includes("running"));
    const t0 = performance.now();
    await rt.restart(stubborn);
    const s = (performance.now() - t0) / 1000;
    expect(s).to.be.within(grace - 0.5, grace + 2);
    expect((await env.client.logs(stubborn)).match(/fleet-test stubborn: running/g)).to.have.length(2);
  });

  it("restart refuses a container not ours and says `missing` for one that is gone", async () => {
    const { Id } = await env.client.create({ name: env.unique("stranger"), image: TEST_IMAGES.v1, labels: { ...env.runLabels } });
    const e = await rt.restart(Id).then(() => null, (x: unknown) => x);
    expect((e as RuntimeError).reason).to.equal("not-managed");
    expect((await env.client.inspect(Id)).State.Status).to.equal("created");
    const id = await rt.startService(serviceSpec(env, "short"));
    await rt.stopAndRemove(id, 1);
    const gone = await rt.restart(id).then(() => null, (x: unknown) => x);
    expect((gone as RuntimeError).reason).to.equal("missing");
  });

  it("a one-service upgrade after an agent restart: image check, stop and remove in one, create, start: 4 requests (the direct calls are 5)", async () => {
    const deployment = env.unique("up");
    const v1 = serviceSpec(env, "web", { deployment, grace: 5, hash: "sha256:v1" });
    const old = await rt.startService(v1);
    const agent = env.runtime(device); // a new agent process: it knows the old id from its journal only
    const n = env.client.requestCount;
    const routes = new Map(env.client.requestsByRoute);
    await agent.ensureImage(TEST_IMAGES.v2);
    await agent.stopAndRemove(old, 5, { recorded: true });
    const fresh = await agent.startService({ ...v1, service: { ...v1.service, image: TEST_IMAGES.v2 }, scoreHash: "sha256:v2" });
    const used = [...env.client.requestsByRoute].map(([r, c]) => [r, c - (routes.get(r) ?? 0)] as const).filter(([, c]) => c > 0);
    console.log(`      [requests] one-service upgrade: ${env.client.requestCount - n} (${used.map(([r, c]) => `${r} ×${c}`).join(", ")})`);
    expect(env.client.requestCount - n).to.equal(4);
    expect(Object.fromEntries(used)).to.deep.equal({
      "GET /images/{name}/exists": 1,
      "DELETE /containers/{id}": 1,
      "POST /containers/create": 1,
      "POST /containers/{id}/start": 1,
    });
    expect((await rt.status(fresh))?.state).to.equal("running");
    expect(await rt.status(old)).to.equal(null);
  });
});
