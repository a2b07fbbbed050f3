// Model-based test of the deployment machine. An abstract model (no invocations) whose events are
// outcomes generates paths with xstate/graph; each path drives the REAL machine on the real step
// executors over a FakeRuntime, every step held until the path says how it ends. After every step
// the real state and the abstract context must match the model, and invariants 1–7 must hold.
import { expect } from "chai";
import { transition, type AnyMachineSnapshot, type AnyStateMachine } from "xstate";
import { createTestModel, type StatePath, type TestParam } from "xstate/graph";
import { buildModelMachine, EVENT_TYPES, MODEL_SCORES, next, type MCtx, type MEvent, type MState, type ScoreId } from "./support/abstract.model.js";
import { ALL_EDGES, flush, hashOf, reordered, scoreOf, specIdOf, World } from "./support/world.js";

const SCORE_HASH = new Map(([1, 2, 3] as ScoreId[]).map((s) => [s, hashOf(scoreOf(MODEL_SCORES[s]))]));
const scoreHash = (s: ScoreId) => SCORE_HASH.get(s)!;
const SCORE_IDS: ScoreId[] = [1, 2, 3];
const scoreOfHash = (h: string | null | undefined) => SCORE_IDS.find((s) => scoreHash(s) === h) ?? null;

const PARAM_EVENTS: MEvent[] = SCORE_IDS.flatMap((s) => [
  { type: "UPDATE", s },
  { type: "UPDATE_MIDSTEP", s },
]);
/** State identity is the snapshot itself (value and context), so one shortest path per reachable model state. */
const serializeTransition = () => "";

type ModelSnapshot = AnyMachineSnapshot & { context: MCtx };
type Path = StatePath<ModelSnapshot, MEvent> & { description: string };

/** The real context seen through the model's abstraction (which restarts wait is the world's, not the machine's). */
function abstractOf(w: World) {
  const c = w.snapshot.context;
  const q = c.next;
  return {
    value: w.state,
    applied: Object.fromEntries(Object.entries(c.applied).map(([k, a]) => [k, specIdOf(a.service)])),
    down: w.downServices(),
    sick: Object.keys(c.services).filter((s) => c.services[s]!.unhealthy).sort(),
    target: scoreOfHash(c.target?.hash),
    desired: scoreOfHash(c.desiredHash),
    next: q === null ? null : q.kind === "update" ? { k: "u", s: scoreOfHash(q.hash)! } : q.kind === "delete" ? { k: "d" } : { k: "r" },
    retry: c.retry === null ? null : c.retry.step === "pull" ? "pull" : "start",
  };
}
const modelView = (s: ModelSnapshot) => {
  const { plan: _plan, pending: _p, vanished: _v, ...rest } = s.context as MCtx;
  return { value: String(s.value), ...rest };
};

