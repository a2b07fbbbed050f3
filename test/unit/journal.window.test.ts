// The visualiser's page fold against the machine's own fold: every container id and error a page
// claims to know must be the machine's at that step, and from the origin it knows them all.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeJson } from "../../contracts/decode.js";
import { JournalEvent as JournalEventCodec } from "../../contracts/journal-event.codec.js";
import type { JournalEvent } from "../../contracts/journal-event.codec.js";
import type { PodmanV0Score } from "../../contracts/score.codec.js";
import type { DeploymentSnapshot } from "../../machines/deployment.machine.js";
import { foldWindow } from "../../machines/journal.window.js";
import { domainEvent } from "../../machines/journal.words.js";
import { buildTimeline } from "../../machines/timeline.js";
import { FakeRuntime } from "../../runtime/fake.runtime.js";
import { DeploymentHarness } from "../support/deployment.harness.js";

const score = (web: string, extra: PodmanV0Score["services"] = []): PodmanV0Score => ({
  services: [{ name: "web", image: web, env: { MODE: "prod" } }, { name: "db", image: "img/db:1" }, ...extra],
  lifecycle: { grace_period_secs: 1 },
});

/** A varied history: deploy, upgrade, a failed start, roll forward, a tick repair, a delete. */
async function history(): Promise<{ events: JournalEvent[]; snapshots: DeploymentSnapshot[] }> {
  const fake = new FakeRuntime({ device: "dev1" });
  let clock = Date.parse("2026-12-01T10:00:00Z");
  const h = new DeploymentHarness(fake, { device: "dev1", deployment: "app" }, () => (clock += 1000));
  h.update(score("img/web:1"));
  await h.settled();
  h.update(score("img/web:2", [{ name: "cache", image: "img/cache:1" }]));
  await h.settled();
  fake.exitAtStart("web", 3, { once: true });
  h.update(score("img/web:3"));
  await h.settled();
  h.update(score("img/web:4"));
  await h.settled();
  const db = (await fake.list()).find((c) => c.service === "db")!;
  fake.crash(db.id, 137);
  await h.tick();
  h.delete();
  await h.settled();
  h.stop();
  const events: JournalEvent[] = h.journal.map((t, i) => ({
    v: 2, device: "dev1", deployment: "app", n: i + 1, at: new Date(Date.parse("2026-12-01T10:00:00Z") + i * 1000).toISOString(),
    event: t.event, from: t.from, to: t.to,
  }));
  return { events, snapshots: h.journal.map((t) => t.snapshot) };
}

