// Property-based test of the deployment machine: random command sequences (updates among several
// scores of 1–3 services, the same score with keys reordered, ticks, deletes, rejects, injected
// faults, crashes, vanished containers, values arriving mid-step, step deadlines) against the real
// machine on the real executors over a FakeRuntime. Steps in flight are held with FakeRuntime's
// `hold` gates; nothing waits on a real timer. After each command settles, invariants 1–7 hold;
// at the end the journal replays to the live snapshot.
import { expect } from "chai";
import fc from "fast-check";
import type { RuntimeOp } from "../../runtime/fake.runtime.js";
import { flush, hashOf, reordered, scoreOf, SPECS, World, type SpecId } from "./support/world.js";

const POOL: { specs: SpecId[]; grace?: number }[] = [
  { specs: ["w1"] },
  { specs: ["w2", "d1"] },
  { specs: ["d1", "w2"] }, // the same services in another order: a new hash, nothing to do
  { specs: ["d1"] },
  { specs: ["w3", "d2", "c1"] },
  { specs: ["w1", "c1"] },
  { specs: ["w2", "d1"], grace: 10 }, // only the lifecycle changed: every service is replaced
  { specs: ["w3", "d1"] }, // web changes, db stays: what a history rebuilt from the stream must not recreate
];
const SERVICES = ["web", "db", "cache"] as const;
const IMAGES = Object.values(SPECS).map((s) => s.image);
const poolScore = (i: number) => scoreOf(POOL[i]!.specs, POOL[i]!.grace ?? 5);

type FaultKind = "pull" | "create" | "start" | "stop" | "remove" | "exitAtStart";
type HeldOp = Extract<RuntimeOp, "ensureImage" | "stop" | "remove" | "startService">;
type Trigger = { kind: "update"; score: number } | { kind: "delete" };
type MidValue = { kind: "update"; score: number } | { kind: "reject" } | { kind: "delete" };

type Cmd =
  | { c: "update"; score: number; reorder: boolean }
  | { c: "same" }
  | { c: "tick" }
  | { c: "delete" }
  | { c: "reject" }
  | { c: "fault"; kind: FaultKind; index: number }
  | { c: "crash" | "vanish"; service: number }
  | { c: "midstep"; op: HeldOp; trigger: Trigger; values: MidValue[] }
  | { c: "timeout"; op: HeldOp; trigger: Trigger }
  | { c: "wipe" };