/** Runs one path against a fresh world; returns the world (stopped) for its edges and journal. */
async function runPath(model: { testPath: (p: never, params: never) => Promise<unknown> }, path: Path): Promise<World> {
  const w = new World();
  let step = 0;
  const where = () => `path "${path.description}", step ${step}`;
  // The service the model's liveness events act on: the first running one, not unhealthy, with no restart waiting.
  const firstUp = () => {
    const c = w.snapshot.context;
    return Object.keys(c.applied).find((s) => w.fake.peek(c.containerIds[s]!)?.state === "running" && !c.services[s]?.unhealthy && !waiting.has(s))!;
  };
  const waiting = new Set<string>();
  // The first recorded service whose container is there: the one a removal fails on.
  const firstPresent = () => Object.keys(w.snapshot.context.applied).find((s) => w.fake.peek(w.snapshot.context.containerIds[s] ?? "-") !== null)!;
  const withFault = async (arrange: () => void, mode: "run" | "throw" = "run") => {
    arrange();
    try {
      await w.release(mode);
    } finally {
      w.fake.clearFaults();
      w.runtime.failList = false;
    }
  };
  const ctx = () => w.snapshot.context;
  try {
    await model.testPath(path as never, {
      events: {
        UPDATE: async ({ event }) => {
          w.update(scoreOf(MODEL_SCORES[(event as unknown as { s: ScoreId }).s]));
          await flush();
        },
        UPDATE_MIDSTEP: async ({ event }) => {
          // An intermediate value, then the newest one, both while the step is in flight.
          const s = (event as unknown as { s: ScoreId }).s;
          const mid = SCORE_IDS.find((x) => x !== s && scoreHash(x) !== ctx().desiredHash)!;
          const [before, calls, journal] = [w.state, w.runtime.calls.length, w.journal.length];
          w.update(scoreOf(MODEL_SCORES[mid]));
          w.update(scoreOf(MODEL_SCORES[s]));
          await flush();
          expect(w.state, "the step in flight is not interrupted").to.equal(before);
          expect(w.runtime.calls.length, "queuing makes no runtime call").to.equal(calls);
          expect(w.journal.length - journal, "queuing is recorded").to.be.at.most(2);
        },
        UPDATE_SAME: async () => {
          const [view, calls, journal] = [JSON.stringify(w.snapshot.context), w.runtime.calls.length, w.journal.length];
          const hash = w.update(reordered(scoreOf(MODEL_SCORES[scoreOfHash(ctx().desiredHash)!])));
          await flush();
          expect(hash, "reordered keys, same hash").to.equal(ctx().desiredHash);
          // Invariant 4: same hash, no transition, no call.
          expect(w.journal.length, "inv4: no transition").to.equal(journal);
          expect(w.runtime.calls.length, "inv4: no call").to.equal(calls);
          expect(JSON.stringify(w.snapshot.context)).to.equal(view);
        },
        REJECT: async () => {
          w.reject();
          await flush();
        },
        DELETE: async () => {
          w.delete();
          await flush();
        },
        TICK: async () => {
          const [state, calls, journal, healthy] = [w.state, w.runtime.calls.length, w.journal.length, w.downServices().length === 0];
          await w.tick();
          const made = w.runtime.mutations(calls);
          if ((state === "running" && healthy) || state === "failed") {
            // Invariant 1 (healthy) and 3 (failed stays failed): the tick is a list call and nothing else.
            expect(made.map((c) => `${c.op} ${c.arg}`), "inv1/3: a tick makes no create/stop/remove call").to.deep.equal([]);
            expect(w.journal.length, "inv1: a healthy tick changes nothing").to.equal(journal);
          }
        },
        CRASH_TICK: async () => {
          const calls = w.runtime.calls.length;
          const state = w.state;
          w.fake.crash(ctx().containerIds[firstUp()]!);
          await w.tick();
          if (state === "failed") expect(w.runtime.mutations(calls), "a v1 tick repairs nothing of a failed deployment").to.deep.equal([]);
        },
        EXIT: async () => {
          const svc = firstUp();
          w.fake.crash(ctx().containerIds[svc]!, 1);
          w.exited(svc, 1);
          waiting.add(svc);
          await flush();
        },
        VANISH: async () => {
          const svc = firstUp();
          w.fake.vanish(ctx().containerIds[svc]!);
          w.exited(svc, null);
          waiting.add(svc);
          await flush();
        },
        UNHEALTHY: async () => {
          const svc = firstUp();
          w.unhealthy(svc);
          waiting.add(svc);
          await flush();
        },
        HEALTHY: async () => {
          const c = ctx();
          const svc = Object.keys(c.services).sort().find((s) => c.services[s]!.unhealthy)!;
          w.healthy(svc);
          if (w.fake.peek(c.containerIds[svc]!)?.state === "running") waiting.delete(svc);
          await flush();
        },
        RESTARTS_DUE: async () => {
          const calls = w.runtime.calls.length;
          await w.restartsDue();
          waiting.clear();
          // Nothing but what a restart does: a status look, a start of the same container, a create of a gone one.
          expect(w.runtime.calls.slice(calls).map((c) => c.op).filter((op) => !["status", "restart", "startService", "list"].includes(op))).to.deep.equal([]);
        },
        RETRY_DUE: () => w.retryDue(),
        UPDATE_RETRY: async () => {
          const c = ctx();
          const revision = c.revision;
          const hash = w.update(reordered(structuredClone(c.target!.score)));
          await flush();
          expect(hash).to.equal(c.desiredHash);
          expect(w.snapshot.context.revision, "a retry takes the newer revision").to.be.greaterThan(revision!);
          expect(w.journal.some((t) => t.event.type === "desired.retried")).to.equal(true);
        },
        VANISH_TICK: async () => {
          w.fake.vanish(ctx().containerIds[firstUp()]!);
          await w.tick();
        },
        PULL_OK: () => w.release(),
        PULL_FAIL: () =>
          withFault(() => {
            for (const image of ctx().plan!.pull) {
              w.fake.dropImage(image);
              w.fake.failPull(image);
            }
          }),
        STOP_OK: () => w.release(),
        STOP_FAIL: () => withFault(() => w.fake.failStop(w.state === "removing" ? firstPresent() : ctx().plan!.stop[0]!)),
        REMOVE_FAIL: () => withFault(() => w.fake.failRemove(w.state === "removing" ? firstPresent() : ctx().plan!.stop[0]!)),
        START_OK: async () => {
          waiting.clear();
          await w.release();
        },
        START_FAIL: () => withFault(() => w.fake.failStart(ctx().plan!.start[0]!.service.name, "simulated start failure", { once: true })),
        VERIFY_OK: () => w.release(),
        // The first started service dies before readiness looks at it.
        VERIFY_FAIL: () => withFault(() => w.fake.crash(ctx().containerIds[ctx().plan!.start[0]!.service.name]!, 2)),
        REMOVE_OK: () => w.release(),
        LIST_FAIL: () => withFault(() => (w.runtime.failList = true)),
        STEP_THROW: () => withFault(() => {}, "throw"),
        TIMEOUT: () => w.timeout(),
      },
      states: {
        "*": (s) => {
          step += 1;
          expect(abstractOf(w), `${where()}: real machine vs model`).to.deep.equal(modelView(s));
          w.checkInvariants(where());
        },
      },
    } as TestParam<ModelSnapshot, MEvent> as never);
    // At the end of every path: the whole journal replays to the live snapshot (invariant 5).
    w.checkInvariants(`${where()} (end)`, true);
    return w;
  } finally {
    w.stop();
  }
}

