// The operator's signature on what fleetctl writes (docs/design.md, "Signed desired state"): with
// `--signing-key FILE` / `FLEET_SIGNING_KEY`, each desired value is signed for the one device and
// deployment it is written to, at the time it is written.
import type { SigningKey } from "../contracts/nkey.js";
import type { ReconcileScore } from "../contracts/score.codec.js";
import { DesiredValue, signScore, type DesiredSignature, type DesiredTarget } from "../contracts/signed-score.js";
import { AuthFileError } from "../fleet/auth.js";
import { readSigningKey } from "../fleet/signing-key.js";
import { UsageError, type CliIo } from "./common.js";

export const SIGNING_OPTION = { "signing-key": { type: "string" } } as const;

export const SIGNING_HELP = `  --signing-key FILE  the operator's signing key (env FLEET_SIGNING_KEY; a seed file from
                      \`fleetctl key create\`): each value written is signed for its device and
                      deployment. Devices started with --operator-keys apply only signed values.`;

/** The signing key the command line names, or null; an unusable file is a usage error naming it. */
export function signingKeyOf(values: Readonly<Record<string, unknown>>, env: CliIo["env"]): SigningKey | null {
  const flag = values["signing-key"];
  const path = typeof flag === "string" && flag !== "" ? flag : env["FLEET_SIGNING_KEY"] || null;
  if (path === null) return null;
  try {
    return readSigningKey(typeof flag === "string" && flag !== "" ? "--signing-key" : "FLEET_SIGNING_KEY", path);
  } catch (e) {
    if (e instanceof AuthFileError) throw new UsageError(e.message);
    throw e;
  }
}

/** The text written to `desired-state` for `target`: the score, signed when there is a key. */
export function desiredText(score: ReconcileScore, target: DesiredTarget, key: SigningKey | null, at = new Date()): string {
  const value: DesiredValue = key ? signScore(score, target, at.toISOString(), key) : { score, signed: null };
  return JSON.stringify(DesiredValue.encode(value));
}

/**
 * Whether the current desired value already says what a write of the same score would: it does when
 * nothing signs, or when this very key signed it for this target (a value signed by another key,
 * perhaps one being rotated out, or unsigned, is written again, signed).
 */
export function alreadySigned(signed: DesiredSignature | null, target: DesiredTarget, key: SigningKey | null): boolean {
  if (!key) return true;
  return signed !== null && signed.by === key.publicKey && signed.device === target.device && signed.deployment === target.deployment;
}

export const UNSIGNED_NOTE = "note: written unsigned (no --signing-key): devices started with --operator-keys refuse it\n";
