// PodmanRuntime.healthcheck against a real Podman 4.3.1: what the on-demand check does with
// `retries`, `start_period` and `timeout`, and that it never runs in a container not ours.
import { expect } from "chai";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { RuntimeError } from "../../../runtime/container-runtime.js";
import { LibpodError } from "../../../runtime/podman/libpod.client.js";
import type { PodmanRuntime } from "../../../runtime/podman/podman.runtime.js";
import { startPodmanEnv, TEST_IMAGES, type PodmanTestEnv } from "../../support/podman.env.js";
import { serviceSpec, TEST_SERVICES, until } from "./runtime.fixtures.js";

describe("PodmanRuntime health checks on real Podman", function () {
  this.timeout(120_000);
  let env: PodmanTestEnv;
  let rt: PodmanRuntime;
  let dir: string;

  before(async function () {
    this.timeout(600_000);
    env = await startPodmanEnv();
    rt = env.runtime(env.unique("hdev"));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "fleet-health-"));
  });
  after(async () => {
    await env?.cleanup();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  /** A host dir bind-mounted at /state: the check passes while /state/ok exists. */
  async function stateDir(): Promise<{ host: string; ok: () => Promise<void>; notOk: () => Promise<void> }> {
    const host = await fs.mkdtemp(path.join(dir, "s-"));
    return {
      host,
      ok: () => fs.writeFile(path.join(host, "ok"), ""),
      notOk: () => fs.rm(path.join(host, "ok"), { force: true }),
    };
  }
  const fileCheck = ["CMD-SHELL", 'test -f /state/ok && echo "all good" || { echo "no /state/ok yet"; exit 1; }'];

  it("a container without a health check is `none`: Podman answers 409 'no defined healthcheck', and nothing runs", async () => {
    const id = await rt.startService(serviceSpec(env, "plain"));
    const raw = await env.client.healthcheck(id).then(() => null, (e: unknown) => e);
    expect(raw).to.be.instanceOf(LibpodError);
    expect((raw as LibpodError).status).to.equal(409);
    expect((raw as LibpodError).cause).to.match(/has no defined healthcheck/);

    let n = env.client.requestCount;
    expect(await rt.healthcheck(id)).to.deep.equal({ status: "none", failingStreak: 0, output: "" });
    expect(env.client.requestCount - n).to.equal(0); // started by this runtime: it knows there is no check
    const fresh = env.runtime(rt.device);
    n = env.client.requestCount;
    expect(await fresh.healthcheck(id)).to.deep.equal({ status: "none", failingStreak: 0, output: "" });
    expect(env.client.requestCount - n).to.equal(1); // one inspect, no check
  });

  it("retries: the endpoint says 'unhealthy' at any failure, but the report follows Podman's streak: starting, then unhealthy at `retries` in a row; a pass is healthy with streak 0", async () => {
    const st = await stateDir();
    const id = await rt.startService(
      serviceSpec(env, "web", { health: { cmd: fileCheck, interval_secs: 30, timeout_secs: 5, retries: 2 }, volumes: [{ source: st.host, target: "/state" }] }),
    );
    // The endpoint's own answer: this run's verdict only.
    expect(await env.client.healthcheck(id)).to.deep.equal({ Status: "unhealthy", FailingStreak: 0, Log: null });
    expect(await rt.healthcheck(id)).to.deep.equal({ status: "unhealthy", failingStreak: 2, output: "no /state/ok yet" });

    const again = await rt.startService(
      serviceSpec(env, "web2", { health: { cmd: fileCheck, interval_secs: 30, timeout_secs: 5, retries: 2 }, volumes: [{ source: st.host, target: "/state" }] }),
    );
    const n = env.client.requestCount;
    expect(await rt.healthcheck(again)).to.deep.equal({ status: "starting", failingStreak: 1, output: "no /state/ok yet" });
    expect(env.client.requestCount - n).to.equal(2); // the check, then the inspect that reads Podman's record
    expect(await rt.healthcheck(again)).to.deep.equal({ status: "unhealthy", failingStreak: 2, output: "no /state/ok yet" });
    await st.ok();
    expect(await rt.healthcheck(again)).to.deep.equal({ status: "healthy", failingStreak: 0, output: "all good" });
    await st.notOk();
    // After a pass, one failure leaves the status as it was: Podman changes it only at `retries`.
    expect(await rt.healthcheck(again)).to.deep.equal({ status: "healthy", failingStreak: 1, output: "no /state/ok yet" });
    expect(await rt.healthcheck(again)).to.deep.equal({ status: "unhealthy", failingStreak: 2, output: "no /state/ok yet" });
  });

  it("start_period: failures within it are not counted; a pass within it counts at once; after it, failures count", async () => {
    const st = await stateDir();
    const health = { cmd: fileCheck, interval_secs: 30, timeout_secs: 5, retries: 1, start_period_secs: 3 };
    const id = await rt.startService(serviceSpec(env, "slow", { health, volumes: [{ source: st.host, target: "/state" }] }));
    const startedAt = Date.parse((await env.client.inspect(id)).State.StartedAt ?? "");
    for (let i = 0; i < 2; i++) expect(await rt.healthcheck(id)).to.deep.equal({ status: "starting", failingStreak: 0, output: "no /state/ok yet" });
    expect(Date.now()).to.be.below(startedAt + 3000);
    await until("the start period to end", () => Date.now() > startedAt + 3200);
    expect(await rt.healthcheck(id)).to.deep.equal({ status: "unhealthy", failingStreak: 1, output: "no /state/ok yet" });

    const st2 = await stateDir();
    await st2.ok();
    const early = await rt.startService(serviceSpec(env, "early", { health, volumes: [{ source: st2.host, target: "/state" }] }));
    expect(await rt.healthcheck(early)).to.deep.equal({ status: "healthy", failingStreak: 0, output: "all good" });
  });

  it("a service whose check passes after 3 s: starting until then, healthy from its first pass", async () => {
    const id = await rt.startService(serviceSpec(env, "warm", TEST_SERVICES.passesAfter3s));
    const startedAt = Date.parse((await env.client.inspect(id)).State.StartedAt ?? "");
    const seen: string[] = [];
    const healthy = await until("the first pass", async () => {
      const r = await rt.healthcheck(id);
      seen.push(r.status);
      return r.status === "healthy" ? r : null;
    }, 20_000, 250);
    const after = Date.now() - startedAt;
    console.log(`      [health] first pass ${after} ms after the start, after ${seen.length - 1} failing checks`);
    expect(healthy).to.deep.equal({ status: "healthy", failingStreak: 0, output: "ready" });
    expect(after).to.be.at.least(3000);
    expect(seen.slice(0, -1)).to.have.length.above(0);
    expect(new Set(seen.slice(0, -1))).to.deep.equal(new Set(["starting"]));
  });

  it("the check's timeout bounds the call: a check that hangs is a failure, reported once timeout + 1 s has passed, and hangs add up; one that ends late is Podman's 500, recorded as a failure", async () => {
    const hung = await rt.startService(serviceSpec(env, "hung", { health: { cmd: ["CMD-SHELL", "sleep 60"], interval_secs: 30, timeout_secs: 1, retries: 2 } }));
    let t0 = performance.now();
    expect(await rt.healthcheck(hung)).to.deep.equal({ status: "starting", failingStreak: 1, output: "health check did not finish within its timeout of 1 s" });
    const hungMs = performance.now() - t0;
    // Podman has not recorded the first run (its command is still sleeping): it is counted all the same.
    expect(await rt.healthcheck(hung)).to.deep.equal({ status: "unhealthy", failingStreak: 2, output: "health check did not finish within its timeout of 1 s" });
    expect((await env.client.inspectHealth(hung)).State.Health).to.deep.include({ Status: "starting", FailingStreak: 0 });

    const late = await rt.startService(serviceSpec(env, "late", { health: { cmd: ["CMD-SHELL", "echo slow; sleep 1.4"], interval_secs: 30, timeout_secs: 1, retries: 1 } }));
    const raw = await env.client.healthcheck(late).then(() => null, (e: unknown) => e);
    expect((raw as LibpodError).status).to.equal(500);
    expect((raw as LibpodError).cause).to.equal("healthcheck command exceeded timeout of 1s");
    t0 = performance.now();
    expect(await rt.healthcheck(late)).to.deep.equal({ status: "unhealthy", failingStreak: 2, output: "slow" });
    const lateMs = performance.now() - t0;
    console.log(`      [health] a hung 1 s check reported after ${hungMs.toFixed(0)} ms; one ending after 1.4 s after ${lateMs.toFixed(0)} ms`);
    expect(hungMs).to.be.within(1000, 2500);
    const log = (await env.client.inspectHealth(late)).State.Health.Log ?? [];
    expect(log.map((l) => l.ExitCode)).to.deep.equal([-1, -1]);
  });

  it("a failing check: starting, then unhealthy at `retries` failures, with what it printed", async () => {
    const id = await rt.startService(serviceSpec(env, "failing", TEST_SERVICES.failingCheck));
    expect(await rt.healthcheck(id)).to.deep.equal({ status: "starting", failingStreak: 1, output: "check failed: nothing listens on 8081" });
    expect(await rt.healthcheck(id)).to.deep.equal({ status: "unhealthy", failingStreak: 2, output: "check failed: nothing listens on 8081" });
  });

  it("a stopped container is `not-running`; a removed one is `missing`", async () => {
    const health = { cmd: ["CMD-SHELL", "true"], interval_secs: 30, timeout_secs: 2, retries: 1 };
    const id = await rt.startService(serviceSpec(env, "gone", { health, grace: 2 }));
    await rt.stop(id, 2);
    const stopped = await rt.healthcheck(id).then(() => null, (e: unknown) => e);
    expect(stopped).to.be.instanceOf(RuntimeError);
    expect((stopped as RuntimeError).reason).to.equal("not-running");
    expect((stopped as RuntimeError).message).to.match(/is not running/);
    await rt.remove(id);
    const removed = await rt.healthcheck(id).then(() => null, (e: unknown) => e);
    expect((removed as RuntimeError).reason).to.equal("missing");
  });

  it("never runs the check of a container not ours: refused, and its health log stays empty", async () => {
    const name = env.unique("stranger");
    const { Id } = await env.client.create({
      name,
      image: TEST_IMAGES.v1,
      labels: { ...env.runLabels },
      healthconfig: { Test: ["CMD-SHELL", "true"], Interval: 30e9, Timeout: 2e9, StartPeriod: 0, Retries: 1 },
    });
    await env.client.start(Id);
    const checksBefore = env.client.requestsByRoute.get("GET /containers/{id}/healthcheck") ?? 0;
    const e = await rt.healthcheck(Id).then(() => null, (x: unknown) => x);
    expect(e).to.be.instanceOf(RuntimeError);
    expect((e as RuntimeError).reason).to.equal("not-managed");
    expect((e as RuntimeError).message).to.include(name);
    expect(env.client.requestsByRoute.get("GET /containers/{id}/healthcheck") ?? 0).to.equal(checksBefore);
    const h = await env.client.inspectHealth(Id);
    expect(h.State.Health.Log ?? []).to.deep.equal([]);
    expect(h.State.Health.Status).to.equal("starting");
  });
});
