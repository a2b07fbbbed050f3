// e2e: the crash matrix. The agent process is SIGKILLed while a deployment rests in each non-final
// state of the machine, a newer desired score is written while it is down, and the restarted agent
// must resume from its journal (re-running the interrupted step idempotently) and converge to the
// newest score with every invariant intact.
//
// `pending` is not a resting state: an UPDATE enters it and its `always` transition (the plan is set
// by the same event) leaves for `pulling` in the same macrostep, so no journal event ever ends in
// `pending` once a plan exists (`pending` is only the initial state, before the first value). The
// window it stands for, "a desired value arrived but nothing was recorded yet", is covered by the
// first case: the agent is killed right after the put, before the UPDATE is journaled, and the
// restarted agent must pick the value up again from the desired-state watch.
import { expect } from "chai";
import { canonicalHash } from "../../contracts/canonical-json.js";
import type { JournalEvent } from "../../contracts/journal-event.codec.js";
import { TEST_IMAGES } from "../support/podman.env.js";
import { score, sleep, useScenario, type Scenario } from "./support/scenario.js";

const hashOf = (s: unknown) => canonicalHash(s as never);
const lastTo = (state: string) => (ev: JournalEvent[]) => ev.at(-1)?.to === state;

/** Kills the agent, writes `newest` while it is down, restarts it; returns ms from restart to Running on `newest`. */
async function crashAndRecover(s: Scenario, deployment: string, newest: unknown, afterRestart?: () => Promise<void>): Promise<number> {
  await s.agent!.kill();
  const at = s.journal(deployment).at(-1);
  await s.put(deployment, newest);
  const t0 = Date.now();
  s.startAgent();
  await afterRestart?.();
  await s.waitState(deployment, (x) => x.phase === "Running" && x.score_hash === hashOf(newest), "Running on the newest score", 90_000);
  s.notes.push(`killed with the journal at n=${at?.n} (${at?.from}→${at?.to})`);
  return Date.now() - t0;
}

describe("e2e: crash matrix (SIGKILL in each non-final state)", function () {
  const sc = useScenario();

  it("3a. crash in pending — killed right after the put, before anything is journaled", async () => {
    const s = sc.current;
    s.startAgent();
    const v1 = score([{ name: "web", image: TEST_IMAGES.v1 }]);
    await s.put("app", v1);
    await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v1), "v1 Running");
    const n = s.journal("app").length;
    const v2 = score([{ name: "web", image: TEST_IMAGES.v2 }]);
    await s.put("app", v2);
    await s.agent!.kill();
    s.notes.push(`journal had ${s.journal("app").length - n} new event(s) when killed`);
    const t0 = Date.now();
    s.startAgent();
    await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v2), "v2 Running", 90_000);
    s.recoveryMs = Date.now() - t0;
    s.recoveryWhat = "restart → Running on the newest score";
    await s.verify(["app"]);
  });

  it("3b. crash in pulling — held by a registry that stalls the pull", async () => {
    const s = sc.current;
    const events = await s.podmanEvents();
    s.startAgent();
    const v1 = score([{ name: "web", image: TEST_IMAGES.v1 }]);
    await s.put("app", v1);
    await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
    const reg = s.w.registry;
    const ref = reg.ref(`e2e/${s.device}`, "v2");
    s.w.pulledRefs.add(ref);
    reg.hold();
    s.cleanups.push(() => reg.release());
    const seen = reg.manifestRequests;
    await s.put("app", score([{ name: "web", image: ref }]));
    await s.waitJournal("app", lastTo("pulling"), "in pulling");
    await waitUntil(() => reg.manifestRequests > seen, "the pull reached the registry");
    const v3 = score([{ name: "web", image: TEST_IMAGES.v3 }]);
    s.recoveryMs = await crashAndRecover(s, "app", v3, async () => {
      // Resumed in pulling, the restarted agent pulls again (held too); then the registry answers.
      await waitUntil(() => reg.heldCount >= 2, "the resumed pull reached the registry", 30_000).catch(() => undefined);
      reg.release();
    });
    s.recoveryWhat = "restart → Running on the newest score (registry released at once)";
    const v3Created = () => events.filter((e) => e.action === "create" && e.scoreHash === hashOf(v3));
    await waitUntil(() => v3Created().length > 0, "v3's create in Podman's event stream (it can lag the report)").catch(() => undefined);
    expect(v3Created()).to.have.length(1);
    await s.verify(["app"]);
  });

  it("3c. crash in stoppingOld — held by a SIGTERM-ignoring container with a 4 s grace", async () => {
    const s = sc.current;
    s.startAgent();
    const stub = score([{ name: "web", image: TEST_IMAGES.stubborn }], { grace_period_secs: 4 });
    await s.put("app", stub);
    const r0 = await s.waitState("app", (x) => x.phase === "Running", "stubborn Running");
    const v2 = score([{ name: "web", image: TEST_IMAGES.v2 }]);
    await s.put("app", v2);
    await s.waitJournal("app", lastTo("stoppingOld"), "in stoppingOld");
    await sleep(500);
    const v3 = score([{ name: "web", image: TEST_IMAGES.v3 }]);
    s.recoveryMs = await crashAndRecover(s, "app", v3);
    s.recoveryWhat = "restart → Running on the newest score";
    const all = await s.containers();
    expect(all.map((c) => c.Id)).to.not.include(r0.container_ids["web"]);
    await s.verify(["app"]);
  });

  it("3d. crash in startingNew — killed inside the 1 s start-settle window", async () => {
    const s = sc.current;
    const events = await s.podmanEvents();
    s.startAgent();
    const v1 = score([{ name: "web", image: TEST_IMAGES.v1 }]);
    await s.put("app", v1);
    await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
    const v2 = score([{ name: "web", image: TEST_IMAGES.v2 }]);
    await s.put("app", v2);
    await s.waitJournal("app", lastTo("startingNew"), "in startingNew");
    await sleep(300);
    const v3 = score([{ name: "web", image: TEST_IMAGES.v3 }]);
    s.recoveryMs = await crashAndRecover(s, "app", v3);
    s.recoveryWhat = "restart → Running on the newest score";
    // The interrupted start is adopted on resume, never created twice.
    expect(events.filter((e) => e.action === "create" && e.scoreHash === hashOf(v2)).length, "v2 created at most once").to.be.at.most(1);
    await s.verify(["app"]);
  });

  it("3e. crash in removing — desired key deleted, held by a SIGTERM-ignoring container with a 4 s grace", async () => {
    const s = sc.current;
    s.startAgent();
    const stub = score([{ name: "web", image: TEST_IMAGES.stubborn }, { name: "side", image: TEST_IMAGES.v1 }], { grace_period_secs: 4 });
    await s.put("app", stub);
    await s.waitState("app", (x) => x.phase === "Running", "stubborn Running");
    await s.del("app");
    await s.waitJournal("app", lastTo("removing"), "in removing");
    await sleep(500);
    // Newest: deployed again after the delete.
    const v2 = score([{ name: "web", image: TEST_IMAGES.v2 }]);
    s.recoveryMs = await crashAndRecover(s, "app", v2);
    s.recoveryWhat = "restart → removed, then Running on the newest score";
    const states = s.journal("app").map((e) => e.to);
    expect(states.lastIndexOf("removing")).to.be.lessThan(states.lastIndexOf("running"));
    await s.verify(["app"]);
  });
});

async function waitUntil(f: () => boolean, what: string, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}
