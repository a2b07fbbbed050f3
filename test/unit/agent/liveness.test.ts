import { expect } from "chai";
import { Liveness, type LivenessEvent, type WatchedDeployment } from "../../../agent/deployments/liveness.js";
import { silentLogger } from "../../../agent/logger.js";
import { DEFAULT_LIFECYCLE, type PodmanService } from "../../../contracts/score.codec.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";

/** Resolves once `pred` holds, checking after each turn of the event loop. */
async function until<T>(what: string, pred: () => T | undefined | false, turns = 5000): Promise<T> {
  for (let i = 0; i < turns; i++) {
    const v = pred();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`never: ${what}`);
}

describe("liveness: changes of the recorded containers, sent as machine events", () => {
  let fake: FakeRuntime;
  let sent: Array<{ deployment: string; e: LivenessEvent }>;
  let changed: string[];
  let watched: WatchedDeployment;
  let liveness: Liveness;
  const start = async (service: PodmanService) => {
    await fake.ensureImage(service.image);
    const id = await fake.startService({ deployment: "app", service, lifecycle: DEFAULT_LIFECYCLE, scoreHash: "sha256:1" });
    watched = { deployment: "app", live: true, services: [{ service: service.name, id, health: service.health, restartAt: null, unhealthy: false }] };
    liveness = new Liveness({
      runtime: fake,
      logger: silentLogger(),
      now: Date.now,
      watched: () => [watched],
      send: (deployment, e) => {
        sent.push({ deployment, e });
        // As the machine records it: a death schedules a restart, a turn of health is kept.
        const s = watched.services[0]!;
        if (e.type === "SERVICE_EXITED") s.restartAt = e.at;
        if (e.type === "SERVICE_UNHEALTHY") s.unhealthy = true;
        if (e.type === "SERVICE_HEALTHY") s.unhealthy = false;
      },
      changed: (d) => changed.push(d),
      healthIntervalMs: () => 5,
    });
    liveness.start();
    await until("the watch is live", () => fake.watcherCount === 1);
    return id;
  };
  beforeEach(() => {
    fake = new FakeRuntime({ device: "d1" });
    sent = [];
    changed = [];
  });
  afterEach(async () => {
    await liveness?.stop();
    fake.clearFaults();
  });

  it("a death of a recorded container is one SERVICE_EXITED with its exit code, from the event stream", async () => {
    const id = await start({ name: "web", image: "img/web:1" });
    fake.crash(id, 3);
    const [first] = await until("the exit", () => (sent.length ? sent : undefined));
    expect(first!.deployment).to.equal("app");
    expect(first!.e).to.include({ type: "SERVICE_EXITED", service: "web", exitCode: 3 });
    expect(liveness.view(id)?.state).to.equal("exited");
    // The same death seen again by the safety net is not news: the machine took it.
    await liveness.sweep();
    expect(sent).to.have.length(1);
  });

  it("a death while the deployment is not live (a step owns its containers) reaches only who waits for it", async () => {
    const id = await start({ name: "web", image: "img/web:1" });
    watched.live = false;
    const abort = new AbortController();
    const death = liveness.death(id, abort.signal);
    fake.crash(id, 1);
    expect(await death).to.include({ exitCode: 1 });
    await liveness.sweep();
    expect(sent).to.deep.equal([]);
  });

  it("the agent's own restart is not a death; a death after the restart is", async () => {
    const id = await start({ name: "web", image: "img/web:1" });
    const done = liveness.restarting(id);
    await fake.restart(id);
    done();
    await until("the start was seen", () => liveness.view(id)?.state === "running");
    expect(sent).to.deep.equal([]);
    fake.crash(id, 2);
    await until("the exit", () => sent.length === 1);
    expect(sent[0]!.e).to.include({ type: "SERVICE_EXITED", exitCode: 2 });
  });

  it("a container that vanished while the stream was down is found by the sweep after the reconnect", async () => {
    const id = await start({ name: "web", image: "img/web:1" });
    fake.interruptWatch();
    fake.vanish(id);
    expect(sent).to.deep.equal([]);
    fake.resumeWatch();
    await until("the sweep's exit", () => sent.length === 1);
    expect(sent[0]!.e).to.include({ type: "SERVICE_EXITED", service: "web", exitCode: null });
    expect(liveness.view(id)?.state).to.equal("missing");
  });

  it("health: one SERVICE_UNHEALTHY once Podman counts it unhealthy, one SERVICE_HEALTHY when it passes again; passes alone send nothing", async () => {
    const health = { cmd: ["CMD-SHELL", "true"], interval_secs: 1, retries: 2 };
    const id = await start({ name: "web", image: "img/web:1", health });
    await until("a few passing checks", () => liveness.checksRun >= 3);
    expect(sent).to.deep.equal([]);
    expect(liveness.view(id)?.health).to.equal("healthy");
    fake.scriptHealth("web", [false, false, false, false, { pass: true, output: "ok" }]);
    await until("unhealthy", () => sent.length === 1);
    expect(sent[0]!.e).to.deep.include({ type: "SERVICE_UNHEALTHY", service: "web", output: "simulated health check failure" });
    await until("healthy again", () => sent.length === 2);
    expect(sent[1]!.e).to.deep.include({ type: "SERVICE_HEALTHY", service: "web", output: "ok" });
    const checks = liveness.checksRun;
    await until("more passing checks", () => liveness.checksRun >= checks + 3);
    expect(sent).to.have.length(2);
    expect(changed.length).to.be.greaterThan(0);
  });
});
