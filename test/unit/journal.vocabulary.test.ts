// The journal's vocabulary and the machine's events (machines/journal.vocabulary.ts): what the
// recorder names each cause, that the wire form of those names replays exactly, and that the names
// the machine does not take fold as no-ops.
import { expect } from "chai";
import { initialTransition } from "xstate";
import { DecodeError, decode } from "../../contracts/decode.js";
import { DOMAIN_EVENT_TYPES, DomainEvent, type DomainEvent as DomainEventT } from "../../contracts/journal-event.codec.js";
import type { PodmanV0Score } from "../../contracts/score.codec.js";
import { deploymentMachine } from "../../machines/deployment.machine.js";
import { foldJournal } from "../../machines/journal.fold.js";
import { domainTypeOf, fromV1, journalEventOf, machineEventOf, resumedEvent } from "../../machines/journal.vocabulary.js";
import { machineEdges } from "../../machines/statechart.js";
import { snapshotView } from "../../machines/transition.recorder.js";
import { FakeRuntime } from "../../runtime/fake.runtime.js";
import { DeploymentHarness } from "../support/deployment.harness.js";

const svc = (name: string, image: string, extra: object = {}) => ({ name, image, ...extra });
const score = (...services: PodmanV0Score["services"]): PodmanV0Score => ({ services, lifecycle: { stop_signal: "SIGTERM", grace_period_secs: 1 } });
const input = { device: "d1", deployment: "app" };

