// Service health on real Podman and real NATS, through the agent as a device runs it (in process):
// readiness before Running, the liveness's restarts with their backoff, health checks the agent
// runs itself, and how fast a death is restarted. The backoff base is 2 s here (an agent option;
// the default stays 10 s → 300 s), and the tick is an hour: everything seen is the event stream's.
import { expect } from "chai";
import { rmSync } from "node:fs";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { startAgent, type RunningAgent } from "../../../agent/agent.js";
import { silentLogger } from "../../../agent/logger.js";
import { decodeJson } from "../../../contracts/decode.js";
import { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, deploymentKey } from "../../../contracts/wire-names.js";
import { readStreamEvents } from "../../../fleet/stream.reader.js";
import type { DomainEvent } from "../../../contracts/journal-event.codec.js";
import { isDomainCause } from "../../../machines/journal.vocabulary.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { startPodmanEnv, TEST_IMAGES, type PodmanTestEnv } from "../../support/podman.env.js";
import { cleanupDevice, connectTest, SHARED_NATS, tempDir, uniqueDevice, waitFor } from "../../support/nats.js";
import { RecordingWatcher, TEST_SERVICES, summary } from "../podman/runtime.fixtures.js";

const BACKOFF = { baseMs: 2000, capMs: 16_000 };

