// Operator signatures on desired values and device signatures on reports: the pure part
// (contracts/nkey.ts, signed-score.ts, report-signature.ts).
import { fromPublic, fromSeed } from "@nats-io/nkeys";
import { expect } from "chai";
import { canonicalHash, canonicalJson } from "../../contracts/canonical-json.js";
import { decode, decodeJson } from "../../contracts/decode.js";
import { DeploymentState } from "../../contracts/deployment-state.codec.js";
import { DeviceInfo } from "../../contracts/device-info.codec.js";
import { DeviceKey } from "../../contracts/device-key.codec.js";
import { Heartbeat } from "../../contracts/heartbeat.codec.js";
import { newUserKey, signingKeyFromText, verifySignature, type SigningKey } from "../../contracts/nkey.js";
import { checkReport, signatureFromHeaders, signReport } from "../../contracts/report-signature.js";
import type { ReconcileScore } from "../../contracts/score.codec.js";
import {
  DesiredValue,
  desiredSigningPayload,
  laterSignedAt,
  replayRefusal,
  signatureRefusal,
  signScore,
  type DesiredSignature,
} from "../../contracts/signed-score.js";

function keyOf(seed: string): SigningKey {
  const r = signingKeyFromText(seed);
  if (!r.ok) throw new Error(r.error);
  return r.key;
}
const newKey = () => keyOf(newUserKey().seed);

const score = (tag: string): ReconcileScore => ({ type: "PodmanV0", data: { services: [{ name: "web", image: `localhost/app:${tag}`, env: { TOKEN: "s3cret" } }] } });
const TARGET = { device: "pi-17", deployment: "web" };
const T1 = "2026-12-01T10:00:00.000Z";
const T2 = "2026-12-01T11:00:00.000Z";

/** The wire form of a value, as a writer puts it in the KV and a device reads it back. */
const wire = (v: DesiredValue) => JSON.stringify(DesiredValue.encode(v));
const read = (text: string) => {
  const r = decodeJson(DesiredValue, text);
  if (!r.ok) throw new Error(r.errors.join("; "));
  return r.value;
};

