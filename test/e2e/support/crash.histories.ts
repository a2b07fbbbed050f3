// The crash matrix's histories (test/e2e/crash.test.ts): the agent process SIGKILLed while a
// deployment rests in each non-final state of the machine, a newer desired score written while it
// is down, the restarted agent resuming from its journal to the newest score. Each ends converged;
// storage.test.ts then loses the whole state dir after each of them.
//
// Every score has a second service, `side`, with an env value, that the histories never change:
// the unchanged service whose container a recovery must leave alone.
//
// `pending` is not a resting state: an UPDATE enters it and its `always` transition (the plan is set
// by the same event) leaves for `pulling` in the same macrostep, so no journal event ever ends in
// `pending` once a plan exists (`pending` is only the initial state, before the first value). The
// window it stands for, "a desired value arrived but nothing was recorded yet", is covered by the
// first history: the agent is killed right after the put, before the UPDATE is journaled, and the
// restarted agent must pick the value up again from the desired-state watch.
import { expect } from "chai";
import { canonicalHash } from "../../../contracts/canonical-json.js";
import type { JournalEventV2 } from "../../../contracts/journal-event.codec.js";
import { TEST_IMAGES } from "../../support/podman.env.js";
import { score, sleep, type Scenario, type ServiceDef } from "./scenario.js";

export const hashOf = (s: unknown) => canonicalHash(s as never);
const lastTo = (state: string) => (ev: JournalEventV2[]) => ev.at(-1)?.to === state;

/** The service no history changes (its env is a secret the journal redacts). */
export const SIDE: ServiceDef = { name: "side", image: TEST_IMAGES.v1, env: { SIDE_TOKEN: "s1de-s3cret" } };
/** A score of `web` (as given) and the unchanged `side`. */
export const withSide = (web: ServiceDef, lifecycle?: Parameters<typeof score>[1]) => score([web, SIDE], lifecycle);

export interface History {
  id: string;
  title: string;
  /** Runs the history to convergence; sets the scenario's recovery time. Returns the score it ends on. */
  run(s: Scenario): Promise<unknown>;
}

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

