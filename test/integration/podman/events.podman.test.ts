// PodmanRuntime.watchContainers against a real Podman 4.3.1: typed events of this device's managed
// containers only, how soon a death arrives, and a reconnect after the Podman service restarts.
import { expect } from "chai";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { LABEL_DEVICE } from "../../../contracts/wire-names.js";
import { LibpodClient } from "../../../runtime/podman/libpod.client.js";
import type { PodmanRuntime } from "../../../runtime/podman/podman.runtime.js";
import { startPodmanEnv, TEST_IMAGES, type PodmanTestEnv } from "../../support/podman.env.js";
import { podmanEnvScript, RecordingWatcher, serviceSpec, summary, TEST_SERVICES } from "./runtime.fixtures.js";

describe("PodmanRuntime container events on real Podman", function () {
  this.timeout(120_000);
  let env: PodmanTestEnv;
  let device: string;
  let rt: PodmanRuntime;
  let watcher: RecordingWatcher;
  let stop: AbortController;
  let watching: Promise<void>;
  const deathMs: number[] = [];

  before(async function () {
    this.timeout(600_000);
    env = await startPodmanEnv();
    device = env.unique("edev");
    rt = env.runtime(device);
    watcher = new RecordingWatcher();
    stop = new AbortController();
    watching = rt.watchContainers(watcher, stop.signal);
    await watcher.waitFor("the first connection", () => watcher.connections[0]);
  });
  after(async () => {
    if (deathMs.length) console.log(`      [latency] container death -> watcher: ${summary(deathMs)}`);
    stop?.abort();
    await watching;
    await env?.cleanup();
  });

  it("connects once, not as a reconnect, and resolves when its signal aborts", async () => {
    expect(watcher.connections.map((c) => c.reconnected)).to.deep.equal([false]);
    const w = new RecordingWatcher();
    const ac = new AbortController();
    const done = rt.watchContainers(w, ac.signal);
    await w.waitFor("a connection", () => w.connections[0]);
    ac.abort();
    await done;
    expect(w.errors).to.deep.equal([]);
  });

  it("a death reaches the watcher with its exit code, in under a second from the container's exit (median of 5)", async () => {
    for (let i = 0; i < 5; i++) {
      const id = await rt.startService(serviceSpec(env, "dies", TEST_SERVICES.exiting));
      const started = await watcher.event$(id, "started");
      const died = await watcher.event$(id, "died");
      const finishedAt = Date.parse((await env.client.inspect(id)).State.FinishedAt ?? "");
      const latency = died.receivedAt - finishedAt;
      deathMs.push(latency);
      expect(died).to.deep.include({ type: "died", exitCode: 3, name: started.name, service: "dies", deployment: started.deployment });
      expect(Date.parse(died.at)).to.be.at.least(Date.parse(started.at));
      expect(latency).to.be.at.least(0);
    }
    console.log(`      [latency] death -> watcher, per death: ${deathMs.map((m) => m.toFixed(0)).join(", ")} ms`);
    // The median, so that one death slowed by a busy machine does not decide it.
    expect([...deathMs].sort((a, b) => a - b)[2]).to.be.below(1000);
  });

  it("a death restarted from the watcher: the same container runs again, its new start reported (exit -> running is printed)", async () => {
    const id = await rt.startService(serviceSpec(env, "revived", TEST_SERVICES.exiting));
    const died = await watcher.event$(id, "died");
    const t0 = Date.now();
    expect(await rt.restart(id)).to.equal(id);
    const running = Date.now();
    const c = await env.client.inspect(id);
    const finishedAt = Date.parse(c.State.FinishedAt ?? "");
    expect(c.State.Running).to.equal(true);
    const restarted = await watcher.waitFor("the new start", () => watcher.events.find((e) => e.id === id && e.type === "started" && e.receivedAt >= died.receivedAt));
    console.log(
      `      [latency] exit -> running again: ${running - finishedAt} ms (died event ${died.receivedAt - finishedAt} ms after the exit, restart call ${running - t0} ms; its started event ${restarted.receivedAt - running} ms later)`,
    );
    expect(Date.parse(restarted.at)).to.be.above(finishedAt);
  });

  it("started, died (SIGKILL: 137) and removed, in order, for a container stopped and removed in one request", async () => {
    const id = await rt.startService(serviceSpec(env, "web", { image: TEST_IMAGES.stubborn, grace: 1 }));
    await watcher.event$(id, "started");
    await rt.stopAndRemove(id, 1);
    await watcher.event$(id, "removed");
    const mine = watcher.events.filter((e) => e.id === id).map((e) => (e.type === "died" ? `died ${e.exitCode}` : e.type));
    expect(mine).to.deep.equal(["started", "died 137", "removed"]);
  });

  it("only this device's managed containers: another device's, and one with our device label but not managed, are not delivered", async () => {
    const other = env.runtime(env.unique("other"));
    const theirs = await other.startService(serviceSpec(env, "web", { command: ["sh", "-c", "exit 4"] }));
    const { Id: unmanaged } = await env.client.create({
      name: env.unique("unmanaged"),
      image: TEST_IMAGES.v1,
      command: ["sh", "-c", "exit 5"],
      labels: { ...env.runLabels, [LABEL_DEVICE]: device },
    });
    await env.client.start(unmanaged);
    expect(await env.client.wait(theirs)).to.equal(4);
    expect(await env.client.wait(unmanaged)).to.equal(5);
    // Podman writes events in order: once this later death of ours is delivered, theirs would have been.
    const id = await rt.startService(serviceSpec(env, "last", { command: ["sh", "-c", "exit 6"] }));
    expect((await watcher.event$(id, "died")).type).to.equal("died");
    const ids = new Set(watcher.events.map((e) => e.id));
    expect(ids.has(theirs)).to.equal(false);
    expect(ids.has(unmanaged)).to.equal(false);
  });

  it("health events: 4.3.1 emits one as each check begins, carrying the status from before that check", async () => {
    const id = await rt.startService(serviceSpec(env, "checked", { health: { cmd: ["CMD-SHELL", "true"], interval_secs: 30, timeout_secs: 2, retries: 1 } }));
    expect((await rt.healthcheck(id)).status).to.equal("healthy");
    const first = await watcher.waitFor("a first health event", () => watcher.events.find((e) => e.id === id && e.type === "health"));
    expect(first).to.deep.include({ type: "health", status: "starting" });
    expect((await rt.healthcheck(id)).status).to.equal("healthy");
    await watcher.waitFor("a second health event", () => watcher.events.filter((e) => e.id === id && e.type === "health").length === 2);
    const statuses = watcher.events.filter((e) => e.id === id && e.type === "health").map((e) => (e.type === "health" ? e.status : ""));
    expect(statuses).to.deep.equal(["starting", "healthy"]);
  });

  it("reconnects after the Podman service restarts, says so, and delivers events again", async function () {
    this.timeout(180_000);
    // A second Podman service of its own (same storage), so that restarting it disturbs no other suite.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "fleet-podman-restart-"));
    const client = new LibpodClient({ socketPath: path.join(dir, "podman.sock") });
    const ac = new AbortController();
    let done: Promise<void> | null = null;
    try {
      await podmanEnvScript(["start", dir]);
      const own = env.runtime(device, { client });
      const w = new RecordingWatcher();
      done = own.watchContainers(w, ac.signal);
      await w.waitFor("the first connection", () => w.connections[0]);
      await podmanEnvScript(["stop", dir]);
      await w.waitFor("the loss of the stream", () => w.errors[0]);
      expect(w.errors[0]!.message).to.match(/watching container events/);
      const down = Date.now();
      await podmanEnvScript(["start", dir]);
      const back = await w.waitFor("a reconnect", () => w.connections[1]);
      expect(back.reconnected).to.equal(true);
      console.log(`      [watch] reconnected ${back.at - down} ms after the service went down (its restart included)`);
      const id = await own.startService(serviceSpec(env, "after", { command: ["sh", "-c", "exit 9"] }));
      expect(await w.event$(id, "died")).to.deep.include({ exitCode: 9 });
      expect(w.errors).to.have.length(1); // one error for the outage, not one per failed reconnect
    } finally {
      ac.abort();
      await done;
      client.close();
      await podmanEnvScript(["stop", dir]).catch(() => undefined);
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
