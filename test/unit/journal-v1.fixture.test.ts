// Journals written by the previous release (version 1: XState's own event names) still replay to
// the snapshot that release had live, and read in the domain vocabulary. See test/fixtures/journal-v1.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeJson } from "../../contracts/decode.js";
import { DomainEvent, JournalEvent, type JournalCause, type JournalEventV1 } from "../../contracts/journal-event.codec.js";
import { ReconcileScore } from "../../contracts/score.codec.js";
import type { DeploymentInput } from "../../machines/deployment.machine.js";
import { foldJournal, foldSteps } from "../../machines/journal.fold.js";
import { buildTimeline } from "../../machines/timeline.js";
import { v1View } from "../support/v1.view.js";
import { FIXTURE_DIR, fixtureDeployments } from "../support/journal-v1.fixture.js";

const DIR = FIXTURE_DIR;
const expected = fixtureDeployments();
const scores = JSON.parse(readFileSync(join(DIR, "scores.json"), "utf8")) as Record<string, unknown>;

function linesOf(deployment: string): JournalEventV1[] {
  return readFileSync(join(DIR, `${deployment}.jsonl`), "utf8").trim().split("\n").map((line, i) => {
    const r = decodeJson(JournalEvent, line);
    if (!r.ok) throw new Error(`${deployment} line ${i + 1}: ${r.errors.join("; ")}`);
    if (r.value.v !== 1) throw new Error(`${deployment} line ${i + 1}: not a v1 event`);
    return r.value;
  });
}

/** The full score back into each redacted UPDATE, as recovery does from the score store. */
function rehydrated(lines: readonly JournalEventV1[]): JournalCause[] {
  return lines.map(({ event }) => {
    if (event.type !== "UPDATE") return event;
    const r = decodeJson(ReconcileScore, JSON.stringify(scores[String(event["hash"])]));
    if (!r.ok) throw new Error(`no score for ${String(event["hash"])}`);
    return { ...event, score: r.value.data };
  });
}

describe("v1 journals of the previous release (committed fixture)", () => {
  for (const x of expected) {
    const d = x.input.deployment;
    it(`${d}: ${x.events} v1 events fold to the live snapshot the previous release had`, () => {
      const lines = linesOf(d);
      expect(lines).to.have.length(x.events);
      expect(lines.some((l) => l.event.type.startsWith("xstate."))).to.equal(true);
      const folded = foldJournal(x.input, rehydrated(lines));
      expect(v1View(folded)).to.equal(v1View(x.view));
      // What the previous release knew nothing of: no restarts decided, no retry armed.
      expect(Object.values(folded.context.services).every((r) => r.restarts === 0 && r.restartAt === null)).to.equal(true);
    });

    it(`${d}: every v1 event reads as an exact v2 event of the vocabulary`, () => {
      const steps = foldSteps(x.input, rehydrated(linesOf(d)));
      for (const s of steps) {
        expect(s.event.type).to.not.match(/^xstate\.|^[A-Z]+$/);
        expect(DomainEvent.is(s.event), JSON.stringify(s.event).slice(0, 200)).to.equal(true);
      }
    });
  }

  it("the timeline shows v1 journals in the domain vocabulary, with what each step did", () => {
    const tl = buildTimeline("dev1", "app", linesOf("app"));
    const byN = (n: number) => tl.steps.find((s) => s.n === n)!;
    expect(tl.steps.every((s) => s.v === 1)).to.equal(true);
    expect(byN(1).label).to.match(/^desired\.updated sha256:[0-9a-f]{8}… \(rev 1\)$/);
    expect(byN(2).label).to.equal("pull.done: img/web:1, img/db:1");
    expect(byN(7).event).to.deep.include({ type: "stop.done", stopped: ["web"], swept: [] });
    // A v1 agent did not retry forward: a v1 failure reads without a retry_at.
    expect(byN(10).label).to.equal("pull.failed: pulling image img/web:3: simulated pull failure");
    expect(byN(17).label).to.match(/^stop\.done \(failed web: /);
    expect(byN(25).event).to.deep.include({ type: "start.done", started: {} });
    expect(byN(30).event).to.deep.include({ type: "liveness.repair", services: ["web"] });
    expect(byN(32).label).to.equal("liveness.repair: db");
    expect(byN(34).label).to.match(/^desired\.rejected \(rev 9\): /);
    const slow = buildTimeline("dev1", "slow", linesOf("slow"));
    expect(slow.steps[1]!.label).to.equal("step.timed_out: pull");
    const gone = buildTimeline("dev1", "gone", linesOf("gone"));
    expect(gone.steps.map((s) => s.event.type)).to.include.members(["desired.deleted", "remove.done", "remove.failed"]);
  });
});