export async function waitUntil(f: () => boolean, what: string, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

export const CRASH_HISTORIES: History[] = [
  {
    id: "3a",
    title: "crash in pending — killed right after the put, before anything is journaled",
    async run(s) {
      s.startAgent();
      const v1 = withSide({ name: "web", image: TEST_IMAGES.v1 });
      await s.put("app", v1);
      await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v1), "v1 Running");
      const n = s.journal("app").length;
      const v2 = withSide({ name: "web", image: TEST_IMAGES.v2 });
      await s.put("app", v2);
      await s.agent!.kill();
      s.notes.push(`journal had ${s.journal("app").length - n} new event(s) when killed`);
      const t0 = Date.now();
      s.startAgent();
      await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v2), "v2 Running", 90_000);
      s.recoveryMs = Date.now() - t0;
      s.recoveryWhat = "restart → Running on the newest score";
      return v2;
    },
  },
  {
    id: "3b",
    title: "crash in pulling — held by a registry that stalls the pull",
    async run(s) {
      const events = await s.podmanEvents();
      s.startAgent();
      const v1 = withSide({ name: "web", image: TEST_IMAGES.v1 });
      await s.put("app", v1);
      await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
      const reg = s.w.registry;
      const ref = reg.ref(`e2e/${s.device}`, "v2");
      s.w.pulledRefs.add(ref);
      reg.hold();
      s.cleanups.push(() => reg.release());
      const seen = reg.manifestRequests;
      await s.put("app", withSide({ name: "web", image: ref }));
      await s.waitJournal("app", lastTo("pulling"), "in pulling");
      await waitUntil(() => reg.manifestRequests > seen, "the pull reached the registry");
      const v3 = withSide({ name: "web", image: TEST_IMAGES.v3 });
      s.recoveryMs = await crashAndRecover(s, "app", v3, async () => {
        // Resumed in pulling, the restarted agent pulls again (held too); then the registry answers.
        await waitUntil(() => reg.heldCount >= 2, "the resumed pull reached the registry", 30_000).catch(() => undefined);
        reg.release();
      });
      s.recoveryWhat = "restart → Running on the newest score (registry released at once)";
      const v3Created = () => events.filter((e) => e.action === "create" && e.scoreHash === hashOf(v3));
      await waitUntil(() => v3Created().length > 0, "v3's create in Podman's event stream (it can lag the report)").catch(() => undefined);
      expect(v3Created()).to.have.length(1);
      return v3;
    },
  },
  {
    id: "3c",
    title: "crash in stoppingOld — held by a SIGTERM-ignoring container with a 4 s grace",
    async run(s) {
      s.startAgent();
      const stub = withSide({ name: "web", image: TEST_IMAGES.stubborn }, { grace_period_secs: 4 });
      await s.put("app", stub);
      const r0 = await s.waitState("app", (x) => x.phase === "Running", "stubborn Running");
      // The same lifecycle as the stubborn score: only web changes, so only web is stopped.
      const v2 = withSide({ name: "web", image: TEST_IMAGES.v2 }, { grace_period_secs: 4 });
      await s.put("app", v2);
      await s.waitJournal("app", lastTo("stoppingOld"), "in stoppingOld");
      await sleep(500);
      const v3 = withSide({ name: "web", image: TEST_IMAGES.v3 }, { grace_period_secs: 4 });
      s.recoveryMs = await crashAndRecover(s, "app", v3);
      s.recoveryWhat = "restart → Running on the newest score";
      const all = await s.containers();
      expect(all.map((c) => c.Id)).to.not.include(r0.container_ids["web"]);
      expect((await s.state("app"))!.container_ids["side"], "side kept through the crash").to.equal(r0.container_ids["side"]);
      return v3;
    },
  },
  {
    id: "3d",
    title: "crash in startingNew — killed inside the 1 s start-settle window",
    async run(s) {
      const events = await s.podmanEvents();
      s.startAgent();
      const v1 = withSide({ name: "web", image: TEST_IMAGES.v1 });
      await s.put("app", v1);
      await s.waitState("app", (x) => x.phase === "Running", "v1 Running");
      const v2 = withSide({ name: "web", image: TEST_IMAGES.v2 });
      await s.put("app", v2);
      await s.waitJournal("app", lastTo("startingNew"), "in startingNew");
      await sleep(300);
      const v3 = withSide({ name: "web", image: TEST_IMAGES.v3 });
      s.recoveryMs = await crashAndRecover(s, "app", v3);
      s.recoveryWhat = "restart → Running on the newest score";
      // The interrupted start is adopted on resume, never created twice.
      expect(events.filter((e) => e.action === "create" && e.scoreHash === hashOf(v2)).length, "v2 created at most once").to.be.at.most(1);
      return v3;
    },
  },
  {
    id: "3e",
    title: "crash in removing — desired key deleted, held by a SIGTERM-ignoring container with a 4 s grace",
    async run(s) {
      s.startAgent();
      const stub = withSide({ name: "web", image: TEST_IMAGES.stubborn }, { grace_period_secs: 4 });
      await s.put("app", stub);
      await s.waitState("app", (x) => x.phase === "Running", "stubborn Running");
      await s.del("app");
      await s.waitJournal("app", lastTo("removing"), "in removing");
      await sleep(500);
      // Newest: deployed again after the delete.
      const v2 = withSide({ name: "web", image: TEST_IMAGES.v2 });
      s.recoveryMs = await crashAndRecover(s, "app", v2);
      s.recoveryWhat = "restart → removed, then Running on the newest score";
      const states = s.journal("app").map((e) => e.to);
      expect(states.lastIndexOf("removing")).to.be.lessThan(states.lastIndexOf("running"));
      return v2;
    },
  },
];
