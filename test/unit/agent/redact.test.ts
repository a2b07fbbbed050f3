import { expect } from "chai";
import { REDACTED, redactEvent } from "../../../agent/journal/redact.js";

describe("redactEvent", () => {
  it("replaces every env value under score.data.services[*], at any depth, without touching the input", () => {
    const score = { type: "PodmanV0", data: { services: [{ name: "web", image: "a:1", env: { DB_PASSWORD: "hunter2", MODE: "prod" } }, { name: "db", image: "b:1" }] } };
    const event = { type: "UPDATE", score, revision: 3, nested: { output: { applied: { score }, list: [{ score }] } } };
    const before = JSON.stringify(event);
    const r = redactEvent(event);
    expect(JSON.stringify(event)).to.equal(before);
    const text = JSON.stringify(r);
    expect(text).not.to.include("hunter2");
    expect(text).not.to.include("prod");
    expect(r.score.data.services[0]!.env).to.deep.equal({ DB_PASSWORD: REDACTED, MODE: REDACTED });
    expect(r.nested.output.applied.score.data.services[0]!.env).to.deep.equal({ DB_PASSWORD: REDACTED, MODE: REDACTED });
    expect(r.nested.output.list[0]!.score.data.services[1]).to.deep.equal({ name: "db", image: "b:1" });
    expect(r.revision).to.equal(3);
  });

  it("leaves values without env maps as they are", () => {
    expect(redactEvent({ type: "TICK", at: "x", n: null, a: [1, "2", { b: true }] })).to.deep.equal({ type: "TICK", at: "x", n: null, a: [1, "2", { b: true }] });
    expect(redactEvent({ type: "X", env: "not a map" })).to.deep.equal({ type: "X", env: "not a map" });
  });
});
