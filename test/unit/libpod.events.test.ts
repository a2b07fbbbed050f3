// The client's event stream over a unix socket, served here by a stand-in that replays what Podman
// 4.3.1 sends after rotating its events file (containers/podman#17665): the file again from its top.
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ContainerEvent, ContainerWatcher } from "../../runtime/container-runtime.js";
import { LibpodClient } from "../../runtime/podman/libpod.client.js";
import { PodmanRuntime } from "../../runtime/podman/podman.runtime.js";

const line = (action: string, id: string, timeNano: number) =>
  JSON.stringify({ Type: "container", Action: action, Actor: { ID: id, Attributes: { name: `c-${id}` } }, time: Math.floor(timeNano / 1e9), timeNano }) + "\n";

describe("LibpodClient.events", () => {
  let dir: string;
  let server: Server;
  let client: LibpodClient;
  let body: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "fleet-events-"));
    server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      for (const chunk of body) res.write(chunk);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(join(dir, "podman.sock"), resolve));
    client = new LibpodClient({ socketPath: join(dir, "podman.sock") });
  });
  after(async () => {
    client.close();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const collect = async () => {
    const out: string[] = [];
    for await (const e of await client.events({ type: ["container"] })) out.push(`${e.Action} ${e.Actor.ID}`);
    return out;
  };

  it("delivers each event once when Podman replays the rotated half of its events file", async () => {
    const t = Date.now() * 1e6 + 1e9;
    const a = line("create", "a", t), b = line("start", "a", t + 1000), c = line("died", "a", t + 2000), d = line("remove", "a", t + 3000);
    body = [a, b, c, b, c, d]; // b and c again: the rotation's replay
    expect(await collect()).to.deep.equal(["create a", "start a", "died a", "remove a"]);
  });

  it("keeps events that differ only in time: a container started twice is two starts", async () => {
    const t = Date.now() * 1e6 + 1e9;
    body = [line("start", "a", t), line("died", "a", t + 5e6), line("start", "a", t + 9e6)];
    expect(await collect()).to.deep.equal(["start a", "died a", "start a"]);
  });

  it("drops events from before the subscription, which the replay brings along", async () => {
    const now = Date.now() * 1e6;
    body = [line("remove", "old", now - 60e9), line("create", "new", now + 1e9)];
    expect(await collect()).to.deep.equal(["create new"]);
  });

  it("reassembles a line split across chunks", async () => {
    const whole = line("create", "b", Date.now() * 1e6 + 1e9);
    body = [whole.slice(0, 17), whole.slice(17)];
    expect(await collect()).to.deep.equal(["create b"]);
  });
});