describe("service health on real Podman, through the agent", function () {
  this.timeout(180_000);
  let podman: PodmanTestEnv;
  let nc: NatsConnection;
  let desired: KV;
  let states: KV;
  let device: string;
  let stateDir: string;
  let agent: RunningAgent | null = null;
  /** Every device-state value the agent wrote for the deployment, in order, with when it was seen. */
  let seen: Array<DeploymentState & { seenAt: number }>;
  let stopWatch: (() => void) | null = null;

  before(async function () {
    this.timeout(15 * 60_000);
    podman = await startPodmanEnv();
    nc = await connectTest();
    await ensureFleetResources(nc);
    desired = await new Kvm(nc).open(BUCKET_DESIRED_STATE);
    states = await new Kvm(nc).open(BUCKET_DEVICE_STATE);
  });
  after(async () => {
    await nc?.close();
    await podman?.cleanup();
  });
  beforeEach(async () => {
    device = uniqueDevice();
    stateDir = tempDir("fleet-health-");
    seen = [];
    agent = await startAgent(
      { deviceId: device, natsServers: [SHARED_NATS], stateDir, tickSecs: 3600, logLevel: "silent", containerHost: undefined, backoff: BACKOFF },
      { runtime: podman.runtime(device), logger: silentLogger() },
    );
    await agent.online;
  });
  afterEach(async () => {
    stopWatch?.();
    stopWatch = null;
    await agent?.stop(5000);
    agent = null;
    const mine = await podman.client.list({ all: true, filters: { label: [`io.fleet.device=${device}`] } });
    await Promise.all(mine.map((c) => podman.client.remove(c.Id, { force: true, timeout: 0 }).catch(() => undefined)));
    await cleanupDevice(nc, device);
    rmSync(stateDir, { recursive: true, force: true });
  });

  /** Writes the score and follows every device-state value the agent writes for it. */
  const deploy = async (app: string, services: object[], lifecycle: object = { grace_period_secs: 1 }) => {
    const iter = await states.watch({ key: deploymentKey(device, app) });
    stopWatch = () => iter.stop();
    void (async () => {
      for await (const e of iter) {
        if (e.operation !== "PUT") continue;
        const r = decodeJson(DeploymentState, e.string());
        if (r.ok) seen.push({ ...r.value, seenAt: Date.now() });
      }
    })();
    const at = Date.now();
    await desired.put(deploymentKey(device, app), JSON.stringify({ type: "PodmanV0", data: { services, lifecycle } }));
    return at;
  };
  const latest = () => seen.at(-1);
  const journal = async (app: string) => {
    await agent!.publisher.idle(10_000);
    return readStreamEvents(jetstream(nc), device, app);
  };
  /** The journal's causes, all version 2 (this agent writes nothing else). */
  const causes = async (app: string): Promise<DomainEvent[]> => (await journal(app)).map((e) => e.event).filter(isDomainCause);

  it("an exiting service goes Degraded with restarts 1, 2, 3 at growing intervals, and is never Running while it loops", async () => {
    const app = podman.unique("loop");
    await deploy(app, [{ name: "web", image: TEST_IMAGES.v1, ...TEST_SERVICES.exiting }], { grace_period_secs: 1, min_ready_secs: 0 });
    const firstDeath = await waitFor("the first restart", () => seen.find((s) => (s.services?.["web"]?.restarts ?? 0) >= 1), 30_000);
    const third = await waitFor("the third restart", () => seen.find((s) => (s.services?.["web"]?.restarts ?? 0) >= 3), 60_000);
    const loop = seen.slice(seen.indexOf(firstDeath));
    expect(loop.map((s) => s.phase).filter((p) => p !== "Degraded"), "phases while it loops").to.deep.equal([]);
    expect(third.services!["web"]).to.deep.include({ last_exit_code: 3 });
    // When each restart was due, from the journal: at once, then 2 s and 4 s after the death.
    const exits = (await causes(app)).flatMap((e) => (e.type === "service.exited" ? [e] : []));
    const delays = exits.slice(0, 3).map((e) => (e.restart_at ?? e.at) - e.at);
    console.log(`      restart delays after each death: ${delays.join(", ")} ms`);
    expect(delays).to.deep.equal([0, 2000, 4000]);
    expect(exits.every((e) => e.exit_code === 3)).to.equal(true);
    const status = latest()!;
    expect(status.phase).to.equal("Degraded");
    expect(status.state).to.equal("running");
  });

  it("a failing health check makes the service unhealthy, then it is restarted; a pass again makes it healthy", async () => {
    const app = podman.unique("sick");
    // Healthy for 4 s after each start (the readiness passes), then its check fails.
    const web = {
      name: "web",
      image: TEST_IMAGES.v1,
      command: ["sh", "-c", "touch /tmp/ok; (sleep 4; rm -f /tmp/ok) & exec httpd -f -p 8080 -h /www"],
      health: { cmd: ["CMD-SHELL", "test -f /tmp/ok || { echo 'check failed: /tmp/ok is gone'; exit 1; }"], interval_secs: 1, timeout_secs: 2, retries: 2 },
    };
    await deploy(app, [web]);
    await waitFor("Running and healthy", () => seen.find((s) => s.phase === "Running" && s.services?.["web"]?.health === "healthy"), 30_000);
    const sick = await waitFor("unhealthy", () => seen.find((s) => s.services?.["web"]?.health === "unhealthy"), 30_000);
    expect(sick.phase).to.equal("Degraded");
    await waitFor("restarted and healthy again", () => seen.find((s) => s.seenAt > sick.seenAt && (s.services?.["web"]?.restarts ?? 0) >= 1 && s.services?.["web"]?.health === "healthy"), 30_000);
    const events = await causes(app);
    const health = events.filter((e) => e.type === "service.unhealthy" || e.type === "service.healthy");
    expect(health.map((e) => e.type).slice(0, 2)).to.deep.equal(["service.unhealthy", "service.healthy"]);
    expect(health[0]).to.deep.include({ service: "web", output: "check failed: /tmp/ok is gone" });
    // Transitions only: the passing checks in between are not journaled.
    expect(events.filter((e) => e.type === "service.healthy").length).to.be.at.most(events.filter((e) => e.type === "service.unhealthy").length);
  });

  it("a service whose check passes after 3 s is Running only once it passes", async () => {
    const app = podman.unique("warm");
    const at = await deploy(app, [{ name: "web", image: TEST_IMAGES.v1, ...TEST_SERVICES.passesAfter3s }]);
    const running = await waitFor("Running", () => seen.find((s) => s.phase === "Running"), 60_000);
    const before = seen.slice(0, seen.indexOf(running));
    expect(before.some((s) => s.state === "verifying" && s.phase === "Pending" && s.services?.["web"]?.state === "starting"), "verifying, Pending, starting").to.equal(true);
    const events = await causes(app);
    const started = events.find((e) => e.type === "start.done")!;
    const ready = events.find((e) => e.type === "verify.done")!;
    console.log(`      desired put → Running ${running.seenAt - at} ms; start.done → verify.done ${ready.at - started.at} ms`);
    expect(ready.at - started.at).to.be.at.least(3000);
    expect(running.services!["web"]).to.deep.include({ health: "healthy", restarts: 0 });
  });

  it("a death is restarted in under a second on the first crash, from the event stream (the tick is an hour)", async () => {
    const app = podman.unique("kill");
    await deploy(app, [{ name: "web", image: TEST_IMAGES.v1 }], { grace_period_secs: 1, min_ready_secs: 0 });
    const up = await waitFor("Running", () => seen.find((s) => s.phase === "Running"), 30_000);
    const id = up.container_ids["web"]!;
    const watcher = new RecordingWatcher();
    const abort = new AbortController();
    void podman.runtime(device).watchContainers(watcher, abort.signal);
    await watcher.waitFor("the watch", () => watcher.connections.length > 0);
    const times: number[] = [];
    try {
      const killedAt = Date.now();
      await podman.client.kill(id, "KILL");
      const restarted = await watcher.waitFor("started again", () => watcher.events.find((e) => e.id === id && e.type === "started" && e.receivedAt >= killedAt));
      times.push(restarted.receivedAt - killedAt);
    } finally {
      abort.abort();
    }
    console.log(`      kill → started again: ${summary(times)}`);
    expect(times[0]).to.be.below(1000);
    const s = await waitFor("the restart on record", () => seen.find((x) => (x.services?.["web"]?.restarts ?? 0) === 1), 10_000);
    expect(s.services!["web"]).to.deep.include({ last_exit_code: 137, container_id: id });
  });

  it("a service with min_ready_secs 0 is Running as soon as it started: no readiness step", async () => {
    const app = podman.unique("now");
    await deploy(app, [{ name: "web", image: TEST_IMAGES.v1 }], { grace_period_secs: 1, min_ready_secs: 0 });
    await waitFor("Running", () => seen.find((s) => s.phase === "Running"), 30_000);
    const events = await journal(app);
    expect(events.map((e) => `${e.from}→${e.to}`)).to.deep.equal(["pending→pulling", "pulling→stoppingOld", "stoppingOld→startingNew", "startingNew→running"]);
    expect(seen.some((s) => s.state === "verifying")).to.equal(false);
  });
});