describe("journal window (the visualiser's page fold)", () => {
  let events: JournalEvent[];
  let snapshots: DeploymentSnapshot[];
  before(async () => ({ events, snapshots } = await history()));

  it("reads events in domain words", () => {
    const names = events.map((e) => domainEvent(e.event, e.from).name);
    expect(names).to.include.members(["desired.updated", "pull.done", "stop.done", "start.done", "liveness.repair", "desired.deleted", "remove.done"]);
    expect(names.some((n) => n.startsWith("xstate.") || /[A-Z]/.test(n))).to.equal(false);
  });

  it("from the deployment's first event, knows every container id and error at every step, as the machine's fold has them", () => {
    const w = foldWindow({ events, fromOrigin: true });
    expect(w.steps).to.have.length(events.length);
    w.steps.forEach((s, i) => {
      expect(s.container_ids, `ids at n=${s.n}`).to.deep.equal(sorted(snapshots[i]!.context.containerIds));
      expect(s.unknown_services, `n=${s.n}`).to.deep.equal([]);
      expect(s.containers_partial).to.equal(false);
      expect(s.last_error_known).to.equal(true);
      expect(s.last_error, `error at n=${s.n}`).to.equal(snapshots[i]!.context.lastError);
    });
  });

  it("a later page claims only what the machine had, and with the agent's report of its last step knows the ids it kept", () => {
    for (const start of [3, 6, 9, 14]) {
      const page = events.slice(start);
      const last = snapshots.at(-1)!;
      for (const anchor of [undefined, { container_ids: last.context.containerIds, last_error: last.context.lastError }]) {
        const w = foldWindow({ events: page, fromOrigin: false, ...(anchor ? { anchor } : {}) });
        w.steps.forEach((s, i) => {
          const truth = snapshots[start + i]!.context;
          for (const [svc, id] of Object.entries(s.container_ids)) expect(truth.containerIds[svc], `page ${start}, n=${s.n}, ${svc}`).to.equal(id);
          for (const svc of s.unknown_services) expect(s.container_ids).to.not.have.property(svc);
          if (s.last_error_known) expect(s.last_error, `page ${start}, n=${s.n}`).to.equal(truth.lastError);
        });
        if (anchor) expect(w.steps.at(-1)!.container_ids).to.deep.equal(sorted(last.context.containerIds));
      }
    }
  });

  it("shows the per-service change at each update; the first one on a page needs the score before it", () => {
    const w = foldWindow({ events, fromOrigin: true });
    const updates = w.steps.filter((s) => s.name === "desired.updated");
    expect(updates[0]!.changes!.map((c) => `${c.service} ${c.action}`)).to.deep.equal(["web add", "db add"]);
    expect(updates[1]!.changes).to.deep.include({ service: "web", action: "replace", details: ["image img/web:1 → img/web:2"] });
    expect(updates[1]!.changes).to.deep.include({ service: "cache", action: "add", details: ["image img/cache:1"] });
    expect(updates[2]!.changes).to.deep.include({ service: "cache", action: "remove", details: [] });
    // Deployed again after the delete removed everything (the agent starts a new machine): every service is added.
    const again = { ...events[0]!, n: events.length + 1, at: new Date(Date.parse(events.at(-1)!.at) + 1000).toISOString() };
    const redeployed = foldWindow({ events: [...events, again], fromOrigin: true }).steps.at(-1)!;
    expect(redeployed.changes!.map((c) => c.action)).to.deep.equal(["add", "add"]);
    const i = events.findIndex((e, k) => k > 0 && e.event.type === "desired.updated");
    const later = foldWindow({ events: events.slice(i), fromOrigin: false });
    expect(later.steps[0]!.changes).to.equal(null);
    expect(later.steps[0]!.changes_note).to.match(/older than the history read/);
    const known = foldWindow({ events: events.slice(i), fromOrigin: false, previousScore: score("img/web:1") });
    expect(known.steps[0]!.changes).to.deep.include({ service: "web", action: "replace", details: ["image img/web:1 → img/web:2"] });
  });

  for (const deployment of ["app", "gone", "slow"]) {
    it(`a v1 journal of the previous release (${deployment}): the same names and, from its origin, the same container ids and errors as the machine's fold`, () => {
      const lines = readFileSync(join(import.meta.dirname, "..", "fixtures", "journal-v1", `${deployment}.jsonl`), "utf8").trim().split("\n");
      const v1 = lines.map((l) => {
        const r = decodeJson(JournalEventCodec, l);
        if (!r.ok) throw new Error(r.errors.join("; "));
        return r.value;
      });
      const truth = buildTimeline("dev1", deployment, v1);
      const w = foldWindow({ events: v1, fromOrigin: true });
      w.steps.forEach((s, i) => {
        const t = truth.steps[i]!;
        expect(s.name, `n=${s.n}`).to.equal(t.event.type);
        expect(s.container_ids, `ids at n=${s.n}`).to.deep.equal(sorted(t.container_ids));
        expect(s.last_error, `error at n=${s.n}`).to.equal(t.last_error);
      });
    });
  }

  it("each step's stay is the time to the next event; the last is still there unless a newer page follows", () => {
    const w = foldWindow({ events: events.slice(0, 3), fromOrigin: true });
    expect(w.steps.map((s) => s.spent_ms)).to.deep.equal([1000, 1000, null]);
    const next = foldWindow({ events: events.slice(0, 3), fromOrigin: true, nextAt: events[3]!.at });
    expect(next.steps.at(-1)!.spent_ms).to.equal(1000);
    expect(next.time_in_state).to.deep.equal({ pulling: 1000, stoppingOld: 1000, startingNew: 1000 });
  });
});

const sorted = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
