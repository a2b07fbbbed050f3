// e2e: a JetStream cluster of three nats-server nodes on loopback; the buckets and the event stream
// have 3 replicas (created by the operator's side, as a clustered fleet would: ensureFleetResources
// with {replicas: 3}); the agent is given all three URLs. The node the agent is connected to is
// SIGKILLed mid-rollout: nothing may be lost, the deployment converges, and every node's view of
// the stream and of device-state agrees with device-state once the node is back.
import { expect } from "chai";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { lastMessageOnSubject } from "../../fleet/stream.reader.js";
import { canonicalHash } from "../../contracts/canonical-json.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, deploymentKey, eventSubject, STREAM_FLEET_EVENTS } from "../../contracts/wire-names.js";
import type { JournalEvent } from "../../contracts/journal-event.codec.js";
import { TEST_IMAGES } from "../support/podman.env.js";
import { NatsCluster } from "./support/nats.cluster.js";
import { score, sleep, useScenario, waitFor } from "./support/scenario.js";

const hashOf = (s: unknown) => canonicalHash(s as never);
const lastTo = (state: string) => (ev: JournalEvent[]) => ev.at(-1)?.to === state;

describe("e2e: JetStream cluster", function () {
  const sc = useScenario();

  it("9. JetStream cluster — three clustered nodes, R3 stream and buckets, the agent's node killed mid-rollout: nothing lost, converges, the cluster agrees with device-state", async () => {
    const s = sc.current;
    const cluster = await NatsCluster.start(3);
    s.cleanups.push(() => cluster.destroy());
    s.useNats(cluster.urls, 3);
    // The meta leader is elected a moment after the nodes are up: create the R3 resources then.
    await waitFor("R3 buckets and stream created", async () => {
      try {
        await s.conn();
        return true;
      } catch {
        return false;
      }
    }, 30_000);
    const nc = await s.conn();
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(STREAM_FLEET_EVENTS)).config.num_replicas).to.equal(3);
    expect((await jsm.streams.info(`KV_${BUCKET_DEVICE_STATE}`)).config.num_replicas).to.equal(3);
    expect((await jsm.streams.info(`KV_${BUCKET_DESIRED_STATE}`)).config.num_replicas).to.equal(3);

    const agent = s.startAgent();
    const connected = await agent.waitLog("connected to NATS", (l) => l.msg === "connected to NATS");
    const victim = cluster.nodeOf(String(connected["server"]));
    const v1 = score([{ name: "web", image: TEST_IMAGES.stubborn }, { name: "side", image: TEST_IMAGES.v1 }], { grace_period_secs: 3 });
    await s.put("app", v1);
    await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
    await s.caughtUp(["app"]);

    const v2 = score([{ name: "web", image: TEST_IMAGES.v2 }, { name: "side", image: TEST_IMAGES.v1 }], { grace_period_secs: 3 });
    await s.put("app", v2);
    await s.waitJournal("app", lastTo("stoppingOld"), "in stoppingOld");
    const tKill = Date.now();
    await cluster.killNode(victim);
    await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v2), "v2 Running after the node died", 90_000);
    await s.caughtUp(["app"], 90_000);
    s.recoveryMs = Date.now() - tKill;
    s.recoveryWhat = `node ${victim} (the agent's) SIGKILLed in stoppingOld → Running, all events in the stream`;
    const reconnected = agent.logs("NATS reconnected").at(-1);
    s.notes.push(`agent moved to ${reconnected ? cluster.nodeOf(String(reconnected["server"])) : "?"}`);
    const verified = await s.verify(["app"]);
    expect(verified.lost).to.equal(0);

    // The killed node comes back and catches up; then every node agrees with device-state.
    await cluster.startNode(victim);
    const reported = (await s.state("app"))!;
    const localN = s.journal("app").length;
    await waitFor("the stream's replicas all current", async () => {
      const info = await jsm.streams.info(STREAM_FLEET_EVENTS).catch(() => null);
      const replicas = info?.cluster?.replicas ?? [];
      return replicas.length === 2 && replicas.every((r) => r.current && !r.offline && (r.lag ?? 0) === 0);
    }, 60_000);
    for (const url of cluster.urls) {
      const direct = await connect({ servers: url, name: "e2e-node-check" });
      try {
        const njsm = await jetstreamManager(direct);
        const last = await lastMessageOnSubject(njsm, STREAM_FLEET_EVENTS, eventSubject(s.device, "app"));
        expect(last?.json<{ n: number }>().n, `${url}: last event n`).to.equal(localN);
        const st = await (await new Kvm(direct).open(BUCKET_DEVICE_STATE)).get(deploymentKey(s.device, "app"));
        expect(st?.json<{ last_event_seq: number; container_ids: unknown }>(), `${url}: device-state`).to.deep.include({ last_event_seq: reported.last_event_seq, container_ids: reported.container_ids });
      } finally {
        await direct.close();
      }
    }
    await sleep(200);
  });
});
