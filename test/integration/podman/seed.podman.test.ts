// The seed's four behaviours again, on real Podman: the same scenario code as the unit suite, with
// PodmanRuntime in place of FakeRuntime.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPodmanEnv, TEST_IMAGES, type PodmanTestEnv } from "../../support/podman.env.js";
import { seedScenarios } from "../../scenarios/seed.scenarios.js";
import type { PodmanRuntime } from "../../../runtime/podman/podman.runtime.js";

describe("seed behaviours on real Podman", function () {
  this.timeout(120_000);
  let env: PodmanTestEnv;
  let runtime: PodmanRuntime;
  let device: string;
  let volumeDir: string;

  before(async function () {
    this.timeout(15 * 60_000);
    env = await startPodmanEnv();
    device = env.unique("seed");
    runtime = env.runtime(device);
    volumeDir = mkdtempSync(join(tmpdir(), "fleet-seed-vol-"));
  });
  after(async () => {
    await env?.cleanup();
    rmSync(volumeDir, { recursive: true, force: true });
  });

  seedScenarios(() => ({
    runtime,
    device,
    deployment: () => env.unique("seed"),
    images: { v1: TEST_IMAGES.v1, v2: TEST_IMAGES.v2, crash: TEST_IMAGES.crash },
    volumeDir,
    ticks: 10,
  }));
});

describe("a tick on real Podman", function () {
  this.timeout(180_000);
  let env: PodmanTestEnv;

  before(async function () {
    this.timeout(15 * 60_000);
    env = await startPodmanEnv();
  });
  after(async () => env?.cleanup());

  it("one tick of a deployment with 20 services makes exactly one libpod request", async () => {
    const { DeploymentHarness } = await import("../../support/deployment.harness.js");
    const device = env.unique("tick");
    const h = new DeploymentHarness(env.runtime(device), { device, deployment: env.unique("twenty") });
    try {
      const services = Array.from({ length: 20 }, (_, i) => ({ name: `s${i}`, image: TEST_IMAGES.v1, env: { N: String(i) } }));
      h.update({ services, lifecycle: { grace_period_secs: 2 } });
      const s = await h.settled(150_000);
      if (s.value !== "running") throw new Error(`not running: ${s.context.lastError}`);
      const before = env.client.requestCount;
      const t0 = process.hrtime.bigint();
      await h.tick();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const requests = env.client.requestCount - before;
      console.log(`      tick of 20 services: ${requests} libpod request(s), ${ms.toFixed(1)} ms`);
      if (requests !== 1) throw new Error(`expected 1 libpod request per tick, got ${requests}`);
      if (h.state !== "running") throw new Error(`tick changed the state to ${h.state}`);
    } finally {
      h.delete();
      await h.settled(150_000);
      h.stop();
    }
  });
});
