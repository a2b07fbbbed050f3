import { expect } from "chai";
import { createActor, createMachine, toPromise, type AnyEventObject } from "xstate";
import { deploymentActors, STEP_CONCURRENCY } from "../../../agent/deployments/executor.js";
import type { RestartDue, StopInput, VerifyService } from "../../../machines/deployment.steps.js";
import { DEFAULT_LIFECYCLE, type Health } from "../../../contracts/score.codec.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";

const IMAGES = ["db", "web", "cache", "old", "a", "b", "c", "d", "e", "f"].map((n) => `img/${n}:1`);
const fake = () => new FakeRuntime({ device: "d1", images: IMAGES });
const service = (name: string, health?: Health, dependsOn?: string[]) => ({
  service: { name, image: `img/${name}:1`, ...(health ? { health } : {}), ...(dependsOn ? { depends_on: dependsOn } : {}) },
  lifecycle: DEFAULT_LIFECYCLE,
  scoreHash: "sha256:s",
});

type Actors = ReturnType<typeof deploymentActors>;

async function startStep(rt: FakeRuntime, names: string[], actors: Actors = deploymentActors(rt), dependsOn: Record<string, string[]> = {}) {
  const actor = createActor(actors.startNew, { input: { deployment: "app", services: names.map((n) => service(n, undefined, dependsOn[n])) } });
  const out = toPromise(actor);
  actor.start();
  return out;
}

async function stopStep(actors: Actors, containers: StopInput["containers"], keep: string[] = []) {
  const actor = createActor(actors.stopOld, { input: { deployment: "app", containers, keep, strayGraceSecs: 5 } });
  const out = toPromise(actor);
  actor.start();
  return out;
}

async function pullStep(actors: Actors, images: string[]) {
  const actor = createActor(actors.pullImages, { input: { deployment: "app", images } });
  const out = toPromise(actor);
  actor.start();
  return out;
}

/** Lets every queued callback run (each part begins in a microtask): what has not begun by then waits. */
const drained = () => new Promise<void>((r) => setImmediate(r));
const opsOf = (rt: FakeRuntime, op: string) => rt.calls.filter((c) => c.op === op).map((c) => c.arg);

async function verifyStep(rt: FakeRuntime, services: VerifyService[], since = Date.now()) {
  const actor = createActor(deploymentActors(rt).verify, { input: { deployment: "app", since, services } });
  const out = toPromise(actor);
  actor.start();
  return out;
}

/** Runs the restarts actor until it has told the machine `n` things and has made `calls` runtime calls. */
async function restartsStep(rt: FakeRuntime, restarts: RestartDue[], n: number, calls = 1): Promise<AnyEventObject[]> {
  const before = rt.calls.length;
  const told: AnyEventObject[] = [];
  // A parent that keeps what it is told, as the deployment machine would take it.
  const parent = createMachine({
    invoke: { src: deploymentActors(rt).restarts, input: { deployment: "app", restarts } },
    on: { "*": { actions: ({ event }) => void told.push(event) } },
  });
  const actor = createActor(parent);
  actor.start();
  for (let i = 0; i < 500 && (told.length < n || rt.calls.length - before < calls); i++) await new Promise((r) => setTimeout(r, 2));
  actor.stop();
  return told;
}

describe("the start step", () => {
  it("creates and starts every service and waits for nothing: readiness is the next step's", async () => {
    const rt = fake();
    rt.exitAtStart("db", 3);
    const out = await startStep(rt, ["db", "web", "cache"]);
    expect(rt.calls.map((c) => c.op)).to.deep.equal(["startService", "startService", "startService"]);
    expect(Object.keys(out.started)).to.deep.equal(["db", "web", "cache"]);
    expect(out.failure).to.equal(undefined);
  });
});

