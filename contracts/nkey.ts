// The ed25519 keys of the fleet: nkey user key pairs (seed `SU…`, public key `U…`), the form NATS
// already uses for device identities. Operators sign desired values with theirs, devices sign their
// reports with theirs (docs/design.md, "Signed desired state" and "Report signatures"). Pure: a seed
// comes in as text, so nothing here reads a file; no secret ever reaches an error message.
// nkeys parses and checks the key texts; node's own ed25519 signs and verifies, since nkeys's
// pure-JS one takes about 30 ms per operation here (100 times node's), too slow for a device that
// signs every report and an operator who checks a fleet's.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import * as t from "io-ts";
import { createUser, fromPublic, fromSeed } from "@nats-io/nkeys";
import { refine } from "./decode.js";

const USER_PUBLIC_KEY = /^U[A-Z2-7]{55}$/;
// A seed file holds the bare seed; a NATS credentials file holds one among its JWT blocks.
const USER_SEED = /\bSU[A-Z2-7]{56}\b/;
// 64 signature bytes in base64url without padding.
const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;

/** Why `s` is not an nkey user public key, or null when it is one (checksum included). */
export function userPublicKeyProblem(s: string): string | null {
  if (!USER_PUBLIC_KEY.test(s)) return `expected an nkey user public key (U followed by 55 base32 characters), got ${JSON.stringify(s.slice(0, 60))}`;
  try {
    fromPublic(s);
    return null;
  } catch {
    return `not a valid nkey public key (bad checksum): ${JSON.stringify(s)}`;
  }
}

export const UserPublicKey = refine(t.string, "UserPublicKey", userPublicKeyProblem);
export const Signature = refine(t.string, "Signature", (s) =>
  SIGNATURE.test(s) ? null : `expected a base64url ed25519 signature (86 characters), got ${s.length > 40 ? `a string of ${s.length} characters` : JSON.stringify(s)}`,
);

/** A key that signs: its public half, and a signature of a text (its UTF-8 bytes) in base64url. */
export interface SigningKey {
  readonly publicKey: string;
  sign(payload: string): string;
}

export type SigningKeyResult = { ok: true; key: SigningKey } | { ok: false; error: string };

const utf8 = new TextEncoder();

/**
 * The signing key of the first nkey user seed in `text` (a seed file, or a credentials file). The
 * error never quotes the text: it is a secret.
 */
export function signingKeyFromText(text: string): SigningKeyResult {
  const m = USER_SEED.exec(text);
  if (!m) return { ok: false, error: "no nkey user seed (SU...) in it" };
  let publicKey: string;
  try {
    const pair = fromSeed(utf8.encode(m[0]));
    publicKey = pair.getPublicKey();
    pair.clear();
  } catch {
    return { ok: false, error: "the nkey seed in it is not valid" };
  }
  // A seed is 2 prefix bytes, the 32-byte ed25519 seed, and a CRC-16 (checked by fromSeed above).
  const raw = base32Decode(m[0]).subarray(2, 34);
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: "der", type: "pkcs8" });
  raw.fill(0);
  return { ok: true, key: { publicKey, sign: (payload) => sign(null, utf8.encode(payload), privateKey).toString("base64url") } };
}

/** A new nkey user key pair: the seed to keep secret, the public key to hand out. */
export function newUserKey(): { seed: string; publicKey: string } {
  const pair = createUser();
  const seed = new TextDecoder().decode(pair.getSeed());
  const publicKey = pair.getPublicKey();
  pair.clear();
  return { seed, publicKey };
}

/** True when `sig` is `publicKey`'s signature of `payload`. Any malformed part is simply false. */
export function verifySignature(publicKey: string, payload: string, sig: string): boolean {
  if (!SIGNATURE.test(sig)) return false;
  const key = publicKeyObject(publicKey);
  if (!key) return false;
  try {
    return verify(null, utf8.encode(payload), key, Buffer.from(sig, "base64url"));
  } catch {
    return false;
  }
}

// The DER headers that wrap a raw 32-byte ed25519 key as PKCS#8 (private) and SPKI (public).
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

// An operator checking a fleet's reports meets the same few keys over and over.
const publicKeys = new Map<string, KeyObject>();

function publicKeyObject(publicKey: string): KeyObject | null {
  const known = publicKeys.get(publicKey);
  if (known) return known;
  if (userPublicKeyProblem(publicKey) !== null) return null;
  // A public key is 1 prefix byte, the 32-byte key, and a CRC-16 (checked above).
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, base32Decode(publicKey).subarray(1, 33)]), format: "der", type: "spki" });
  if (publicKeys.size >= 1024) publicKeys.clear();
  publicKeys.set(publicKey, key);
  return key;
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 without padding, as nkeys encodes; the text is already checked to be base32. */
function base32Decode(text: string): Buffer {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of text) {
    value = ((value << 5) | BASE32.indexOf(c)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}
