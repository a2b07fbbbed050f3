// Issue 8 on a real nats-server with a real authorization config: two devices' generated
// least-privilege permissions plus an operator; TLS with a test CA; the device's container policy;
// a grep of everything the agent wrote for the test score's env values; and the device commands
// (issue 15): answered under those permissions, never sent or overheard by a device.
import { fleetctl } from "../cli/cli.helpers.js";
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startAgent, type RunningAgent } from "../../../agent/agent.js";
import { parseConfig, type AgentConfig } from "../../../agent/config.js";
import { readStreamEvents } from "../../../fleet/stream.reader.js";
import { memoryLogger } from "../../../agent/logger.js";
import { natsConnectOptions } from "../../../fleet/auth.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { authorizationBlock, deviceInboxPrefix, newDeviceKey } from "../../../fleet/device.permissions.js";
import type { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, COMMAND_SUBJECTS, commandSubject, deploymentKey, deviceCommandSubjects } from "../../../contracts/wire-names.js";
import { DeviceCommands } from "../../../fleet/device.commands.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";
import { tempDir, waitFor, deploymentStateOf, waitForState } from "../../support/nats.js";
import { ConfiguredNats } from "./secure-nats.js";

const A = "dev-a";
const B = "dev-b";
const OPERATOR = { user: "operator", password: "op-pass-not-a-secret-of-devices" };
const SECRETS = ["s3cr3t-db-password-7781", "tok_live_93jf83kd0001"];
const score = (image: string, web: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: "PodmanV0",
    data: {
      services: [
        { name: "web", image, env: { DB_PASSWORD: SECRETS[0], API_TOKEN: SECRETS[1] }, ports: [{ host_port: 8080, container_port: 80 }], volumes: [{ source: "/srv/app-data", target: "/data" }], ...web },
        { name: "db", image: "img/db:1", env: { PASSWORD: SECRETS[0] } },
      ],
      lifecycle: { grace_period_secs: 1 },
    },
  });

/** Connects as device `id` with its seed file, the way the agent does (its own inbox prefix). */
const connectAs = (server: string, id: string, seedFile: string) =>
  connect({ servers: server, ...natsConnectOptions({ nkeyFile: seedFile }), inboxPrefix: deviceInboxPrefix(id), name: `test-as-${id}` });

const filesUnder = (dir: string, skip: string[] = []): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (skip.includes(f)) return [];
    return statSync(p).isDirectory() ? filesUnder(p, skip) : [p];
  });

