// A malformed answer from Podman is a clear error naming the field: PodmanRuntime's health report
// and log read against a stand-in that answers as told (real Podman's answers are in
// test/integration/podman/).
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RuntimeError } from "../../runtime/container-runtime.js";
import { LibpodClient } from "../../runtime/podman/libpod.client.js";
import { PodmanRuntime } from "../../runtime/podman/podman.runtime.js";

const ID = "c".repeat(64);

function inspect(health: unknown) {
  return {
    Id: ID,
    Name: "shop.web",
    ImageName: "localhost/app:v1",
    State: { Status: "running", Running: true, Pid: 42, ExitCode: 0, StartedAt: "2026-12-01T10:00:00.123456789Z", Health: health },
    Config: {
      Labels: { "io.fleet.managed": "true", "io.fleet.device": "pi-1", "io.fleet.deployment": "shop", "io.fleet.service": "web" },
      StopTimeout: 10,
      Healthcheck: { Test: ["CMD-SHELL", "true"], Interval: 30e9, Timeout: 2e9, Retries: 3 },
    },
  };
}

const frame = (kind: number, text: string) => {
  const body = Buffer.from(text);
  const head = Buffer.alloc(8);
  head[0] = kind;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
};

describe("PodmanRuntime on malformed answers", () => {
  let dir: string;
  let server: Server;
  let client: LibpodClient;
  let health: unknown;
  let check: { status: number; body: string };
  let logs: Buffer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "fleet-answers-"));
    server = createServer((req, res) => {
      const url = req.url ?? "";
      if (url.startsWith(`/v4.0.0/libpod/containers/${ID}/json`)) {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(inspect(health)));
      } else if (url.startsWith(`/v4.0.0/libpod/containers/${ID}/healthcheck`)) {
        res.writeHead(check.status, { "content-type": "application/json" }).end(check.body);
      } else if (url.startsWith(`/v4.0.0/libpod/containers/${ID}/logs`)) {
        res.writeHead(200, { "content-type": "application/octet-stream" }).end(logs);
      } else {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ cause: "no such container", message: "no such container", response: 404 }));
      }
    });
    await new Promise<void>((resolve) => server.listen(join(dir, "podman.sock"), resolve));
    client = new LibpodClient({ socketPath: join(dir, "podman.sock") });
  });
  after(async () => {
    client.close();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    health = { Status: "healthy", FailingStreak: 0, Log: [{ Start: "2026-12-01T10:00:01Z", End: "2026-12-01T10:00:01Z", ExitCode: 0, Output: "  fine\n" }] };
    check = { status: 200, body: JSON.stringify({ Status: "healthy", FailingStreak: 0, Log: null }) };
    logs = Buffer.alloc(0);
  });

  const rt = () => new PodmanRuntime({ device: "pi-1", client });
  const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected a rejection"); }, (e: unknown) => e as RuntimeError);

  it("reads a well-formed health report (control)", async () => {
    expect(await rt().healthcheck(ID)).to.deep.equal({ status: "healthy", failingStreak: 0, output: "fine" });
  });

  it("a health status Podman does not define is named, with what came", async () => {
    health = { Status: "sick", FailingStreak: 0, Log: null };
    const e = await failure(rt().healthcheck(ID));
    expect(e).to.be.instanceOf(RuntimeError);
    expect(e.message).to.include('State.Health.Status: expected "" | "starting" | "healthy" | "unhealthy", got "sick"');
  });

  it("a failing streak that is not a number is named", async () => {
    health = { Status: "starting", FailingStreak: "2", Log: null };
    const e = await failure(rt().healthcheck(ID));
    expect(e.message).to.include('State.Health.FailingStreak: expected number, got "2"');
  });

  it("a health log that is missing, or whose entry is not an object, is named", async () => {
    health = { Status: "starting", FailingStreak: 1 };
    expect((await failure(rt().healthcheck(ID))).message).to.include("State.Health.Log: expected");
    health = { Status: "starting", FailingStreak: 1, Log: ["not an entry"] };
    expect((await failure(rt().healthcheck(ID))).message).to.include('State.Health.Log[0]: expected');
  });

  it("a healthcheck answer without its Status is named", async () => {
    check = { status: 200, body: JSON.stringify({ FailingStreak: 0, Log: null }) };
    const e = await failure(rt().healthcheck(ID));
    expect(e.message).to.include("Status: expected string, got nothing");
  });

  it("a log that is not multiplexed frames is an error naming the byte", async () => {
    logs = Buffer.concat([frame(1, "2026-12-01T10:00:00Z ok\n"), Buffer.from("raw tty output\n")]);
    const e = await failure(rt().logs(ID, { maxBytes: 10_000 }));
    expect(e).to.be.instanceOf(RuntimeError);
    expect(e.message).to.match(/reading the logs of container shop\.web failed: .*log frame header at byte 32: expected stream 1 or 2/);
  });

  it("a log frame without its time is an error quoting it", async () => {
    logs = frame(2, "no time here\n");
    const e = await failure(rt().logs(ID, { maxBytes: 10_000 }));
    expect(e.message).to.include('log frame: expected an RFC 3339 time and a space, got "no time here\\n"');
  });

  it("a log ending inside a frame is an error", async () => {
    logs = frame(1, "2026-12-01T10:00:00Z cut short\n").subarray(0, 20);
    const e = await failure(rt().logs(ID, { maxBytes: 10_000 }));
    expect(e.message).to.include("log stream ends inside a frame at byte 20");
  });

  it("a well-formed log: pieces joined, a character split between frames kept whole (control)", async () => {
    const euro = Buffer.from("€");
    logs = Buffer.concat([
      frame(1, "2026-12-01T10:00:00Z a"),
      Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0, 0, 22]), Buffer.from("2026-12-01T10:00:00Z "), euro.subarray(0, 1)]),
      Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0, 0, 24]), Buffer.from("2026-12-01T10:00:01Z "), euro.subarray(1), Buffer.from("\n")]),
    ]);
    expect(await rt().logs(ID, { maxBytes: 10_000 })).to.deep.equal({ lines: [{ at: "2026-12-01T10:00:00.000Z", stream: "stdout", text: "a€" }], truncated: false });
  });
});
