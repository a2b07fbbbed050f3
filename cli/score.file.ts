// Reading a score file (JSON or YAML, or a Compose file translated) and checking it with the wire
// codec, before anything is written.
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { canonicalHash } from "../contracts/canonical-json.js";
import { decode } from "../contracts/decode.js";
import { ReconcileScore } from "../contracts/score.codec.js";
import { UsageError } from "./common.js";
import { isComposeShape, translateCompose } from "./compose.translate.js";

export interface ScoreFile {
  score: ReconcileScore;
  hash: string;
  /** What is written to desired-state: the decoded score as compact JSON (YAML becomes JSON). */
  text: string;
  /** A score as written, or one translated from a Compose file. */
  source: "score" | "compose";
  /** What a translation approximated or ignored, said to the operator (never silently). */
  notes: string[];
}

/** Reads and validates; any problem is a UsageError whose lines name the field (`path: problem`). */
export async function readScoreFile(path: string): Promise<ScoreFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let value: unknown;
  const yaml = /\.ya?ml$/i.test(path);
  try {
    // Compose files use YAML merge keys (`<<: *common`); a score has no use for `<<` otherwise.
    value = yaml ? parseYaml(text, { merge: true }) : JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${path}: not valid ${yaml ? "YAML" : "JSON"}`, [`(root): ${(e as Error).message.split("\n")[0]}`]);
  }
  if (isComposeShape(value)) {
    const t = translateCompose(value);
    if (!t.ok) throw new UsageError(`${path}: a Compose file that does not translate to a score, nothing written`, t.errors);
    return { score: t.score, hash: canonicalHash(t.score), text: JSON.stringify(t.score), source: "compose", notes: t.notes };
  }
  const r = decode(ReconcileScore, value);
  if (!r.ok) throw new UsageError(`${path}: invalid score, nothing written`, r.errors);
  return { score: r.value, hash: canonicalHash(r.value), text: JSON.stringify(r.value), source: "score", notes: [] };
}
