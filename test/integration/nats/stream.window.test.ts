// The dashboard's windowed read of one deployment's journal from FLEET_EVENTS, on the shared server,
// with another deployment's events interleaved so the subject's sequences are not dense.
import { expect } from "chai";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { JournalWindowReader } from "../../../fleet/stream.window.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { eventSubject, STREAM_FLEET_EVENTS } from "../../../contracts/wire-names.js";
import { cleanupDevice, connectTest, uniqueDevice } from "../../support/nats.js";

describe("journal window reader (shared NATS)", function () {
  this.timeout(60_000);
  let nc: NatsConnection;
  const device = uniqueDevice();
  const subject = eventSubject(device, "app");

  before(async () => {
    nc = await connectTest();
    await ensureFleetResources(nc);
    const js = jetstream(nc);
    // 300 events of app, with 1–3 events of another deployment between each.
    for (let n = 1; n <= 300; n++) {
      const e = { v: 1, device, deployment: "app", n, at: new Date(Date.UTC(2026, 11, 1, 0, 0, n)).toISOString(), event: { type: "UPDATE", revision: n }, from: "running", to: "pending" };
      await js.publish(subject, JSON.stringify(e));
      for (let k = 0; k < 1 + (n % 3); k++) {
        const o = { ...e, deployment: "other", n: n * 3 + k };
        await js.publish(eventSubject(device, "other"), JSON.stringify(o));
      }
    }
  });
  after(async () => {
    await cleanupDevice(nc, device);
    await nc.close();
  });

  it("knows the subject's first and last event, and nothing for an empty subject", async () => {
    const r = (await JournalWindowReader.open(jetstream(nc), subject))!;
    expect(r.first.event.n).to.equal(1);
    expect(r.last.event.n).to.equal(300);
    expect(r.last.seq - r.first.seq).to.be.greaterThan(299 * 2);
    expect(await JournalWindowReader.open(jetstream(nc), eventSubject(device, "nothing"))).to.equal(null);
  });

  it("finds the sequence of any event by its number, and reads exactly a range of numbers", async () => {
    const r = (await JournalWindowReader.open(jetstream(nc), subject))!;
    for (const n of [1, 2, 3, 77, 150, 151, 298, 299, 300]) {
      const gets = r.gets;
      const seq = await r.seqOf(n);
      expect(r.gets - gets, `direct gets to find n=${n}`).to.be.at.most(12);
      expect((await r.at(seq))!.event.n, `n=${n}`).to.equal(n);
      expect((await r.at(seq))!.seq).to.equal(seq);
    }
    expect(await r.seqOf(301)).to.equal(r.last.seq + 1);
    const page = await r.readNumbers(201, 300);
    expect(page.map((e) => e.event.n)).to.deep.equal(Array.from({ length: 100 }, (_, i) => 201 + i));
    expect(page.every((e) => e.event.deployment === "app")).to.equal(true);
    const older = await r.readNumbers(101, 200);
    expect(older.map((e) => e.event.n)).to.deep.equal(Array.from({ length: 100 }, (_, i) => 101 + i));
  });

  it("after the stream dropped the oldest events, reads from the first one it keeps", async () => {
    const jsm = await jetstreamManager(nc);
    const r0 = (await JournalWindowReader.open(jetstream(nc), subject))!;
    await jsm.streams.purge(STREAM_FLEET_EVENTS, { filter: subject, seq: await r0.seqOf(51) });
    const r = (await JournalWindowReader.open(jetstream(nc), subject))!;
    expect(r.first.event.n).to.equal(51);
    expect(await r.seqOf(10)).to.equal(r.first.seq);
    expect((await r.readNumbers(41, 60)).map((e) => e.event.n)).to.deep.equal(Array.from({ length: 10 }, (_, i) => 51 + i));
  });
});