describe("journal vocabulary", () => {
  let fake: FakeRuntime;
  let h: DeploymentHarness;
  beforeEach(() => {
    fake = new FakeRuntime({ device: "d1" });
    h = new DeploymentHarness(fake, input);
  });
  afterEach(() => h.stop());

  /** Upgrades, failures of every kind, a repair, a reject and a delete: most of the vocabulary. */
  async function eventful() {
    h.update(score(svc("web", "img/web:1", { env: { TOKEN: "t" } }), svc("db", "img/db:1")));
    await h.settled();
    fake.failPull("img/web:2", "no such image", { once: true });
    h.update(score(svc("web", "img/web:2"), svc("db", "img/db:1")));
    await h.settled();
    fake.failStop("web", "stuck", { once: true });
    h.update(score(svc("web", "img/web:3"), svc("db", "img/db:1")));
    await h.settled();
    fake.exitAtStart("web", 2, { once: true });
    h.update(score(svc("web", "img/web:4"), svc("db", "img/db:1")));
    await h.settled();
    h.update(score(svc("web", "img/web:5"), svc("db", "img/db:1")));
    const s = await h.settled();
    fake.crash(s.context.containerIds["web"]!);
    await h.tick();
    h.desired({ type: "PodmanV0", data: { services: [] } });
    await h.settled();
    h.update(score(svc("web", "img/web:6")));
    await h.settled();
    fake.failRemove("web", "busy", { once: true });
    h.delete();
    await h.settled();
    h.update(score(svc("web", "img/web:7")));
    await h.settled();
    h.delete();
    await h.settled();
  }

  it("the recorder names every cause in the vocabulary, each an exact v2 event", async () => {
    await eventful();
    const types = h.journal.map((t) => t.event.type);
    expect(types.filter((t) => !(DOMAIN_EVENT_TYPES as readonly string[]).includes(t))).to.deep.equal([]);
    expect(new Set(types)).to.include.members(["desired.updated", "desired.rejected", "desired.deleted", "pull.done", "pull.failed", "stop.done", "start.done", "remove.done", "liveness.repair"]);
    for (const t of h.journal) expect(decode(DomainEvent, JSON.parse(JSON.stringify(t.event))), t.event.type).to.deep.equal({ ok: true, value: t.event });
    const repair = h.journal.find((t) => t.event.type === "liveness.repair")!.event;
    expect(repair).to.deep.include({ services: ["web"] });
    expect(h.journal.find((t) => t.event.type === "pull.done")!.event).to.deep.include({ images: ["img/web:1", "img/db:1"] });
  });

  it("the journal's wire form (JSON) replays to the live snapshot", async () => {
    await eventful();
    const wire = JSON.parse(JSON.stringify(h.journal.map((t) => t.event))) as DomainEventT[];
    expect(snapshotView(foldJournal(input, wire))).to.equal(snapshotView(h.snapshot));
    expect(h.replayMatches()).to.equal(true);
  });

  it("a step timed out names the step; a thrown step error is `<step>.failed` with its message", async () => {
    const slow = new DeploymentHarness(fake, { ...input, deployment: "slow", budgets: { pullSecs: 0.05 } });
    try {
      const gate = fake.hold("ensureImage");
      slow.update(score(svc("web", "img/web:1")));
      await slow.settled();
      gate();
      expect(slow.journal.at(-1)!.event).to.deep.include({ type: "step.timed_out", step: "pull" });
      expect(slow.snapshot.context.lastError).to.equal("pulling timed out");
    } finally {
      slow.stop();
    }
    const [s0] = initialTransition(deploymentMachine, input);
    const before = { value: "removing", context: { ...s0.context, stepStartedAt: 40 } };
    expect(journalEventOf({ type: "xstate.error.actor.removeAll", error: Object.assign(new Error("socket gone"), { at: 50 }) }, before)).to.deep.equal({ type: "remove.failed", at: 50, error: "socket gone" });
    // An error without a time of its own is dated by the step's start (or by a value queued earlier).
    expect(journalEventOf({ type: "xstate.error.actor.removeAll", error: new Error("crashed") }, before)).to.deep.equal({ type: "remove.failed", at: 40, error: "crashed" });
    const queued = { ...before, context: { ...before.context, next: { kind: "delete" as const, revision: 3, at: 30 } } };
    expect(journalEventOf({ type: "xstate.error.actor.removeAll", error: new Error("crashed") }, queued)).to.deep.include({ at: 30 });
  });

  it("agent.resumed folds as a no-op; the health events each replay as a machine event", async () => {
    h.update(score(svc("web", "img/web:1")));
    await h.settled();
    const events: DomainEventT[] = [...h.journal.map((t) => t.event), resumedEvent("running", 99)];
    for (const e of events) expect(decode(DomainEvent, e).ok, e.type).to.equal(true);
    expect(machineEventOf(events.at(-1)!, h.snapshot)).to.equal(null);
    expect(snapshotView(foldJournal(input, events))).to.equal(snapshotView(h.snapshot));
    const health: DomainEventT[] = [
      { type: "desired.retried", at: 100, hash: h.snapshot.context.desiredHash!, revision: 7 },
      { type: "verify.done", at: 100, ready: ["web"] },
      { type: "verify.failed", at: 100, service: "web", reason: "no answer", retry_at: 100 },
      { type: "service.exited", at: 100, service: "web", exit_code: 1, restart_at: 100 },
      { type: "service.restarted", at: 100, service: "web", id: "abc", restarts: 1, by: "agent" },
      { type: "service.unhealthy", at: 100, service: "web", output: "timeout" },
      { type: "service.healthy", at: 100, service: "web", output: "" },
      { type: "step.retried", at: 100, step: "pull" },
    ];
    for (const e of health) {
      expect(decode(DomainEvent, e).ok, e.type).to.equal(true);
      expect(machineEventOf(e, h.snapshot), e.type).to.not.equal(null);
    }
  });

  it("an operator's restart translates both ways: SERVICE_RESTARTED ⇄ service.restarted {service, id, restarts, by}", () => {
    const restarted = { type: "SERVICE_RESTARTED", service: "web", id: "abc", restarts: 2, by: "operator", at: 100 } as const;
    const domain = journalEventOf(restarted, { value: "running", context: h.snapshot.context });
    expect(domain).to.deep.equal({ type: "service.restarted", at: 100, service: "web", id: "abc", restarts: 2, by: "operator" });
    expect(decode(DomainEvent, domain).ok).to.equal(true);
    expect(machineEventOf(domain, h.snapshot)).to.deep.equal(restarted);
  });

  it("every event the machine takes has a domain name, and the translation covers the whole vocabulary", () => {
    const machineTypes = new Set(machineEdges(deploymentMachine).map((e) => e.event).filter((e) => e !== "always"));
    for (const t of machineTypes) expect(domainTypeOf(t), t).to.be.a("string");
    expect(domainTypeOf("xstate.done.actor.nothing")).to.equal(null);
    expect(domainTypeOf("toString")).to.equal(null);
  });

  it("a damaged v1 event is an error naming what is wrong, not a silent wrong fold", () => {
    const [s0] = initialTransition(deploymentMachine, input);
    const before = { value: "stoppingOld", context: s0.context };
    expect(() => fromV1({ type: "xstate.done.actor.stopOld", output: { at: 5 } }, before)).to.throw(DecodeError, /stopped: expected Array<ServiceName>, got nothing/);
    expect(() => fromV1({ type: "xstate.done.actor.who" }, before)).to.throw(DecodeError, /not an event of the deployment machine/);
    expect(() => foldJournal(input, [{ type: "UPDATE", hash: "x" }])).to.throw(DecodeError, /v1 journal event "UPDATE"/);
    expect(fromV1({ type: "xstate.done.actor.stopOld", output: { stopped: ["web"], at: 5 }, actorId: "stopOld" }, before)).to.deep.equal({ type: "stop.done", at: 5, stopped: ["web"], swept: [] });
  });
});
