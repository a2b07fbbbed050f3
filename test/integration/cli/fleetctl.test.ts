// fleetctl against the real NATS server: deploy's validation, dry run and compare-and-set; status,
// history and delete against what an in-process agent (FakeRuntime) reported; the real bin.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { EXIT } from "../../../cli/main.js";
import { canonicalHash } from "../../../contracts/canonical-json.js";
import { decodeJson } from "../../../contracts/decode.js";
import { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { ReconcileScore } from "../../../contracts/score.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, deploymentKey } from "../../../contracts/wire-names.js";
import { SHARED_NATS, cleanupDevice, connectTest, uniqueDevice, waitFor, deploymentStateOf, waitForState } from "../../support/nats.js";
import { ScoreFiles, fleetctl, scoreJson, startTestAgent, type TestAgent } from "./cli.helpers.js";

describe("fleetctl on real NATS", function () {
  let nc: NatsConnection;
  let desired: KV;
  let states: KV;
  let device: string;
  let files: ScoreFiles;
  let agent: TestAgent | null = null;

  before(async () => {
    nc = await connectTest();
    await ensureFleetResources(nc);
    desired = await new Kvm(nc).open(BUCKET_DESIRED_STATE);
    states = await new Kvm(nc).open(BUCKET_DEVICE_STATE);
  });
  after(async () => {
    await nc.close();
  });
  beforeEach(() => {
    device = uniqueDevice();
    files = new ScoreFiles();
  });
  afterEach(async () => {
    await agent?.stop();
    agent = null;
    await cleanupDevice(nc, device);
    files.remove();
  });

  const waitState = (deployment: string, pred: (s: DeploymentState) => boolean, what: string) => waitForState(states, device, deployment, pred, what);

  describe("deploy", () => {
    it("refuses a bad file with exit 2, naming the field, and writes nothing", async () => {
      const bad = files.write(scoreJson("img/web:1").replace('"grace_period_secs"', '"grace_period_sec"'));
      const r = await fleetctl(["deploy", device, "app", "-f", bad]);
      expect(r.code).to.equal(EXIT.USAGE);
      expect(r.err).to.include("data.lifecycle.grace_period_sec: unknown field");
      expect(r.err).to.include("nothing written");
      expect(await desired.get(deploymentKey(device, "app"))).to.equal(null);

      const yaml = files.write("type: PodmanV0\ndata:\n  services:\n    - name: web\n      image: img/web:1\n      ports:\n        - {host_port: '80', container_port: 80}\n", "yaml");
      const y = await fleetctl(["deploy", device, "app", "-f", yaml]);
      expect(y.code).to.equal(EXIT.USAGE);
      expect(y.err).to.include('data.services[0].ports[0].host_port: expected number, got "80"');
      expect(await desired.get(deploymentKey(device, "app"))).to.equal(null);
    });

    it("--dry-run prints the per-service changes and writes nothing", async () => {
      const f = files.write(scoreJson("img/web:1"));
      const r = await fleetctl(["deploy", device, "app", "-f", f, "--dry-run", "--new-device"]);
      expect(r.code, r.err).to.equal(EXIT.OK);
      expect(r.out).to.match(/\+ web\s+add\s+image img\/web:1/);
      expect(r.out).to.match(/\+ db\s+add\s+image img\/db:1/);
      expect(r.out).to.include("dry run: nothing written");
      expect(await desired.get(deploymentKey(device, "app"))).to.equal(null);

      expect((await fleetctl(["deploy", device, "app", "-f", f, "--new-device"])).code).to.equal(EXIT.OK);
      const rev = (await desired.get(deploymentKey(device, "app")))!.revision;
      const f2 = files.write(scoreJson("img/web:2"));
      const d2 = await fleetctl(["deploy", device, "app", "-f", f2, "--dry-run", "--json", "--new-device"]);
      expect(d2.code).to.equal(EXIT.OK);
      const j = JSON.parse(d2.out) as { written: boolean; changes: Array<{ service: string; action: string; details: string[] }> };
      expect(j.written).to.equal(false);
      expect(j.changes).to.deep.include({ service: "web", action: "replace", details: ["image img/web:1 → img/web:2"] });
      expect(j.changes).to.deep.include({ service: "db", action: "unchanged", details: [] });
      expect((await desired.get(deploymentKey(device, "app")))!.revision).to.equal(rev);
    });

    it("writes YAML as the decoded score, and shows env changes by name only", async () => {
      const yaml = files.write("type: PodmanV0\ndata:\n  services:\n    - name: web\n      image: img/web:1\n      env: {TOKEN: abc}\n", "yaml");
      const r = await fleetctl(["deploy", device, "app", "-f", yaml, "--new-device"]);
      expect(r.code, r.err).to.equal(EXIT.OK);
      expect(r.out).to.match(/written: desired-state .*revision \d+/);
      const stored = decodeJson(ReconcileScore, (await desired.get(deploymentKey(device, "app")))!.string());
      expect(stored.ok && stored.value.data.services[0]!.env).to.deep.equal({ TOKEN: "abc" });
      const yaml2 = files.write("type: PodmanV0\ndata:\n  services:\n    - name: web\n      image: img/web:1\n      env: {TOKEN: zzz-new-secret}\n", "yaml");
      const r2 = await fleetctl(["deploy", device, "app", "-f", yaml2, "--dry-run", "--new-device"]);
      expect(r2.out).to.match(/~ web\s+replace\s+env value of TOKEN changed/);
      expect(r2.out + r2.err).to.not.include("zzz-new-secret");
      expect(r2.out + r2.err).to.not.include("abc");
      // The same score again (reformatted) is no change.
      const again = await fleetctl(["deploy", device, "app", "-f", files.write(JSON.stringify(stored.ok && stored.value, null, 4)), "--new-device"]);
      expect(again.code).to.equal(EXIT.OK);
      expect(again.out).to.include("no change");
    });

    it("refuses (exit 1) when the desired state changed between its read and its write", async () => {
      const f1 = files.write(scoreJson("img/web:1"));
      expect((await fleetctl(["deploy", device, "app", "-f", f1, "--new-device"])).code).to.equal(EXIT.OK);
      const theirs = scoreJson("img/web:9");
      const r = await fleetctl(["deploy", device, "app", "-f", files.write(scoreJson("img/web:2")), "--new-device"], {
        hooks: { beforeWrite: async (key) => void (await desired.put(key, theirs)) },
      });
      expect(r.code).to.equal(EXIT.FAILED);
      expect(r.err).to.match(/refused: .* changed since it was read/);
      expect((await desired.get(deploymentKey(device, "app")))!.string()).to.equal(theirs);

      // Also for a first deploy racing another first deploy.
      const r2 = await fleetctl(["deploy", device, "other", "-f", f1, "--new-device"], {
        hooks: { beforeWrite: async (key) => void (await desired.put(key, theirs)) },
      });
      expect(r2.code).to.equal(EXIT.FAILED);
      expect(r2.err).to.include("refused");
      expect((await desired.get(deploymentKey(device, "other")))!.string()).to.equal(theirs);
    });

    it("usage errors exit 2", async () => {
      expect((await fleetctl(["deploy", device])).code).to.equal(EXIT.USAGE);
      expect((await fleetctl(["deploy", device, "app"])).err).to.include("missing -f");
      expect((await fleetctl(["deploy", "bad.id", "app", "-f", "x.json"])).code).to.equal(EXIT.USAGE);
      expect((await fleetctl(["deploy", device, "app", "-f", "/nonexistent/score.json"])).code).to.equal(EXIT.USAGE);
      expect((await fleetctl(["frobnicate"])).code).to.equal(EXIT.USAGE);
      expect((await fleetctl(["status", "--bogus"])).code).to.equal(EXIT.USAGE);
    });

    it("every command has --help (exit 0)", async () => {
      for (const cmd of ["deploy", "status", "history", "rollout", "delete", "serve", "describe", "explain", "schema", "device rm"]) {
        const r = await fleetctl([...cmd.split(" "), "--help"]);
        expect(r.code, cmd).to.equal(EXIT.OK);
        expect(r.out, cmd).to.include(`Usage: fleetctl ${cmd}`);
        expect(r.out, cmd).to.include("Exit:");
      }
      expect((await fleetctl(["--help"])).out).to.include("Exit status");
    });
  });

  describe("with an agent on FakeRuntime", () => {
    it("status prints what the agent reported (table and --json), with heartbeat age and stale marks", async () => {
      agent = await startTestAgent(device);
      expect((await fleetctl(["deploy", device, "app", "-f", files.write(scoreJson("img/web:1"))])).code).to.equal(EXIT.OK);
      const s = await waitState("app", (x) => x.phase === "Running", "Running");
      await agent.agent.tick(); // a fresh heartbeat
      const r = await fleetctl(["status", device]);
      expect(r.code, r.err).to.equal(EXIT.OK);
      const row = r.out.split("\n").find((l) => l.startsWith(device))!;
      // This agent reports no per-service status: IMAGE, RESTARTS and HEALTH are "-"; times are relative.
      expect(row).to.match(new RegExp(`^${device}\\s+app\\s+Running\\s+-\\s+-\\s+-\\s+\\d+s ago\\s+\\d+s ago\\s+-$`));
      expect(row).to.not.include("STALE");
      const wide = (await fleetctl(["status", device, "-o", "wide"])).out.split("\n").find((l) => l.startsWith(device))!;
      expect(wide).to.match(new RegExp(`^${device}\\s+app\\s+Running\\s+running\\s+`));
      expect(wide).to.include(`web=${s.container_ids["web"]!.slice(0, 12)}`);
      expect(wide).to.include(`db=${s.container_ids["db"]!.slice(0, 12)}`);

      const j = await fleetctl(["status", device, "--json"]);
      const parsed = JSON.parse(j.out) as Array<{ device: string; stale: boolean; deployments: DeploymentState[] }>;
      expect(parsed).to.have.length(1);
      expect(parsed[0]!.stale).to.equal(false);
      expect(parsed[0]!.deployments).to.deep.equal([s]);

      // With a tiny tick the same heartbeat is more than three ticks old: stale.
      await new Promise((res) => setTimeout(res, 50));
      const stale = await fleetctl(["status", device, "--tick-secs", "0.01"]);
      expect(stale.out).to.include("STALE");
    });

    it("status --watch redraws until stopped", async () => {
      agent = await startTestAgent(device);
      const abort = new AbortController();
      let draws = 0;
      let out = "";
      const p = (async () => {
        const { run } = await import("../../../cli/main.js");
        return run(["status", device, "--watch", "--interval", "0.1"], {
          out: (t) => {
            out += t;
            if (t.includes(device) && ++draws >= 3) abort.abort();
          },
          err: () => undefined,
          env: { FLEET_NATS_URL: SHARED_NATS },
          signal: abort.signal,
        });
      })();
      expect(await p).to.equal(EXIT.OK);
      expect(draws).to.be.greaterThanOrEqual(3);
    });

    it("history prints the journal as a timeline with time in each state; env values never shown", async () => {
      agent = await startTestAgent(device);
      await fleetctl(["deploy", device, "app", "-f", files.write(scoreJson("img/web:1"))]);
      const s1 = await waitState("app", (x) => x.phase === "Running", "Running v1");
      await fleetctl(["deploy", device, "app", "-f", files.write(scoreJson("img/web:2"))]);
      const s2 = await waitState("app", (x) => x.phase === "Running" && x.container_ids["web"] !== s1.container_ids["web"], "Running v2");
      await agent.agent.publisher.idle(10_000);

      const r = await fleetctl(["history", device, "app"]);
      expect(r.code, r.err).to.equal(EXIT.OK);
      const lines = r.out.split("\n");
      const expected = [
        ["1", "pending → pulling", "desired.updated"],
        ["2", "pulling → stoppingOld", "pull.done"],
        ["3", "stoppingOld → startingNew", "stop.done"],
        ["4", "startingNew → running", "start.done"],
        ["5", "running → pulling", "desired.updated"],
        ["8", "startingNew → running", "start.done"],
      ] as const;
      for (const [n, tr, ev] of expected) {
        const line = lines.find((l) => l.startsWith(`${n} `));
        expect(line, `step ${n}`).to.include(tr).and.include(ev);
      }
      expect(lines.find((l) => l.startsWith("8 "))).to.include("(now)").and.include(`web=${s2.container_ids["web"]!.slice(0, 12)}`);
      expect(r.out).to.match(/time in state: .*running \d/);
      expect(r.out).to.not.include("s3cr3t-value");

      const j = await fleetctl(["history", device, "app", "--json"]);
      const t = JSON.parse(j.out) as { steps: Array<{ n: number; to: string; container_ids: Record<string, string>; spent_ms: number | null }> };
      expect(t.steps.map((x) => x.n)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(t.steps[3]!.container_ids).to.deep.equal(s1.container_ids);
      expect(t.steps[7]!.container_ids).to.deep.equal(s2.container_ids);
      expect(t.steps[3]!.spent_ms).to.be.a("number");
      expect(t.steps[7]!.spent_ms).to.equal(null);
      expect(j.out).to.not.include("s3cr3t-value");

      expect((await fleetctl(["history", device, "nothing-here"])).code).to.equal(EXIT.FAILED);
    });

    it("delete removes the desired state; the agent removes the containers; a second delete exits 1", async () => {
      agent = await startTestAgent(device);
      await fleetctl(["deploy", device, "app", "-f", files.write(scoreJson("img/web:1"))]);
      await waitState("app", (x) => x.phase === "Running", "Running");
      const r = await fleetctl(["delete", device, "app"]);
      expect(r.code, r.err).to.equal(EXIT.OK);
      await waitState("app", (x) => x.state === "removed", "removed");
      expect(agent.fake.snapshot()).to.deep.equal([]);
      const again = await fleetctl(["delete", device, "app"]);
      expect(again.code).to.equal(EXIT.FAILED);
      expect(again.err).to.include("nothing to delete");
    });
  });

  describe("the bin, spawned through tsx", () => {
    const spawnCli = (args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const p = spawn(process.execPath, ["--import", "tsx", "cli/main.ts", ...args], { env: { ...process.env, FLEET_NATS_URL: SHARED_NATS }, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        p.stdout.on("data", (d: Buffer) => (out += d.toString()));
        p.stderr.on("data", (d: Buffer) => (err += d.toString()));
        p.on("exit", (code) => resolve({ code, out, err }));
      });

    it("exits with the documented codes: 0 help, 2 invalid score, 0 deploy + status --json, 1 NATS unreachable", async () => {
      expect((await spawnCli(["--help"])).code).to.equal(0);
      const bad = await spawnCli(["deploy", device, "app", "-f", files.write('{"type":"PodmanV1","data":{"services":[]}}')]);
      expect(bad.code).to.equal(2);
      expect(bad.err).to.include("type:");
      const good = await spawnCli(["deploy", device, "app", "-f", files.write(scoreJson("img/web:1")), "--new-device"]);
      expect(good.code, good.err).to.equal(0);
      const e = await desired.get(deploymentKey(device, "app"));
      expect(canonicalHash(JSON.parse(e!.string()))).to.equal(canonicalHash(JSON.parse(scoreJson("img/web:1"))));
      // Desired state alone is no report: the device is still unknown to status (exit 1).
      const st = await spawnCli(["status", device, "--json"]);
      expect(st.code).to.equal(1);
      expect(st.err).to.include(`no device "${device}" has ever reported`);
      const all = await spawnCli(["status", "--json"]);
      expect(all.code).to.equal(0);
      expect(JSON.parse(all.out)).to.be.an("array");
      const down = await spawnCli(["status", "--nats", "nats://127.0.0.1:1"]);
      expect(down.code).to.equal(1);
      expect(down.err).to.include("cannot reach NATS");
    });
  });
});
