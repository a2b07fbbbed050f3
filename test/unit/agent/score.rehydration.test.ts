import { expect } from "chai";
import { initialTransition } from "xstate";
import { REDACTED, redactEvent } from "../../../agent/journal/redact.js";
import {
  fillScore,
  fillService,
  reconstructScore,
  redactedSpecs,
  rehydrateSnapshot,
  scoreHashOf,
  snapshotIsRedacted,
  witnessSpecs,
} from "../../../agent/journal/score.rehydration.js";
import type { PodmanService, PodmanV0Score } from "../../../contracts/score.codec.js";
import { deploymentMachine, type DeploymentSnapshot } from "../../../machines/deployment.machine.js";
import { appliedFromScore } from "../../../machines/upgrade.plan.js";

const web = (token: string): PodmanService => ({ name: "web", image: "localhost/web:1", env: { TOKEN: token, MODE: "prod" } });
const db = (data: string): PodmanService => ({ name: "db", image: "localhost/db:1", env: { DATA: data } });
const scoreOf = (...services: PodmanService[]): PodmanV0Score => ({ services, lifecycle: { grace_period_secs: 3 } });

/** A snapshot at rest in `value` with `applied` from the given scores (service by service) and `target`. */
function snapshot(value: "running" | "failed", target: PodmanV0Score, applied: Array<[PodmanV0Score, string]>): DeploymentSnapshot {
  const [initial] = initialTransition(deploymentMachine, { device: "d1", deployment: "app" });
  const app = Object.fromEntries(applied.map(([sc, name]) => [name, appliedFromScore(sc, scoreHashOf(sc))[name]!]));
  const ids = Object.fromEntries(applied.map(([, name]) => [name, `${name}-id`]));
  return deploymentMachine.resolveState({
    value,
    context: { ...initial.context, target: { score: target, hash: scoreHashOf(target) }, desiredHash: scoreHashOf(target), applied: app, containerIds: ids },
  });
}

describe("putting env values back into a redacted history", () => {
  it("fills a redacted service from a full one of the same shape, in the redacted one's key order; refuses another shape", () => {
    const redacted = redactEvent({ name: "web", image: "localhost/web:1", env: { MODE: "x", TOKEN: "y" } } as PodmanService);
    const filled = fillService(redacted, web("t0k3n"))!;
    expect(filled.env).to.deep.equal({ MODE: "prod", TOKEN: "t0k3n" });
    expect(Object.keys(filled.env!)).to.deep.equal(["MODE", "TOKEN"]);
    expect(fillService(redacted, { ...web("t"), image: "localhost/web:2" }), "another image").to.equal(null);
    expect(fillService(redacted, { name: "web", image: "localhost/web:1", env: { TOKEN: "t" } }), "other env names").to.equal(null);
    expect(fillService(redacted, redacted), "a redacted one is no source").to.equal(null);
    expect(fillScore(redactEvent(scoreOf(web("a"), db("b"))), scoreOf(web("a"), db("b")))).to.deep.equal(scoreOf(web("a"), db("b")));
  });

  it("rebuilds a score no store holds from other scores' env values, only when the result hashes to the journaled hash", () => {
    const lost = scoreOf(web("t1"), db("/data"));
    const hash = scoreHashOf(lost);
    const known = [scoreOf(web("t1")), scoreOf({ ...web("t2"), image: "localhost/web:9" }, db("/data")), scoreOf(web("t9"))];
    expect(reconstructScore(redactEvent(lost), hash, known)).to.deep.equal(lost);
    // db's value is known nowhere: nothing is guessed.
    expect(reconstructScore(redactEvent(lost), hash, [scoreOf(web("t1")), scoreOf(db("/other"))])).to.equal(null);
    // Values of the right shape that do not hash to it are refused.
    expect(reconstructScore(redactEvent(lost), hash, [scoreOf(web("t2"), db("/data"))])).to.equal(null);
  });

  it("a running snapshot proves its applied specs are its target's: a spec known only redacted is filled from the target", () => {
    const old = scoreOf(web("t1"), db("/data"));
    const now = scoreOf({ ...web("t2"), image: "localhost/web:2" }, db("/data"));
    // db was applied by `old` (its hash labels the container) and kept unchanged by `now`.
    const live = snapshot("running", now, [[now, "web"], [old, "db"]]);
    const fromJournal = deploymentMachine.resolveState({ value: "running", context: { ...live.context, applied: redactEvent(live.context.applied), target: { ...live.context.target!, score: now } } });
    expect(redactedSpecs(fromJournal).map((r) => [r.service, r.scoreHash])).to.deep.equal([["web", scoreHashOf(now)], ["db", scoreHashOf(old)]]);
    const witnesses = new Map<string, PodmanService>();
    witnessSpecs(fromJournal, witnesses);
    const filled = rehydrateSnapshot(fromJournal, { score: (h) => (h === scoreHashOf(now) ? now : null), spec: (s, h) => witnesses.get(`${s}|${h}`) ?? null });
    expect(JSON.stringify(filled.context)).to.equal(JSON.stringify(live.context));
    expect(snapshotIsRedacted(filled)).to.equal(false);
  });

  it("a failed snapshot proves nothing: what no score or container gives stays redacted, and is said to", () => {
    const old = scoreOf(web("t1"), db("/data"));
    const failedTo = scoreOf({ ...web("t2"), image: "localhost/web:2" }, db("/other"));
    const s = snapshot("failed", failedTo, [[old, "web"], [old, "db"]]);
    const r = deploymentMachine.resolveState({ value: "failed", context: { ...s.context, applied: redactEvent(s.context.applied) } });
    const witnesses = new Map<string, PodmanService>();
    witnessSpecs(r, witnesses);
    expect(witnesses.size).to.equal(0);
    const fromContainer = rehydrateSnapshot(r, { score: () => null, spec: (svc) => (svc === "db" ? db("/data") : null) });
    expect(fromContainer.context.applied["db"]!.service.env).to.deep.equal({ DATA: "/data" });
    expect(fromContainer.context.applied["web"]!.service.env).to.deep.equal({ TOKEN: REDACTED, MODE: REDACTED });
    expect(redactedSpecs(fromContainer).map((x) => x.service)).to.deep.equal(["web"]);
  });
});
