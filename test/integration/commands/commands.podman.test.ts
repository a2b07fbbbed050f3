// Device commands end to end on real NATS and real Podman: the agent with PodmanRuntime, an operator
// with fleetctl. Logs of both streams in order, tail and since, an env value printed by the service
// hidden, a 5 MB log cut to the newest lines under the server's max payload, a follow that picks up a
// new line, a restart that starts the same container anew (journaled), and a stopped agent offline.
import { expect } from "chai";
import { rmSync } from "node:fs";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { startAgent, type RunningAgent } from "../../../agent/agent.js";
import { silentLogger } from "../../../agent/logger.js";
import type { LogLine, LogsReply } from "../../../contracts/command.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, deploymentKey } from "../../../contracts/wire-names.js";
import { DeviceCommands } from "../../../fleet/device.commands.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { readStreamEvents } from "../../../fleet/stream.reader.js";
import { startPodmanEnv, TEST_IMAGES, type PodmanTestEnv } from "../../support/podman.env.js";
import { SHARED_NATS, cleanupDevice, connectTest, tempDir, uniqueDevice, waitFor, waitForState } from "../../support/nats.js";
import { fleetctl } from "../cli/cli.helpers.js";

const TOKEN = "tok-live-5531-secret";
/** Writes to both streams with pauses (conmon may reorder output of the two streams written at once), then stays up. */
const TALK = `echo out-1; sleep 0.3; echo err-1 >&2; sleep 0.3; echo "token=$TOKEN"; sleep 2.2; echo late-1; sleep 0.3; echo late-2 >&2; exec sleep 3600`;
/** 10 000 lines of 500 characters: 5 MB, ten times what one reply may carry. */
const BIG = `pad=$(head -c 500 /dev/zero | tr '\\0' y); seq 1 10000 | sed "s/$/ $pad/"; echo last; exec sleep 3600`;

