import { expect } from "chai";
import { backoffOf, DEFAULT_BACKOFF, delayMs, NO_TRIES, nextTry, settlesAt, type Tries } from "../../machines/restart.policy.js";

describe("restart and retry backoff (pure)", () => {
  it("tries at once, then after 10 s, doubling up to 300 s", () => {
    let tries: Tries = NO_TRIES;
    let t = 0;
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      const next = nextTry(tries, t, DEFAULT_BACKOFF);
      delays.push((next.at - t) / 1000);
      tries = next.tries;
      t = next.at + 1000; // it runs a second each time, then fails again
    }
    expect(delays).to.deep.equal([0, 10, 20, 40, 80, 160, 300, 300, 300]);
    expect(tries.streak).to.equal(9);
  });

  it("forgets the streak once the last try held for 600 s", () => {
    const after3 = [0, 1, 2].reduce((tr, i) => nextTry(tr, i * 1000, DEFAULT_BACKOFF).tries, NO_TRIES);
    expect(nextTry(after3, after3.lastTryAt! + 599_999, DEFAULT_BACKOFF).at - (after3.lastTryAt! + 599_999)).to.equal(40_000);
    const held = nextTry(after3, after3.lastTryAt! + 600_000, DEFAULT_BACKOFF);
    expect(held.at).to.equal(after3.lastTryAt! + 600_000);
    expect(held.tries.streak).to.equal(1);
  });

  it("counts a service as settled after as long as its next delay would be, at least one base delay", () => {
    const first = nextTry(NO_TRIES, 5_000, DEFAULT_BACKOFF).tries;
    expect(settlesAt(first, DEFAULT_BACKOFF)).to.equal(5_000 + 10_000);
    const second = nextTry(first, 8_000, DEFAULT_BACKOFF).tries; // at 18 s
    expect(second.lastTryAt).to.equal(18_000);
    expect(settlesAt(second, DEFAULT_BACKOFF)).to.equal(18_000 + 20_000);
    expect(settlesAt(NO_TRIES, DEFAULT_BACKOFF)).to.equal(null);
  });

  it("a base given alone scales the cap and the reset with it; the defaults stay 10 s, 300 s, 600 s", () => {
    expect(backoffOf()).to.deep.equal(DEFAULT_BACKOFF);
    expect(backoffOf({ baseMs: 1000 })).to.deep.equal({ baseMs: 1000, capMs: 30_000, resetAfterMs: 60_000 });
    expect(backoffOf({ baseMs: 200, capMs: 800 })).to.deep.equal({ baseMs: 200, capMs: 800, resetAfterMs: 1600 });
    expect(delayMs(2000, DEFAULT_BACKOFF)).to.equal(300_000);
  });
});
