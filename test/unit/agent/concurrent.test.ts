import { expect } from "chai";
import { runParts, type Part } from "../../../agent/deployments/concurrent.js";

/** Work whose every call the test ends by hand: `begun` in order, `end(key)` / `fail(key)`. */
function handWork() {
  const open = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  const begun: string[] = [];
  let onBegin: (() => void) | null = null;
  return {
    begun,
    running: () => [...open.keys()],
    work: (key: string) =>
      new Promise<void>((resolve, reject) => {
        begun.push(key);
        open.set(key, { resolve, reject });
        onBegin?.();
      }),
    end(key: string) {
      const o = open.get(key);
      if (!o) throw new Error(`${key} is not running`);
      open.delete(key);
      o.resolve();
    },
    fail(key: string, message = `${key} failed`) {
      const o = open.get(key);
      if (!o) throw new Error(`${key} is not running`);
      open.delete(key);
      o.reject(new Error(message));
    },
    /** Resolves once `n` calls have begun in all. */
    begunCount(n: number): Promise<void> {
      return new Promise((resolve) => {
        const check = () => {
          if (begun.length >= n) {
            onBegin = null;
            resolve();
          }
        };
        onBegin = check;
        check();
      });
    },
  };
}

const parts = (spec: Record<string, string[]>): Part<string>[] => Object.entries(spec).map(([key, after]) => ({ key, after, value: key }));
const never = () => new AbortController().signal;

describe("runParts: the parts of a step side by side", () => {
  it("runs no more than `limit` parts at once, and every part once", async () => {
    const h = handWork();
    const outcome = runParts(parts({ a: [], b: [], c: [], d: [], e: [] }), 2, h.work, never());
    await h.begunCount(2);
    expect(h.running()).to.deep.equal(["a", "b"]);
    h.end("a");
    await h.begunCount(3);
    expect(h.running()).to.have.length(2);
    for (const k of ["b", "c"]) h.end(k);
    await h.begunCount(5);
    expect(h.running()).to.have.length(2);
    for (const k of ["d", "e"]) h.end(k);
    const r = await outcome;
    expect(r.failure).to.equal(undefined);
    expect(r.done).to.deep.equal(["a", "b", "c", "d", "e"]);
    expect(h.begun).to.deep.equal(["a", "b", "c", "d", "e"]);
  });

  it("begins a part only once every part it comes after has succeeded", async () => {
    const h = handWork();
    // db first; web and worker after db; proxy after web.
    const outcome = runParts(parts({ proxy: ["web"], web: ["db"], worker: ["db"], db: [] }), 4, h.work, never());
    await h.begunCount(1);
    expect(h.running()).to.deep.equal(["db"]);
    h.end("db");
    await h.begunCount(3);
    expect(h.running()).to.deep.equal(["web", "worker"]);
    h.end("web");
    await h.begunCount(4);
    expect(h.running()).to.deep.equal(["worker", "proxy"]);
    h.end("proxy");
    h.end("worker");
    expect((await outcome).done).to.have.members(["db", "web", "proxy", "worker"]);
  });

  it("ignores an `after` that names no part of this step", async () => {
    const h = handWork();
    const outcome = runParts(parts({ web: ["db"] }), 4, h.work, never());
    await h.begunCount(1);
    h.end("web");
    expect(await outcome).to.deep.equal({ done: ["web"] });
  });

  it("after the first failure begins nothing more, keeps what the running parts did, and reports that first failure", async () => {
    const h = handWork();
    const outcome = runParts(parts({ a: [], b: [], c: [], d: [] }), 3, h.work, never());
    await h.begunCount(3);
    h.fail("b", "b: image not known");
    h.end("a");
    h.fail("c", "c failed later");
    const r = await outcome;
    expect(h.begun).to.deep.equal(["a", "b", "c"]);
    expect(r.done).to.deep.equal(["a"]);
    expect(r.failure).to.have.property("part", "b");
    expect((r.failure as { error: Error }).error.message).to.equal("b: image not known");
  });

  it("does not run a part whose `after` failed", async () => {
    const h = handWork();
    const outcome = runParts(parts({ db: [], web: ["db"], cache: [] }), 4, h.work, never());
    await h.begunCount(2);
    h.fail("db");
    h.end("cache");
    const r = await outcome;
    expect(h.begun).to.deep.equal(["db", "cache"]);
    expect(r.done).to.deep.equal(["cache"]);
    expect(r.failure).to.have.property("part", "db");
  });

  it("once abandoned begins nothing more, waits for the running parts, and names the first part that never began", async () => {
    const h = handWork();
    const abort = new AbortController();
    const outcome = runParts(parts({ a: [], b: [], c: [], d: [] }), 2, h.work, abort.signal);
    await h.begunCount(2);
    abort.abort();
    h.end("a");
    h.end("b");
    const r = await outcome;
    expect(h.begun).to.deep.equal(["a", "b"]);
    expect(r).to.deep.equal({ done: ["a", "b"], failure: { part: "c", abandoned: true } });
  });

  it("ends at once with nothing to do", async () => {
    expect(await runParts([], 4, () => Promise.reject(new Error("no part to run")), never())).to.deep.equal({ done: [] });
  });

  it("counts a part that throws before it awaits anything as failed", async () => {
    const r = await runParts(parts({ a: [] }), 4, () => {
      throw new Error("thrown at once");
    }, never());
    expect(r.done).to.deep.equal([]);
    expect((r.failure as { error: Error }).error.message).to.equal("thrown at once");
  });

  it("runs the parts of a cycle in the order given rather than none", async () => {
    const h = handWork();
    const outcome = runParts(parts({ a: ["b"], b: ["a"] }), 4, h.work, never());
    await h.begunCount(1);
    expect(h.running()).to.deep.equal(["a"]);
    h.end("a");
    await h.begunCount(2);
    h.end("b");
    expect((await outcome).done).to.deep.equal(["a", "b"]);
  });
});
