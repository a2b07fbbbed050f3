import { expect } from "chai";
import { rmSync } from "node:fs";
import { jetstream, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { errors, type NatsConnection } from "@nats-io/transport-node";
import { EventJournal } from "../../../agent/journal/journal.js";
import { JournalPublisher, WRONG_LAST_SEQUENCE } from "../../../agent/journal/publisher.js";
import { readStreamEvents } from "../../../fleet/stream.reader.js";
import { memoryLogger } from "../../../agent/logger.js";
import { connectAgent } from "../../../fleet/connection.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { JournalEvent } from "../../../contracts/journal-event.codec.js";
import { eventSubject, STREAM_FLEET_EVENTS } from "../../../contracts/wire-names.js";
import { cleanupDevice, connectTest, PrivateNats, SHARED_NATS, tempDir, uniqueDevice, waitFor } from "../../support/nats.js";

/** Event i: a v2 event that says which one it is by its `at`. */
const tr = (i: number) => ({ at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), event: { type: "desired.deleted" as const, at: i, revision: i }, from: "pending" as const, to: "pulling" as const });

describe("journal publication (shared NATS)", function () {
  this.timeout(60_000);
  let nc: NatsConnection;
  const devices: string[] = [];
  const dirs: string[] = [];
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    nc = await connectTest();
    await ensureFleetResources(nc);
  });
  const logs: Array<Array<Record<string, unknown>>> = [];
  afterEach(async function () {
    if (this.currentTest?.state === "failed" && process.env["DEBUG_LOGS"]) for (const l of logs) console.log(l.map((r) => JSON.stringify(r)).join("\n"));
    logs.length = 0;
    for (const s of stops.splice(0)) await s();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  after(async () => {
    for (const d of devices) await cleanupDevice(nc, d);
    await nc.close();
  });

  const setup = () => {
    const device = uniqueDevice();
    devices.push(device);
    const dir = tempDir("agent-state-");
    dirs.push(dir);
    return { device, dir };
  };
  /** Stream sequences of the messages on a deployment's subject, in order. */
  const readStreamSeqs = async (device: string, deployment: string) => {
    const jsm = await jetstreamManager(nc);
    const seqs: number[] = [];
    for (let seq = 0; ; ) {
      const m = await jsm.direct.getMessage(STREAM_FLEET_EVENTS, { next_by_subj: eventSubject(device, deployment), seq: seq + 1 }).catch(() => null);
      if (!m) return seqs;
      seqs.push(m.seq);
      seq = m.seq;
    }
  };
  const publisher = (journal: EventJournal, conn: NatsConnection | Promise<NatsConnection> = nc) => {
    const mem = memoryLogger("debug");
    const p = new JournalPublisher({ journal, nc: conn, logger: mem.logger, retryMs: 100, pausedRetryMs: 200 });
    stops.push(() => p.stop());
    logs.push(mem.records);
    p.start();
    return { p, records: mem.records };
  };

  it("ensureFleetResources is idempotent and tolerates concurrent callers", async () => {
    const others = await Promise.all([connectTest(), connectTest(), connectTest()]);
    try {
      await Promise.all([nc, ...others].map((c) => ensureFleetResources(c)));
      await ensureFleetResources(nc);
      const jsm = await jetstreamManager(nc);
      const si = await jsm.streams.info(STREAM_FLEET_EVENTS);
      expect(si.config.subjects).to.deep.equal(["fleet.events.>"]);
      expect(si.config.duplicate_window).to.equal(120_000_000_000);
      expect(si.config.storage).to.equal("file");
      for (const b of ["desired-state", "device-state", "device-heartbeat", "device-info"]) {
        expect((await jsm.streams.info(`KV_${b}`)).config.max_msgs_per_subject).to.be.at.least(5);
      }
    } finally {
      await Promise.all(others.map((c) => c.close()));
    }
  });

  it("ensureFleetResources creates everything on an empty server, concurrently, with replicas given; what devices write refuses rollups", async () => {
    const srv = await PrivateNats.start();
    try {
      const cs = await Promise.all([1, 2, 3].map(() => connectTest(srv.url)));
      // A bucket made the way nats.js makes them (rollups allowed) before this rule: it is updated.
      await new Kvm(cs[0]!).create("device-heartbeat", { history: 5 });
      await Promise.all(cs.map((c) => ensureFleetResources(c, { replicas: 1 })));
      const jsm = await jetstreamManager(cs[0]!);
      const names: string[] = [];
      for await (const n of jsm.streams.names()) names.push(n);
      expect(names.sort()).to.deep.equal(["FLEET_EVENTS", "KV_desired-state", "KV_device-heartbeat", "KV_device-info", "KV_device-keys", "KV_device-state"]);
      expect((await jsm.streams.info("KV_desired-state")).config.max_msgs_per_subject).to.equal(5);
      const rollups: Record<string, boolean | undefined> = {};
      for (const n of names) rollups[n] = (await jsm.streams.info(n)).config.allow_rollup_hdrs;
      // The operator's buckets keep them (kv.purge); devices can't write those.
      expect(rollups).to.deep.equal({ FLEET_EVENTS: false, "KV_desired-state": true, "KV_device-heartbeat": false, "KV_device-info": false, "KV_device-keys": true, "KV_device-state": false });
      await Promise.all(cs.map((c) => c.close()));
    } finally {
      await srv.destroy();
    }
  });

  it("publishes events in order with contiguous n, without msg ids; reads them back from the stream", async () => {
    const { device, dir } = setup();
    const journal = EventJournal.open(dir, device);
    await journal.append("web", tr(1));
    const { p } = publisher(journal);
    for (let i = 2; i <= 6; i++) void journal.append("web", tr(i));
    await journal.append("db", tr(7));
    await journal.settled();
    await p.idle();
    expect(p.state("web")).to.include({ published: 6, paused: false });
    const js = jetstream(nc);
    const web = await readStreamEvents(js, device, "web");
    expect(web.map((e) => e.n)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(web).to.deep.equal(journal.read("web"));
    expect((await readStreamEvents(js, device, "db")).map((e) => e.n)).to.deep.equal([1]);
    expect(await readStreamEvents(js, device, "none")).to.deep.equal([]);
    const jsm = await jetstreamManager(nc);
    const last = await jsm.streams.getMessage(STREAM_FLEET_EVENTS, { last_by_subj: eventSubject(device, "web") });
    // Keyed by the subject's sequence, not by a stream-wide msg id another device could squat.
    expect(last!.header?.get("Nats-Msg-Id") ?? "").to.equal("");
  });

  it("a republish on the sequence it was first published on is refused, and a restarted publisher skips what the stream has", async () => {
    const { device, dir } = setup();
    const journal = EventJournal.open(dir, device);
    for (let i = 1; i <= 3; i++) await journal.append("web", tr(i));
    const first = publisher(journal);
    await first.p.idle();
    await first.p.stop();
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(STREAM_FLEET_EVENTS, { subjects_filter: eventSubject(device, "web") });
    const [one] = await readStreamSeqs(device, "web");
    // Event 2 again, on the condition it was published on (the subject ending at event 1): refused.
    const again = await js.publish(eventSubject(device, "web"), JSON.stringify(JournalEvent.encode(journal.read("web")[1]!)), { expect: { lastSubjectSequence: one! } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(again).to.be.instanceOf(JetStreamApiError);
    expect((again as JetStreamApiError).code).to.equal(WRONG_LAST_SEQUENCE);

    const reopened = EventJournal.open(dir, device);
    const second = publisher(reopened);
    await second.p.idle();
    await reopened.append("web", tr(4));
    await second.p.idle();
    expect((await readStreamEvents(js, device, "web")).map((e) => e.n)).to.deep.equal([1, 2, 3, 4]);
    expect(info.state.subjects?.[eventSubject(device, "web")]).to.equal(3);
    expect(second.records.filter((r) => (r["level"] as number) >= 50)).to.deep.equal([]);
  });

  /**
   * `nc` as the publisher sees it when the acknowledgement of its `lose`-th publish never arrives:
   * "before" the publish reaches the server (and is stored) before the client gives up on it;
   * "after" it is stored only once the publisher has re-read the subject, just before its retry.
   */
  const losingAck = (lose: number, when: "before" | "after") => {
    let publishes = 0;
    let late: (() => Promise<unknown>) | null = null;
    type Rest = Parameters<NatsConnection["request"]> extends [string, ...infer R] ? R : never;
    return new Proxy(nc, {
      get(target, prop, receiver) {
        if (prop !== "request") return Reflect.get(target, prop, receiver) as unknown;
        return async (subject: string, ...rest: Rest) => {
          if (subject.startsWith("fleet.events.") && ++publishes === lose) {
            if (when === "before") await target.request(subject, ...rest);
            else late = () => target.request(subject, ...rest);
            throw new errors.TimeoutError();
          }
          const answer = await target.request(subject, ...rest);
          if (late && subject.includes(".DIRECT.GET.")) {
            const send = late;
            late = null;
            await send();
          }
          return answer;
        };
      },
    });
  };

  for (const when of ["before", "after"] as const) {
    it(`an acknowledgement lost, the event stored ${when} the publisher re-reads the subject: its own event is found, and is in the stream once`, async () => {
      const { device, dir } = setup();
      const journal = EventJournal.open(dir, device);
      const { p, records } = publisher(journal, losingAck(2, when));
      for (let i = 1; i <= 4; i++) await journal.append("web", tr(i));
      await p.idle(20_000);
      const events = await readStreamEvents(jetstream(nc), device, "web");
      expect(events.map((e) => e.n)).to.deep.equal([1, 2, 3, 4]);
      expect(events).to.deep.equal(journal.read("web"));
      expect(records.filter((r) => r["msg"] === "journal publish failed; will retry")).to.have.length(1);
      // Stored after the re-read, the retry's condition (the subject ending at event 1) no longer holds.
      const found = records.filter((r) => /already in the stream/.test(String(r["msg"])));
      expect(found.map((r) => [r["n"], r["retryRefused"]])).to.deep.equal([[2, when === "after"]]);
      expect(records.filter((r) => (r["level"] as number) >= 50)).to.deep.equal([]);
    });
  }

  it("a second writer on the subject: loud error with both sequences, publication pauses, no fork", async () => {
    const { device, dir } = setup();
    const journal = EventJournal.open(dir, device);
    await journal.append("web", tr(1));
    await journal.append("web", tr(2));
    const { p, records } = publisher(journal);
    await p.idle();
    const seqBefore = p.state("web").lastSeq;

    // Another writer publishes n=3 (its own content, its own msg id) behind this publisher's back.
    const js = jetstream(nc);
    const foreign = { v: 1, device, deployment: "web", n: 3, at: "2026-02-02T00:00:00.000Z", event: { type: "FOREIGN" }, from: "pending", to: "failed" };
    const fack = await js.publish(eventSubject(device, "web"), JSON.stringify(foreign));

    await journal.append("web", tr(3));
    await journal.append("web", tr(4));
    await p.idle();
    const conflict = await waitFor("the conflict log", () => records.find((r) => /JOURNAL CONFLICT/.test(String(r["msg"]))));
    expect(conflict).to.include({ level: 50, deployment: "web", n: 3, expectedLastSeq: seqBefore, actualLastSeq: fack.seq });
    expect(records.some((r) => r["level"] === 50 && /diverged/.test(String(r["msg"])) && r["n"] === 3)).to.equal(true);

    // The stream keeps one n=3 (the other writer's); ours follows it; n stays contiguous.
    const events = await readStreamEvents(js, device, "web");
    expect(events.map((e) => e.n)).to.deep.equal([1, 2, 3, 4]);
    expect(events[2]!.event.type).to.equal("FOREIGN");
    expect(events[3]!.event).to.include({ type: "desired.deleted", at: 4 });
  });

  it("a foreign message that is no event of this deployment keeps publication paused", async () => {
    const { device, dir } = setup();
    const journal = EventJournal.open(dir, device);
    await journal.append("web", tr(1));
    const { p, records } = publisher(journal);
    await p.idle();
    const js = jetstream(nc);
    const bad = await js.publish(eventSubject(device, "web"), "not an event");
    await journal.append("web", tr(2));
    await waitFor("pause", () => p.state("web").paused);
    await new Promise((r) => setTimeout(r, 600));
    expect(p.state("web")).to.include({ paused: true, published: 1 });
    expect(records.some((r) => r["level"] === 50 && /JOURNAL CONFLICT/.test(String(r["msg"])))).to.equal(true);
    expect(records.some((r) => r["level"] === 50 && /not one of this deployment's events/.test(String(r["msg"])))).to.equal(true);
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(STREAM_FLEET_EVENTS, { subjects_filter: eventSubject(device, "web") });
    expect(info.state.subjects?.[eventSubject(device, "web")]).to.equal(2);

    expect(bad.seq).to.be.greaterThan(p.state("web").lastSeq);

  });

  it("queues events while NATS is stopped and publishes them in order after it restarts", async function () {
    this.timeout(90_000);
    const { device, dir } = setup();
    const srv = await PrivateNats.start();
    stops.push(() => srv.destroy());
    const mem = memoryLogger("debug");
    const agentNc = await connectAgent({ servers: [srv.url], device, logger: mem.logger, options: { reconnectTimeWait: 250 } });
    stops.push(() => agentNc.close());
    await ensureFleetResources(agentNc);
    const journal = EventJournal.open(dir, device);
    const { p } = publisher(journal, agentNc);
    for (let i = 1; i <= 3; i++) await journal.append("web", tr(i));
    await p.idle();

    await srv.stop();
    for (let i = 4; i <= 10; i++) {
      await journal.append("web", tr(i));
      await new Promise((r) => setTimeout(r, 600));
    }
    await journal.append("db", tr(11));
    expect(p.state("web").published).to.equal(3);
    await srv.start();
    await p.idle(40_000);

    const check = await connectTest(srv.url);
    try {
      const js = jetstream(check);
      const web = await readStreamEvents(js, device, "web");
      expect(web.map((e) => e.n)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(web).to.deep.equal(journal.read("web"));
      expect((await readStreamEvents(js, device, "db")).map((e) => e.n)).to.deep.equal([1]);
      const jsm = await jetstreamManager(check);
      const info = await jsm.streams.info(STREAM_FLEET_EVENTS, { subjects_filter: "fleet.events.>" });
      expect(info.state.subjects).to.deep.equal({ [eventSubject(device, "web")]: 10, [eventSubject(device, "db")]: 1 });
    } finally {
      await check.close();
    }
    expect(mem.records.some((r) => r["msg"] === "NATS disconnected")).to.equal(true);
    expect(mem.records.some((r) => r["msg"] === "NATS reconnected")).to.equal(true);
  });

  it("boots offline: appends and a publisher made before the first connection publish once NATS appears", async function () {
    this.timeout(60_000);
    const { device, dir } = setup();
    const srv = await PrivateNats.createStopped();
    stops.push(() => srv.destroy());
    const mem = memoryLogger("debug");
    const ncPromise = connectAgent({ servers: [srv.url], device, logger: mem.logger, options: { reconnectTimeWait: 250 } });
    stops.push(async () => (await ncPromise).close());
    const journal = EventJournal.open(dir, device);
    const { p } = publisher(journal, ncPromise);
    for (let i = 1; i <= 3; i++) await journal.append("web", tr(i));
    await new Promise((r) => setTimeout(r, 1000));
    expect(p.state("web").published).to.equal(0);
    await srv.start();
    await ensureFleetResources(await ncPromise);
    await p.idle(20_000);
    expect((await readStreamEvents(jetstream(await ncPromise), device, "web")).map((e) => e.n)).to.deep.equal([1, 2, 3]);
  });
});
