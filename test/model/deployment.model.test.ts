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

/** The real context seen through the model's abstraction. */
function abstractOf(w: World): MCtx & { value: string } {
  const c = w.snapshot.context;
  const q = c.next;
  return {
    value: w.state,
    applied: Object.fromEntries(Object.entries(c.applied).map(([k, a]) => [k, specIdOf(a.service)])),
    down: w.downServices(),
    target: scoreOfHash(c.target?.hash),
    desired: scoreOfHash(c.desiredHash),
    next: q === null ? null : q.kind === "update" ? { k: "u", s: scoreOfHash(q.hash)! } : q.kind === "delete" ? { k: "d" } : { k: "r" },
    plan: null,
  };
}
const modelView = (s: ModelSnapshot) => {
  const { plan: _plan, ...rest } = s.context;
  return { value: String(s.value), ...rest, plan: null };
};

/** Runs one path against a fresh world; returns the world (stopped) for its edges and journal. */
async function runPath(model: { testPath: (p: never, params: never) => Promise<unknown> }, path: Path): Promise<World> {
  const w = new World();
  let step = 0;
  const where = () => `path "${path.description}", step ${step}`;
  const firstUp = () => Object.keys(w.snapshot.context.applied).find((s) => w.fake.peek(w.snapshot.context.containerIds[s]!)?.state === "running")!;
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
          if (state === "failed") expect(w.runtime.mutations(calls), "inv3: a failed deployment repairs nothing").to.deep.equal([]);
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
        STOP_FAIL: () => withFault(() => w.fake.failStop(w.state === "removing" ? Object.keys(ctx().containerIds)[0]! : ctx().plan!.stop[0]!)),
        REMOVE_FAIL: () => withFault(() => w.fake.failRemove(w.state === "removing" ? Object.keys(ctx().containerIds)[0]! : ctx().plan!.stop[0]!)),
        START_OK: () => w.release(),
        START_FAIL: () => withFault(() => w.fake.exitAtStart(ctx().plan!.start[0]!.service.name, 1)),
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
    // At the end of every path: the whole journal replays to the live snapshot (invariant 5), as
    // it is held in memory and as it is stored and published (redacted, through JSON); and once at
    // rest, a state dir lost then is rebuilt to the live snapshot from the stream, KV and containers.
    w.checkInvariants(`${where()} (end)`, true);
    await w.checkPublishedReplay(`${where()} (end)`);
    if (w.settledNow()) {
      expect(await w.wipe(), `${where()}: inv5 after a wipe`).to.deep.equal([]);
      expect(w.wipes.lossy, "three scores always fit the KV history: nothing is lost").to.equal(0);
    }
    return w;
  } finally {
    w.stop();
  }
}

const ALL_MODEL_EVENTS: MEvent[] = EVENT_TYPES.flatMap((type) =>
  type === "UPDATE" || type === "UPDATE_MIDSTEP" ? SCORE_IDS.map((s) => ({ type, s }) as MEvent) : [{ type } as MEvent],
);
/** What decides which machine edge a step takes: where it starts, what is queued, the outcome, where it lands. */
const coverageKey = (from: ModelSnapshot, e: MEvent, to: ModelSnapshot) =>
  `${String(from.value)}|${from.context.next?.k ?? "-"}|${e.type}|${String(to.value)}|${to.context.next?.k ?? "-"}`;

/**
 * The paths: one shortest path to every reachable model state (state coverage); then, for every
 * model transition class (coverageKey) those paths do not take, the shortest path to its source
 * extended by it (transition coverage); then the simple paths of one slice (a first upgrade and a
 * second one, every order of success and failure), the long paths shortest ones skip.
 */
export function generatePaths(): { model: ReturnType<typeof createTestModel>; paths: Path[]; counts: Record<string, number> } {
  const machine = buildModelMachine() as unknown as AnyStateMachine;
  const model = createTestModel(machine, { events: PARAM_EVENTS, serializeTransition });
  const shortest = model.getShortestPaths() as unknown as Path[];
  const covered = new Set<string>();
  for (const p of shortest) p.steps.forEach((st, i) => i > 0 && covered.add(coverageKey(p.steps[i - 1]!.state, st.event, st.state)));
  // Every prefix of a shortest path is a shortest path too (the generator drops those that are
  // prefixes of longer ones): extend each, shortest first.
  const prefixes = shortest.flatMap((p) => p.steps.map((_, i) => p.steps.slice(0, i + 1))).sort((a, b) => a.length - b.length);
  const extended: Path[] = [];
  for (const steps of prefixes) {
    const from = steps.at(-1)!.state;
    for (const e of ALL_MODEL_EVENTS) {
      if (!next(String(from.value) as MState, from.context, e)) continue;
      const [to] = transition(machine, from as never, e as never) as unknown as [ModelSnapshot];
      const k = coverageKey(from, e, to);
      if (covered.has(k)) continue;
      covered.add(k);
      const all = [...steps, { event: e, state: to }];
      extended.push({ state: to, weight: all.length - 1, steps: all, description: all.slice(1).map((x) => x.event.type).join(" → ") });
    }
  }
  const slice = createTestModel(
    buildModelMachine({ events: ["UPDATE", "PULL_OK", "PULL_FAIL", "STOP_OK", "START_OK", "START_FAIL", "TICK", "CRASH_TICK"] }) as unknown as AnyStateMachine,
    { events: [{ type: "UPDATE", s: 1 }, { type: "UPDATE", s: 2 }], serializeTransition },
  );
  const simple = slice.getSimplePaths({
    toState: (s) => s.matches("running") && (s.context as MCtx).desired === 2 && Object.keys((s.context as MCtx).applied).length === 2,
  }) as unknown as Path[];
  return {
    model,
    paths: [...shortest, ...extended, ...simple],
    counts: { shortest: shortest.length, extended: extended.length, simple: simple.length },
  };
}

/** Every path, generated once and run once; the tests below share the outcome. */
let runAll: Promise<{ paths: number; steps: number; edges: Set<string>; synthetic: Set<string> }> | null = null;
function pathsRun() {
  runAll ??= (async () => {
    const t0 = performance.now();
    const { model, paths, counts } = generatePaths();
    console.log(`      generated in ${Math.round(performance.now() - t0)} ms`);
    const edges = new Set<string>();
    const synthetic = new Set<string>();
    let steps = 0;
    for (const p of paths) {
      const w = await runPath(model, p);
      steps += p.steps.length;
      for (const e of w.edges) edges.add(e);
      for (const e of w.syntheticEdges) synthetic.add(e);
    }
    console.log(`      model paths: ${paths.length} (${counts.shortest} shortest, ${counts.extended} shortest + one transition, ${counts.simple} simple), ${steps} steps`);
    const covered = ALL_EDGES.filter((e) => edges.has(e) || synthetic.has(e));
    console.log(`      distinct machine transitions covered: ${covered.length} of ${ALL_EDGES.length} edges`);
    return { paths: paths.length, steps, edges, synthetic };
  })();
  return runAll;
}

describe("deployment machine, model-based (xstate/graph)", function () {
  this.timeout(120_000);

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
    ]);
  });
});
