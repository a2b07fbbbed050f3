import { expect } from "chai";
import { toDesiredChange } from "../../../agent/nats/desired-state.watch.js";

const enc = (s: string) => new TextEncoder().encode(s);
const entry = (key: string, value: Uint8Array, operation: "PUT" | "DEL" | "PURGE" = "PUT") => ({ key, value, operation, revision: 9 });

describe("toDesiredChange", () => {
  it("maps PUT/DEL/PURGE and bad values to typed changes", () => {
    const ok = toDesiredChange("d1", entry("d1.web", enc('{"data":{"services":[{"image":"a:1","name":"web"}]},"type":"PodmanV0"}')));
    expect(ok).to.include({ kind: "update", deployment: "web", revision: 9 });
    expect((ok as { hash: string }).hash).to.match(/^sha256:[0-9a-f]{64}$/);
    expect(toDesiredChange("d1", entry("d1.web", new Uint8Array(), "DEL"))).to.deep.equal({ kind: "delete", deployment: "web", revision: 9 });
    expect(toDesiredChange("d1", entry("d1.web", new Uint8Array(), "PURGE"))).to.deep.equal({ kind: "delete", deployment: "web", revision: 9 });
    expect(toDesiredChange("d1", entry("d1.web", new Uint8Array([0xc3, 0x28])))).to.deep.equal({ kind: "reject", deployment: "web", revision: 9, error: "(root): the value is not valid UTF-8" });
    const bad = toDesiredChange("d1", entry("d1.web", enc('{"type":"PodmanV0","data":{"services":[]},"x":1}')));
    expect(bad).to.deep.equal({ kind: "reject", deployment: "web", revision: 9, error: "x: unknown field; data.services: expected at least 1 item, got 0" });
    expect(toDesiredChange("d1", entry("d1.a.b", new Uint8Array(), "DEL"))).to.include({ kind: "reject", deployment: "a.b" });
  });
});