describe("the start step, side by side", () => {
  it(`starts at most ${STEP_CONCURRENCY} services at once, and every service once`, async () => {
    const rt = fake();
    const names = ["a", "b", "c", "d", "e", "f"];
    const gate = rt.hold("startService");
    const out = startStep(rt, names);
    await gate.reached;
    await drained();
    expect(opsOf(rt, "startService")).to.have.length(STEP_CONCURRENCY);
    gate();
    const { started, failure } = await out;
    expect(failure).to.equal(undefined);
    expect(Object.keys(started).sort()).to.deep.equal(names);
    expect(opsOf(rt, "startService").sort()).to.deep.equal(names.map((n) => `app.${n}`));
  });

  it("starts a service only after what it depends on has started", async () => {
    const rt = fake();
    const gate = rt.hold("startService");
    const out = startStep(rt, ["web", "db", "cache"], deploymentActors(rt), { web: ["db"] });
    await gate.reached;
    await drained();
    expect(opsOf(rt, "startService")).to.deep.equal(["app.db", "app.cache"]);
    gate();
    await out;
    expect(opsOf(rt, "startService")).to.deep.equal(["app.db", "app.cache", "app.web"]);
  });

  it("the first failure is the step's, and every service that did start is recorded", async () => {
    const rt = fake();
    rt.failStart("a", "port 8080 taken");
    const { started, failure } = await startStep(rt, ["a", "b", "c"]);
    expect(failure).to.deep.include({ service: "a", message: "starting service a: port 8080 taken" });
    // a's container was created and did not start: recorded by its id, for the next stop step.
    expect(failure!.id).to.match(/^[0-9a-f]{64}$/);
    expect(Object.keys(started).sort()).to.deep.equal(["b", "c"]);
    expect(Object.values(started)).to.not.include(failure!.id);
  });

  it("does not start a service whose dependency failed", async () => {
    const rt = fake();
    rt.failCreate("db");
    const { started, failure } = await startStep(rt, ["db", "web"], deploymentActors(rt), { web: ["db"] });
    expect(failure).to.deep.include({ service: "db" });
    expect(started).to.deep.equal({});
    expect(opsOf(rt, "startService")).to.deep.equal(["app.db"]);
  });
});

describe("the stop step", () => {
  const recorded = async (rt: FakeRuntime, actors: Actors, names: string[]) => Object.entries((await startStep(rt, names, actors)).started);

  it("stops and removes each recorded container in one call, by its id, without looking it up", async () => {
    const rt = fake();
    const actors = deploymentActors(rt);
    const ids = await recorded(rt, actors, ["web", "db"]);
    rt.clearCalls();
    const out = await stopStep(actors, ids.map(([service, id]) => ({ service, id, graceSecs: 7 })));
    expect(out.stopped.sort()).to.deep.equal(["db", "web"]);
    const stops = rt.calls.filter((c) => c.op === "stopAndRemove");
    expect(stops.map((c) => c.arg).sort()).to.deep.equal(ids.map(([, id]) => id).sort());
    expect(stops.every((c) => c.recorded === true && c.graceSecs === 7)).to.equal(true);
    expect(rt.calls.filter((c) => c.op === "status" || c.op === "stop" || c.op === "remove")).to.deep.equal([]);
    expect(rt.snapshot()).to.deep.equal([]);
  });

  it(`stops at most ${STEP_CONCURRENCY} at once, and a service before what it depends on`, async () => {
    const rt = fake();
    const actors = deploymentActors(rt);
    const ids = Object.fromEntries(await recorded(rt, actors, ["db", "a", "b", "c", "d", "web"]));
    rt.clearCalls();
    const gate = rt.hold("stopAndRemove");
    const containers = Object.entries(ids).map(([service, id]) => ({ service, id, graceSecs: 5, after: service === "db" ? ["web"] : [] }));
    const out = stopStep(actors, containers);
    await gate.reached;
    await drained();
    expect(opsOf(rt, "stopAndRemove")).to.deep.equal(["a", "b", "c", "d"].map((s) => ids[s]));
    gate();
    await out;
    const order = opsOf(rt, "stopAndRemove");
    expect(order.indexOf(ids["db"]!)).to.be.greaterThan(order.indexOf(ids["web"]!));
  });

  it("sweeps strays with one list in a deployment's first stop step after the agent starts, then not until a step fails", async () => {
    const rt = fake();
    const actors = deploymentActors(rt);
    const first = await recorded(rt, actors, ["web", "old"]);
    // "old" was left unrecorded (a crash, say): the first stop step finds it.
    const web = first.filter(([s]) => s === "web").map(([service, id]) => ({ service, id, graceSecs: 5 }));
    rt.clearCalls();
    const swept = await stopStep(actors, web, ["web"]);
    expect(rt.calls.filter((c) => c.op === "list")).to.have.length(1);
    expect(swept.swept).to.deep.equal(first.filter(([s]) => s === "old").map(([, id]) => id));

    const second = await recorded(rt, actors, ["web"]);
    rt.clearCalls();
    await stopStep(actors, second.map(([service, id]) => ({ service, id, graceSecs: 5 })), ["web"]);
    expect(rt.calls.map((c) => c.op)).to.deep.equal(["stopAndRemove"]);

    // A start that fails may leave a container behind: the next stop step sweeps again.
    rt.failStart("web", "simulated", { once: true });
    const failed = await startStep(rt, ["web"], actors);
    expect(failed.failure).to.not.equal(undefined);
    rt.clearCalls();
    await stopStep(actors, [{ service: "web", id: failed.failure!.id!, graceSecs: 5 }], ["web"]);
    expect(rt.calls.map((c) => c.op)).to.deep.equal(["stopAndRemove", "list"]);
  });

  it("a stop step that fails is its first failure, keeps what it stopped, and makes the next one sweep", async () => {
    const rt = fake();
    const actors = deploymentActors(rt);
    const ids = await recorded(rt, actors, ["web", "db"]);
    await stopStep(actors, [], ["web", "db"]); // the first stop step sweeps: from here on the deployment has no strays
    rt.failStop("db", "runc: device busy", { once: true });
    const out = await stopStep(actors, ids.map(([service, id]) => ({ service, id, graceSecs: 5 })));
    expect(out.failure).to.deep.include({ service: "db" });
    expect(out.failure!.message).to.include("runc: device busy");
    expect(out.stopped).to.deep.equal(["web"]);
    rt.clearCalls();
    await stopStep(actors, ids.filter(([s]) => s === "db").map(([service, id]) => ({ service, id, graceSecs: 5 })));
    expect(rt.calls.map((c) => c.op)).to.deep.equal(["stopAndRemove", "list"]);
  });
});

