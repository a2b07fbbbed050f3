// A device in its own NATS account, configured as fleetctl prints it, does everything it must with
// nothing more: converges through an upgrade and a restart, takes its history back from the stream
// when its state dir is lost, writes its reports; the operator works through its own account;
// nothing the agent writes carries an env value; the device's container policy bounds any score; the
// operator's commands reach the device's agent and its answers come back.
import { expect } from "chai";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Fleet } from "../../../fleet/fleet.client.js";
import { readStreamEvents } from "../../../fleet/stream.reader.js";
import { startInspector } from "../../../inspector/server.js";
import { BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO, deploymentKey } from "../../../contracts/wire-names.js";
import { fleetctl } from "../cli/cli.helpers.js";
import { deploymentStateOf, waitFor } from "../../support/nats.js";
import { fleetctlRun, OPERATOR, SecuredFleet } from "./secured-fleet.js";

const A = "dev-a";
const B = "dev-b";
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

const filesUnder = (dir: string, skip: string[] = []): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (skip.includes(f)) return [];
    return statSync(p).isDirectory() ? filesUnder(p, skip) : [p];
  });

describe("security: a device in its own account converges, and the operator works, with exactly the config fleetctl prints", function () {
  this.timeout(120_000);
  let fleet: SecuredFleet;
  const NO_CREATE = "this device may not create the fleet's buckets and stream (its own NATS account, or restricted permissions); using the operator's";

  before(async () => {
    fleet = await SecuredFleet.start([A, B]);
    await fleet.desired.put(deploymentKey(B, "app"), score("img/b:1"));
  });
  after(async () => {
    await fleet?.stop();
  });
  afterEach(() => {
    expect(fleet.server.panicked, fleet.server.log.slice(-3000)).to.equal(false);
  });
  const agentA = () => fleet.startAgent(A);
  const waitA = (deployment: string, pred: Parameters<SecuredFleet["waitState"]>[2], what: string) => fleet.waitState(A, deployment, pred, what);

  it("what fleetctl device add printed for a device is its account in what fleetctl device accounts printed", async () => {
    const accounts = await fleetctlRun(["device", "accounts", "--operator-password", "x"]);
    for (const id of [A, B]) {
      const added = fleet.added.get(id)!;
      const block = added.slice(added.indexOf("# fleet-agent device"), added.indexOf("# 2."));
      expect(block).to.include(`"FLEET_DEVICE_${id}": {`);
      // The server runs with these very lines (its config file), indented inside accounts { }.
      const conf = readFileSync(fleet.server.configFile, "utf8");
      for (const line of block.trim().split("\n")) expect(conf, line).to.include(line.trim());
      expect(conf).to.include(added.split("\n").find((l) => l.startsWith("{ service: { account: \"FLEET_DEVICE_"))!);
    }
    // Without devices: the fleet's own accounts only.
    expect(accounts.out).to.include('"FLEET_OPERATOR": {').and.not.include("FLEET_DEVICE_");
  });

  it("device A converges through an upgrade and a restart; its reports and journal land; the server refuses it nothing", async () => {
    let a = await agentA();
    await fleet.desired.put(deploymentKey(A, "app"), score("img/web:1"));
    const v1 = await waitA("app", (s) => s.phase === "Running", "v1 Running");
    await fleet.desired.put(deploymentKey(A, "app"), score("img/web:2"));
    const v2 = await waitA("app", (s) => s.phase === "Running" && s.score_hash !== v1.score_hash, "v2 Running");
    expect(v2.container_ids["web"]).to.not.equal(v1.container_ids["web"]);
    expect(v2.container_ids["db"]).to.equal(v1.container_ids["db"]);
    await a.publisher.idle(10_000);
    await fleet.stopAgent(A);
    const runtime = fleet.device(A).runtime;
    runtime.clearCalls();

    a = await agentA();
    await a.tick();
    await a.supervisor.idle(10_000);
    expect(runtime.mutations(), "a restart recreates nothing").to.deep.equal([]);
    await fleet.desired.put(deploymentKey(A, "app"), score("img/web:3"));
    const v3 = await waitA("app", (s) => s.phase === "Running" && s.score_hash !== v2.score_hash, "v3 Running after the restart");
    await a.publisher.idle(10_000);
    const events = await readStreamEvents(jetstream(fleet.op), A, "app");
    expect(events.map((e) => e.n)).to.deep.equal(Array.from({ length: v3.last_event_seq }, (_, i) => i + 1));
    expect(events).to.deep.equal(a.journal.read("app").slice(-events.length));
    const kvm = new Kvm(fleet.op);
    await waitFor("A's heartbeat", async () => (await (await kvm.open(BUCKET_DEVICE_HEARTBEAT)).get(A)) !== null);
    expect(await (await kvm.open(BUCKET_DEVICE_INFO)).get(A)).to.not.equal(null);
    // Each start saw its account has no JetStream of its own, and went on with the operator's.
    expect(fleet.device(A).records.filter((r) => r["msg"] === NO_CREATE)).to.have.length(2);
    expect(fleet.device(A).records.filter((r) => (r["level"] as number) >= 50), "no error logged").to.deep.equal([]);
    expect(fleet.server.violations()).to.deep.equal([]);
  });

  it("fleetctl works as the operator through its account (--user and FLEET_NATS_PASSWORD); without credentials it is refused", async () => {
    await agentA();
    await fleet.desired.put(deploymentKey(A, "ops"), score("img/web:1"));
    await waitA("ops", (s) => s.phase === "Running", "Running");
    await fleet.device(A).agent!.publisher.idle(10_000);
    const env = { FLEET_NATS_URL: fleet.server.url, FLEET_NATS_PASSWORD: OPERATOR.password };
    const status = await fleetctl(["status", A, "--json", "--user", OPERATOR.user], { env });
    expect(status.code, status.err).to.equal(0);
    expect(JSON.stringify(JSON.parse(status.out))).to.include('"deployment":"ops"');
    expect(status.out + status.err).to.not.include(OPERATOR.password);
    const history = await fleetctl(["history", A, "ops", "--json", "--user", OPERATOR.user], { env });
    expect(history.code, history.err).to.equal(0);
    expect(history.out).to.match(/"n": ?1\b/);
    const del = await fleetctl(["delete", A, "ops", "--user", OPERATOR.user], { env });
    expect(del.code, del.err).to.equal(0);
    await waitA("ops", (s) => s.state === "removed", "ops removed");
    const anonymous = await fleetctl(["status", A], { env: { FLEET_NATS_URL: fleet.server.url } });
    expect(anonymous.code).to.equal(1);
    expect(anonymous.err).to.match(/cannot reach NATS|[Aa]uthorization/);
    const noFile = await fleetctl(["status", A, "--nkey", join(fleet.dir, "missing.seed")], { env: { FLEET_NATS_URL: fleet.server.url } });
    expect(noFile.code).to.equal(2);
    expect(noFile.err).to.include("missing.seed");
  });

  it("fleetctl ping, logs and restart reach A's agent through the operator's import of its commands, answers come back; B, with no agent, is offline; the server refuses nothing", async () => {
    const a = await agentA();
    await fleet.desired.put(deploymentKey(A, "cmd"), score("img/web:1"));
    await waitA("cmd", (s) => s.phase === "Running", "cmd Running");
    await a.supervisor.idle(10_000);
    const logFrom = fleet.server.log.length;
    const web = a.supervisor.snapshot("cmd")!.context.containerIds["web"]!;
    fleet.device(A).runtime.writeLog(web, `connecting with ${SECRETS[0]}`);
    const env = { FLEET_NATS_URL: fleet.server.url, FLEET_NATS_PASSWORD: OPERATOR.password };
    const as = (argv: string[]) => fleetctl([...argv, "--user", OPERATOR.user], { env });
    const ping = await as(["ping", A, "--json"]);
    expect(ping.code, ping.err).to.equal(0);
    expect(JSON.parse(ping.out)).to.deep.include({ device: A, online: true });
    const logs = await as(["logs", A, "cmd", "web"]);
    expect(logs.code, logs.err).to.equal(0);
    expect(logs.out).to.match(/ stdout connecting with <redacted>\n$/).and.not.include(SECRETS[0]);
    const restart = await as(["restart", A, "cmd", "web", "--json"]);
    expect(restart.code, restart.err).to.equal(0);
    expect(JSON.parse(restart.out)).to.deep.equal({ device: A, deployment: "cmd", service: "web", id: web });
    const offline = await as(["ping", B]);
    expect(offline.code).to.equal(1);
    // Across the import the server tells no "no responders": a ping unanswered in 2 s says it.
    expect(offline.err).to.equal(`fleetctl ping: ${B} is offline: no answer to a ping within 2 s\n`);
    const t0 = Date.now();
    const offlineLogs = await as(["logs", B, "app", "web"]);
    expect(offlineLogs.code).to.equal(1);
    expect(offlineLogs.err).to.equal(`fleetctl logs: ${B} is offline: no answer to a ping within 2 s\n`);
    expect(Date.now() - t0).to.be.below(3000);
    await a.publisher.idle(10_000);
    const events = await readStreamEvents(jetstream(fleet.op), A, "cmd");
    expect(events.filter((e) => e.event.type === "service.restarted").map((e) => e.event)).to.have.length(1);
    expect(fleet.server.violations(logFrom)).to.deep.equal([]);
    await fleet.desired.delete(deploymentKey(A, "cmd"));
    await waitA("cmd", (s) => s.state === "removed", "cmd removed");
  });

  it("the dashboard as the operator: the fleet view lists A's deployment, its page of the journal reads, and the live feed carries A's journal events", async () => {
    await agentA();
    const inspector = await startInspector({ fleet: await Fleet.open(fleet.op), tickSecs: 3600 });
    const abort = new AbortController();
    try {
      const view = (await (await fetch(new URL("api/fleet", inspector.url))).json()) as unknown;
      expect(JSON.stringify(view)).to.include(`"deployment":"app"`).and.include(`"device":"${A}"`);
      // The visualiser's windowed read of A's journal (direct gets by sequence, a consumer for the page) works through the operator's account.
      const page = await fetch(new URL(`api/deployment?device=${A}&deployment=app`, inspector.url));
      const body = (await page.json()) as { page?: { steps: Array<{ n: number }>; newest_n: number | null } };
      expect(page.status, JSON.stringify(body)).to.equal(200);
      expect(body.page!.steps.length).to.be.greaterThan(3).and.equal(body.page!.newest_n);
      const res = await fetch(new URL("api/events", inspector.url), { signal: abort.signal });
      const reader = res.body!.getReader();
      let text = "";
      await reader.read(); // ": connected": the feed is subscribed
      await fleet.desired.put(deploymentKey(A, "live"), score("img/web:1"));
      const decoder = new TextDecoder();
      while (!/event: journal\ndata: \{"device":"dev-a","deployment":"live"/.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the feed ended: ${text}`);
        text += decoder.decode(value);
      }
      await waitA("live", (s) => s.phase === "Running", "live Running");
      await fleet.desired.delete(deploymentKey(A, "live"));
      await waitA("live", (s) => s.state === "removed", "live removed");
    } finally {
      abort.abort();
      await inspector.close();
    }
  });

  it("nothing the agent wrote (logs, journal files, stream events, device-state) carries an env value", async () => {
    const a = await agentA();
    await a.publisher.idle(10_000);
    const { records, stateDir } = fleet.device(A);
    const written: Array<[string, string]> = [["logs", JSON.stringify(records)]];
    // The score store (`scores/`) and the snapshot checkpoints (`checkpoints/`) must keep full scores:
    // they are what the agent re-creates containers from. Everything else under the state dir is checked.
    for (const f of filesUnder(stateDir, ["scores", "checkpoints"])) written.push([f, readFileSync(f, "utf8")]);
    written.push(["stream", JSON.stringify(await readStreamEvents(jetstream(fleet.op), A, "app"))]);
    written.push(["device-state", (await fleet.states.get(deploymentKey(A, "app")))!.string()]);
    expect(written.length).to.be.greaterThan(3);
    expect(written.some(([, text]) => text.includes("DB_PASSWORD")), "env keys are kept").to.equal(true);
    for (const [where, text] of written) for (const s of SECRETS) expect(text.includes(s), `${s} found in ${where}`).to.equal(false);
  });

  it("with its state dir lost, A takes its history back from the stream through its imports: numbering continues, containers stay", async () => {
    let a = await agentA();
    await a.publisher.idle(10_000);
    const before = await readStreamEvents(jetstream(fleet.op), A, "app");
    const running = (await deploymentStateOf(fleet.states, A, "app"))!;
    expect(running.phase).to.equal("Running");
    await fleet.stopAgent(A);
    const { stateDir, runtime, records } = fleet.device(A);
    rmSync(stateDir, { recursive: true, force: true });
    runtime.clearCalls();
    const recordsFrom = records.length;

    a = await agentA();
    await waitFor("the history taken back from the stream", () =>
      records.slice(recordsFrom).find((r) => r["msg"] === "no local journal: resumed from the stream's history" && r["deployment"] === "app"),
    );
    const resumed = records.slice(recordsFrom).find((r) => r["msg"] === "no local journal: resumed from the stream's history" && r["deployment"] === "app")!;
    expect(resumed).to.deep.include({ events: before.length, state: "running" });
    expect(a.journal.lastN("app")).to.equal(before.length);
    await a.tick();
    expect(runtime.mutations(), "the recovered ids are the running containers").to.deep.equal([]);
    // The next upgrade's events continue the stream's numbering, with no gap and no duplicate.
    await fleet.desired.put(deploymentKey(A, "app"), score("img/web:4"));
    const v4 = await waitA("app", (s) => s.phase === "Running" && s.score_hash !== running.score_hash, "v4 Running after the state dir was lost");
    expect(v4.container_ids["db"]).to.equal(running.container_ids["db"]);
    await a.publisher.idle(10_000);
    const after = await readStreamEvents(jetstream(fleet.op), A, "app");
    expect(after.map((e) => e.n)).to.deep.equal(Array.from({ length: v4.last_event_seq }, (_, i) => i + 1));
    expect(after.length).to.be.greaterThan(before.length);
    expect(records.slice(recordsFrom).filter((r) => (r["level"] as number) >= 50), "no error logged").to.deep.equal([]);
  });

  it("the server restarts: A reconnects into its account, its watch and its journal's publication go on", async () => {
    const a = await agentA();
    await a.publisher.idle(10_000);
    const before = (await deploymentStateOf(fleet.states, A, "app"))!;
    const reconnects = () => fleet.device(A).records.filter((r) => r["msg"] === "NATS reconnected").length;
    const from = reconnects();
    await fleet.server.stop();
    await fleet.server.start();
    await waitFor("A reconnected", () => reconnects() > from, 30_000);
    await waitFor("the operator reconnected", async () => fleet.op.isClosed() === false && (await fleet.op.flush().then(() => true, () => false)), 30_000);
    await fleet.desired.put(deploymentKey(A, "app"), score("img/web:5"));
    const v5 = await waitA("app", (s) => s.phase === "Running" && s.score_hash !== before.score_hash, "v5 Running after the restart");
    await a.publisher.idle(10_000);
    const events = await readStreamEvents(jetstream(fleet.op), A, "app");
    expect(events.map((e) => e.n)).to.deep.equal(Array.from({ length: v5.last_event_seq }, (_, i) => i + 1));
  });

  it("the device's policy: host port 80 and a bind mount of /etc → Failed naming rule and service, nothing changes; privileged is refused by the decoder; an allowed mount passes", async () => {
    const a = await agentA();
    const runtime = fleet.device(A).runtime;
    await fleet.desired.put(deploymentKey(A, "pol"), score("img/web:1", { volumes: [{ source: "/srv/app-data", target: "/data" }, { source: "/var/lib/fleet-data/x", target: "/x", read_only: true }] }));
    const ok = await waitA("pol", (s) => s.phase === "Running", "allowed mounts Running");
    await a.supervisor.idle(10_000);
    runtime.clearCalls();
    await fleet.desired.put(deploymentKey(A, "pol"), score("img/web:2", { ports: [{ host_port: 80, container_port: 80 }] }));
    const port = await waitA("pol", (s) => s.phase === "Failed", "port 80 Failed");
    expect(port.last_error).to.equal("services[0] (web): host port 80 is below 1024, not allowed by this device's policy (allow_low_ports)");
    await fleet.desired.put(deploymentKey(A, "pol"), score("img/web:2", { volumes: [{ source: "/etc", target: "/host-etc" }] }));
    const etc = await waitA("pol", (s) => s.phase === "Failed" && s.last_error !== port.last_error, "/etc Failed");
    expect(etc.last_error).to.equal('services[0] (web): bind mount of "/etc" is outside the host paths this device\'s policy allows (allowed_mount_paths: /srv, /var/lib/fleet-data)');
    await fleet.desired.put(deploymentKey(A, "pol"), score("img/web:2", { privileged: true }));
    const priv = await waitA("pol", (s) => s.phase === "Failed" && s.last_error !== etc.last_error, "privileged Failed");
    expect(priv.last_error).to.equal("data.services[0].privileged: unknown field");
    expect(priv.container_ids).to.deep.equal(ok.container_ids);
    expect(runtime.mutations(), "nothing changed on the device").to.deep.equal([]);
    await fleet.desired.delete(deploymentKey(A, "pol"));
    await waitA("pol", (s) => s.state === "removed", "pol removed");
  });
});