const score = fc.nat({ max: POOL.length - 1 });
const op = fc.constantFrom<HeldOp>("ensureImage", "stop", "remove", "startService");
const trigger = fc.oneof(
  { weight: 4, arbitrary: score.map((s): Trigger => ({ kind: "update", score: s })) },
  { weight: 1, arbitrary: fc.constant<Trigger>({ kind: "delete" }) },
);
const midValue = fc.oneof(
  { weight: 5, arbitrary: score.map((s): MidValue => ({ kind: "update", score: s })) },
  { weight: 1, arbitrary: fc.constant<MidValue>({ kind: "reject" }) },
  { weight: 1, arbitrary: fc.constant<MidValue>({ kind: "delete" }) },
);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ c: fc.constant("update" as const), score, reorder: fc.boolean() }) },
  { weight: 2, arbitrary: fc.constant<Cmd>({ c: "same" }) },
  { weight: 4, arbitrary: fc.constant<Cmd>({ c: "tick" }) },
  { weight: 1, arbitrary: fc.constant<Cmd>({ c: "delete" }) },
  { weight: 1, arbitrary: fc.constant<Cmd>({ c: "reject" }) },
  {
    weight: 4,
    arbitrary: fc.record({
      c: fc.constant("fault" as const),
      kind: fc.constantFrom<FaultKind>("pull", "create", "start", "stop", "remove", "exitAtStart"),
      index: fc.nat({ max: 20 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ c: fc.constantFrom("crash" as const, "vanish" as const), service: fc.nat({ max: SERVICES.length - 1 }) }) },
  { weight: 4, arbitrary: fc.record({ c: fc.constant("midstep" as const), op, trigger, values: fc.array(midValue, { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ c: fc.constant("timeout" as const), op, trigger }) },
  // The state dir lost (containers still running): rebuilt from the published journal, KV and containers.
  { weight: 2, arbitrary: fc.constant<Cmd>({ c: "wipe" }) },
);

/** Flushes until no step is in flight and nothing is queued; a sequence that never settles fails. */
async function settle(w: World, what: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (w.settledNow()) return;
    await flush(2);
  }
  throw new Error(`did not settle after ${what}: ${w.state}, next=${JSON.stringify(w.snapshot.context.next)}`);
}

function sendTrigger(w: World, t: Trigger) {
  if (t.kind === "update") w.update(poolScore(t.score));
  else w.delete();
}

/** Runs one command against the world and checks what that command alone promises. */
async function apply(w: World, k: Cmd): Promise<void> {
  const before = { state: w.state, calls: w.runtime.calls.length, journal: w.journal.length, down: w.downServices() };
  switch (k.c) {
    case "update":
      w.update(k.reorder ? reordered(poolScore(k.score)) : poolScore(k.score));
      break;
    case "same": {
      const target = w.snapshot.context.target;
      if (!target || w.snapshot.context.desiredHash !== target.hash) return;
      const view = JSON.stringify(w.snapshot.context);
      expect(w.update(reordered(structuredClone(target.score)))).to.equal(target.hash);
      await flush();
      // Invariant 4: same canonical hash, no transition and no call.
      expect(w.journal.length, "inv4: no transition").to.equal(before.journal);
      expect(w.runtime.calls.length, "inv4: no call").to.equal(before.calls);
      expect(JSON.stringify(w.snapshot.context)).to.equal(view);
      return;
    }
    case "wipe": {
      if (!w.settledNow()) return;
      const problems = await w.wipe();
      expect(problems, `inv5 after a wipe: ${problems.join("; ")}`).to.deep.equal([]);
      return;
    }
    case "tick":
      await w.tick();
      await settle(w, "tick");
      if ((before.state === "running" && before.down.length === 0) || before.state === "failed") {
        // Invariant 1 (healthy) and 3 (failed: nothing of any earlier score is started again).
        expect(w.runtime.mutations(before.calls).map((c) => `${c.op} ${c.arg}`), "inv1/3: tick mutations").to.deep.equal([]);
        expect(w.journal.length, "inv1: a healthy tick changes nothing").to.equal(before.journal);
      }
      return;
    case "delete":
      w.delete();
      break;
    case "reject":
      w.reject();
      break;
    case "fault": {
      const service = SERVICES[k.index % SERVICES.length]!;
      const once = { once: true };
      if (k.kind === "pull") {
        const image = IMAGES[k.index % IMAGES.length]!;
        w.fake.dropImage(image);
        w.fake.failPull(image, undefined, once);
      } else if (k.kind === "create") w.fake.failCreate(service, undefined, once);
      else if (k.kind === "start") w.fake.failStart(service, undefined, once);
      else if (k.kind === "stop") w.fake.failStop(service, undefined, once);
      else if (k.kind === "remove") w.fake.failRemove(service, undefined, once);
      else w.fake.exitAtStart(service, 3, once);
      return;
    }
    case "crash":
    case "vanish": {
      const id = w.snapshot.context.containerIds[SERVICES[k.service]!];
      if (!id || !w.fake.peek(id)) return;
      if (k.c === "crash") w.fake.crash(id);
      else w.fake.vanish(id);
      return;
    }
    case "midstep":
    case "timeout": {
      let reached = false;
      const gate = w.fake.hold(k.op);
      void gate.reached.then(() => (reached = true));
      sendTrigger(w, k.trigger);
      await flush();
      if (reached && k.c === "midstep") {
        const [state, calls] = [w.state, w.runtime.calls.length];
        for (const v of k.values) {
          if (v.kind === "update") w.update(poolScore(v.score));
          else if (v.kind === "reject") w.reject();
          else w.delete();
        }
        await flush();
        // Invariant 7: the step in flight finishes; nothing is started or stopped meanwhile.
        expect(w.state, "inv7: the step in flight is not interrupted").to.equal(state);
        expect(w.runtime.calls.length, "inv7: queuing makes no call").to.equal(calls);
        gate();
      } else if (reached && w.deadline) {
        await w.timeout();
        // The held call is abandoned, as a hung libpod request would be: later calls of that op go
        // through a fresh gate, released at once; the abandoned one never returns.
        w.fake.hold(k.op)();
      } else gate();
      break;
    }
  }
  await settle(w, k.c);
}

describe("deployment machine, property-based (fast-check)", function () {
  this.timeout(120_000);
  const numRuns = Number(process.env["FC_RUNS"] ?? 200);

  it(`keeps invariants 1–7 under random commands, faults and mid-step updates (${numRuns} runs)`, async () => {
    let commands = 0;
    let wipes = 0;
    let lossy = 0;
    let targetOnly = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 3, maxLength: 40, size: "medium" }), async (cmds) => {
        const w = new World({ gateSteps: false });
        let unseen = false;
        try {
          for (const [i, k] of cmds.entries()) {
            if (w.state === "removed") break;
            await apply(w, k);
            commands += 1;
            // A crash or vanish is the agent's to see at the next tick in running; until a tick has
            // brought it back to running, an upgrade that leaves that service unchanged may report
            // running with the container still gone (by design: change is detected by hash, liveness
            // by tick), so invariant 6 is checked from that tick on.
            if (k.c === "crash" || k.c === "vanish") unseen = true;
            if (k.c === "tick" && w.state === "running") unseen = false;
            w.checkInvariants(`after command ${i} ${JSON.stringify(k)}`, false, !unseen);
          }
          w.checkInvariants("at the end", true, !unseen);
          // Invariant 5 on the journal as stored and published (redacted, through JSON), too.
          await w.checkPublishedReplay("at the end");
          wipes += w.wipes.count;
          lossy += w.wipes.lossy;
          targetOnly += w.wipes.targetOnly;
        } finally {
          w.stop();
        }
      }),
      {
        numRuns,
        examples: [
          // Issue 13: a liveness repair, a failed upgrade retried forward, its scores pushed out of
          // the KV history, the state dir lost: rebuilt exactly (db's env from its container, web's
          // from what running proved), so the next upgrade of web leaves db alone.
          [[
            { c: "update", score: 1, reorder: false },
            { c: "crash", service: 1 },
            { c: "tick" },
            { c: "fault", kind: "pull", index: 2 },
            { c: "update", score: 7, reorder: false },
            { c: "update", score: 2, reorder: false },
            { c: "update", score: 7, reorder: true },
            { c: "reject" }, { c: "reject" }, { c: "reject" }, { c: "reject" }, { c: "reject" },
            { c: "wipe" },
            { c: "update", score: 1, reorder: false },
            { c: "tick" },
          ]],
          // Regression: a removeAll that fails part-way must forget what it did remove (invariant 6).
          [[{ c: "update", score: 5, reorder: false }, { c: "fault", kind: "stop", index: 8 }, { c: "delete" }, { c: "update", score: 0, reorder: false }, { c: "tick" }]],
          // Coalescing: three values mid-pull, then a timeout mid-stop, then a same-hash update.
          [[
            { c: "update", score: 1, reorder: false },
            { c: "midstep", op: "ensureImage", trigger: { kind: "update", score: 4 }, values: [{ kind: "update", score: 0 }, { kind: "reject" }, { kind: "update", score: 3 }] },
            { c: "timeout", op: "stop", trigger: { kind: "update", score: 0 } },
            { c: "same" },
            { c: "tick" },
          ]],
        ],
      },
    );
    console.log(`      property runs: ${numRuns}, commands: ${commands}, state-dir wipes: ${wipes} (${lossy} with env values on record nowhere, ${targetOnly} of them only a target's that never ran)`);
  });

  it("hashes reordered keys the same and reordered services differently", () => {
    // The pool relies on it: POOL[1] and POOL[2] differ as scores though not as services.
    expect(hashOf(reordered(poolScore(1)))).to.equal(hashOf(poolScore(1)));
    expect(hashOf(poolScore(2))).to.not.equal(hashOf(poolScore(1)));
  });
});