describe("the pull step", () => {
  it("pulls every image side by side; the first failure is the step's, once the other pulls have ended", async () => {
    const rt = new FakeRuntime({ device: "d1" });
    rt.failPull("img/a:1", "manifest unknown");
    const gate = rt.hold("ensureImage");
    const out = pullStep(deploymentActors(rt), ["img/a:1", "img/b:1", "img/c:1"]);
    await gate.reached;
    await drained();
    expect(opsOf(rt, "ensureImage")).to.deep.equal(["img/a:1", "img/b:1", "img/c:1"]);
    gate();
    let error: unknown;
    await out.catch((e: unknown) => (error = e));
    expect((error as Error).message).to.include("manifest unknown");
    expect(rt.calls.filter((c) => c.op === "ensureImage" && c.outcome === "pulled").map((c) => c.arg)).to.deep.equal(["img/b:1", "img/c:1"]);
  });
});

describe("the readiness step", () => {
  it("a service without a health check and min_ready_secs 0 is ready as soon as it started", async () => {
    const rt = fake();
    const { started } = await startStep(rt, ["web"]);
    const out = await verifyStep(rt, [{ service: "web", id: started["web"]!, minReadySecs: 0 }]);
    expect(out).to.deep.include({ ready: ["web"] });
    expect(out.failure).to.equal(undefined);
  });

  it("fails the service that died, with its exit code, and stops waiting for the others", async () => {
    const rt = fake();
    rt.exitAtStart("db", 3);
    const { started } = await startStep(rt, ["db", "web"]);
    const out = await verifyStep(rt, [
      { service: "db", id: started["db"]!, minReadySecs: 3600 },
      { service: "web", id: started["web"]!, minReadySecs: 3600 },
    ]);
    expect(out.failure).to.deep.equal({ service: "db", reason: "service db exited with code 3" });
    expect(out.ready).to.deep.equal([]);
  });

  it("a death while it waits ends the wait at once", async () => {
    const rt = fake();
    const { started } = await startStep(rt, ["web"]);
    const out = verifyStep(rt, [{ service: "web", id: started["web"]!, minReadySecs: 3600 }]);
    await new Promise((r) => setTimeout(r, 10));
    rt.crash(started["web"]!, 137);
    expect((await out).failure).to.deep.equal({ service: "web", reason: "service web exited with code 137" });
  });

  it("with a health check: ready at its first pass", async () => {
    const rt = fake();
    const health = { cmd: ["CMD-SHELL", "true"], interval_secs: 1, retries: 3 };
    const id = await rt.startService({ deployment: "app", ...service("web", health) });
    rt.scriptHealth("web", [false, true]);
    const out = await verifyStep(rt, [{ service: "web", id, health, minReadySecs: 1 }]);
    expect(out).to.deep.include({ ready: ["web"] });
    expect(rt.count("healthcheck")).to.equal(2);
  });

  it("with a health check Podman counts unhealthy: fails with the check's output", async () => {
    const rt = fake();
    const health = { cmd: ["CMD-SHELL", "false"], interval_secs: 1, retries: 0 };
    const id = await rt.startService({ deployment: "app", ...service("web", health) });
    rt.failHealth("web", "connection refused");
    const out = await verifyStep(rt, [{ service: "web", id, health, minReadySecs: 1 }]);
    expect(out.failure).to.deep.equal({ service: "web", reason: "service web is unhealthy: connection refused" });
  });
});

