import { expect } from "chai";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { canonicalHash } from "../../../contracts/canonical-json.js";
import type { ReconcileScore } from "../../../contracts/score.codec.js";
import { BUCKET_DESIRED_STATE } from "../../../contracts/wire-names.js";
import { type DesiredChange, DesiredStateWatch } from "../../../agent/nats/desired-state.watch.js";
import { memoryLogger } from "../../../agent/logger.js";
import { connectAgent } from "../../../fleet/connection.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { cleanupDevice, connectTest, PrivateNats, uniqueDevice, waitFor } from "../../support/nats.js";

const score = (tag: string, env?: Record<string, string>): ReconcileScore => ({
  type: "PodmanV0",
  data: { services: [{ name: "web", image: `localhost/app:${tag}`, ...(env ? { env } : {}) }] },
});
const put = (kv: KV, key: string, v: unknown) => kv.put(key, typeof v === "string" ? v : JSON.stringify(v));
const brief = (c: DesiredChange) => (c.kind === "update" ? `${c.kind} ${c.deployment} ${c.score.data.services[0]!.image}` : `${c.kind} ${c.deployment}`);

describe("desired-state watch", function () {
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

  it("delivers each key's last value first, then updates, deletes and rejects, in revision order", async () => {
    const device = uniqueDevice();
    devices.push(device);
    const kv = await new Kvm(nc).open(BUCKET_DESIRED_STATE);
    await put(kv, `${device}.web`, score("v1"));
    await put(kv, `${device}.web`, score("v2", { SECRET: "hunter2" }));
    await put(kv, `${device}.db`, score("db1"));
    await put(kv, `${device}.gone`, score("x"));
    await kv.delete(`${device}.gone`);
    await put(kv, `other-${device}.web`, score("not mine"));
    devices.push(`other-${device}`);

    const changes: DesiredChange[] = [];
    const mem = memoryLogger();
    const w = DesiredStateWatch.start({ device, nc, logger: mem.logger, onChange: (c) => changes.push(c) });
    try {
      await waitFor("initial values", () => changes.length >= 3);
      await new Promise((r) => setTimeout(r, 300));
      expect(changes.map(brief)).to.deep.equal(["update web localhost/app:v2", "update db localhost/app:db1", "delete gone"]);
      const web = changes[0]! as Extract<DesiredChange, { kind: "update" }>;
      expect(web.hash).to.equal(canonicalHash(score("v2", { SECRET: "hunter2" })));
      expect(web.score.data.services[0]!.env).to.deep.equal({ SECRET: "hunter2" });
      expect(changes.map((c) => c.revision)).to.satisfy((rs: number[]) => rs.every((r, i) => i === 0 || r > rs[i - 1]!));

      changes.length = 0;
      await put(kv, `${device}.web`, score("v3"));
      await put(kv, `${device}.web`, "{not json");
      await kv.put(`${device}.web`, new Uint8Array([0xff, 0xfe, 0x7b]));
      await put(kv, `${device}.web`, { type: "PodmanV0", data: { services: [{ name: "web", image: "a:1" }], lifecycle: { grace_period_sec: 5 } } });
      await put(kv, `${device}.web`, { type: "DockerV9", data: {} });
      await put(kv, `${device}.bad_-name`, score("ok-name"));
      await put(kv, `${device}.a.b`, score("nested"));
      await put(kv, `${device}.-dash`, score("x"));
      await kv.delete(`${device}.db`);
      await kv.purge(`${device}.web`);
      await waitFor("updates", () => changes.length >= 10);
      expect(changes.map((c) => c.kind)).to.deep.equal(["update", "reject", "reject", "reject", "reject", "update", "reject", "reject", "delete", "delete"]);
      const errors = changes.filter((c): c is Extract<DesiredChange, { kind: "reject" }> => c.kind === "reject").map((c) => `${c.deployment}: ${c.error}`);
      expect(errors[0]).to.match(/^web: \(root\): malformed JSON/);
      expect(errors[1]).to.equal("web: (root): the value is not valid UTF-8");
      expect(errors[2]).to.equal("web: data.lifecycle.grace_period_sec: unknown field (did you mean grace_period_secs?)");
      expect(errors[3]).to.match(/^web: type: /);
      expect(errors[4]).to.match(/^a\.b: key .*invalid deployment name: must be letters/);
      expect(errors[5]).to.match(/^-dash: key .*invalid deployment name/);
      expect(changes.slice(8).map(brief)).to.deep.equal(["delete db", "delete web"]);
      expect(JSON.stringify(mem.records)).not.to.include("hunter2");
    } finally {
      await w.stop();
    }
  });

  it("survives a server restart: resumes without replaying old values, then delivers new ones", async function () {
    this.timeout(90_000);
    const device = uniqueDevice();
    const srv = await PrivateNats.start();
    const mem = memoryLogger();
    const agentNc = await connectAgent({ servers: [srv.url], device, logger: mem.logger, options: { reconnectTimeWait: 250 } });
    const changes: DesiredChange[] = [];
    let w: DesiredStateWatch | null = null;
    const writer = await connectTest(srv.url);
    try {
      await ensureFleetResources(agentNc);
      const kv = await new Kvm(writer).open(BUCKET_DESIRED_STATE);
      await put(kv, `${device}.web`, score("v1"));
      await put(kv, `${device}.web`, score("v2"));
      w = DesiredStateWatch.start({ device, nc: agentNc, logger: mem.logger, onChange: (c) => changes.push(c), retryMs: 200 });
      await waitFor("v2", () => changes.length === 1);
      await put(kv, `${device}.db`, score("db1"));
      await waitFor("db1", () => changes.length === 2);

      await writer.close();
      await srv.stop();
      await new Promise((r) => setTimeout(r, 3000));
      await srv.start();
      await waitFor("the watch re-created", () => w!.restartCount >= 1, 20_000);
      const writer2 = await connectTest(srv.url);
      try {
        const kv2 = await new Kvm(writer2).open(BUCKET_DESIRED_STATE);
        await put(kv2, `${device}.web`, score("v3"));
        await kv2.delete(`${device}.db`);
        await waitFor("after restart", () => changes.length >= 4, 20_000);
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        await writer2.close();
      }
      expect(changes.map(brief)).to.deep.equal(["update web localhost/app:v2", "update db localhost/app:db1", "update web localhost/app:v3", "delete db"]);
    } finally {
      await w?.stop();
      await agentNc.close();
      await srv.destroy();
    }
  });

  it("stops cleanly, even before it ever connected", async () => {
    const w = DesiredStateWatch.start({ device: uniqueDevice(), nc: new Promise<NatsConnection>(() => {}), logger: memoryLogger().logger, onChange: () => {} });
    const w2 = DesiredStateWatch.start({ device: uniqueDevice(), nc, logger: memoryLogger().logger, onChange: () => {} });
    await new Promise((r) => setTimeout(r, 200));
    await w2.stop();
    const stopped = await Promise.race([w.stop().then(() => "stopped"), new Promise((r) => setTimeout(() => r("hung"), 1000))]);
    expect(stopped).to.equal("stopped");
  });
});
