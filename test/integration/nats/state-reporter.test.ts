import { expect } from "chai";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_INFO, BUCKET_DEVICE_STATE } from "../../../contracts/wire-names.js";
import { memoryLogger } from "../../../agent/logger.js";
import { connectAgent } from "../../../fleet/connection.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { StateReporter } from "../../../agent/nats/state.reporter.js";
import { cleanupDevice, connectTest, PrivateNats, uniqueDevice } from "../../support/nats.js";

const state = (device: string, deployment: string, seq: number): DeploymentState => ({
  device,
  deployment,
  phase: "Pending",
  state: "pulling",
  score_hash: `sha256:${"a".repeat(64)}`,
  desired_revision: seq,
  container_ids: {},
  last_error: null,
  last_event_seq: seq,
  last_event_at: "2026-01-01T00:00:00.000Z",
});

describe("state reporter", function () {
  this.timeout(60_000);
  let nc: NatsConnection;
  const devices: string[] = [];
  before(async () => {
    nc = await connectTest();
    await ensureFleetResources(nc);
  });
  after(async () => {
    for (const d of devices) await cleanupDevice(nc, d);
    await nc.close();
  });

  it("writes deployment state, heartbeat and device info under the contract's keys; drops invalid values", async () => {
    const device = uniqueDevice();
    devices.push(device);
    const mem = memoryLogger();
    const r = new StateReporter({ device, nc, logger: mem.logger });
    try {
      r.reportDeployment(state(device, "web", 1));
      r.reportDeployment(state(device, "web", 2));
      r.reportDeployment(state(device, "db", 7));
      r.reportHeartbeat({ device, agent_version: "0.1.0", at: "2026-01-01T00:00:00.000Z", deployments: { web: "Pending" } });
      r.reportDeviceInfo({ device, hostname: "h", arch: "arm64", podman_version: null, agent_version: "0.1.0" });
      r.reportDeployment({ ...state(device, "bad", 1), phase: "Weird" as "Running" });
      r.reportDeployment(state("someone-else", "web", 1));
      await r.flush();
      const kvm = new Kvm(nc);
      const ds = await kvm.open(BUCKET_DEVICE_STATE);
      expect((await ds.get(`${device}.web`))!.json()).to.deep.equal(state(device, "web", 2));
      expect((await ds.get(`${device}.db`))!.json()).to.deep.equal(state(device, "db", 7));
      expect(await ds.get(`${device}.bad`)).to.equal(null);
      expect((await (await kvm.open(BUCKET_DEVICE_HEARTBEAT)).get(device))!.json()).to.include({ device, agent_version: "0.1.0" });
      expect((await (await kvm.open(BUCKET_DEVICE_INFO)).get(device))!.json()).to.include({ device, arch: "arm64" });
      expect(mem.records.filter((x) => x["level"] === 50).map((x) => x["msg"])).to.deep.equal(["dropped an invalid DeploymentState", "dropped a deployment state of another device"]);
    } finally {
      await r.stop();
    }
  });

  it("keeps only the latest value per key while NATS is down and flushes it after reconnect; callers never wait", async () => {
    const device = uniqueDevice();
    const srv = await PrivateNats.start();
    const mem = memoryLogger();
    const agentNc = await connectAgent({ servers: [srv.url], device, logger: mem.logger, options: { reconnectTimeWait: 250 } });
    const r = new StateReporter({ device, nc: agentNc, logger: mem.logger, retryMs: 100 });
    try {
      await ensureFleetResources(agentNc);
      r.reportDeployment(state(device, "web", 1));
      await r.flush();
      await srv.stop();
      await new Promise((res) => setTimeout(res, 500));
      const t0 = Date.now();
      for (let i = 2; i <= 50; i++) r.reportDeployment(state(device, "web", i));
      r.reportHeartbeat({ device, agent_version: "0.1.0", at: "2026-01-01T00:00:01.000Z", deployments: {} });
      // Reporting never waits for NATS: blocked calls would take a request timeout (seconds) each.
      expect(Date.now() - t0).to.be.below(500);
      await new Promise((res) => setTimeout(res, 2000));
      expect(r.backlog).to.equal(2);
      await srv.start();
      await r.flush(20_000);
      const check = await connectTest(srv.url);
      try {
        const kv = await new Kvm(check).open(BUCKET_DEVICE_STATE);
        expect((await kv.get(`${device}.web`))!.json()).to.deep.equal(state(device, "web", 50));
        const revisions: number[] = [];
        for await (const e of await kv.history({ key: `${device}.web` })) revisions.push((e.json() as DeploymentState).last_event_seq);
        expect(revisions).to.deep.equal([1, 50]);
        expect((await (await new Kvm(check).open(BUCKET_DEVICE_HEARTBEAT)).get(device))!.json()).to.include({ at: "2026-01-01T00:00:01.000Z" });
      } finally {
        await check.close();
      }
    } finally {
      await r.stop();
      await agentNc.close();
      await srv.destroy();
    }
  });
});
