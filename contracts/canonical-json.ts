// Canonical JSON: keys sorted at every depth, no white space. Two values that differ only in key
// order or formatting get the same text, so the same hash, so no upgrade (invariant 4).
import { createHash } from "node:crypto";

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    const s = JSON.stringify(value);
    if (s === undefined) throw new TypeError(`not representable in JSON: ${typeof value}`);
    return s;
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

export const sha256Hex = (text: string) => createHash("sha256").update(text).digest("hex");

/** `sha256:<hex>` of a value's canonical JSON: the `score_hash` of the wire contract. */
export const canonicalHash = (value: unknown) => `sha256:${sha256Hex(canonicalJson(value))}`;
