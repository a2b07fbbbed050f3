// Device commands on the real NATS server with the agent on FakeRuntime (no claim about Podman here:
// commands.podman.test.ts is that): every request decoded exactly and answered, the per-verb bounds,
// the operator's client and fleetctl's ping, logs and restart, and the restart on record.
import { expect } from "chai";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { startAgent, type RunningAgent } from "../../../agent/agent.js";
import { silentLogger } from "../../../agent/logger.js";
import { decodeJson } from "../../../contracts/decode.js";
import { CommandFailure, LOGS_MAX_TAIL } from "../../../contracts/command.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, commandSubject, deploymentKey } from "../../../contracts/wire-names.js";
import { CommandFailed, DeviceCommands, DeviceOffline } from "../../../fleet/device.commands.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { readStreamEvents } from "../../../fleet/stream.reader.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";
import { SHARED_NATS, cleanupDevice, connectTest, tempDir, uniqueDevice, waitFor, waitForState } from "../../support/nats.js";
import { fleetctl } from "../cli/cli.helpers.js";

const SECRET = "s3cr3t-token-2291";
const score = (image = "img/web:1") =>
  JSON.stringify({
    type: "PodmanV0",
    data: {
      services: [
        { name: "web", image, env: { TOKEN: SECRET, LEVEL: "on" } },
        { name: "db", image: "img/db:1" },
      ],
      lifecycle: { grace_period_secs: 1 },
    },
  });

