import { expect } from "chai";
import { createActor, createMachine, toPromise, type AnyEventObject } from "xstate";
import { deploymentActors } from "../../../agent/deployments/executor.js";
import type { RestartDue, VerifyService } from "../../../machines/deployment.steps.js";
import { DEFAULT_LIFECYCLE, type Health } from "../../../contracts/score.codec.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";

const IMAGES = ["img/db:1", "img/web:1", "img/cache:1"];
const fake = () => new FakeRuntime({ device: "d1", images: IMAGES });
const service = (name: string, health?: Health) => ({
  service: { name, image: `img/${name}:1`, ...(health ? { health } : {}) },
  lifecycle: DEFAULT_LIFECYCLE,
  scoreHash: "sha256:s",
});

async function startStep(rt: FakeRuntime, names: string[]) {
  const actor = createActor(deploymentActors(rt).startNew, { input: { deployment: "app", services: names.map((n) => service(n)) } });
  const out = toPromise(actor);
  actor.start();
  return out;
}

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