/**
 * What decides which machine edge a step takes: where it starts, what is queued, the outcome, where
 * it lands; for restarts, whether one creates a gone container again (its new id is an edge of its own).
 */
const coverageKey = (from: ModelSnapshot, e: MEvent, to: ModelSnapshot) =>
  `${String(from.value)}|${from.context.next?.k ?? "-"}|${e.type}|${String(to.value)}|${to.context.next?.k ?? "-"}${e.type === "RESTARTS_DUE" ? `|${from.context.vanished.length > to.context.vanished.length}` : ""}`;

const LIVENESS_EVENTS: MEvent["type"][] = ["EXIT", "VANISH", "UNHEALTHY", "HEALTHY", "RESTARTS_DUE"];

/**
 * Two families of paths, each over its own slice of the model's events (all of them at once would
 * make tens of thousands of states): upgrades (every desired value and step outcome, mid-step
 * values, retries and the v1 repair), and liveness (a deployed score whose services die, vanish or
 * turn unhealthy, in running and failed, with the restarts that follow and an upgrade over them).
 */
const FAMILIES: Array<{ name: string; events: MEvent["type"][]; params: MEvent[] }> = [
  { name: "upgrades", events: EVENT_TYPES.filter((e) => !LIVENESS_EVENTS.includes(e)), params: PARAM_EVENTS },
  {
    name: "liveness",
    events: ["UPDATE", "PULL_OK", "PULL_FAIL", "STOP_OK", "STOP_FAIL", "START_OK", "VERIFY_OK", "VERIFY_FAIL", "RETRY_DUE", "UPDATE_RETRY", "TICK", "CRASH_TICK", ...LIVENESS_EVENTS],
    params: [{ type: "UPDATE", s: 2 }, { type: "UPDATE", s: 3 }],
  },
];

type Model = ReturnType<typeof createTestModel>;

/**
 * The paths of each family: one shortest path to every reachable model state (state coverage);
 * then, for every model transition class (coverageKey) those paths do not take, the shortest path
 * to its source extended by it (transition coverage); then the simple paths of one slice (a first
 * upgrade and a second one, every order of success, failure, retry and crash), the long paths
 * shortest ones skip.
 */
