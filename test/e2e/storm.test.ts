// e2e: an update storm. 50 desired values for one deployment written within a second must be
// coalesced (invariant 7): the step in flight finishes, then only the newest value is applied.
import { expect } from "chai";
import { canonicalHash } from "../../contracts/canonical-json.js";
import { TEST_IMAGES } from "../support/podman.env.js";
import { score, startsSeen, useScenario } from "./support/scenario.js";

const hashOf = (s: unknown) => canonicalHash(s as never);

describe("e2e: update storm", function () {
  const sc = useScenario();

  it("7. update storm — 50 desired puts within 1 s: the final state is the last score; at most 3 upgrades executed, none interleaved", async () => {
    const s = sc.current;
    const events = await s.podmanEvents();
    s.startAgent();
    const v1 = score([{ name: "web", image: TEST_IMAGES.v1 }, { name: "side", image: TEST_IMAGES.v1 }]);
    await s.put("app", v1);
    const r1 = await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
    const n0 = s.journal("app").length;
    await startsSeen(events, Object.values(r1.container_ids));
    const mark = events.length;

    const images = [TEST_IMAGES.v2, TEST_IMAGES.v3];
    const storm = Array.from({ length: 50 }, (_, i) => score([{ name: "web", image: images[i % 2]!, env: { STORM: String(i) } }, { name: "side", image: TEST_IMAGES.v1 }]));
    const t0 = Date.now();
    for (const v of storm) await s.put("app", v);
    const putMs = Date.now() - t0;
    expect(putMs, "50 puts within a second").to.be.below(1000);
    const last = storm.at(-1)!;
    const tLast = Date.now();
    const final = await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(last), "Running on the last score", 90_000);
    s.recoveryMs = Date.now() - tLast;
    s.recoveryWhat = "last put → Running on it";

    // Upgrades executed: each is pull.done → stoppingOld, stop.done, start.done, whole and in
    // that order before the next begins (a queued value taken at `running` leaves it in the same
    // macrostep, so `running` itself need not appear between two upgrades).
    const after = s.journal("app").slice(n0);
    const tokens = after
      .map((e) => (e.to === "stoppingOld" && e.from !== "stoppingOld" ? "S" : e.event.type === "stop.done" ? "T" : e.event.type === "start.done" ? "R" : ""))
      .join("");
    const upgrades = (tokens.match(/S/g) ?? []).length;
    expect(tokens, "upgrades whole and one at a time (S stop begins, T stop done, R start done)").to.equal("STR".repeat(upgrades));
    expect(upgrades).to.be.within(1, 3);
    const webCreates = events.slice(mark).filter((e) => e.action === "create" && e.service === "web");
    expect(webCreates.length, "web containers created").to.equal(upgrades);
    expect(events.slice(mark).filter((e) => e.service === "side" && ["create", "remove", "died"].includes(e.action)), "the unchanged service untouched").to.deep.equal([]);
    // At no moment were two web containers alive (the old one stopped and removed before the next create).
    let alive = 1;
    for (const e of events.slice(mark).filter((x) => x.service === "web")) {
      if (e.action === "create") alive++;
      if (e.action === "remove") alive--;
      expect(alive, "web containers alive at once").to.be.at.most(1);
    }
    const web = (await s.containersOf("app")).filter((c) => c.Labels?.["io.fleet.service"] === "web");
    expect(web.map((c) => c.Labels?.["io.fleet.score-hash"])).to.deep.equal([hashOf(last)]);
    expect(final.container_ids["web"]).to.equal(web[0]!.Id);
    s.notes.push(`50 puts in ${putMs} ms; ${upgrades} upgrade(s) executed; ${after.length} journal events`);
    await s.verify(["app"]);
  });
});
