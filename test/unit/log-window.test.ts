// The log window: the newest lines of a log under a byte budget, as JSON, however they arrive.
import { expect } from "chai";
import fc from "fast-check";
import { cutJsonText, jsonTextBytes, LogWindow } from "../../runtime/log-window.js";

const AT = "2026-12-01T10:00:00.000Z";
const AT2 = "2026-12-01T10:00:01.000Z";

describe("LogWindow", () => {
  it("keeps every line, in order, while they fit", () => {
    const w = new LogWindow(10_000);
    w.add("stdout", AT, "one", true);
    w.add("stderr", AT, "two", true);
    w.add("stdout", AT2, "", true);
    expect(w.result()).to.deep.equal({
      lines: [
        { at: AT, stream: "stdout", text: "one" },
        { at: AT, stream: "stderr", text: "two" },
        { at: AT2, stream: "stdout", text: "" },
      ],
      truncated: false,
    });
  });

  it("drops the oldest lines when the next would not fit, and says so", () => {
    const one = JSON.stringify([{ at: AT, stream: "stdout", text: "line-0" }]).length;
    const w = new LogWindow(2 * one - 2); // two lines take 2 * one - 1: room for one only
    for (let i = 0; i < 5; i++) w.add("stdout", AT, `line-${i}`, true);
    const r = w.result();
    expect(r.lines.map((l) => l.text)).to.deep.equal(["line-4"]);
    expect(r.truncated).to.equal(true);
  });

  it("exactly at the budget is kept whole", () => {
    const lines = [{ at: AT, stream: "stdout" as const, text: "a" }, { at: AT, stream: "stderr" as const, text: "b" }];
    const w = new LogWindow(JSON.stringify(lines).length);
    for (const l of lines) w.add(l.stream, l.at, l.text, true);
    expect(w.result()).to.deep.equal({ lines, truncated: false });
  });

  it("joins a line's pieces, keeping the place and time of its first piece, while the other stream goes on", () => {
    const w = new LogWindow(10_000);
    w.add("stdout", AT, "par", false);
    w.add("stderr", AT, "between", true);
    w.add("stdout", AT2, "tial", true);
    w.add("stdout", AT2, "next", true);
    expect(w.result().lines).to.deep.equal([
      { at: AT, stream: "stdout", text: "partial" },
      { at: AT, stream: "stderr", text: "between" },
      { at: AT2, stream: "stdout", text: "next" },
    ]);
  });

  it("cuts a line too long on its own, skips the rest of it, and goes on with the next line", () => {
    const w = new LogWindow(100);
    w.add("stdout", AT, "x".repeat(200), false);
    w.add("stdout", AT, "y".repeat(200), true);
    let r = w.result();
    expect(r.truncated).to.equal(true);
    expect(r.lines).to.have.length(1);
    expect(r.lines[0]!.text).to.match(/^x+$/);
    expect(JSON.stringify(r.lines).length).to.equal(100);
    w.add("stdout", AT, "short", true);
    r = w.result();
    expect(r.lines.map((l) => l.text)).to.deep.equal(["short"]);
  });

  it("a dropped line's later pieces are skipped, not kept as a line of their own", () => {
    const single = JSON.stringify([{ at: AT, stream: "stderr", text: "e".repeat(40) }]).length;
    const w = new LogWindow(single + 5);
    w.add("stdout", AT, "start", false); // open
    w.add("stderr", AT, "e".repeat(40), true); // pushes the open stdout line out
    w.add("stdout", AT, "-end", true); // the rest of the dropped line
    expect(w.result().lines.map((l) => l.text)).to.deep.equal(["e".repeat(40)]);
  });

  it("a budget too small for even an empty line keeps nothing; below 2 bytes is refused", () => {
    const w = new LogWindow(10);
    w.add("stdout", AT, "hello", true);
    expect(w.result()).to.deep.equal({ lines: [], truncated: true });
    expect(() => new LogWindow(1)).to.throw(RangeError, /at least 2/);
    expect(() => new LogWindow(2.5)).to.throw(RangeError);
  });

  it("property: JSON.stringify(lines) never exceeds maxBytes, and what is kept is the newest lines, whole unless cut", () => {
    const piece = fc.record({
      stream: fc.constantFrom("stdout" as const, "stderr" as const),
      text: fc.string({ unit: "binary", maxLength: 60 }),
      ends: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 60 }), fc.integer({ min: 2, max: 800 }), (pieces, maxBytes) => {
        const w = new LogWindow(maxBytes);
        const whole = new LogWindow(1_000_000);
        for (const p of pieces) {
          w.add(p.stream, AT, p.text, p.ends);
          whole.add(p.stream, AT, p.text, p.ends);
        }
        const r = w.result();
        const all = whole.result().lines;
        expect(Buffer.byteLength(JSON.stringify(r.lines))).to.be.at.most(maxBytes);
        // Kept lines are a run of the newest, each the same line or a cut of it.
        const tail = all.slice(all.length - r.lines.length);
        r.lines.forEach((l, i) => {
          expect(l.stream).to.equal(tail[i]!.stream);
          expect(tail[i]!.text.startsWith(l.text)).to.equal(true);
        });
        if (!r.truncated) expect(r.lines).to.deep.equal(all);
      }),
      { numRuns: 300 },
    );
  });
});

describe("JSON text budget", () => {
  it("counts escapes and UTF-8 bytes, and cuts between characters", () => {
    expect(jsonTextBytes('a"\n')).to.equal(5);
    expect(jsonTextBytes("ü")).to.equal(2);
    expect(jsonTextBytes("\u0001")).to.equal(6);
    expect(cutJsonText("aü€b", 4)).to.equal("aü");
    expect(cutJsonText('"""', 5)).to.equal('""');
    expect(cutJsonText("😀x", 3)).to.equal("");
    expect(cutJsonText("short", 100)).to.equal("short");
  });
});