// PodmanRuntime.watchContainers over the same kind of stand-in: connection i is served batch i
// (then ended); a connection with no batch is held open until the test ends.
describe("PodmanRuntime.watchContainers", () => {
  let dir: string;
  let server: Server;
  let batches: string[][] = [];
  let connections = 0;

  const labels = (device = "pi-1") => ({
    "io.fleet.managed": "true",
    "io.fleet.device": device,
    "io.fleet.deployment": "shop",
    "io.fleet.service": "web",
  });
  const ev = (action: string, id: string, attrs: Record<string, string> = {}, extra: Record<string, unknown> = {}) => {
    const timeNano = Date.now() * 1e6 + 1e9 + connections * 1000 + Math.floor(Math.random() * 1000);
    return JSON.stringify({ Type: "container", Action: action, Actor: { ID: id, Attributes: { name: `shop.${id}`, ...labels(), ...attrs } }, time: Math.floor(timeNano / 1e9), timeNano, ...extra }) + "\n";
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "fleet-watch-"));
    server = createServer((_req, res) => {
      const batch = batches[connections++];
      res.writeHead(200, { "content-type": "application/json" });
      res.flushHeaders(); // as Podman does: the subscription is answered before any event
      if (!batch) return; // held open
      for (const chunk of batch) res.write(chunk);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(join(dir, "podman.sock"), resolve));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  async function watch(until: (w: Recorder) => boolean, throwOn?: string): Promise<Recorder> {
    connections = 0;
    const client = new LibpodClient({ socketPath: join(dir, "podman.sock") });
    const rt = new PodmanRuntime({ device: "pi-1", client });
    const w = new Recorder(throwOn);
    const ac = new AbortController();
    const done = rt.watchContainers(w, ac.signal);
    await w.reach(() => until(w));
    ac.abort();
    await done;
    client.close();
    return w;
  }

  it("delivers this device's managed containers' starts, deaths with their exit code, removals and health, and nothing else", async () => {
    batches = [[
      ev("create", "a"),
      ev("init", "a"),
      ev("start", "a"),
      ev("health_status", "a", {}, { HealthStatus: "starting" }),
      ev("exec_died", "a", { containerExitCode: "1" }),
      ev("died", "a", { containerExitCode: "3" }),
      ev("cleanup", "a"),
      ev("died", "theirs", { ...labels("pi-2"), containerExitCode: "1" }),
      ev("died", "unmanaged", { "io.fleet.managed": "false", containerExitCode: "1" }),
      ev("remove", "a"),
    ]];
    const w = await watch((r) => r.events.some((e) => e.type === "removed"));
    expect(w.events.map((e) => ({ ...e, at: "" }))).to.deep.equal([
      { id: "a", name: "shop.a", deployment: "shop", service: "web", at: "", type: "started" },
      { id: "a", name: "shop.a", deployment: "shop", service: "web", at: "", type: "health", status: "starting" },
      { id: "a", name: "shop.a", deployment: "shop", service: "web", at: "", type: "died", exitCode: 3 },
      { id: "a", name: "shop.a", deployment: "shop", service: "web", at: "", type: "removed" },
    ]);
    expect(w.events.every((e) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(e.at))).to.equal(true);
    expect(w.connections).to.deep.equal([false]);
  });

  it("a died event without a usable exit code is an error naming the field; the events after it still arrive", async () => {
    batches = [[ev("died", "a", { containerExitCode: "three" }), ev("health_status", "a", {}, { HealthStatus: "sick" }), ev("start", "b")]];
    const w = await watch((r) => r.events.length === 1);
    expect(w.errors.map((e) => e.message)).to.deep.equal([
      'event died of container shop.a: Actor.Attributes.containerExitCode: expected an integer exit code, got "three"',
      'event health_status of container shop.a: HealthStatus: expected "starting" | "healthy" | "unhealthy", got "sick"',
    ]);
    expect(w.events.map((e) => `${e.type} ${e.id}`)).to.deep.equal(["started b"]);
  });

  it("when the stream ends it reports one error, reconnects, says so, and delivers the new stream's events", async () => {
    batches = [[ev("start", "a")], [ev("died", "a", { containerExitCode: "0" })]];
    const w = await watch((r) => r.connections.length === 2 && r.events.length === 2);
    expect(w.connections).to.deep.equal([false, true]);
    expect(w.errors.map((e) => e.message)).to.deep.equal(["watching container events: Podman's event stream ended; reconnecting"]);
    expect(w.events.map((e) => e.type)).to.deep.equal(["started", "died"]);
  });

  it("a malformed event line breaks the stream with an error naming the field, and the watch reconnects", async () => {
    batches = [[JSON.stringify({ Type: "container", Action: "died", time: 1 }) + "\n"]];
    const w = await watch((r) => r.connections.length === 2);
    expect(w.errors).to.have.length(1);
    expect(w.errors[0]!.message).to.match(/unexpected response body: Actor: expected/);
  });

  it("a watcher that throws is told through error(), and keeps getting events", async () => {
    batches = [[ev("start", "a"), ev("start", "b")]];
    const w = await watch((r) => r.events.length === 2, "a");
    expect(w.errors.map((e) => e.message)).to.deep.equal(["watcher failed on a"]);
    expect(w.events.map((e) => e.id)).to.deep.equal(["a", "b"]);
  });
});

class Recorder implements ContainerWatcher {
  events: ContainerEvent[] = [];
  connections: boolean[] = [];
  errors: Error[] = [];
  private wake: () => void = () => {};
  constructor(private readonly throwOn?: string) {}
  connected(info: { reconnected: boolean }) {
    this.connections.push(info.reconnected);
    this.wake();
  }
  event(e: ContainerEvent) {
    this.events.push(e);
    this.wake();
    if (e.id === this.throwOn) throw new Error(`watcher failed on ${e.id}`);
  }
  error(e: Error) {
    this.errors.push(e);
    this.wake();
  }
  reach(pred: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not reached; got ${JSON.stringify({ events: this.events, errors: this.errors.map((e) => e.message), connections: this.connections })}`)), 5000);
      this.wake = () => {
        if (pred()) {
          clearTimeout(timer);
          resolve();
        }
      };
      this.wake();
    });
  }
}
