// The visualiser's pages of a long journal, read from the stream on the shared server: newest first,
// older by number, the score before a page found further back, the newest page anchored on the
// agent's report.
import { expect } from "chai";
import { jetstream } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import type { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { JournalEvent } from "../../../contracts/journal-event.codec.js";
import { newUserKey, signingKeyFromText } from "../../../contracts/nkey.js";
import { HEADER_SIG, HEADER_SIGNED_BY, signReport } from "../../../contracts/report-signature.js";
import { eventSubject } from "../../../contracts/wire-names.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { journalPage } from "../../../inspector/journal.pages.js";
import { cleanupDevice, connectTest, uniqueDevice } from "../../support/nats.js";

const score = (image: string) => ({ services: [{ name: "web", image }, { name: "db", image: "img/db:1" }], lifecycle: { grace_period_secs: 1 } });
const hash = (c: string) => `sha256:${c.repeat(64)}`;
const ID = { web1: "1".repeat(64), web2: "2".repeat(64), db: "d".repeat(64) };

/** n=1..4 deploy img/web:1; then liveness repairs of web (service.exited, start.done) up to 249; n=250 upgrades to img/web:2; repairs again to 300. */
function event(device: string, n: number) {
  const base = { v: 1, device, deployment: "app", n, at: new Date(Date.UTC(2026, 11, 1, 0, 0, 0, n)).toISOString() };
  const at = n;
  if (n === 1) return { ...base, event: { type: "UPDATE", score: score("img/web:1"), hash: hash("a"), revision: 1, at }, from: "pending", to: "pulling" };
  if (n === 250) return { ...base, event: { type: "UPDATE", score: score("img/web:2"), hash: hash("b"), revision: 2, at }, from: "running", to: "pulling" };
  if (n === 2 || n === 251) return { ...base, event: { type: "xstate.done.actor.pull", output: { at } }, from: "pulling", to: "stoppingOld" };
  if (n === 252) return { ...base, event: { type: "xstate.done.actor.stopOld", output: { stopped: ["web"], at } }, from: "stoppingOld", to: "startingNew" };
  if (n === 3) return { ...base, event: { type: "xstate.done.actor.stopOld", output: { stopped: [], at } }, from: "stoppingOld", to: "startingNew" };
  if (n === 4) return { ...base, event: { type: "xstate.done.actor.startNew", output: { started: { web: ID.web1, db: ID.db }, at } }, from: "startingNew", to: "running" };
  if (n === 253) return { ...base, event: { type: "xstate.done.actor.startNew", output: { started: { web: ID.web2 }, at } }, from: "startingNew", to: "running" };
  // A repair: the tick saw web exited (odd n), start.done started it again (even n); one id per image keeps the checks short.
  if (n % 2 === 1) return { ...base, event: { type: "TICK", containers: [{ id: "x", service: "web", state: "exited" }], at }, from: "running", to: "startingNew" };
  return { ...base, event: { type: "xstate.done.actor.startNew", output: { started: { web: n < 250 ? ID.web1 : ID.web2 }, at } }, from: "startingNew", to: "running" };
}

describe("visualiser pages of a long journal (shared NATS)", function () {
  this.timeout(60_000);
  let nc: NatsConnection;
  const device = uniqueDevice();
  const state = (): DeploymentState => ({
    device, deployment: "app", phase: "Running", state: "running", score_hash: hash("b"), desired_revision: 2,
    container_ids: { web: ID.web2, db: ID.db }, last_error: null, last_event_seq: 300, last_event_at: event(device, 300).at,
  });

  before(async () => {
    nc = await connectTest();
    await ensureFleetResources(nc);
    const js = jetstream(nc);
    for (let n = 1; n <= 300; n++) await js.publish(eventSubject(device, "app"), JSON.stringify(event(device, n)));
  });
  after(async () => {
    await cleanupDevice(nc, device);
    await nc.close();
  });

  it("the newest page: the last 100 events, anchored on the agent's report, with the change its update made", async () => {
    const p = await journalPage(jetstream(nc), device, "app", { state: state() });
    expect([p.first_n, p.last_n, p.oldest_n, p.newest_n, p.has_older, p.has_newer, p.from_origin, p.anchored]).to.deep.equal([201, 300, 1, 300, true, false, false, true]);
    expect(p.steps).to.have.length(100);
    expect(p.steps.at(-1)!.container_ids).to.deep.equal({ db: ID.db, web: ID.web2 });
    // db was never changed on this page: the report's id holds at every step, even the first.
    expect(p.steps[0]!.container_ids["db"]).to.equal(ID.db);
    const upgrade = p.steps.find((s) => s.n === 250)!;
    expect(upgrade.name).to.equal("desired.updated");
    // The score before it is 249 events back: found beyond the page's margin.
    expect(upgrade.changes).to.deep.equal([
      { service: "web", action: "replace", details: ["image img/web:1 → img/web:2"] },
      { service: "db", action: "unchanged", details: [] },
    ]);
    expect(p.steps.find((s) => s.n === 251)!.name).to.equal("pull.done");
    expect(p.steps.find((s) => s.n === 201)!.name).to.equal("liveness.repair");
  });

  it("an older page by number, not anchored, its last step's stay ending at the next event", async () => {
    const p = await journalPage(jetstream(nc), device, "app", { before: 201, state: state() });
    expect([p.first_n, p.last_n, p.has_older, p.has_newer, p.anchored]).to.deep.equal([101, 200, true, true, false]);
    expect(p.steps.map((s) => s.n)).to.deep.equal(Array.from({ length: 100 }, (_, i) => 101 + i));
    expect(p.steps.at(-1)!.spent_ms).to.equal(1);
    // Its first event is a tick: web's container is re-established by the start.done after it.
    expect(p.steps[0]!.containers_partial).to.equal(true);
    expect(p.steps[1]!.container_ids).to.deep.equal({ web: ID.web1 });
  });

  it("the first page starts at the origin: every step's containers are exact", async () => {
    const p = await journalPage(jetstream(nc), device, "app", { before: 101, state: null });
    expect([p.first_n, p.last_n, p.from_origin, p.has_older]).to.deep.equal([1, 100, true, false]);
    expect(p.steps[2]!.container_ids).to.deep.equal({});
    expect(p.steps[3]!.container_ids).to.deep.equal({ db: ID.db, web: ID.web1 });
    expect(p.steps.every((s) => !s.containers_partial && s.unknown_services.length === 0)).to.equal(true);
    expect(p.steps[0]!.changes!.map((c) => c.action)).to.deep.equal(["add", "add"]);
  });

  it("checks each event's signature against the device's key: signed ones verified, an unsigned or altered one forged", async () => {
    const pair = newUserKey();
    const k = signingKeyFromText(pair.seed);
    if (!k.ok) throw new Error(k.error);
    const js = jetstream(nc);
    for (let n = 1; n <= 5; n++) {
      const e = { ...event(device, n), deployment: "signed" };
      const decoded = JournalEvent.decode(e);
      if (decoded._tag === "Left") throw new Error("test event does not decode");
      const sig = signReport("event", JournalEvent.encode(decoded.right), k.key);
      const h = headers();
      h.set(HEADER_SIGNED_BY, sig.by);
      h.set(HEADER_SIG, sig.sig);
      // n=4 goes unsigned; n=5 is published with a signature of other content.
      const body = n === 5 ? { ...e, to: "failed" } : e;
      await js.publish(eventSubject(device, "signed"), JSON.stringify(body), n === 4 ? {} : { headers: h });
    }
    const p = await journalPage(js, device, "signed", { state: null, deviceKey: pair.publicKey });
    expect(p.steps.map((s) => s.signature)).to.deep.equal(["verified", "verified", "verified", "forged", "forged"]);
    expect(p.signatures).to.deep.equal({ verified: 3, unverified: 0, forged: [{ n: 4, why: "unsigned" }, { n: 5, why: "the signature does not match the content" }] });
    const none = await journalPage(js, device, "signed", { state: null });
    expect(none.signatures.unverified).to.equal(5);
  });

  it("a deployment with no events is an empty page", async () => {
    const p = await journalPage(jetstream(nc), device, "nothing", { state: null });
    expect([p.steps.length, p.newest_n]).to.deep.equal([0, null]);
  });
});
