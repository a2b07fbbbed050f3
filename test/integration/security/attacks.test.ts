// Issue 12's attacks, each tried by device A with exactly its seed against a server configured as
// fleetctl prints it, and each judged by its effect: what the operator sees in the buckets and the
// stream, and what device B's running agent did (never a deployment or an image of A's choosing).
// Before judging that something did not happen, every test waits for a signal that comes after it:
// A's own request on the same path answered (JetStream processes one stream's messages in order),
// then an operator's put for B (a probe deployment) that B's agent reports Running, so B's watch
// has delivered every revision written before it.
import { expect } from "chai";
import { jetstream, jetstreamManager, AckPolicy, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { createInbox, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { readStreamEvents } from "../../../fleet/stream.reader.js";
import { deviceInboxPrefix } from "../../../fleet/device.permissions.js";
import { BUCKET_DEVICE_STATE, COMMAND_SUBJECTS, commandSubject, deploymentKey, deviceCommandSubjects, eventSubject, STREAM_FLEET_EVENTS } from "../../../contracts/wire-names.js";
import { DeviceCommands } from "../../../fleet/device.commands.js";
import { waitFor } from "../../support/nats.js";
import { SecuredFleet } from "./secured-fleet.js";

const A = "dev-a";
const B = "dev-b";
const score = (image: string, name = "web") => JSON.stringify({ type: "PodmanV0", data: { services: [{ name, image }], lifecycle: { grace_period_secs: 1 } } });
/** What A would like some agent to run: a valid score of its own choosing. */
const EVIL_IMAGE = "localhost/evil:1";
const EVIL = score(EVIL_IMAGE, "evil");
/** The only images the operator ever gives B. */
const B_IMAGES = new Set(["img/b:1", "img/b:2", "img/b-probe:1"]);

describe("security: issue 12's attacks through what a device is allowed, on a server configured as fleetctl prints it", function () {
  this.timeout(120_000);
  let fleet: SecuredFleet;
  let jsmOp: JetStreamManager;
  let probes = 0;

  before(async () => {
    fleet = await SecuredFleet.start([A, B]);
    jsmOp = await jetstreamManager(fleet.op);
    await fleet.desired.put(deploymentKey(A, "app"), score("img/a:1"));
    await fleet.desired.put(deploymentKey(B, "app"), score("img/b:1"));
    await fleet.startAgent(A);
    await fleet.startAgent(B);
    await fleet.waitState(A, "app", (s) => s.phase === "Running", "A's app Running");
    await fleet.waitState(B, "app", (s) => s.phase === "Running", "B's app Running");
    await fleet.device(B).agent!.publisher.idle(10_000);
  });
  after(async () => {
    await fleet?.stop();
  });
  afterEach(() => {
    expect(fleet.server.panicked, fleet.server.log.slice(-3000)).to.equal(false);
  });

  /** A raw connection as A, closed at the end of `f`. */
  const asA = async <T>(f: (nc: NatsConnection) => Promise<T>): Promise<T> => {
    const nc = await fleet.connectAs(A);
    try {
      return await f(nc);
    } finally {
      await nc.close();
    }
  };

  /** Desired-state keys and revisions as the operator sees them (probes left out). */
  const desiredView = async () => {
    const out: Record<string, number> = {};
    for await (const k of await fleet.desired.keys()) {
      if (/\.probe\d+$/.test(k)) continue;
      const e = await fleet.desired.get(k);
      if (e && e.operation === "PUT") out[k] = e.revision;
    }
    return out;
  };
  /** Every entry of a bucket or stream subject as the operator sees it: subject → count. */
  const subjects = async (stream: string) => (await jsmOp.streams.info(stream, { subjects_filter: ">" })).state.subjects ?? {};

  /** The signal: an operator's put for B that B's agent reports Running (see the top of the file). */
  const bCaughtUp = async () => {
    const probe = `probe${++probes}`;
    await fleet.desired.put(deploymentKey(B, probe), score("img/b-probe:1"));
    await fleet.waitState(B, probe, (s) => s.phase === "Running", `B's ${probe} Running`);
  };

  /** B's agent ran nothing but the operator's scores, and A's agent nothing but A's. */
  const nothingRanOfAs = () => {
    const b = fleet.device(B).runtime.calls;
    for (const c of b.filter((x) => x.op === "ensureImage")) expect(B_IMAGES.has(c.arg), `B pulled ${c.arg}`).to.equal(true);
    for (const c of b.filter((x) => x.op === "startService")) expect(c.arg, "B started").to.match(/^(app|probe\d+)\.web$/);
    const a = fleet.device(A).runtime.calls;
    for (const c of a.filter((x) => x.op === "ensureImage")) expect(c.arg, "A pulled").to.equal("img/a:1");
    expect(fleet.device(B).agent!.supervisor.phases()).to.not.have.property("evil");
  };

  /** A's last event, published by A on its own subject: a score A chose. */
  const baitEvent = async (nc: NatsConnection, subject = eventSubject(A, "bait")) => {
    const jsmA = await jetstream(nc).jetstreamManager(false);
    const last = await jsmA.direct.getMessage(STREAM_FLEET_EVENTS, { last_by_subj: subject }).catch(() => null);
    await jetstream(nc).publish(subject, EVIL, { expect: { lastSubjectSequence: last?.seq ?? 0 } });
  };

  it("reply-subject injection through a direct get: the answer carrying A's score goes back to A's account, not into B's or A's desired state", async () => {
    const before = await desiredView();
    await asA(async (nc) => {
      await baitEvent(nc);
      const get = `$JS.API.DIRECT.GET.${STREAM_FLEET_EVENTS}.${eventSubject(A, "bait")}`;
      for (const reply of [`$KV.desired-state.${B}.evil`, `$KV.desired-state.${B}.app`, `$KV.desired-state.${A}.evil`, `$KV.desired-state.${A}.app`]) nc.publish(get, "", { reply });
      // The same request with A's own reply subject: once answered, the ones before it were too.
      const answer = await nc.request(get, "", { timeout: 5000 });
      expect(answer.string()).to.equal(EVIL);
    });
    await bCaughtUp();
    expect(await desiredView()).to.deep.equal(before);
    nothingRanOfAs();
  });

  it("reply-subject injection through a KV put and an event publish (and a trace destination): the acknowledgements go back to A's account, no desired key appears", async () => {
    const before = await desiredView();
    await asA(async (nc) => {
      const replies = [`$KV.desired-state.${B}.evil`, `$KV.desired-state.${A}.evil`, `$KV.desired-state.${B}.app`, `fleet.events.${B}.app`, `$KV.device-state.${B}.app`, "$JS.API.STREAM.PURGE.KV_desired-state"];
      for (const reply of replies) {
        nc.publish(`$KV.${BUCKET_DEVICE_STATE}.${A}.scratch`, EVIL, { reply });
        nc.publish(eventSubject(A, "scratch"), EVIL, { reply });
        // Message tracing (2.11+) sends its report to the subject this header names.
        const h = headers();
        h.set("Nats-Trace-Dest", reply);
        nc.publish(`$KV.${BUCKET_DEVICE_STATE}.${A}.scratch`, EVIL, { headers: h });
      }
      // The same publishes answered to A itself: the ones before them were stored and answered first.
      await new Kvm(nc).open(BUCKET_DEVICE_STATE).then((kv) => kv.put(`${A}.scratch`, "{}"));
      await jetstream(nc).publish(eventSubject(A, "scratch"), "{}");
    });
    await bCaughtUp();
    expect(await desiredView()).to.deep.equal(before);
    const states = await subjects(`KV_${BUCKET_DEVICE_STATE}`);
    expect(Object.keys(states).filter((k) => k.startsWith(`$KV.${BUCKET_DEVICE_STATE}.${B}.`) && !/probe/.test(k))).to.deep.equal([`$KV.${BUCKET_DEVICE_STATE}.${B}.app`]);
    expect(states[`$KV.${BUCKET_DEVICE_STATE}.${B}.scratch`]).to.equal(undefined);
    nothingRanOfAs();
  });

  for (const [what, subject] of [
    ["its own device-state key", `$KV.${BUCKET_DEVICE_STATE}.${A}.app`],
    ["its own heartbeat key", `$KV.device-heartbeat.${A}`],
    ["its own journal subject", eventSubject(A, "rollup")],
  ] as const) {
    it(`Nats-Rollup: all on ${what} is refused; every device's entries stay`, async () => {
      const bState = (await fleet.states.get(deploymentKey(B, "app")))!;
      const bBeat = await fleet.heartbeats.get(B);
      const bEvents = (await subjects(STREAM_FLEET_EVENTS))[eventSubject(B, "app")];
      const refusals = await asA(async (nc) => {
        const out: string[] = [];
        for (const rollup of ["all", "sub"]) {
          const h = headers();
          h.set("Nats-Rollup", rollup);
          out.push(await jetstream(nc).publish(subject, "{}", { headers: h }).then((a) => `accepted at ${a.seq}`, (e: Error) => e.message));
        }
        return out;
      });
      expect(refusals).to.deep.equal(["rollup not permitted", "rollup not permitted"]);
      const after = (await fleet.states.get(deploymentKey(B, "app")))!;
      expect([after.revision, after.string()]).to.deep.equal([bState.revision, bState.string()]);
      expect(bBeat, "B's heartbeat").to.not.equal(null);
      expect((await fleet.heartbeats.get(B))?.revision).to.equal(bBeat!.revision);
      expect((await subjects(STREAM_FLEET_EVENTS))[eventSubject(B, "app")]).to.equal(bEvents);
    });
  }

  it("message-id squatting: A publishes B's next msg ids on its own subject; B's next events still land, its journal in the stream stays whole", async () => {
    const b = fleet.device(B).agent!;
    const next = b.journal.lastN("app") + 1;
    await asA(async (nc) => {
      const js = jetstream(nc);
      // The ids the old scheme gave B's next events, and any id at all: inside the duplicate window.
      for (let n = next; n < next + 10; n++) await js.publish(eventSubject(A, "squat"), "{}", { msgID: `${B}.app.${n}` });
    });
    await fleet.desired.put(deploymentKey(B, "app"), score("img/b:2"));
    const v2 = await fleet.waitState(B, "app", (s) => s.phase === "Running" && s.last_event_seq >= next, "B's app upgraded");
    await b.publisher.idle(10_000);
    const events = await readStreamEvents(jetstream(fleet.op), B, "app");
    expect(events.map((e) => e.n)).to.deep.equal(Array.from({ length: v2.last_event_seq }, (_, i) => i + 1));
    expect(events).to.deep.equal(b.journal.read("app"));
    expect(b.publisher.state("app")).to.include({ published: v2.last_event_seq, paused: false });
  });

  it("a consumer whose delivery subject is another stream's subject or the JetStream API: refused as a cycle, or delivered nowhere", async () => {
    const before = await desiredView();
    const bState = (await fleet.states.get(deploymentKey(B, "app")))!;
    const bEvents = (await subjects(STREAM_FLEET_EVENTS))[eventSubject(B, "app")];
    const outcomes: Record<string, string> = {};
    await asA(async (nc) => {
      await baitEvent(nc);
      const jsm = await jetstream(nc).jetstreamManager(false);
      const targets = [`$KV.desired-state.${B}.evil`, `$KV.desired-state.${A}.evil`, `$KV.${BUCKET_DEVICE_STATE}.${B}.app`, eventSubject(B, "app"), "$JS.API.STREAM.PURGE.KV_desired-state", `$JS.API.STREAM.PURGE.${STREAM_FLEET_EVENTS}`, `${deviceInboxPrefix(B)}.x`, "_INBOX.x"];
      const filters = { [STREAM_FLEET_EVENTS]: eventSubject(A, "bait"), "KV_desired-state": `$KV.desired-state.${A}.>` };
      let i = 0;
      for (const [stream, filter] of Object.entries(filters)) {
        for (const deliver of targets) {
          outcomes[`${stream} → ${deliver}`] = await jsm.consumers
            .add(stream, { name: `evil${i++}`, filter_subject: filter, deliver_subject: deliver, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All })
            .then(() => "created", (e: Error) => e.message);
        }
        // The same consumer delivering to A's own inbox: once A has its message, the ones above had theirs to deliver.
        const inbox = createInbox(deviceInboxPrefix(A));
        const got = new Promise<Msg>((resolve) => nc.subscribe(inbox, { max: 1, callback: (_e, m) => resolve(m) }));
        await nc.flush();
        await jsm.consumers.add(stream, { name: `control${i++}`, filter_subject: filter, deliver_subject: inbox, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All });
        expect((await got).subject.startsWith(stream === STREAM_FLEET_EVENTS ? "fleet.events." : "$KV.desired-state.")).to.equal(true);
      }
    });
    // Into the consumer's own stream: the server refuses it.
    expect(outcomes[`${STREAM_FLEET_EVENTS} → ${eventSubject(B, "app")}`]).to.match(/cycle/);
    expect(outcomes[`KV_desired-state → $KV.desired-state.${B}.evil`]).to.match(/cycle/);
    expect(outcomes[`KV_desired-state → $KV.desired-state.${A}.evil`]).to.match(/cycle/);
    await bCaughtUp();
    // Anywhere else: that stream's account holds nothing else, so nothing was written or purged.
    expect(await desiredView()).to.deep.equal(before);
    const after = (await fleet.states.get(deploymentKey(B, "app")))!;
    expect([after.revision, after.string()]).to.deep.equal([bState.revision, bState.string()]);
    expect((await subjects(STREAM_FLEET_EVENTS))[eventSubject(B, "app")]).to.equal(bEvents);
    nothingRanOfAs();
  });

  it("filter tricks on consumer creation: another device's keys, everything, no filter, filter lists: refused or filtered to A's own keys", async () => {
    const received: string[] = [];
    const answers: Record<string, string> = {};
    await asA(async (nc) => {
      const inbox = createInbox(deviceInboxPrefix(A));
      nc.subscribe(inbox, { callback: (_e, m) => void (m.data.length > 0 && received.push(m.subject)) });
      const create = (name: string, filterInSubject: string, config: Record<string, unknown>) =>
        nc
          .request(`$JS.API.CONSUMER.CREATE.KV_desired-state.${name}.${filterInSubject}`, JSON.stringify({ stream_name: "KV_desired-state", config: { name, deliver_subject: inbox, ack_policy: "none", deliver_policy: "all", ...config } }), { timeout: 5000 })
          .then((m) => JSON.parse(m.string()) as { error?: { description: string } }, (e: Error) => ({ error: { description: e.message } }));
      const own = `$KV.desired-state.${A}.>`;
      const bodies: Record<string, Record<string, unknown>> = {
        "B's keys": { filter_subject: `$KV.desired-state.${B}.>` },
        everything: { filter_subject: ">" },
        "no filter": {},
        "a filter list of B's keys": { filter_subjects: [`$KV.desired-state.${B}.>`] },
        "A's filter plus a list of B's keys": { filter_subject: own, filter_subjects: [`$KV.desired-state.${B}.>`] },
      };
      let i = 0;
      for (const [what, config] of Object.entries(bodies)) answers[what] = (await create(`trick${i++}`, own, config)).error?.description ?? "created";
      // The request subject itself naming B's keys, or no filter at all: A has no import for those.
      answers["B's keys in the subject"] = (await create(`trick${i++}`, `$KV.desired-state.${B}.>`, { filter_subject: `$KV.desired-state.${B}.>` })).error?.description ?? "created";
      for (const subject of ["$JS.API.CONSUMER.CREATE.KV_desired-state", "$JS.API.CONSUMER.DURABLE.CREATE.KV_desired-state.d1"]) {
        answers[subject] = await nc.request(subject, JSON.stringify({ stream_name: "KV_desired-state", config: { durable_name: "d1", deliver_subject: inbox } }), { timeout: 5000 }).then(() => "answered", (e: Error) => e.message);
      }
      // A's own filter, as the agent's watch makes it: the signal that deliveries have arrived.
      expect((await create(`control${i++}`, own, { filter_subject: own })).error).to.equal(undefined);
      await waitFor("the control consumer's delivery", () => received.length > 0);
      await nc.flush();
    });
    expect(answers["B's keys"]).to.match(/did not match filtered subject/);
    expect(answers["everything"]).to.match(/did not match filtered subject/);
    expect(answers["no filter"]).to.match(/did not match filtered subject/);
    // 2.9 ignores filter_subjects (the consumer filters A's keys); 2.10 and later refuse the list.
    expect(answers["a filter list of B's keys"]).to.match(/did not match filtered subject|multiple subject filters/);
    expect(answers["A's filter plus a list of B's keys"]).to.match(/^created$|multiple subject filters/);
    for (const k of ["B's keys in the subject", "$JS.API.CONSUMER.CREATE.KV_desired-state", "$JS.API.CONSUMER.DURABLE.CREATE.KV_desired-state.d1"]) expect(answers[k], k).to.match(/no responders|503/);
    expect(received.length).to.be.greaterThan(0);
    // A push delivery carries the stored message's subject: every one is one of A's keys.
    for (const s of received) expect(s).to.match(new RegExp(`^\\$KV\\.desired-state\\.${A}\\.`));
  });

  it("direct gets with a body naming B's subject or a sequence return nothing of B's; other reads have no responder", async () => {
    const bLast = await jsmOp.direct.getMessage(STREAM_FLEET_EVENTS, { last_by_subj: eventSubject(B, "app") });
    const answers = await asA(async (nc) => {
      const out: string[] = [];
      const own = `$JS.API.DIRECT.GET.${STREAM_FLEET_EVENTS}.${eventSubject(A, "app")}`;
      for (const body of [{ seq: bLast!.seq }, { next_by_subj: eventSubject(B, "app"), seq: 1 }, { last_by_subj: eventSubject(B, "app") }]) {
        out.push(await nc.request(own, JSON.stringify(body), { timeout: 5000 }).then((m) => `${m.headers?.get("Nats-Subject") ?? ""} ${m.string()}`, (e: Error) => e.message));
      }
      for (const subject of [`$JS.API.DIRECT.GET.${STREAM_FLEET_EVENTS}`, `$JS.API.DIRECT.GET.KV_desired-state.$KV.desired-state.${B}.app`, `$JS.API.STREAM.MSG.GET.${STREAM_FLEET_EVENTS}`, "$JS.API.STREAM.PURGE.KV_desired-state"]) {
        out.push(await nc.request(subject, JSON.stringify({ seq: bLast!.seq }), { timeout: 5000 }).then((m) => `answered ${m.string().slice(0, 80)}`, (e: Error) => e.message));
      }
      return out;
    });
    // A's own subject asked for, with a body naming B's: the body is ignored (A has no event there).
    for (const a of answers.slice(0, 3)) expect(a).to.not.include(B).and.not.include(bLast!.string());
    expect(answers.slice(3).every((a) => /no responders/.test(a)), answers.join("\n")).to.equal(true);
    expect((await fleet.desired.get(deploymentKey(B, "app")))?.operation).to.equal("PUT");
  });

  it("plain reads and writes of B's keys and subjects find no responder, and A's account sees none of B's traffic", async () => {
    const before = await desiredView();
    const bState = (await fleet.states.get(deploymentKey(B, "app")))!;
    const seen: string[] = [];
    const answers = await asA(async (nc) => {
      const kvm = new Kvm(nc);
      const out: Record<string, string> = {};
      out["watch B's keys"] = await (await kvm.open("desired-state")).watch({ key: `${B}.>` }).then((w) => (w.stop(), "watching"), (e: Error) => e.message);
      out["put B's device-state"] = await (await kvm.open(BUCKET_DEVICE_STATE)).put(`${B}.app`, "{}").then(() => "written", (e: Error) => e.message);
      out["publish B's event"] = await jetstream(nc).publish(eventSubject(B, "app"), "{}").then(() => "published", (e: Error) => e.message);
      out["put B's desired state"] = await jetstream(nc).publish(`$KV.desired-state.${B}.app`, EVIL).then(() => "written", (e: Error) => e.message);
      out["put its own desired state"] = await jetstream(nc).publish(`$KV.desired-state.${A}.app`, EVIL).then(() => "written", (e: Error) => e.message);
      out["purge"] = await jetstreamManager(nc, { checkAPI: false }).then((jsm) => jsm.streams.purge("KV_desired-state")).then(() => "purged", (e: Error) => e.message);
      // B's traffic while A listens to everything in its account: an operator's put for B and B's report of it.
      nc.subscribe(">", { callback: (_e, m) => void seen.push(`${m.subject} ${m.string().slice(0, 200)}`) });
      await nc.flush();
      await bCaughtUp();
      await nc.flush();
      return out;
    });
    for (const [what, answer] of Object.entries(answers)) expect(answer, what).to.match(/no responders|not enabled|503/);
    expect(await desiredView()).to.deep.equal(before);
    const after = (await fleet.states.get(deploymentKey(B, "app")))!;
    expect(after.revision).to.equal(bState.revision);
    expect(seen.filter((l) => l.includes(B)), seen.join("\n")).to.deep.equal([]);
    nothingRanOfAs();
  });

  it("device commands: the operator's requests reach each agent and its answers come back; a device can publish no command, to itself or another, and hears none of another's", async () => {
    const commands = new DeviceCommands(fleet.op);
    const a = fleet.device(A);
    const aWeb = a.agent!.supervisor.snapshot("app")!.context.containerIds["web"]!;
    a.runtime.writeLog(aWeb, "hello from a");
    expect((await commands.ping(A)).deployments).to.include({ app: "Running" });
    expect((await commands.logs(A, { deployment: "app", service: "web" })).lines.map((l) => l.text)).to.deep.equal(["hello from a"]);
    expect((await commands.restart(A, { deployment: "app", service: "web" })).id).to.equal(aWeb);
    const restartsBefore = { a: a.runtime.count("restart"), b: fleet.device(B).runtime.count("restart") };
    const logFrom = fleet.server.log.length;
    const heard: string[] = [];
    const restart = JSON.stringify({ deployment: "app", service: "web" });
    const tried = await asA(async (nc) => {
      // In A's account: B's command subjects, and all of them.
      for (const subject of [deviceCommandSubjects(B), COMMAND_SUBJECTS]) nc.subscribe(subject, { callback: (_e, m) => void heard.push(m.subject) });
      await nc.flush();
      const out: Record<string, string> = {};
      for (const [what, subject] of [["restart itself", commandSubject(A, "restart")], ["restart B", commandSubject(B, "restart")], ["ping B", commandSubject(B, "ping")]] as const) {
        out[what] = await nc.request(subject, restart, { timeout: 1000 }).then((m) => `answered ${m.string()}`, (e: Error) => e.message);
      }
      // The operator's command to B, after A's: B's agent answers it, and A hears nothing of it.
      expect((await commands.ping(B)).device).to.equal(B);
      await nc.flush();
      return out;
    });
    for (const [what, answer] of Object.entries(tried)) expect(answer, what).to.not.match(/^answered/);
    // Refused by the server, before any account could deliver them: each refusal is in its log.
    const refused = [commandSubject(A, "restart"), commandSubject(B, "restart"), commandSubject(B, "ping")];
    await waitFor("every refusal in the server's log", () => refused.every((x) => fleet.server.violations(logFrom).some((l) => l.includes(`Subject "${x}"`))), 5_000);
    for (const l of fleet.server.violations(logFrom)) expect(l).to.match(/Publish Violation .*Subject "fleet\.cmd\./);
    expect(heard).to.deep.equal([]);
    expect({ a: a.runtime.count("restart"), b: fleet.device(B).runtime.count("restart") }).to.deep.equal(restartsBefore);
  });
});