describe("device commands on real NATS (agent on FakeRuntime)", function () {
  this.timeout(60_000);
  let nc: NatsConnection;
  let desired: KV;
  let states: KV;
  let device: string;
  let fake: FakeRuntime;
  let agent: RunningAgent | null = null;
  let commands: DeviceCommands;

  before(async () => {
    nc = await connectTest();
    await ensureFleetResources(nc);
    const kvm = new Kvm(nc);
    desired = await kvm.open(BUCKET_DESIRED_STATE);
    states = await kvm.open(BUCKET_DEVICE_STATE);
    commands = new DeviceCommands(nc);
  });
  after(async () => {
    await nc.close();
  });
  beforeEach(async () => {
    device = uniqueDevice();
    fake = new FakeRuntime({ device });
    agent = await startAgent(
      { deviceId: device, natsServers: [SHARED_NATS], stateDir: tempDir("fleet-cmd-"), tickSecs: 3600, logLevel: "silent", containerHost: undefined },
      { runtime: fake, logger: silentLogger(), commandLimits: { logs: { concurrent: 2, timeoutMs: 1_500 } } },
    );
    await agent.online;
    await desired.put(deploymentKey(device, "app"), score());
    await waitForState(states, device, "app", (s) => s.phase === "Running", "app Running");
  });
  afterEach(async () => {
    fake.clearFaults();
    await agent?.stop(5000);
    agent = null;
    await cleanupDevice(nc, device);
  });

  /** A raw request, as any client could send it, and the reply as text. */
  const raw = async (verb: string, body: string) => (await nc.request(commandSubject(device, verb), body, { timeout: 2000 })).string();
  const failure = (text: string) => {
    const r = decodeJson(CommandFailure, text);
    if (!r.ok) throw new Error(`not a CommandFailure: ${text}`);
    return r.value.error;
  };

  it("ping: the agent's version, uptime and each deployment's phase; fleetctl ping prints them, --json too", async () => {
    const reply = await commands.ping(device);
    expect(reply.device).to.equal(device);
    expect(reply.deployments).to.deep.equal({ app: "Running" });
    expect(reply.uptime_secs).to.be.within(0, 60);
    expect(Math.abs(Date.parse(reply.at) - Date.now())).to.be.below(5000);
    const text = await fleetctl(["ping", device]);
    expect(text.code, text.err).to.equal(0);
    expect(text.out).to.match(new RegExp(`^${device}: online, answered in \\d+ ms; agent \\S+, up \\d+s\\n`)).and.match(/app\s+Running/);
    const json = await fleetctl(["ping", device, "--json"]);
    expect(json.code, json.err).to.equal(0);
    expect(JSON.parse(json.out)).to.deep.include({ device, online: true, deployments: { app: "Running" } });
  });

  it("a bad request is answered {ok: false} naming the field, an unknown verb naming the verbs; the agent answers on", async () => {
    expect(failure(await raw("logs", JSON.stringify({ deployment: "app", service: "web", tial: 5 })))).to.equal("invalid logs request: tial: unknown field (did you mean tail?)");
    expect(failure(await raw("logs", JSON.stringify({ deployment: "app", service: "web", tail: 0 })))).to.equal(`invalid logs request: tail: expected a whole number of lines from 1 to ${LOGS_MAX_TAIL}, got 0`);
    expect(failure(await raw("logs", JSON.stringify({ deployment: "app", service: "Web", since: "yesterday" })))).to.match(/^invalid logs request: service: must be a DNS label .*; since: expected an ISO-8601 time, got "yesterday"$/);
    expect(failure(await raw("restart", JSON.stringify({ deployment: "app" })))).to.equal("invalid restart request: service: expected string, got nothing");
    expect(failure(await raw("ping", "{not json"))).to.match(/^invalid ping request: \(root\): malformed JSON/);
    expect(failure(await raw("ping", JSON.stringify({ extra: 1 })))).to.equal("invalid ping request: extra: unknown field");
    expect(failure(await raw("reboot", "{}"))).to.equal('unknown command "reboot": expected one of ping, logs, restart');
    expect(failure(await raw("logs.web", "{}"))).to.match(/^unknown command "logs.web"/);
    // A publish without a reply subject is dropped, not answered and not fatal.
    nc.publish(commandSubject(device, "ping"), "{}");
    expect((await commands.ping(device)).device).to.equal(device);
  });

  it("an unknown deployment or service is refused naming it; fleetctl says so with exit 1", async () => {
    const e1 = await commands.logs(device, { deployment: "nope", service: "web" }).then(() => null, (e: Error) => e);
    expect(e1).to.be.instanceOf(CommandFailed);
    expect(e1!.message).to.equal(`${device} refused logs: no deployment "nope" on ${device} (it runs app)`);
    const e2 = await commands.restart(device, { deployment: "app", service: "cache" }).then(() => null, (e: Error) => e);
    expect(e2!.message).to.equal(`${device} refused restart: no service "cache" in deployment app (its services: db, web)`);
    const cli = await fleetctl(["logs", device, "nope", "web"]);
    expect(cli.code).to.equal(1);
    expect(cli.err).to.equal(`fleetctl logs: ${device} refused logs: no deployment "nope" on ${device} (it runs app)\n`);
    const usage = await fleetctl(["logs", device, "app", "Web"]);
    expect(usage.code).to.equal(2);
    expect(usage.err).to.match(/^fleetctl logs: invalid service "Web": must be a DNS label/);
  });

  it("logs: the service's lines in order with their streams, env values of 4+ characters hidden, a short one only as a whole line", async () => {
    const id = agent!.supervisor.snapshot("app")!.context.containerIds["web"]!;
    fake.writeLog(id, `starting with token ${SECRET}\non\nlevel is on`);
    fake.writeLog(id, `warning: ${SECRET}${SECRET} twice`, { stream: "stderr" });
    const reply = await commands.logs(device, { deployment: "app", service: "web" });
    expect(reply.truncated).to.equal(false);
    expect(reply.lines.map((l) => [l.stream, l.text])).to.deep.equal([
      ["stdout", "starting with token <redacted>"],
      ["stdout", "<redacted>"],
      ["stdout", "level is on"],
      ["stderr", "warning: <redacted> twice"],
    ]);
    const cli = await fleetctl(["logs", device, "app", "web", "--tail", "2"]);
    expect(cli.code, cli.err).to.equal(0);
    expect(cli.out.split("\n").filter(Boolean).map((l) => l.replace(/^\S+ /, ""))).to.deep.equal(["stdout level is on", "stderr warning: <redacted> twice"]);
    expect(cli.out).to.not.include(SECRET);
  });

  it("logs are bounded: a third at once is answered busy, one that outlives its time is answered with a time-out", async () => {
    const release = fake.hold("logs");
    fake.clearCalls();
    const first = [commands.logs(device, { deployment: "app", service: "web" }), commands.logs(device, { deployment: "app", service: "db" })];
    await waitFor("two logs commands at work", () => fake.count("logs") === 2);
    const third = await commands.logs(device, { deployment: "app", service: "web" }).then(() => null, (e: Error) => e);
    expect(third?.message).to.equal(`${device} refused logs: busy: 2 logs commands are already running on ${device}; try again`);
    // Ping is not held up by them.
    expect((await commands.ping(device)).deployments).to.deep.equal({ app: "Running" });
    const late = await Promise.all(first.map((p) => p.then(() => null, (e: Error) => e)));
    for (const e of late) expect(e?.message).to.equal(`${device} refused logs: logs did not finish within 1.5 s on ${device}`);
    // Their slots are held until the runtime's work ends, not when the time-out was answered.
    const still = await commands.logs(device, { deployment: "app", service: "web" }).then(() => null, (e: Error) => e);
    expect(still?.message).to.match(/busy: 2 logs commands/);
    release();
    await waitFor("the slots freed", () => commands.logs(device, { deployment: "app", service: "web" }).then((r) => r.truncated === false, () => false));
  });

  it("restart: the same container started anew, journaled as service.restarted by operator and counted; not while upgrading", async () => {
    const id = agent!.supervisor.snapshot("app")!.context.containerIds["web"]!;
    fake.clearCalls();
    const r = await fleetctl(["restart", device, "app", "web", "--json"]);
    expect(r.code, r.err).to.equal(0);
    expect(JSON.parse(r.out)).to.deep.equal({ device, deployment: "app", service: "web", id });
    expect(fake.calls.map((c) => c.op)).to.include("restart");
    await commands.restart(device, { deployment: "app", service: "web" });
    await agent!.publisher.idle(10_000);
    const events = await readStreamEvents(jetstream(nc), device, "app");
    const restarts = events.filter((e) => e.event.type === "service.restarted");
    expect(restarts.map((e) => ({ ...e.event, at: 0 }))).to.deep.equal([
      { type: "service.restarted", service: "web", id, restarts: 1, by: "operator", at: 0 },
      { type: "service.restarted", service: "web", id, restarts: 2, by: "operator", at: 0 },
    ]);
    expect(restarts.map((e) => `${e.from}→${e.to}`)).to.deep.equal(["running→running", "running→running"]);
    const history = await fleetctl(["history", device, "app"]);
    expect(history.out).to.include("service.restarted web (2 restarts, by operator)");
    // Mid-upgrade the deployment's containers are its machine's: refused, naming the state.
    fake.latency("ensureImage", 2000);
    await desired.put(deploymentKey(device, "app"), score("img/web:2"));
    await waitForState(states, device, "app", (s) => s.state === "pulling", "pulling");
    const busy = await commands.restart(device, { deployment: "app", service: "web" }).then(() => null, (e: Error) => e);
    expect(busy?.message).to.equal(`${device} refused restart: deployment app is busy (pulling); try again once it is running`);
  });

  it("a device with no agent is offline: at once with no responders, fleetctl exit 1, --json says online false", async () => {
    await agent!.stop(5000);
    agent = null;
    const t0 = Date.now();
    const e = await commands.ping(device).then(() => null, (x: Error) => x);
    expect(Date.now() - t0).to.be.below(2000);
    expect(e).to.be.instanceOf(DeviceOffline);
    expect(e!.message).to.equal(`${device} is offline: no agent answers its commands (no responders)`);
    const cli = await fleetctl(["logs", device, "app", "web"]);
    expect(cli.code).to.equal(1);
    expect(cli.err).to.equal(`fleetctl logs: ${device} is offline: no agent answers its commands (no responders)\n`);
    const json = await fleetctl(["ping", device, "--json"]);
    expect(json.code).to.equal(1);
    expect(JSON.parse(json.out)).to.deep.equal({ device, online: false, error: `${device} is offline: no agent answers its commands (no responders)` });
  });
});
