import { expect } from "chai";
import { toDesiredChange } from "../../../agent/nats/desired-state.watch.js";
import { canonicalHash } from "../../../contracts/canonical-json.js";
import { newUserKey, signingKeyFromText } from "../../../contracts/nkey.js";
import type { ReconcileScore } from "../../../contracts/score.codec.js";
import { DesiredValue, signScore } from "../../../contracts/signed-score.js";

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

describe("toDesiredChange with operator keys (docs/design.md, Signed desired state)", () => {
  const key = (() => {
    const r = signingKeyFromText(newUserKey().seed);
    if (!r.ok) throw new Error(r.error);
    return r.key;
  })();
  const score: ReconcileScore = { type: "PodmanV0", data: { services: [{ name: "web", image: "localhost/app:1" }] } };
  const AT = "2026-12-01T10:00:00.000Z";
  const put = (v: unknown) => entry("d1.web", enc(JSON.stringify(v)));
  const signed = (device = "d1", deployment = "web") => DesiredValue.encode(signScore(score, { device, deployment }, AT, key));

  it("a value one of the keys signed for this device and deployment is an update carrying its signature time", () => {
    expect(toDesiredChange("d1", put(signed()), [key.publicKey])).to.deep.equal({ kind: "update", deployment: "web", score, hash: canonicalHash(score), revision: 9, signedAt: AT });
  });
  it("an unsigned value, another device's or deployment's, or an unknown key's, is a reject naming the reason", () => {
    const errorOf = (v: unknown, keys = [key.publicKey]) => {
      const c = toDesiredChange("d1", put(v), keys);
      return c.kind === "reject" ? c.error : `not rejected: ${c.kind}`;
    };
    expect(errorOf(score)).to.equal("signed: missing: this device applies only desired states signed by one of its operator keys");
    expect(errorOf(signed("d2"))).to.equal('signed.device: signed for device "d2", this is "d1"');
    expect(errorOf(signed("d1", "db"))).to.equal('signed.deployment: signed for deployment "db", this is "web"');
    expect(errorOf(signed(), [newUserKey().publicKey])).to.match(/^signed\.by: U[A-Z2-7]{55} is not one of this device's operator keys/);
    expect(errorOf({ ...signed(), data: { services: [{ name: "web", image: "localhost/evil:1" }] } })).to.match(/^signed\.sig: not a signature/);
  });
  it("without keys (signing off) a signed or unsigned value is an update, without a signature time", () => {
    expect(toDesiredChange("d1", put(signed("d2")))).to.not.have.property("signedAt");
    expect(toDesiredChange("d1", put(score), [])).to.include({ kind: "update" });
  });
});