describe("security: two devices' least-privilege permissions on a real nats-server", function () {
  let server: ConfiguredNats;
  let dir: string;
  let op: NatsConnection;
  let desired: KV;
  let states: KV;
  const seedFile = (id: string) => join(dir, `${id}.seed`);
  let agent: RunningAgent | null = null;
  let fake: FakeRuntime;
  let stateDir: string;
  const mem = memoryLogger("debug");

  before(async () => {
    dir = tempDir("fleet-security-");
    const keys = [A, B].map((id) => ({ id, ...newDeviceKey() }));
    for (const k of keys) writeFileSync(seedFile(k.id), `${k.seed}\n`, { mode: 0o600 });
    server = await ConfiguredNats.withConfig(authorizationBlock(OPERATOR, keys.map((k) => ({ id: k.id, publicKey: k.publicKey }))));
    op = await connect({ servers: server.url, user: OPERATOR.user, pass: OPERATOR.password });
    await ensureFleetResources(op); // the operator creates the buckets and the stream
    const kvm = new Kvm(op);
    desired = await kvm.open(BUCKET_DESIRED_STATE);
    states = await kvm.open(BUCKET_DEVICE_STATE);
    await desired.put(deploymentKey(B, "app"), score("img/b:1"));
    stateDir = join(dir, "state-a");
    fake = new FakeRuntime({ device: A });
  });
  after(async () => {
    await agent?.stop(5000);
    await op?.close();
    await server?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (): AgentConfig => {
    const r = parseConfig(["--device-id", A, "--nats", server.url, "--state-dir", stateDir, "--nkey", seedFile(A), "--tick-secs", "3600", "--log-level", "debug"], {});
    if (!("ok" in r) || !r.ok) throw new Error(JSON.stringify(r));
    return r.config;
  };
  const start = async () => {
    agent = await startAgent(config(), { runtime: fake, logger: mem.logger });
    await agent.online;
    return agent;
  };
  const waitState = (deployment: string, pred: (s: DeploymentState) => boolean, what: string) => waitForState(states, A, deployment, pred, what);

  it("device A converges through an upgrade and a restart; the server refuses it nothing but its own resource check", async () => {
    const logFrom = server.log.length;
    let a = await start();
    await desired.put(deploymentKey(A, "app"), score("img/web:1"));
    const v1 = await waitState("app", (s) => s.phase === "Running", "v1 Running");
    await desired.put(deploymentKey(A, "app"), score("img/web:2"));
    const v2 = await waitState("app", (s) => s.phase === "Running" && s.score_hash !== v1.score_hash, "v2 Running");
    expect(v2.container_ids["web"]).to.not.equal(v1.container_ids["web"]);
    expect(v2.container_ids["db"]).to.equal(v1.container_ids["db"]);
    await a.publisher.idle(10_000);
    await a.stop(5000);
    agent = null;
    fake.clearCalls();

    a = await start();
    await a.tick();
    await new Promise((r) => setTimeout(r, 300));
    expect(fake.mutations(), "a restart recreates nothing").to.deep.equal([]);
    await desired.put(deploymentKey(A, "app"), score("img/web:3"));
    const v3 = await waitState("app", (s) => s.phase === "Running" && s.score_hash !== v2.score_hash, "v3 Running after the restart");
    await a.publisher.idle(10_000);
    const events = await readStreamEvents(jetstream(op), A, "app");
    expect(events.map((e) => e.n)).to.deep.equal(Array.from({ length: v3.last_event_seq }, (_, i) => i + 1));
    // Its heartbeat and info keys were written under its own permissions too.
    expect(await new Kvm(op).open("device-heartbeat").then((kv) => kv.get(A))).to.not.equal(null);
    expect(await new Kvm(op).open("device-info").then((kv) => kv.get(A))).to.not.equal(null);
    // The only refusal: the resource check at each of the two starts (the operator made them).
    const refused = server.violations(logFrom);
    expect(refused, refused.join("\n")).to.have.length(2);
    for (const l of refused) expect(l).to.match(/Publish Violation - Nkey "U[A-Z2-7]+", Subject "\$JS\.API\.INFO"/);
    expect(mem.records.some((r) => r["msg"] === "no permission to create the fleet's buckets and stream (a restricted device); using the operator's")).to.equal(true);
  });

  it("fleetctl signs in as the operator with --user and FLEET_NATS_PASSWORD; without credentials it is refused", async () => {
    agent ?? (await start());
    await desired.put(deploymentKey(A, "ops"), score("img/web:1"));
    await waitState("ops", (s) => s.phase === "Running", "Running");
    const env = { FLEET_NATS_URL: server.url, FLEET_NATS_PASSWORD: OPERATOR.password };
    const ok = await fleetctl(["status", A, "--json", "--user", OPERATOR.user], { env });
    expect(ok.code, ok.err).to.equal(0);
    expect(JSON.stringify(JSON.parse(ok.out))).to.include('"deployment":"ops"');
    expect(ok.out + ok.err).to.not.include(OPERATOR.password);
    const anonymous = await fleetctl(["status", A], { env: { FLEET_NATS_URL: server.url } });
    expect(anonymous.code).to.equal(1);
    expect(anonymous.err).to.match(/cannot reach NATS|[Aa]uthorization/);
    const noFile = await fleetctl(["status", A, "--nkey", join(dir, "missing.seed")], { env: { FLEET_NATS_URL: server.url } });
    expect(noFile.code).to.equal(2);
    expect(noFile.err).to.include("missing.seed");
    await desired.delete(deploymentKey(A, "ops"));
    await waitState("ops", (s) => s.state === "removed", "ops removed");
  });

  it("nothing the agent wrote (logs, journal files, stream events, device-state) carries an env value", async () => {
    const written: Array<[string, string]> = [["logs", JSON.stringify(mem.records)]];
    // The score store (`scores/`) and the snapshot checkpoints (`checkpoints/`) must keep full scores:
    // they are what the agent re-creates containers from. Everything else under the state dir is checked.
    for (const f of filesUnder(stateDir, ["scores", "checkpoints"])) written.push([f, readFileSync(f, "utf8")]);
    written.push(["stream", JSON.stringify(await readStreamEvents(jetstream(op), A, "app"))]);
    written.push(["device-state", (await states.get(deploymentKey(A, "app")))!.string()]);
    expect(written.length).to.be.greaterThan(3);
    expect(written.some(([, text]) => text.includes("DB_PASSWORD")), "env keys are kept").to.equal(true);
    for (const [where, text] of written) for (const s of SECRETS) expect(text.includes(s), `${s} found in ${where}`).to.equal(false);
  });

  it("with its state dir lost, A takes its history back from the stream under its own permissions: numbering continues, containers stay", async () => {
    let a = agent ?? (await start());
    await a.publisher.idle(10_000);
    const before = await readStreamEvents(jetstream(op), A, "app");
    const running = (await deploymentStateOf(states, A, "app"))!;
    expect(running.phase).to.equal("Running");
    await a.stop(5000);
    agent = null;
    rmSync(stateDir, { recursive: true, force: true });
    fake.clearCalls();
    const logFrom = server.log.length;
    const recordsFrom = mem.records.length;

    a = await start();
    await waitFor("the history taken back from the stream", () =>
      mem.records.slice(recordsFrom).find((r) => r["msg"] === "no local journal: resumed from the stream's history" && r["deployment"] === "app"),
    );
    const resumed = mem.records.slice(recordsFrom).find((r) => r["msg"] === "no local journal: resumed from the stream's history")!;
    expect(resumed).to.deep.include({ events: before.length, state: "running" });
    expect(a.journal.lastN("app")).to.equal(before.length);
    // Nothing was recreated: the recovered ids are the running containers.
    await a.tick();
    expect(fake.mutations()).to.deep.equal([]);
    // The next upgrade's events continue the stream's numbering, with no gap and no duplicate.
    await desired.put(deploymentKey(A, "app"), score("img/web:4"));
    const v4 = await waitState("app", (s) => s.phase === "Running" && s.score_hash !== running.score_hash, "v4 Running after the state dir was lost");
    expect(v4.container_ids["db"]).to.equal(running.container_ids["db"]);
    await a.publisher.idle(10_000);
    const after = await readStreamEvents(jetstream(op), A, "app");
    expect(after.map((e) => e.n)).to.deep.equal(Array.from({ length: v4.last_event_seq }, (_, i) => i + 1));
    expect(after.length).to.be.greaterThan(before.length);
    // The server refused nothing but the start's resource check.
    await waitFor("the start's refusal in the server's log", () => server.violations(logFrom).length >= 1, 5_000).catch(() => undefined);
    const refused = server.violations(logFrom);
    expect(refused, refused.join("\n")).to.have.length(1);
    expect(refused[0]).to.match(/Subject "\$JS\.API\.INFO"/);
  });

  it("A can't read B's desired state, write B's device-state, or publish B's events: the server refuses", async () => {
    const logFrom = server.log.length;
    const nc = await connectAs(server.url, A, seedFile(A));
    try {
      const kvm = new Kvm(nc);
      const bDesired = await kvm.open(BUCKET_DESIRED_STATE);
      // Watching B's keys (or everything): the consumer create is refused.
      for (const key of [`${B}.>`, `${B}.app`, ">"]) {
        const err = await bDesired.watch({ key }).then(() => null, (e: Error) => e);
        expect(err?.message, `watch ${key}`).to.match(/Permissions Violation for Publish to "\$JS\.API\.CONSUMER\.CREATE\.KV_desired-state\./);
      }
      // Reading B's key directly, by the stream API or a direct get: refused.
      const get = await bDesired.get(`${B}.app`).then(() => null, (e: Error) => e);
      expect(get?.message).to.match(/Permissions Violation for Publish to "\$JS\.API\.STREAM\.MSG\.GET\.KV_desired-state"/);
      const direct = await (await kvm.open(BUCKET_DESIRED_STATE, { allow_direct: true })).get(`${B}.app`).then(() => null, (e: Error) => e);
      expect(direct?.message).to.match(/Permissions Violation for Publish to "\$JS\.API\.DIRECT\.GET\.KV_desired-state\.\$KV\.desired-state\.dev-b\.app"/);
      // Subscribing to the desired-state subjects or another inbox: refused.
      const subRefusals: string[] = [];
      void (async () => {
        for await (const s of nc.status()) if (s.type === "error" && /Subscription to/.test(s.error.message)) subRefusals.push(s.error.message);
      })();
      nc.subscribe(`$KV.${BUCKET_DESIRED_STATE}.>`);
      nc.subscribe(`${deviceInboxPrefix(B)}.>`);
      await nc.flush();
      await waitFor("two subscription refusals", () => subRefusals.length >= 2);
      expect(subRefusals.join("\n")).to.include(`Permissions Violation for Subscription to "$KV.desired-state.>"`).and.include(`"${deviceInboxPrefix(B)}.>"`);
      // Writing B's device-state: refused.
      const put = await (await kvm.open(BUCKET_DEVICE_STATE)).put(`${B}.app`, "{}").then(() => null, (e: Error) => e);
      expect(put?.message).to.match(/Permissions Violation for Publish to "\$KV\.device-state\.dev-b\.app"/);
      // Publishing B's events: refused.
      const pub = await jetstream(nc).publish(`fleet.events.${B}.app`, "{}").then(() => null, (e: Error) => e);
      expect(pub?.message).to.match(/Permissions Violation for Publish to "fleet\.events\.dev-b\.app"/);
      // Managing JetStream: refused.
      const purge = await jetstreamManager(nc, { checkAPI: false }).then((jsm) => jsm.streams.purge("KV_desired-state")).then(() => null, (e: Error) => e);
      expect(purge?.message).to.match(/Permissions Violation/);
      // The server writes its log after it answers the client: wait for the last refusal's line to arrive.
      const refusedSubjects = ["$KV.device-state.dev-b.app", "fleet.events.dev-b.app", "$JS.API.STREAM.MSG.GET.KV_desired-state", "$JS.API.STREAM.PURGE.KV_desired-state"];
      await waitFor("every refusal in the server's log", () => {
        const text = server.violations(logFrom).join("\n");
        return refusedSubjects.every((s) => text.includes(`Subject "${s}"`));
      }, 5_000).catch(() => undefined);
      const log = server.violations(logFrom).join("\n");
      for (const s of refusedSubjects) {
        expect(log).to.include(`Publish Violation - Nkey`).and.include(`Subject "${s}"`);
      }
      expect(log).to.include(`Subscription Violation`).and.include(`Subject "$KV.desired-state.>"`);
    } finally {
      await nc.close();
    }
    // B's data is as the operator left it.
    expect(await deploymentStateOf(states, B, "app")).to.equal(null);
    expect((await desired.get(deploymentKey(B, "app")))!.string()).to.equal(score("img/b:1"));
  });

  it("commands: the operator's requests reach A and A's replies reach the operator, under exactly the printed permissions", async () => {
    const a = agent ?? (await start());
    await desired.put(deploymentKey(A, "cmd"), score("img/web:1"));
    await waitState("cmd", (s) => s.phase === "Running", "cmd Running");
    await a.supervisor.idle(10_000);
    const logFrom = server.log.length;
    fake.writeLog(agent!.supervisor.snapshot("cmd")!.context.containerIds["web"]!, `db password is ${SECRETS[0]}`);
    const commands = new DeviceCommands(op);
    expect((await commands.ping(A)).deployments).to.include({ cmd: "Running" });
    expect((await commands.logs(A, { deployment: "cmd", service: "web" })).lines.map((l) => l.text)).to.deep.equal(["db password is <redacted>"]);
    const id = (await commands.restart(A, { deployment: "cmd", service: "web" })).id;
    expect(id).to.equal(agent!.supervisor.snapshot("cmd")!.context.containerIds["web"]);
    // B has no agent: offline, at once.
    expect(await commands.ping(B).then(() => null, (e: Error) => e.message)).to.equal(`${B} is offline: no agent answers its commands (no responders)`);
    // Answering took no permission A lacks (its subscription and replies were all allowed): a
    // refusal made on purpose last, once in the log, is the only one since.
    await a.publisher.idle(10_000);
    const marker = await connectAs(server.url, A, seedFile(A));
    marker.publish("fleet.cmd.marker", "{}");
    await marker.flush().finally(() => marker.close());
    await waitFor("the marker's refusal in the server's log", () => server.violations(logFrom).some((l) => l.includes('Subject "fleet.cmd.marker"')), 5_000);
    expect(server.violations(logFrom)).to.have.length(1);
    await desired.delete(deploymentKey(A, "cmd"));
    await waitState("cmd", (s) => s.state === "removed", "cmd removed");
  });

  it("commands: A can't publish any command (to itself or B), forge a reply into the operator's inbox, or subscribe to B's commands", async () => {
    agent ?? (await start());
    const logFrom = server.log.length;
    // The operator watches every command subject: nothing A publishes may arrive there.
    const seen: string[] = [];
    const watch = op.subscribe(COMMAND_SUBJECTS, { callback: (_, m) => void seen.push(m.subject) });
    await op.flush();
    const nc = await connectAs(server.url, A, seedFile(A));
    try {
      const refusals: string[] = [];
      void (async () => {
        for await (const st of nc.status()) if (st.type === "error") refusals.push(st.error.message);
      })();
      for (const subject of [commandSubject(A, "restart"), commandSubject(B, "ping"), commandSubject(B, "logs"), "_INBOX.forged-reply"]) nc.publish(subject, "{}");
      const asked = await nc.request(commandSubject(B, "ping"), "{}", { timeout: 1000 }).then(() => "answered", (e: Error) => e.message);
      expect(asked).to.not.equal("answered");
      for (const subject of [deviceCommandSubjects(B), COMMAND_SUBJECTS, "fleet.cmd.*.ping"]) nc.subscribe(subject);
      await nc.flush();
      const refused = [commandSubject(A, "restart"), commandSubject(B, "ping"), commandSubject(B, "logs"), "_INBOX.forged-reply"];
      const subRefused = [deviceCommandSubjects(B), COMMAND_SUBJECTS, "fleet.cmd.*.ping"];
      // The server writes its log after it answers the client: wait for every refusal's line.
      await waitFor("every refusal in the server's log", () => {
        const text = server.violations(logFrom).join("\n");
        return [...refused, ...subRefused].every((x) => text.includes(`Subject "${x}"`));
      }, 5_000);
      const log = server.violations(logFrom).join("\n");
      for (const x of refused) expect(log, x).to.match(new RegExp(`Publish Violation - Nkey "U[A-Z2-7]+", Subject "${x.replace(/[.*>$]/g, "\\$&")}"`));
      for (const x of subRefused) expect(log, x).to.match(new RegExp(`Subscription Violation - Nkey "U[A-Z2-7]+", Subject "${x.replace(/[.*>$]/g, "\\$&")}"`));
      expect(refusals.join("\n")).to.include(`Permissions Violation for Subscription to "${deviceCommandSubjects(B)}"`);
      // A marker from the operator arrives; nothing of A's came before it.
      op.publish(commandSubject(B, "marker"), "{}");
      await waitFor("the operator's marker", () => seen.includes(commandSubject(B, "marker")));
      expect(seen).to.deep.equal([commandSubject(B, "marker")]);
    } finally {
      watch.unsubscribe();
      await nc.close();
    }
  });

  it("the device's policy: host port 80 and a bind mount of /etc → Failed naming rule and service, nothing changes; privileged is refused by the decoder; an allowed mount passes", async () => {
    const a = agent ?? (await start());
    await desired.put(deploymentKey(A, "pol"), score("img/web:1", { volumes: [{ source: "/srv/app-data", target: "/data" }, { source: "/var/lib/fleet-data/x", target: "/x", read_only: true }] }));
    const ok = await waitState("pol", (s) => s.phase === "Running", "allowed mounts Running");
    await a.supervisor.idle(10_000);
    fake.clearCalls();
    await desired.put(deploymentKey(A, "pol"), score("img/web:2", { ports: [{ host_port: 80, container_port: 80 }] }));
    const port = await waitState("pol", (s) => s.phase === "Failed", "port 80 Failed");
    expect(port.last_error).to.equal("services[0] (web): host port 80 is below 1024, not allowed by this device's policy (allow_low_ports)");
    await desired.put(deploymentKey(A, "pol"), score("img/web:2", { volumes: [{ source: "/etc", target: "/host-etc" }] }));
    const etc = await waitState("pol", (s) => s.phase === "Failed" && s.last_error !== port.last_error, "/etc Failed");
    expect(etc.last_error).to.equal('services[0] (web): bind mount of "/etc" is outside the host paths this device\'s policy allows (allowed_mount_paths: /srv, /var/lib/fleet-data)');
    await desired.put(deploymentKey(A, "pol"), score("img/web:2", { privileged: true }));
    const priv = await waitState("pol", (s) => s.phase === "Failed" && s.last_error !== etc.last_error, "privileged Failed");
    expect(priv.last_error).to.equal("data.services[0].privileged: unknown field");
    expect(priv.container_ids).to.deep.equal(ok.container_ids);
    expect(fake.mutations(), "nothing changed on the device").to.deep.equal([]);
    await desired.delete(deploymentKey(A, "pol"));
    await waitState("pol", (s) => s.state === "removed", "pol removed");
  });
});

// ---- TLS ---------------------------------------------------------------------------------------

const openssl = (cwd: string, ...args: string[]) => execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });

function makeCa(cwd: string, name: string) {
  openssl(cwd, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "1", "-subj", `/CN=${name}`);
  return join(cwd, `${name}.pem`);
}
function makeServerCert(cwd: string, ca: string, name: string, san: string) {
  openssl(cwd, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
  writeFileSync(join(cwd, `${name}.ext`), `subjectAltName=${san}\n`);
  openssl(cwd, "x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-set_serial", String(Date.now()), "-out", `${name}.pem`, "-days", "1", "-extfile", `${name}.ext`);
  return { cert: join(cwd, `${name}.pem`), key: join(cwd, `${name}.key`) };
}
const tlsBlock = (c: { cert: string; key: string }) => `tls { cert_file: ${JSON.stringify(c.cert)}, key_file: ${JSON.stringify(c.key)} }`;

describe("security: TLS with a test CA", function () {
  let dir: string;
  let caFile: string;
  let otherCaFile: string;
  let good: ConfiguredNats;
  let wrongName: ConfiguredNats;
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    dir = tempDir("fleet-tls-");
    caFile = makeCa(dir, "fleet-ca");
    otherCaFile = makeCa(dir, "other-ca");
    good = await ConfiguredNats.withConfig(tlsBlock(makeServerCert(dir, "fleet-ca", "nats-good", "IP:127.0.0.1,DNS:localhost")));
    wrongName = await ConfiguredNats.withConfig(tlsBlock(makeServerCert(dir, "fleet-ca", "nats-wrong", "DNS:nats.elsewhere.invalid")));
  });
  afterEach(async () => {
    for (const s of stops.splice(0)) await s();
  });
  after(async () => {
    await good?.destroy();
    await wrongName?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const tryConnect = (url: string, ca: string) =>
    connect({ servers: url, ...natsConnectOptions({ tlsCa: ca }), maxReconnectAttempts: 0, timeout: 3000 }).then(
      async (nc) => {
        const info = nc.info;
        await nc.close();
        return { ok: true as const, tls: info?.tls_required === true };
      },
      (e: Error) => ({ ok: false as const, error: `${e.message} ${String((e as { cause?: unknown }).cause ?? "")}` }),
    );

  it("the agent connects with --tls-ca and converges", async () => {
    const device = "tls-dev";
    const stateDir = join(dir, "state-ok");
    const r = parseConfig(["--device-id", device, "--nats", good.url, "--state-dir", stateDir, "--tls-ca", caFile, "--tick-secs", "3600"], {});
    if (!("ok" in r) || !r.ok) throw new Error(JSON.stringify(r));
    const fake = new FakeRuntime({ device });
    const agent = await startAgent(r.config, { runtime: fake, logger: memoryLogger("warn").logger });
    stops.push(() => agent.stop(5000));
    await agent.online;
    const op = await connect({ servers: good.url, ...natsConnectOptions({ tlsCa: caFile }) });
    stops.push(() => op.close());
    expect(op.info?.tls_required).to.equal(true);
    const kvm = new Kvm(op);
    await (await kvm.open(BUCKET_DESIRED_STATE)).put(deploymentKey(device, "app"), score("img/web:1"));
    const states = await kvm.open(BUCKET_DEVICE_STATE);
    await waitFor("Running over TLS", async () => (await states.get(deploymentKey(device, "app")))?.json<{ phase: string }>().phase === "Running");
  });

  it("a server whose certificate doesn't chain to the given CA is refused", async () => {
    expect(await tryConnect(good.url, caFile)).to.deep.equal({ ok: true, tls: true });
    const r = await tryConnect(good.url, otherCaFile);
    expect(r.ok).to.equal(false);
    if (!r.ok) expect(r.error).to.match(/self[- ]signed|unable to verify|certificate/i);
    // The agent keeps trying and never comes online.
    const stateDir = join(dir, "state-bad-ca");
    const agent = await startAgent(
      { deviceId: "tls-bad", natsServers: [good.url], stateDir, tickSecs: 3600, logLevel: "silent", containerHost: undefined, auth: { tlsCa: otherCaFile } },
      { runtime: new FakeRuntime({ device: "tls-bad" }), logger: memoryLogger("silent").logger, natsOptions: { reconnectTimeWait: 200 } },
    );
    stops.push(() => agent.stop(2000));
    const online = await Promise.race([agent.online.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1500))]);
    expect(online).to.equal(false);
  });

  it("a server whose certificate names another host is refused", async () => {
    const r = await tryConnect(wrongName.url, caFile);
    expect(r.ok).to.equal(false);
    if (!r.ok) expect(r.error).to.match(/altnames|Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME_INVALID/i);
  });
});
