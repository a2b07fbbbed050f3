// Reports a device signs with its own nkey, so the operator can tell what the device itself wrote
// from what anything else wrote under its keys (docs/design.md, "Report signatures"). KV reports
// (device-state, device-heartbeat, device-info) carry `signed: {by, sig}` in the value; a journal
// event is published with the `Fleet-Signed-By` and `Fleet-Sig` headers, so the event itself (in the
// device's local journal and in the stream) stays exactly as the journal codec has it.
import * as t from "io-ts";
import { canonicalJson } from "./canonical-json.js";
import { isPlainObject, struct } from "./decode.js";
import { Signature, UserPublicKey, verifySignature, type SigningKey } from "./nkey.js";

export const ReportSignature = struct("ReportSignature", { by: UserPublicKey, sig: Signature });
export type ReportSignature = t.TypeOf<typeof ReportSignature>;

/** What a signature is for: a device-state signature can't pass for a heartbeat, or an event. */
export type ReportKind = "device-state" | "device-heartbeat" | "device-info" | "event";

export const HEADER_SIGNED_BY = "Fleet-Signed-By";
export const HEADER_SIG = "Fleet-Sig";

/** The text a device signs: the canonical JSON of `{report: kind, value}`, `value` without `signed`. */
export function reportSigningPayload(kind: ReportKind, value: Readonly<Record<string, unknown>>): string {
  const { signed: _ignored, ...rest } = value;
  return canonicalJson({ report: kind, value: rest });
}

/** The `signed` block for `value` (whatever `signed` it already has is not part of what is signed). */
export function signReport(kind: ReportKind, value: Readonly<Record<string, unknown>>, key: SigningKey): ReportSignature {
  return { by: key.publicKey, sig: key.sign(reportSigningPayload(kind, value)) };
}

/**
 * What the operator can say of a report: `verified`, signed by the key recorded for the device it is
 * filed under; `forged`, a key is recorded and the report is unsigned, signed by another key, signed
 * for other content, or names another device; `unverified`, no key is recorded for that device.
 */
export type ReportCheck = { verdict: "verified" } | { verdict: "forged"; why: string } | { verdict: "unverified"; why: string };

/**
 * Checks a report as read (`raw`: the parsed JSON of the value, or of the event with `signed` from
 * its headers) filed under `device` (its key or subject), against `recordedKey`.
 */
export function checkReport(kind: ReportKind, device: string, raw: unknown, recordedKey: string | null): ReportCheck {
  if (recordedKey === null) return { verdict: "unverified", why: `no key recorded for device ${JSON.stringify(device)} (fleetctl device add records it)` };
  if (!isPlainObject(raw)) return { verdict: "forged", why: "not a JSON object" };
  if (raw["device"] !== device) return { verdict: "forged", why: `filed under device ${JSON.stringify(device)} but names ${JSON.stringify(raw["device"])}` };
  const signed = raw["signed"];
  if (signed === undefined) return { verdict: "forged", why: "unsigned" };
  if (!ReportSignature.is(signed)) return { verdict: "forged", why: "signed: not a {by, sig} signature block" };
  if (signed.by !== recordedKey) return { verdict: "forged", why: `signed by ${signed.by.slice(0, 12)}…, not by the device's recorded key ${recordedKey.slice(0, 12)}…` };
  if (!verifySignature(signed.by, reportSigningPayload(kind, raw), signed.sig)) return { verdict: "forged", why: "the signature does not match the content" };
  return { verdict: "verified" };
}

/** The `signed` block from an event's headers, or undefined when it has neither header. */
export function signatureFromHeaders(get: (name: string) => string | undefined): unknown {
  const by = get(HEADER_SIGNED_BY);
  const sig = get(HEADER_SIG);
  if (by === undefined && sig === undefined) return undefined;
  return { by, sig };
}
