// A desired value as it sits in `desired-state`: a ReconcileScore, signed by an operator for one
// device and one deployment at one time (docs/design.md, "Signed desired state"). Whoever can write
// the KV must still not decide what a device runs: the device applies only what a key it trusts
// signed for it. The score's hash stays the hash of `{type, data}`, so signing the same score again
// is not a change (invariant 4).
import * as t from "io-ts";
import { isLeft } from "fp-ts/lib/Either.js";
import { canonicalJson } from "./canonical-json.js";
import { isPlainObject, struct } from "./decode.js";
import { IsoTime } from "./deployment-state.codec.js";
import { DeploymentName, DeviceId } from "./names.js";
import { Signature, UserPublicKey, verifySignature, type SigningKey } from "./nkey.js";
import { ReconcileScore } from "./score.codec.js";

export const DesiredSignature = struct("DesiredSignature", {
  /** The operator key that signed (its public key). */
  by: UserPublicKey,
  device: DeviceId,
  deployment: DeploymentName,
  /** When it was signed: a device refuses a different score signed before the one it applied. */
  at: IsoTime,
  /** base64url ed25519 signature of `desiredSigningPayload`. */
  sig: Signature,
});
export type DesiredSignature = t.TypeOf<typeof DesiredSignature>;

/** A decoded desired value: the score apart from its signature, so nothing hashes the two together. */
export interface DesiredValue {
  score: ReconcileScore;
  signed: DesiredSignature | null;
}

/**
 * The wire form `{type, data, signed?}`. Errors read as ReconcileScore's own (same paths, same
 * root name), plus `signed.…` lines for a bad signature block.
 */
export const DesiredValue = new t.Type<DesiredValue, Record<string, unknown>, unknown>(
  ReconcileScore.name,
  (u): u is DesiredValue => isPlainObject(u) && ReconcileScore.is(u["score"]) && (u["signed"] === null || DesiredSignature.is(u["signed"])),
  (u, ctx) => {
    if (!isPlainObject(u) || !("signed" in u)) {
      const r = ReconcileScore.validate(u, ctx);
      return isLeft(r) ? r : t.success({ score: r.right, signed: null });
    }
    const { signed, ...rest } = u;
    const score = ReconcileScore.validate(rest, ctx);
    const sig = DesiredSignature.validate(signed, [...ctx, { key: "signed", type: DesiredSignature, actual: signed }]);
    const errors = [...(isLeft(score) ? score.left : []), ...(isLeft(sig) ? sig.left : [])];
    if (errors.length || isLeft(score) || isLeft(sig)) return t.failures(errors);
    return t.success({ score: score.right, signed: sig.right });
  },
  (v) => ({ ...ReconcileScore.encode(v.score), ...(v.signed ? { signed: DesiredSignature.encode(v.signed) } : {}) }),
);

/** Which device and deployment a value is meant for. */
export interface DesiredTarget {
  device: string;
  deployment: string;
}

/** The text an operator signs: the canonical JSON of `{type, data, device, deployment, at}`. */
export function desiredSigningPayload(score: ReconcileScore, target: DesiredTarget, at: string): string {
  const s = ReconcileScore.encode(score);
  return canonicalJson({ type: s.type, data: s.data, device: target.device, deployment: target.deployment, at });
}

/** `score`, signed with `key` for `target` at `at` (an ISO time). */
export function signScore(score: ReconcileScore, target: DesiredTarget, at: string, key: SigningKey): DesiredValue {
  const sig = key.sign(desiredSigningPayload(score, target, at));
  return { score, signed: { by: key.publicKey, device: target.device, deployment: target.deployment, at, sig } };
}

/** Why a device refuses a desired value on signature grounds. */
export type SignatureRefusalReason = "unsigned" | "unknown-key" | "bad-signature" | "wrong-device" | "wrong-deployment" | "replayed";

export interface SignatureRefusal {
  reason: SignatureRefusalReason;
  /** One `path: problem` line, as decode errors are, for last_error and the journal. */
  error: string;
}

const short = (key: string) => `${key.slice(0, 12)}…`;

/**
 * The refusal of a desired value for `target` by a device that trusts `operatorKeys`, or null when
 * one of them signed exactly this score for exactly this device and deployment. Checked in this
 * order: unsigned, unknown key, bad signature, then what the (now trusted) signature says.
 */
export function signatureRefusal(value: DesiredValue, target: DesiredTarget, operatorKeys: readonly string[]): SignatureRefusal | null {
  const s = value.signed;
  if (!s) return { reason: "unsigned", error: "signed: missing: this device applies only desired states signed by one of its operator keys" };
  if (!operatorKeys.includes(s.by)) {
    return { reason: "unknown-key", error: `signed.by: ${s.by} is not one of this device's operator keys (${operatorKeys.map(short).join(", ")})` };
  }
  if (!verifySignature(s.by, desiredSigningPayload(value.score, { device: s.device, deployment: s.deployment }, s.at), s.sig)) {
    return { reason: "bad-signature", error: "signed.sig: not a signature by signed.by of this score, device, deployment and time (changed after signing, or forged)" };
  }
  if (s.device !== target.device) return { reason: "wrong-device", error: `signed.device: signed for device ${JSON.stringify(s.device)}, this is ${JSON.stringify(target.device)}` };
  if (s.deployment !== target.deployment) {
    return { reason: "wrong-deployment", error: `signed.deployment: signed for deployment ${JSON.stringify(s.deployment)}, this is ${JSON.stringify(target.deployment)}` };
  }
  return null;
}

/** What a deployment last accepted: its score hash and when the operator signed it. */
export interface AcceptedSignature {
  hash: string;
  signedAt: string;
}

/**
 * A replayed old value: a different score than the one accepted, signed before it. The same score
 * (signed again, or the same signature again) is never a replay: it is no change.
 */
export function replayRefusal(hash: string, signedAt: string, accepted: AcceptedSignature | null): SignatureRefusal | null {
  if (!accepted || hash === accepted.hash) return null;
  if (Date.parse(signedAt) >= Date.parse(accepted.signedAt)) return null;
  return {
    reason: "replayed",
    error: `signed.at: ${signedAt} is older than ${accepted.signedAt}, when the score this deployment accepted (${accepted.hash.slice(0, 19)}…) was signed: a replayed old desired state`,
  };
}

/** The later of two ISO times (either may be null, or missing from a snapshot older than signing). */
export function laterSignedAt(a: string | null | undefined, b: string | null | undefined): string | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}