describe("signing", () => {
  const operator = newKey();
  const other = newKey();

  describe("keys", () => {
    it("a new key is an nkey user seed SU… of 58 characters and a public key U… of 56", () => {
      const k = newUserKey();
      expect(k.seed).to.match(/^SU[A-Z2-7]{56}$/);
      expect(k.publicKey).to.match(/^U[A-Z2-7]{55}$/);
      expect(keyOf(k.seed).publicKey).to.equal(k.publicKey);
    });
    it("finds the seed in a seed file with a newline, and in a credentials file", () => {
      const k = newUserKey();
      expect(keyOf(`${k.seed}\n`).publicKey).to.equal(k.publicKey);
      const creds = `-----BEGIN NATS USER JWT-----\neyJhbGciOi.x.y\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${k.seed}\n------END USER NKEY SEED------\n`;
      expect(keyOf(creds).publicKey).to.equal(k.publicKey);
    });
    it("a file without a seed, or with a corrupt one, is an error that never quotes the file", () => {
      const bad = signingKeyFromText("hello");
      expect(bad).to.deep.equal({ ok: false, error: "no nkey user seed (SU...) in it" });
      const seed = newUserKey().seed;
      const corrupt = `${seed.slice(0, 20)}${seed[20] === "A" ? "B" : "A"}${seed.slice(21)}`;
      const r = signingKeyFromText(corrupt);
      expect(r).to.deep.equal({ ok: false, error: "the nkey seed in it is not valid" });
    });
    it("signatures are the nkey's own ed25519 signatures: nkeys verifies ours, we verify its", () => {
      const k = newUserKey();
      const pair = fromSeed(new TextEncoder().encode(k.seed));
      const ours = keyOf(k.seed).sign("payload");
      expect(fromPublic(k.publicKey).verify(new TextEncoder().encode("payload"), Buffer.from(ours, "base64url"))).to.equal(true);
      const theirs = Buffer.from(pair.sign(new TextEncoder().encode("payload"))).toString("base64url");
      expect(theirs).to.equal(ours);
      expect(verifySignature(k.publicKey, "payload", theirs)).to.equal(true);
    });
    it("verifySignature is false for a malformed key or signature, never a throw", () => {
      const sig = operator.sign("x");
      expect(verifySignature(operator.publicKey, "x", sig)).to.equal(true);
      expect(verifySignature(operator.publicKey, "y", sig)).to.equal(false);
      expect(verifySignature("UNOTAKEY", "x", sig)).to.equal(false);
      expect(verifySignature(operator.publicKey, "x", "short")).to.equal(false);
      expect(verifySignature(other.publicKey, "x", sig)).to.equal(false);
    });
  });

  describe("the signed desired value", () => {
    it("signs the canonical JSON of {type, data, device, deployment, at}", () => {
      const v = signScore(score("v1"), TARGET, T1, operator);
      const payload = canonicalJson({ type: "PodmanV0", data: score("v1").data, device: "pi-17", deployment: "web", at: T1 });
      expect(desiredSigningPayload(score("v1"), TARGET, T1)).to.equal(payload);
      expect(verifySignature(operator.publicKey, payload, v.signed!.sig)).to.equal(true);
      expect(v.signed).to.include({ by: operator.publicKey, device: "pi-17", deployment: "web", at: T1 });
    });
    it("goes over the wire as {type, data, signed} and decodes back to the same score and signature", () => {
      const v = signScore(score("v1"), TARGET, T1, operator);
      const text = wire(v);
      expect(Object.keys(JSON.parse(text))).to.deep.equal(["type", "data", "signed"]);
      expect(read(text)).to.deep.equal(v);
    });
    it("an unsigned value decodes with signed: null, errors unchanged from ReconcileScore's", () => {
      expect(read(JSON.stringify(score("v1")))).to.deep.equal({ score: score("v1"), signed: null });
      expect(decode(DesiredValue, null)).to.deep.equal({ ok: false, errors: ["(root): expected ReconcileScore, got null"] });
      expect(decode(DesiredValue, { ...score("v1"), version: 2 })).to.deep.equal({ ok: false, errors: ["version: unknown field"] });
    });
    it("a bad signature block is refused field by field, with the score's own errors beside it", () => {
      const v = DesiredValue.encode(signScore(score("v1"), TARGET, T1, operator));
      const signed = v["signed"] as Record<string, unknown>;
      expect(decode(DesiredValue, { ...v, signed: null }).ok).to.equal(false);
      expect(decode(DesiredValue, { ...v, signed: { ...signed, at: "yesterday", extra: 1 } })).to.deep.equal({
        ok: false,
        errors: ["signed.extra: unknown field", 'signed.at: expected an ISO-8601 time, got "yesterday"'],
      });
      expect(decode(DesiredValue, { ...v, data: {}, signed: { ...signed, by: "UABC" } })).to.deep.equal({
        ok: false,
        errors: ["data.services: expected Array<PodmanService>, got nothing", 'signed.by: expected an nkey user public key (U followed by 55 base32 characters), got "UABC"'],
      });
      expect(decode(DesiredValue, { ...v, signed: { ...signed, sig: "abc" } })).to.deep.equal({
        ok: false,
        errors: ['signed.sig: expected a base64url ed25519 signature (86 characters), got "abc"'],
      });
    });
    it("the score hash is the hash of {type, data} alone: signing again is not a change (invariant 4)", () => {
      const a = read(wire(signScore(score("v1"), TARGET, T1, operator)));
      const b = read(wire(signScore(score("v1"), TARGET, T2, other)));
      expect(canonicalHash(a.score)).to.equal(canonicalHash(score("v1")));
      expect(canonicalHash(b.score)).to.equal(canonicalHash(a.score));
    });
  });

  describe("a device's refusals", () => {
    const keys = [operator.publicKey];
    const refusal = (v: DesiredValue, trusted: readonly string[] = keys) => signatureRefusal(read(wire(v)), TARGET, trusted);

    it("accepts a value one of its keys signed for it", () => {
      expect(refusal(signScore(score("v1"), TARGET, T1, operator))).to.equal(null);
    });
    it("refuses an unsigned value", () => {
      expect(refusal({ score: score("v1"), signed: null })).to.deep.equal({
        reason: "unsigned",
        error: "signed: missing: this device applies only desired states signed by one of its operator keys",
      });
    });
    it("refuses a value signed by a key it doesn't trust, naming both", () => {
      const r = refusal(signScore(score("v1"), TARGET, T1, other));
      expect(r?.reason).to.equal("unknown-key");
      expect(r?.error).to.equal(`signed.by: ${other.publicKey} is not one of this device's operator keys (${operator.publicKey.slice(0, 12)}…)`);
    });
    it("refuses tampered data: a changed image, env value, or time under the same signature", () => {
      const good = DesiredValue.encode(signScore(score("v1"), TARGET, T1, operator));
      const tampered = [
        { ...good, data: score("evil").data },
        { ...good, data: { services: [{ name: "web", image: "localhost/app:v1", env: { TOKEN: "other" } }] } },
        { ...good, signed: { ...(good["signed"] as DesiredSignature), at: T2 } },
      ];
      for (const t of tampered) {
        const r = signatureRefusal(read(JSON.stringify(t)), TARGET, keys);
        expect(r?.reason).to.equal("bad-signature");
        expect(r?.error).to.equal("signed.sig: not a signature by signed.by of this score, device, deployment and time (changed after signing, or forged)");
      }
    });
    it("refuses a signature made by one key but claimed by another it trusts", () => {
      const forged = signScore(score("v1"), TARGET, T1, other);
      const claimed: DesiredValue = { ...forged, signed: { ...forged.signed!, by: operator.publicKey } };
      expect(refusal(claimed)?.reason).to.equal("bad-signature");
    });
    it("refuses another device's value, though validly signed", () => {
      const r = refusal(signScore(score("v1"), { device: "pi-18", deployment: "web" }, T1, operator));
      expect(r).to.deep.equal({ reason: "wrong-device", error: 'signed.device: signed for device "pi-18", this is "pi-17"' });
    });
    it("refuses another deployment's value, though validly signed", () => {
      const r = refusal(signScore(score("v1"), { device: "pi-17", deployment: "db" }, T1, operator));
      expect(r).to.deep.equal({ reason: "wrong-deployment", error: 'signed.deployment: signed for deployment "db", this is "web"' });
    });
    it("with several keys (rotation), accepts each; once the old one is dropped, refuses its values", () => {
      const next = newKey();
      const both = [operator.publicKey, next.publicKey];
      expect(refusal(signScore(score("v1"), TARGET, T1, operator), both)).to.equal(null);
      expect(refusal(signScore(score("v2"), TARGET, T2, next), both)).to.equal(null);
      expect(refusal(signScore(score("v1"), TARGET, T1, operator), [next.publicKey])?.reason).to.equal("unknown-key");
    });
  });

  describe("replays", () => {
    const h1 = canonicalHash(score("v1"));
    const h2 = canonicalHash(score("v2"));
    it("refuses a different score signed before the one accepted", () => {
      const r = replayRefusal(h1, T1, { hash: h2, signedAt: T2 });
      expect(r?.reason).to.equal("replayed");
      expect(r?.error).to.equal(`signed.at: ${T1} is older than ${T2}, when the score this deployment accepted (${h2.slice(0, 19)}…) was signed: a replayed old desired state`);
    });
    it("takes a newer signature of any score, the same score signed at any time, and anything first", () => {
      expect(replayRefusal(h2, T2, { hash: h1, signedAt: T1 })).to.equal(null);
      expect(replayRefusal(h1, T1, { hash: h1, signedAt: T2 })).to.equal(null);
      expect(replayRefusal(h1, T1, null)).to.equal(null);
      expect(replayRefusal(h1, T2, { hash: h2, signedAt: T2 })).to.equal(null);
    });
    it("compares times, not strings: an offset or missing milliseconds don't fool it", () => {
      expect(replayRefusal(h1, "2026-12-01T11:30:00+01:00", { hash: h2, signedAt: T2 })?.reason).to.equal("replayed");
      expect(replayRefusal(h1, "2026-12-01T11:00:01Z", { hash: h2, signedAt: T2 })).to.equal(null);
      expect(laterSignedAt(T1, T2)).to.equal(T2);
      expect(laterSignedAt(T2, T1)).to.equal(T2);
      expect(laterSignedAt(null, T1)).to.equal(T1);
      expect(laterSignedAt(T1, null)).to.equal(T1);
    });
  });

  describe("reports a device signs", () => {
    const device = newKey();
    const state = {
      device: "pi-17", deployment: "web", phase: "Running", state: "running", score_hash: null, desired_revision: 3,
      container_ids: { web: "1f8a" }, last_error: null, last_event_seq: 4, last_event_at: T1,
    };
    const signedState = { ...state, signed: signReport("device-state", state, device) };

    it("device-state, heartbeat and device-info decode with their signature", () => {
      expect(decode(DeploymentState, signedState).ok).to.equal(true);
      const hb = { device: "pi-17", agent_version: "0.1.0", at: T1, deployments: { web: "Running" } };
      expect(decode(Heartbeat, { ...hb, signed: signReport("device-heartbeat", hb, device) }).ok).to.equal(true);
      const info = { device: "pi-17", hostname: "h", arch: "x64", podman_version: null, agent_version: "0.1.0", signing: "on", operator_keys: [operator.publicKey] };
      expect(decode(DeviceInfo, { ...info, signed: signReport("device-info", info, device) }).ok).to.equal(true);
      expect(decode(DeviceInfo, { ...info, signing: "maybe", operator_keys: [] })).to.deep.equal({
        ok: false,
        errors: ['signing: expected "on" | "off", got "maybe"', "operator_keys: expected at least 1 key"],
      });
      expect(decode(DeviceKey, { device: "pi-17", public_key: device.publicKey, added_at: T1 }).ok).to.equal(true);
    });
    it("verified against the key recorded for the device it is filed under", () => {
      expect(checkReport("device-state", "pi-17", JSON.parse(JSON.stringify(signedState)), device.publicKey)).to.deep.equal({ verdict: "verified" });
    });
    it("unverified when no key is recorded, whatever it carries", () => {
      expect(checkReport("device-state", "pi-17", signedState, null).verdict).to.equal("unverified");
    });
    it("forged: unsigned, changed, signed by another key, filed under another device, or signed as another kind", () => {
      const other = newKey();
      const cases: Array<[unknown, string, string]> = [
        [state, "pi-17", "unsigned"],
        [{ ...signedState, phase: "Failed" }, "pi-17", "the signature does not match the content"],
        [{ ...state, signed: signReport("device-state", state, other) }, "pi-17", `signed by ${other.publicKey.slice(0, 12)}…, not by the device's recorded key ${device.publicKey.slice(0, 12)}…`],
        [signedState, "pi-18", 'filed under device "pi-18" but names "pi-17"'],
        [{ ...signedState, signed: { by: device.publicKey } }, "pi-17", "signed: not a {by, sig} signature block"],
        ["text", "pi-17", "not a JSON object"],
      ];
      for (const [raw, filed, why] of cases) expect(checkReport("device-state", filed, raw, device.publicKey)).to.deep.equal({ verdict: "forged", why });
      const asHeartbeat = { ...state, signed: signReport("device-heartbeat", state, device) };
      expect(checkReport("device-state", "pi-17", asHeartbeat, device.publicKey).verdict).to.equal("forged");
    });
    it("an event's signature comes from its two headers", () => {
      const ev = { v: 1, device: "pi-17", deployment: "web", n: 1, at: T1, event: { type: "UPDATE" }, from: "pending", to: "pulling" };
      const s = signReport("event", ev, device);
      const headers = new Map([["Fleet-Signed-By", s.by], ["Fleet-Sig", s.sig]]);
      expect(checkReport("event", "pi-17", { ...ev, signed: signatureFromHeaders((h) => headers.get(h)) }, device.publicKey)).to.deep.equal({ verdict: "verified" });
      expect(signatureFromHeaders(() => undefined)).to.equal(undefined);
    });
  });
});
