// fleetctl rollout over 10 in-process agents on FakeRuntime: waves, a halt at the wave where one
// device fails (its runtime cannot pull the new image), and a resume after the fix.
import { expect } from "chai";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { EXIT } from "../../../cli/main.js";
import { globMatcher, planWaves } from "../../../cli/rollout.command.js";
import { canonicalHash } from "../../../contracts/canonical-json.js";
import { decodeJson } from "../../../contracts/decode.js";
import { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, deploymentKey } from "../../../contracts/wire-names.js";
import { cleanupDevice, connectTest, uniqueDevice } from "../../support/nats.js";
import { ScoreFiles, fleetctl, scoreJson, startTestAgent, type TestAgent } from "./cli.helpers.js";

describe("fleetctl rollout", function () {
  describe("waves and selectors (pure)", () => {
    const ten = Array.from({ length: 10 }, (_, i) => `d${i}`);
    it("1,10%,50%,100% over 10 devices gives waves of 1, 1, 3, 5 (each wave adds at least one)", () => {
      expect(planWaves(ten, "1,10%,50%,100%").map((w) => w.length)).to.deep.equal([1, 1, 3, 5]);
      expect(planWaves(ten, "1,10%,50%,100%").flat()).to.deep.equal(ten);
    });
    it("a list that stops short gets a last wave with the rest; counts beyond the total are clamped", () => {
      expect(planWaves(ten, "2,30%").map((w) => w.length)).to.deep.equal([2, 1, 7]);
      expect(planWaves(ten, "50").map((w) => w.length)).to.deep.equal([10]);
    });
    it("bad wave specs are usage errors", () => {
      for (const bad of ["0", "-1", "abc", "150%", "1,,2"]) expect(() => planWaves(ten, bad), bad).to.throw(/--waves/);
    });
    it("selector globs match device ids", () => {
      const m = globMatcher("pi-*,edge-?");
      expect(["pi-1", "pi-17", "edge-a", "edge-ab", "x-pi-1"].filter(m)).to.deep.equal(["pi-1", "pi-17", "edge-a"]);
    });
  });

  describe("over 10 simulated devices on real NATS", function () {
    this.timeout(120_000);
    let nc: NatsConnection;
    let desired: KV;
    let states: KV;
    let agents: TestAgent[] = [];
    let files: ScoreFiles;
    const prefix = uniqueDevice();
    const devices = Array.from({ length: 10 }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);

    before(async () => {
      nc = await connectTest();
      await ensureFleetResources(nc);
      desired = await new Kvm(nc).open(BUCKET_DESIRED_STATE);
      states = await new Kvm(nc).open(BUCKET_DEVICE_STATE);
      files = new ScoreFiles();
      agents = await Promise.all(devices.map((d) => startTestAgent(d)));
    });
    after(async () => {
      await Promise.all(agents.map((a) => a.stop()));
      for (const d of devices) await cleanupDevice(nc, d);
      files.remove();
      await nc.close();
    });

    const stateOf = async (device: string) => {
      const e = await states.get(deploymentKey(device, "app"));
      if (!e || e.operation !== "PUT") return null;
      const r = decodeJson(DeploymentState, e.string());
      return r.ok ? r.value : null;
    };
    const desiredHash = async (device: string) => {
      const e = await desired.get(deploymentKey(device, "app"));
      return e && e.operation === "PUT" ? canonicalHash(JSON.parse(e.string())) : null;
    };

    it("halts at the wave where one device fails, naming it and why; resumes after the fix", async () => {
      const v1 = files.write(scoreJson("img/web:1"));
      const v2 = files.write(scoreJson("img/web:2"));
      const h1 = canonicalHash(JSON.parse(scoreJson("img/web:1")));
      const h2 = canonicalHash(JSON.parse(scoreJson("img/web:2")));

      // v1 everywhere, selected by glob over the devices the agents announced.
      const first = await fleetctl(["rollout", "app", "-f", v1, "--selector", `${prefix}-*`, "--waves", "50%", "--wave-timeout", "30", "--soak", "0.2"]);
      expect(first.code, first.err).to.equal(EXIT.OK);
      expect(first.err).to.include("in 2 wave(s): 5, 5");
      for (const d of devices) expect((await stateOf(d))?.phase, d).to.equal("Running");

      // Device 04 sits in wave 3 (devices 02, 03, 04); its runtime cannot pull the new image.
      const failing = agents[4]!;
      failing.fake.failPull("img/web:2", "manifest unknown");
      const halted = await fleetctl(["rollout", "app", "-f", v2, "--devices", devices.join(","), "--waves", "1,10%,50%,100%", "--wave-timeout", "30", "--soak", "0.2", "--json"]);
      expect(halted.code, halted.err).to.equal(EXIT.HALTED);
      expect(halted.err).to.include(`HALTED at wave 3/4: device ${devices[4]} failed`);
      expect(halted.err).to.include("manifest unknown");
      expect(halted.err).to.match(/wave 1\/4 \[#+\] 1\/1 settled/); // progress on stderr
      const summary = JSON.parse(halted.out) as { completed: boolean; halted: { wave: number; device: string } };
      expect(summary.completed).to.equal(false);
      expect(summary.halted).to.include({ wave: 3, device: devices[4] });
      // Waves 1-2 are on v2; wave 4 was never written; the failed device's old containers still run.
      for (const d of devices.slice(0, 2)) expect((await stateOf(d))!.score_hash, d).to.equal(h2);
      for (const d of devices.slice(5)) {
        expect(await desiredHash(d), d).to.equal(h1);
        expect((await stateOf(d))!.score_hash, d).to.equal(h1);
      }
      const failed = (await stateOf(devices[4]!))!;
      expect(failed.phase).to.equal("Failed");
      expect(failed.last_error).to.include("manifest unknown");
      expect(failing.fake.snapshot().filter((c) => c.state === "running")).to.have.length(2);

      // Re-running before the fix halts again at once: the device is still failed on this score.
      const revsBefore = await Promise.all(devices.slice(0, 4).map(async (d) => (await desired.get(deploymentKey(d, "app")))!.revision));
      const again = await fleetctl(["rollout", "app", "-f", v2, "--devices", devices.join(","), "--waves", "1,10%,50%,100%", "--wave-timeout", "30", "--soak", "0.2"]);
      expect(again.code).to.equal(EXIT.HALTED);
      expect(again.err).to.include(`device ${devices[4]} failed`);
      expect(again.err).to.include("--retry-failed");

      // The fix: the image can be pulled now. Resume: done devices are skipped, the failed one retried.
      failing.fake.clearFaults();
      const resumed = await fleetctl(["rollout", "app", "-f", v2, "--devices", devices.join(","), "--waves", "1,10%,50%,100%", "--wave-timeout", "30", "--soak", "0.2", "--retry-failed"]);
      expect(resumed.code, resumed.err).to.equal(EXIT.OK);
      expect(resumed.err).to.include("wave 1/4: 1 Running (1 already were)");
      expect(resumed.out).to.include(`complete: 10 device(s) Running ${h2}`);
      for (const d of devices) {
        const s = (await stateOf(d))!;
        expect([s.phase, s.score_hash], d).to.deep.equal(["Running", h2]);
        expect(await desiredHash(d), d).to.equal(h2);
      }
      // Devices already done were not written again.
      const revsAfter = await Promise.all(devices.slice(0, 4).map(async (d) => (await desired.get(deploymentKey(d, "app")))!.revision));
      expect(revsAfter).to.deep.equal(revsBefore);
      // The retried device pulled the image and replaced only web.
      const web = failing.fake.snapshot().find((c) => c.service === "web")!;
      expect(web.image).to.equal("img/web:2");
    });
  });
});