describe("the restarts actor", () => {
  const due = (over: Partial<RestartDue> & { id: string }): RestartDue => ({
    service: "web",
    at: Date.now(),
    spec: service("web"),
    recreate: true,
    unhealthy: false,
    restarts: 1,
    ...over,
  });

  it("starts a dead container again when due, keeping its id; tells the machine nothing", async () => {
    const rt = fake();
    const { started } = await startStep(rt, ["web"]);
    rt.crash(started["web"]!, 1);
    const told = await restartsStep(rt, [due({ id: started["web"]! })], 0, 2);
    expect(told).to.deep.equal([]);
    expect(rt.peek(started["web"]!)!.state).to.equal("running");
    expect(rt.count("restart")).to.equal(1);
  });

  it("creates a container that is gone again and tells the machine its new id; not for an earlier score's", async () => {
    const rt = fake();
    const { started } = await startStep(rt, ["web"]);
    rt.vanish(started["web"]!);
    const told = await restartsStep(rt, [due({ id: started["web"]! })], 1);
    expect(told).to.have.length(1);
    expect(told[0]).to.deep.include({ type: "SERVICE_RESTARTED", service: "web" });
    expect(rt.peek(String(told[0]!["id"]))!.state).to.equal("running");
    const rt2 = fake();
    const s2 = await startStep(rt2, ["web"]);
    rt2.vanish(s2.started["web"]!);
    expect(await restartsStep(rt2, [due({ id: s2.started["web"]!, recreate: false })], 0, 1)).to.deep.equal([]);
    expect(rt2.count("startService")).to.equal(1);
  });

  it("a restart the runtime refuses is a service still down: SERVICE_EXITED, for the backoff's next try", async () => {
    const rt = fake();
    const { started } = await startStep(rt, ["web"]);
    rt.crash(started["web"]!, 1);
    rt.failStart("web", "OCI runtime error");
    const told = await restartsStep(rt, [due({ id: started["web"]! })], 1);
    expect(told).to.have.length(1);
    expect(told[0]).to.deep.include({ type: "SERVICE_EXITED", service: "web", exitCode: null });
  });

  it("restarts a running container only when it was taken as unhealthy; a restart long past is not redone", async () => {
    const rt = fake();
    const { started } = await startStep(rt, ["web"]);
    await restartsStep(rt, [due({ id: started["web"]! })], 0);
    expect(rt.count("restart")).to.equal(0);
    await restartsStep(rt, [due({ id: started["web"]!, unhealthy: true })], 0, 2);
    expect(rt.count("restart")).to.equal(1);
    // A restart due a minute before the actor began (a restored agent): the liveness reports what
    // is still wrong. Seen next to a fresh one that is carried out.
    const { started: more } = await startStep(rt, ["db"]);
    rt.crash(started["web"]!, 1);
    rt.crash(more["db"]!, 1);
    await restartsStep(rt, [due({ id: started["web"]!, at: Date.now() - 60_000 }), due({ service: "db", id: more["db"]!, spec: service("db") })], 0, 2);
    expect(rt.peek(more["db"]!)!.state).to.equal("running");
    expect(rt.peek(started["web"]!)!.state).to.equal("exited");
  });
});