describe("device commands on real NATS and real Podman", function () {
  this.timeout(180_000);
  let env: PodmanTestEnv;
  let nc: NatsConnection;
  let desired: KV;
  let states: KV;
  let device: string;
  let deployment: string;
  let stateDir: string;
  let agent: RunningAgent | null = null;
  let commands: DeviceCommands;

  before(async function () {
    this.timeout(15 * 60_000);
    env = await startPodmanEnv();
    nc = await connectTest();
    await ensureFleetResources(nc);
    const kvm = new Kvm(nc);
    desired = await kvm.open(BUCKET_DESIRED_STATE);
    states = await kvm.open(BUCKET_DEVICE_STATE);
    commands = new DeviceCommands(nc);
    device = uniqueDevice();
    deployment = env.unique("cmds");
    stateDir = tempDir("fleet-cmd-podman-");
    agent = await startAgent(
      { deviceId: device, natsServers: [SHARED_NATS], stateDir, tickSecs: 3600, logLevel: "silent", containerHost: env.containerHost },
      { runtime: env.runtime(device), logger: silentLogger() },
    );
    await agent.online;
    await desired.put(
      deploymentKey(device, deployment),
      JSON.stringify({
        type: "PodmanV0",
        data: {
          services: [
            { name: "talk", image: TEST_IMAGES.v1, command: ["sh", "-c", TALK], env: { TOKEN } },
            { name: "big", image: TEST_IMAGES.v1, command: ["sh", "-c", BIG] },
          ],
          lifecycle: { grace_period_secs: 1 },
        },
      }),
    );
    await waitForState(states, device, deployment, (s) => s.phase === "Running", "the deployment Running");
    // Both services have printed all they print at start.
    await waitFor("talk's last line", async () => (await logsOf("talk")).lines.some((l) => l.text === "late-2"), 30_000);
    await waitFor("big's last line", async () => (await logsOf("big", { tail: 1 })).lines.some((l) => l.text === "last"), 60_000);
  });
  after(async () => {
    await agent?.stop(5000);
    if (nc) {
      await desired.delete(deploymentKey(device, deployment)).catch(() => undefined);
      await cleanupDevice(nc, device);
      await nc.close();
    }
    await env?.cleanup();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  const logsOf = (service: string, o: { tail?: number; since?: string } = {}) => commands.logs(device, { deployment, service, ...o });
  const texts = (lines: LogLine[]) => lines.map((l) => `${l.stream} ${l.text}`);
  const containerId = (service: string) => agent!.supervisor.snapshot(deployment)!.context.containerIds[service]!;

  it("logs: the lines a service printed on stdout and stderr, in order, each with its stream and time; the env value it printed hidden", async () => {
    const reply = await logsOf("talk");
    expect(reply.truncated).to.equal(false);
    expect(texts(reply.lines)).to.deep.equal(["stdout out-1", "stderr err-1", "stdout token=<redacted>", "stdout late-1", "stderr late-2"]);
    for (const l of reply.lines) expect(l.at).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const cli = await fleetctl(["logs", device, deployment, "talk", "--json"]);
    expect(cli.code, cli.err).to.equal(0);
    expect(cli.out).to.include("token=<redacted>").and.not.include(TOKEN);
    expect(JSON.parse(cli.out)).to.deep.equal({ device, deployment, service: "talk", lines: reply.lines, truncated: false });
  });

  it("tail and since hold: the last N lines; the lines from a time on", async () => {
    expect(texts((await logsOf("talk", { tail: 2 })).lines)).to.deep.equal(["stdout late-1", "stderr late-2"]);
    const all = (await logsOf("talk")).lines;
    // Times are to the second; the late lines came 2.2 s after the token line.
    const since = new Date(Date.parse(all[2]!.at) + 1000).toISOString();
    expect(texts((await logsOf("talk", { since })).lines)).to.deep.equal(["stdout late-1", "stderr late-2"]);
    expect(texts((await logsOf("talk", { since, tail: 1 })).lines)).to.deep.equal(["stderr late-2"]);
    const cli = await fleetctl(["logs", device, deployment, "talk", "--since", since, "--tail", "1"]);
    expect(cli.code, cli.err).to.equal(0);
    expect(cli.out).to.match(/^\S+ stderr late-2\n$/);
  });

  it("a service that printed 5 MB: the reply keeps the newest lines, is marked truncated, and stays under the server's max payload", async () => {
    const max = nc.info!.max_payload;
    const t0 = performance.now();
    const reply: LogsReply = await logsOf("big", { tail: 10_000 });
    const ms = performance.now() - t0;
    const bytes = Buffer.byteLength(JSON.stringify(reply));
    console.log(`      [logs] 10 000 lines of 500 B asked: ${reply.lines.length} newest in a ${bytes}-byte reply (max_payload ${max}) in ${ms.toFixed(0)} ms`);
    expect(reply.truncated).to.equal(true);
    expect(bytes).to.be.at.most(max);
    expect(bytes).to.be.above(max * 0.9);
    expect(reply.lines.at(-1)!.text).to.equal("last");
    const numbers = reply.lines.slice(0, -1).map((l) => Number.parseInt(l.text, 10));
    expect(numbers.at(-1)).to.equal(10_000);
    expect(numbers).to.deep.equal(numbers.map((_, i) => 10_000 - numbers.length + 1 + i));
    const cli = await fleetctl(["logs", device, deployment, "big", "--tail", "10000"]);
    expect(cli.code, cli.err).to.equal(0);
    expect(cli.err).to.include("older lines were left out");
    expect(cli.out.trimEnd().split("\n").at(-1)).to.match(/^\S+ stdout last$/);
  });

  it("fleetctl logs -f prints the lines so far, then a line the service prints later, until interrupted", async () => {
    const stop = new AbortController();
    let out = "";
    const following = fleetctl(["logs", device, deployment, "talk", "-f", "--interval", "0.3"], { signal: stop.signal, out: (s) => void (out += s) });
    await waitFor("the lines so far", () => out.includes("stderr late-2"), 10_000);
    // A line on the service's own stdout (its PID 1's), as if it printed it.
    await env.podman(["exec", containerId("talk"), "sh", "-c", "echo followed-1 > /proc/1/fd/1"]);
    await waitFor("the new line", () => out.includes("stdout followed-1"), 10_000);
    stop.abort();
    const r = await following;
    expect(r.code, r.err).to.equal(0);
    // Each line once: asking again from the last line's second repeats none.
    const lines = out.trimEnd().split("\n").map((l) => l.replace(/^\S+ /, ""));
    expect(lines).to.deep.equal(["stdout out-1", "stderr err-1", "stdout token=<redacted>", "stdout late-1", "stderr late-2", "stdout followed-1"]);
  });

  it("restart: a new start of the same container, journaled as restarted by operator", async () => {
    const id = containerId("talk");
    const before = await env.client.inspect(id);
    const cli = await fleetctl(["restart", device, deployment, "talk"]);
    expect(cli.code, cli.err).to.equal(0);
    expect(cli.out).to.equal(`restarted ${device}/${deployment} talk: container ${id.slice(0, 12)} started anew (journaled)\n`);
    const after = await env.client.inspect(id);
    expect(after.Id).to.equal(before.Id);
    expect(after.State.Running).to.equal(true);
    expect(Date.parse(after.State.StartedAt ?? "")).to.be.above(Date.parse(before.State.StartedAt ?? ""));
    expect(containerId("talk"), "the same container stays recorded").to.equal(id);
    // The service ran its script again: its first line is in the log twice now.
    await waitFor("the second start's first line", async () => (await logsOf("talk")).lines.filter((l) => l.text === "out-1").length === 2, 15_000);
    await agent!.publisher.idle(10_000);
    const events = await readStreamEvents(jetstream(nc), device, deployment);
    const restarted = events.filter((e) => e.event.type === "service.restarted");
    expect(restarted).to.have.length(1);
    expect(restarted[0]!.event).to.deep.include({ service: "talk", id, restarts: 1, by: "operator" });
    expect((await fleetctl(["history", device, deployment])).out).to.include("service.restarted talk (1 restarts, by operator)");
  });

  it("ping answers while the agent runs; once it is stopped, ping says offline within 3 s, exit 1", async () => {
    const up = await fleetctl(["ping", device]);
    expect(up.code, up.err).to.equal(0);
    expect(up.out).to.include(`${deployment}  Running`);
    await agent!.stop(5000);
    agent = null;
    const t0 = Date.now();
    const down = await fleetctl(["ping", device]);
    const ms = Date.now() - t0;
    expect(down.code).to.equal(1);
    expect(down.err).to.equal(`fleetctl ping: ${device} is offline: no agent answers its commands (no responders)\n`);
    expect(ms).to.be.below(3000);
  });
});