export function generatePaths(): { runs: Array<{ model: Model; path: Path }>; counts: Record<string, number> } {
  const runs: Array<{ model: Model; path: Path }> = [];
  const counts: Record<string, number> = { shortest: 0, extended: 0, simple: 0 };
  const covered = new Set<string>();
  for (const family of FAMILIES) {
    const machine = buildModelMachine({ events: family.events }) as unknown as AnyStateMachine;
    const model = createTestModel(machine, { events: family.params, serializeTransition });
    const shortest = model.getShortestPaths() as unknown as Path[];
    for (const p of shortest) p.steps.forEach((st, i) => i > 0 && covered.add(coverageKey(p.steps[i - 1]!.state, st.event, st.state)));
    const events: MEvent[] = family.events.flatMap((type) =>
      type === "UPDATE" || type === "UPDATE_MIDSTEP" ? family.params.filter((p) => p.type === type) : [{ type } as MEvent],
    );
    // Every prefix of a shortest path is a shortest path too (the generator drops those that are
    // prefixes of longer ones): extend each, shortest first.
    const prefixes = shortest.flatMap((p) => p.steps.map((_, i) => p.steps.slice(0, i + 1))).sort((a, b) => a.length - b.length);
    const extended: Path[] = [];
    for (const steps of prefixes) {
      const from = steps.at(-1)!.state;
      for (const e of events) {
        if (!next(String(from.value) as MState, from.context, e)) continue;
        const [to] = transition(machine, from as never, e as never) as unknown as [ModelSnapshot];
        const k = coverageKey(from, e, to);
        if (covered.has(k)) continue;
        covered.add(k);
        const all = [...steps, { event: e, state: to }];
        extended.push({ state: to, weight: all.length - 1, steps: all, description: all.slice(1).map((x) => x.event.type).join(" → ") });
      }
    }
    for (const path of [...shortest, ...extended]) runs.push({ model, path });
    counts["shortest"]! += shortest.length;
    counts["extended"]! += extended.length;
  }
  const slice = createTestModel(
    buildModelMachine({ events: ["UPDATE", "PULL_OK", "PULL_FAIL", "STOP_OK", "START_OK", "START_FAIL", "VERIFY_OK", "TICK", "CRASH_TICK"] }) as unknown as AnyStateMachine,
    { events: [{ type: "UPDATE", s: 1 }, { type: "UPDATE", s: 2 }], serializeTransition },
  );
  const simple = slice.getSimplePaths({
    toState: (s) => s.matches("running") && (s.context as MCtx).desired === 2 && Object.keys((s.context as MCtx).applied).length === 2,
  }) as unknown as Path[];
  for (const path of simple) runs.push({ model: slice, path });
  counts["simple"] = simple.length;
  return { runs, counts };
}

/** Every path, generated once and run once; the tests below share the outcome. */
let runAll: Promise<{ paths: number; steps: number; edges: Set<string>; synthetic: Set<string> }> | null = null;
function pathsRun() {
  runAll ??= (async () => {
    const t0 = performance.now();
    const { runs, counts } = generatePaths();
    console.log(`      generated in ${Math.round(performance.now() - t0)} ms`);
    const edges = new Set<string>();
    const synthetic = new Set<string>();
    let steps = 0;
    for (const { model, path } of runs) {
      const w = await runPath(model, path);
      steps += path.steps.length;
      for (const e of w.edges) edges.add(e);
      for (const e of w.syntheticEdges) synthetic.add(e);
    }
    const paths = runs.map((r) => r.path);
    console.log(`      model paths: ${paths.length} (${counts["shortest"]} shortest, ${counts["extended"]} shortest + one transition, ${counts["simple"]} simple), ${steps} steps`);
    const covered = ALL_EDGES.filter((e) => edges.has(e) || synthetic.has(e));
    console.log(`      distinct machine transitions covered: ${covered.length} of ${ALL_EDGES.length} edges`);
    return { paths: paths.length, steps, edges, synthetic };
  })();
  return runAll;
}

describe("deployment machine, model-based (xstate/graph)", function () {
  this.timeout(600_000);

  it("drives the real machine along every generated path: state, context and invariants 1–7 agree at each step", async () => {
    const r = await pathsRun();
    expect(r.paths).to.be.greaterThan(100);
  });

  it("covers every edge of machineEdges(deploymentMachine): a transition without a path fails here", async () => {
    const r = await pathsRun();
    const seen = new Set([...r.edges, ...r.synthetic]);
    const missing = ALL_EDGES.filter((e) => !seen.has(e));
    expect(missing, "machine edges no generated path takes").to.deep.equal([]);
    // Edges the real executors can never take: they convert every runtime failure into a `failure`
    // output, so only an executor that itself throws reaches these. Named here so the list is visible.
    const syntheticOnly = ALL_EDGES.filter((e) => r.synthetic.has(e) && !r.edges.has(e));
    expect(syntheticOnly).to.deep.equal([
      "stoppingOld -> failed on xstate.error.actor.stopOld",
      "startingNew -> failed on xstate.error.actor.startNew",
      "verifying -> failed on xstate.error.actor.verify",
    ]);
  });
});
