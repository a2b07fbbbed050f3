// fleetctl as an operator's console and a scriptable tool, against the real NATS server: the score's
// reference and schema, Compose files, refusals of devices that never reported, output to a closed
// pipe, status fitted to a terminal, history's per-service changes, describe, and device rm.
import { expect } from "chai";
import { Ajv } from "ajv";
import { spawn } from "node:child_process";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { EXIT } from "../../../cli/main.js";
import { canonicalHash } from "../../../contracts/canonical-json.js";
import { decode } from "../../../contracts/decode.js";
import { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { Heartbeat } from "../../../contracts/heartbeat.codec.js";
import { JournalEvent } from "../../../contracts/journal-event.codec.js";
import { ReconcileScore } from "../../../contracts/score.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO, BUCKET_DEVICE_STATE, deploymentKey, eventSubject } from "../../../contracts/wire-names.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { cleanupDevice, connectTest, uniqueDevice, waitForState } from "../../support/nats.js";
import { ScoreFiles, fleetctl, scoreJson, startTestAgent, type TestAgent } from "./cli.helpers.js";

const ESC = "\x1b[";

describe("fleetctl, the operator's console, on real NATS", function () {
  let nc: NatsConnection;
  let desired: KV;
  let states: KV;
  let heartbeats: KV;
  let infos: KV;
  let device: string;
  let files: ScoreFiles;
  let agent: TestAgent | null = null;
  const devices: string[] = [];

  before(async () => {
    nc = await connectTest();
    await ensureFleetResources(nc);
    const kvm = new Kvm(nc);
    [desired, states, heartbeats, infos] = await Promise.all([BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO].map((b) => kvm.open(b))) as [KV, KV, KV, KV];
  });
  after(async () => {
    await nc.close();
  });
  beforeEach(() => {
    device = uniqueDevice();
    devices.push(device);
    files = new ScoreFiles();
  });
  afterEach(async () => {
    await agent?.stop();
    agent = null;
    for (const d of devices.splice(0)) await cleanupDevice(nc, d);
    files.remove();
  });

  /** A device that reports without an agent: a DeploymentState, a heartbeat and device-info as given. */
  async function reportAs(dev: string, state: Partial<DeploymentState> & { deployment: string }, heartbeat: Partial<Heartbeat> = {}) {
    const full = {
      device: dev,
      phase: "Running",
      state: "running",
      score_hash: `sha256:${"ab".repeat(32)}`,
      desired_revision: 3,
      container_ids: { web: "1f8a2b3c4d5e6f7a8b9c" },
      last_error: null,
      last_event_seq: 4,
      last_event_at: new Date(Date.now() - 5000).toISOString(),
      ...state,
    };
    expect(decode(DeploymentState, full).ok, "a valid DeploymentState").to.equal(true);
    await states.put(deploymentKey(dev, state.deployment), JSON.stringify(full));
    const hb = { device: dev, agent_version: "0.1.0", at: new Date().toISOString(), deployments: { [state.deployment]: full.phase }, ...heartbeat };
    expect(decode(Heartbeat, hb).ok, "a valid Heartbeat").to.equal(true);
    await heartbeats.put(dev, JSON.stringify(hb));
    await infos.put(dev, JSON.stringify({ device: dev, hostname: "pi", arch: "arm64", podman_version: "4.3.1", agent_version: "0.1.0" }));
  }

  describe("explain and schema", () => {
    it("explain prints a field's type, default, limits and example; a misspelt field is exit 2 with the nearest", async () => {
      const r = await fleetctl(["explain", "lifecycle.grace_period_secs"]);
      expect(r.code, r.err).to.equal(EXIT.OK);
      expect(r.out).to.include("FIELD   data.lifecycle.grace_period_secs").and.include("TYPE    integer").and.include("optional, default 30").and.include("LIMITS  0 to 3600");
      const all = await fleetctl(["explain"]);
      expect(all.out).to.include("data.services[].depends_on").and.include("data.lifecycle.min_ready_secs");
      const bad = await fleetctl(["explain", "lifecycle.grace_period_sec"]);
      expect(bad.code).to.equal(EXIT.USAGE);
      expect(bad.err).to.include("did you mean data.lifecycle.grace_period_secs?");
    });

    it("schema prints a JSON Schema that accepts a score and refuses a misspelt one", async () => {
      const r = await fleetctl(["schema"]);
      expect(r.code, r.err).to.equal(EXIT.OK);
      const validate = new Ajv({ strict: true }).compile(JSON.parse(r.out) as object);
      expect(validate(JSON.parse(scoreJson("img/web:1")))).to.equal(true);
      expect(validate(JSON.parse(scoreJson("img/web:1").replace('"grace_period_secs"', '"grace_period_sec"')))).to.equal(false);
    });

    it("deploy names the field that was meant for a misspelt one", async () => {
      await reportAs(device, { deployment: "other" });
      const r = await fleetctl(["deploy", device, "app", "-f", files.write(scoreJson("img/web:1").replace('"grace_period_secs"', '"grace_period_sec"'))]);
      expect(r.code).to.equal(EXIT.USAGE);
      expect(r.err).to.include("data.lifecycle.grace_period_sec: unknown field (did you mean grace_period_secs?)");
    });
  });

  describe("Compose files", () => {
    const COMPOSE = [
      "services:",
      "  web:",
      "    image: img/web:1",
      "    command: /bin/web --port 8080",
      "    environment: {MODE: prod, TOKEN: s3cr3t-value}",
      "    ports: [\"8080:8080\"]",
      "    volumes: [\"/srv/web:/data:ro\"]",
      "    healthcheck: {test: [CMD, wget, -qO-, localhost:8080], interval: 5s, retries: 3}",
      "    stop_grace_period: 5s",
      "    depends_on: [db]",
      "    restart: unless-stopped",
      "  db:",
      "    image: img/db:1",
      "",
    ].join("\n");

    it("--dry-run shows the score it would write (env values not shown) and writes nothing; deploy writes it and the agent runs it", async () => {
      agent = await startTestAgent(device);
      const f = files.write(COMPOSE, "yml");
      const dry = await fleetctl(["deploy", device, "app", "-f", f, "--dry-run"]);
      expect(dry.code, dry.err).to.equal(EXIT.OK);
      expect(dry.out).to.match(/\+ web\s+add\s+image img\/web:1/).and.match(/\+ db\s+add\s+image img\/db:1/);
      expect(dry.out).to.include("score translated from").and.include("command: [/bin/web, --port, \"8080\"]");
      expect(dry.out).to.include("grace_period_secs: 5").and.include("depends_on:").and.include("TOKEN: <redacted>");
      expect(dry.out).to.include("dry run: nothing written");
      expect(dry.out + dry.err).to.not.include("s3cr3t-value");
      expect(await desired.get(deploymentKey(device, "app"))).to.equal(null);

      const r = await fleetctl(["deploy", device, "app", "-f", f]);
      expect(r.code, r.err).to.equal(EXIT.OK);
      const stored = decode(ReconcileScore, JSON.parse((await desired.get(deploymentKey(device, "app")))!.string()));
      expect(stored.ok).to.equal(true);
      if (!stored.ok) return;
      expect(stored.value.data).to.deep.equal({
        services: [
          {
            name: "web",
            image: "img/web:1",
            command: ["/bin/web", "--port", "8080"],
            env: { MODE: "prod", TOKEN: "s3cr3t-value" },
            ports: [{ host_port: 8080, container_port: 8080 }],
            volumes: [{ source: "/srv/web", target: "/data", read_only: true }],
            health: { cmd: ["CMD", "wget", "-qO-", "localhost:8080"], interval_secs: 5, retries: 3 },
            depends_on: ["db"],
          },
          { name: "db", image: "img/db:1" },
        ],
        lifecycle: { grace_period_secs: 5 },
      });
      const s = await waitForState(states, device, "app", (x) => x.phase === "Running" && x.score_hash === canonicalHash(stored.value), "Running the translated score");
      expect(Object.keys(s.container_ids).sort()).to.deep.equal(["db", "web"]);
      expect(agent.fake.snapshot().map((c) => c.image).sort()).to.deep.equal(["img/db:1", "img/web:1"]);
    });

    it("a Compose file with keys that do not map is refused naming each, exit 2, nothing written", async () => {
      await reportAs(device, { deployment: "other" });
      const f = files.write("services:\n  web:\n    image: img/web:1\n    deploy: {replicas: 2}\n    networks: [front]\n    ports: [\"80\"]\nvolumes: {data: {}}\n", "yaml");
      const r = await fleetctl(["deploy", device, "app", "-f", f]);
      expect(r.code).to.equal(EXIT.USAGE);
      expect(r.err).to.include("a Compose file that does not translate to a score, nothing written");
      expect(r.err).to.include("services.web.deploy: not supported by fleet-agent");
      expect(r.err).to.include("services.web.networks: not supported by fleet-agent");
      expect(r.err).to.include("services.web.ports[0]: a container port alone is not supported by fleet-agent");
      expect(r.err).to.include("volumes: not supported by fleet-agent");
      expect(await desired.get(deploymentKey(device, "app"))).to.equal(null);
    });
  });

  describe("devices that never reported", () => {
    it("deploy refuses one (exit 1, nothing written, the near id named) unless --new-device", async () => {
      await reportAs(device, { deployment: "other" });
      const typo = `${device.slice(0, -1)}${device.endsWith("0") ? "1" : "0"}`;
      devices.push(typo);
      const f = files.write(scoreJson("img/web:1"));
      const r = await fleetctl(["deploy", typo, "app", "-f", f]);
      expect(r.code).to.equal(EXIT.FAILED);
      expect(r.err).to.include(`no device "${typo}" has ever reported`).and.include(`(did you mean ${device}?)`).and.include("--new-device");
      expect(await desired.get(deploymentKey(typo, "app"))).to.equal(null);

      const forced = await fleetctl(["deploy", typo, "app", "-f", f, "--new-device"]);
      expect(forced.code, forced.err).to.equal(EXIT.OK);
      expect(await desired.get(deploymentKey(typo, "app"))).to.not.equal(null);
    });

    it("rollout --devices refuses the whole rollout for one unknown device, writing nothing", async () => {
      await reportAs(device, { deployment: "other" });
      const stranger = uniqueDevice();
      devices.push(stranger);
      const r = await fleetctl(["rollout", "app", "-f", files.write(scoreJson("img/web:1")), "--devices", `${device},${stranger}`]);
      expect(r.code).to.equal(EXIT.FAILED);
      expect(r.err).to.include(`"${stranger}" never reported`);
      expect(await desired.get(deploymentKey(device, "app"))).to.equal(null);
      expect(await desired.get(deploymentKey(stranger, "app"))).to.equal(null);
    });

    it("status and describe of an unknown device exit 1", async () => {
      const s = await fleetctl(["status", device]);
      expect(s.code).to.equal(EXIT.FAILED);
      expect(s.out).to.equal("");
      expect(s.err).to.include(`no device "${device}" has ever reported`);
      expect((await fleetctl(["describe", device])).code).to.equal(EXIT.FAILED);
    });
  });

  describe("status", () => {
    it("shows image, restarts and health from per-service status, judges staleness by the heartbeat's tick, leaves out removed deployments", async () => {
      await reportAs(
        device,
        {
          deployment: "app",
          phase: "Degraded",
          last_error: `web exited with code 1: ${"a very long error ".repeat(20)}`,
          services: {
            web: { container_id: "1f8a2b3c4d5e6f7a8b9c", image: "localhost/app:v2", state: "exited", health: "unhealthy", restarts: 3, last_exit_code: 1, restart_at: new Date(Date.now() + 40_000).toISOString() },
          },
        },
        // 50 s old: fresh by the default 30 s tick (3 ticks), stale by the device's own 10 s tick.
        { at: new Date(Date.now() - 50_000).toISOString(), tick_secs: 10 },
      );
      await states.put(deploymentKey(device, "gone"), JSON.stringify({ ...(await stateOf(device, "app")), deployment: "gone", phase: "Pending", state: "removed", services: undefined }));

      const r = await fleetctl(["status", device]);
      expect(r.code, r.err).to.equal(EXIT.OK);
      const lines = r.out.trimEnd().split("\n");
      expect(lines[0]).to.match(/^DEVICE\s+DEPLOYMENT\s+PHASE\s+IMAGE\s+RESTARTS\s+HEALTH\s+CHANGED\s+HEARTBEAT\s+LAST ERROR$/);
      expect(lines).to.have.length(2); // the removed deployment is left out
      expect(lines[1]).to.match(new RegExp(`^${device}\\s+app\\s+Degraded\\s+localhost/app:v2\\s+3\\s+unhealthy\\s+\\d+s ago\\s+\\d+s ago STALE\\s+web exited`));
      // Not a terminal: whole lines, no colour.
      expect(lines[1]).to.include("a very long error ".repeat(20).trimEnd());
      expect(r.out).to.not.include(ESC);

      // A terminal of 100 columns: fitted (the error cut with …) and coloured; NO_COLOR turns colour off.
      const tty = await fleetctl(["status", device], { outIsTty: true, columns: 100 });
      const row = tty.out.split("\n")[1]!;
      expect(tty.out).to.include(`${ESC}35mDegraded`).and.include(`${ESC}31munhealthy`);
      expect(row.replace(/\x1b\[[0-9;]*m/g, "").length).to.equal(100);
      expect(row.endsWith("…")).to.equal(true);
      const plain = await fleetctl(["status", device], { outIsTty: true, columns: 100, env: { FLEET_NATS_URL: "nats://127.0.0.1:4222", NO_COLOR: "1" } });
      expect(plain.out).to.not.include(ESC);
      // -o wide: every column, nothing cut, even on a terminal.
      const wide = await fleetctl(["status", device, "-o", "wide"], { outIsTty: true, columns: 100 });
      expect(wide.out.split("\n")[0]).to.include("STATE").and.include("CONTAINERS").and.include("SCORE");
      expect(wide.out).to.include("a very long error ".repeat(20).trimEnd()).and.include("web=1f8a2b3c4d5e");

      const j = JSON.parse((await fleetctl(["status", device, "--json"])).out) as Array<{ tick_secs: number; stale: boolean; deployments: DeploymentState[] }>;
      expect(j[0]!.tick_secs).to.equal(10);
      expect(j[0]!.stale).to.equal(true);
      expect(j[0]!.deployments.map((d) => d.deployment)).to.deep.equal(["app"]);
    });
  });

  async function stateOf(dev: string, deployment: string): Promise<DeploymentState> {
    const r = decode(DeploymentState, JSON.parse((await states.get(deploymentKey(dev, deployment)))!.string()));
    if (!r.ok) throw new Error(r.errors.join("; "));
    return r.value;
  }

  describe("history and describe", () => {
    it("history shows what each accepted update changed per service; describe shows the deployment", async () => {
      agent = await startTestAgent(device);
      await fleetctl(["deploy", device, "app", "-f", files.write(scoreJson("img/web:1"))]);
      const s1 = await waitForState(states, device, "app", (x) => x.phase === "Running", "Running v1");
      const v2 = JSON.parse(scoreJson("img/web:2")) as { data: { services: Array<{ env?: Record<string, string> }> } };
      v2.data.services[0]!.env = { ...v2.data.services[0]!.env, EXTRA: "x" };
      await fleetctl(["deploy", device, "app", "-f", files.write(JSON.stringify(v2))]);
      await waitForState(states, device, "app", (x) => x.phase === "Running" && x.container_ids["web"] !== s1.container_ids["web"], "Running v2");
      await agent.agent.publisher.idle(10_000);

      const r = await fleetctl(["history", device, "app"]);
      expect(r.code, r.err).to.equal(EXIT.OK);
      const lines = r.out.split("\n");
      const first = lines.findIndex((l) => l.startsWith("1 "));
      expect(lines[first + 1]).to.match(/^\s+\+ web\s+add\s+image img\/web:1$/);
      expect(lines[first + 2]).to.match(/^\s+\+ db\s+add\s+image img\/db:1$/);
      const second = lines.findIndex((l) => l.startsWith("5 "));
      expect(lines[second]).to.include("running → pulling");
      expect(lines[second + 1]).to.match(/^\s+~ web\s+replace\s+image img\/web:1 → img\/web:2; env \+ EXTRA$/);
      expect(lines[second + 2]).to.match(/^\s+= db\s+unchanged$/);
      expect(r.out).to.not.include("s3cr3t-value");
      const j = JSON.parse((await fleetctl(["history", device, "app", "--json"])).out) as { steps: Array<{ n: number; changes: Array<{ service: string; action: string }> | null }> };
      expect(j.steps.find((s) => s.n === 5)!.changes).to.deep.include({ service: "db", action: "unchanged", details: [] });
      expect(j.steps.find((s) => s.n === 2)!.changes).to.equal(null);

      const d = await fleetctl(["describe", device, "app"]);
      expect(d.code, d.err).to.equal(EXIT.OK);
      expect(d.out).to.match(/^Phase\s+Running\s+state running$/m);
      expect(d.out).to.match(/^Desired\s+revision \d+, sha256:[0-9a-f]{12}… \(applied\)$/m);
      expect(d.out).to.match(/^\s+web\s+img\/web:2\s+[0-9a-f]{12}\s/m);
      expect(d.out).to.include("Recent events (8 of 8");
      expect(d.out).to.include("SECRET: <redacted>");
      expect(d.out).to.not.include("s3cr3t-value");
      const dev = await fleetctl(["describe", device]);
      expect(dev.out).to.match(/^Deployments\s+1$/m).and.match(/^\s+app\s+Running\s/m);
      expect((await fleetctl(["describe", device, "nothing-here"])).code).to.equal(EXIT.FAILED);
    });
  });

  describe("output to a closed pipe", () => {
    it("fleetctl history … | head -1 prints one line and ends quietly, exit 0", async () => {
      // A journal far longer than a pipe holds (64 KiB), so the writer meets the closed pipe.
      const js = jetstream(nc);
      const at = new Date().toISOString();
      const reason = `policy refused the score: ${"x".repeat(200)}`;
      for (let n = 1; n <= 600; n++) {
        const e = { v: 1, device, deployment: "app", n, at, event: { type: "REJECT", revision: n, error: reason, at: Date.now() }, from: n === 1 ? "pending" : "failed", to: "failed" };
        expect(decode(JournalEvent, e).ok).to.equal(true);
        await js.publish(eventSubject(device, "app"), JSON.stringify(e), { msgID: `${device}.app.${n}` });
      }
      const whole = await fleetctl(["history", device, "app"]);
      expect(whole.code, whole.err).to.equal(EXIT.OK);
      expect(whole.out.length).to.be.greaterThan(2 * 65536);

      const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const p = spawn("bash", ["-c", `${process.execPath} --import tsx cli/main.ts history ${device} app | head -1; exit "\${PIPESTATUS[0]}"`], {
          env: { ...process.env, FLEET_NATS_URL: "nats://127.0.0.1:4222" },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        p.stdout.on("data", (d: Buffer) => (out += d.toString()));
        p.stderr.on("data", (d: Buffer) => (err += d.toString()));
        p.on("exit", (code) => resolve({ code, out, err }));
      });
      expect(r.err).to.equal("");
      expect(r.out).to.equal(`history of ${device}/app: 600 transitions\n`);
      expect(r.code).to.equal(0);
    });
  });

  describe("device rm", () => {
    it("refuses while desired state is written or the heartbeat is fresh; --force forgets it all; a terminal asks first", async () => {
      await reportAs(device, { deployment: "app" }, { at: new Date(Date.now() - 600_000).toISOString(), tick_secs: 30 });
      await desired.put(deploymentKey(device, "app"), scoreJson("img/web:1"));

      const refused = await fleetctl(["device", "rm", device]);
      expect(refused.code).to.equal(EXIT.FAILED);
      expect(refused.err).to.include("still has desired state for app").and.include("--force");
      expect(await states.get(deploymentKey(device, "app"))).to.not.equal(null);

      // On a terminal it asks; no is no.
      let asked = "";
      const declined = await fleetctl(["device", "rm", device, "--force"], { stdinIsTty: true, confirm: async (q) => ((asked = q), false) });
      expect(asked).to.equal(`forget ${device}?`);
      expect(declined.code).to.equal(EXIT.FAILED);
      expect(declined.err).to.include(`device-state ${device}.app`).and.include("declined: nothing deleted");
      expect((await heartbeats.get(device))?.operation).to.equal("PUT");

      const forced = await fleetctl(["device", "rm", device, "--force"]);
      expect(forced.code, forced.err).to.equal(EXIT.OK);
      expect(forced.out).to.include(`forgot ${device}: purged 3 entries`).and.include("deleted desired state app");
      for (const [kv, key] of [[states, deploymentKey(device, "app")], [heartbeats, device], [infos, device]] as const) {
        const e = await kv.get(key);
        expect(e === null || e.operation !== "PUT", key).to.equal(true);
      }
      expect((await desired.get(deploymentKey(device, "app")))?.operation).to.equal("DEL");
      expect((await fleetctl(["status", device])).code).to.equal(EXIT.FAILED);
      expect((await fleetctl(["device", "rm", device])).err).to.include("nothing to forget");
    });

    it("refuses a device whose agent still reports", async () => {
      await reportAs(device, { deployment: "app" });
      const r = await fleetctl(["device", "rm", device]);
      expect(r.code).to.equal(EXIT.FAILED);
      expect(r.err).to.match(/last heartbeat was \d+s ago, so its agent is running/);
    });
  });
});
