// Reading a score file (JSON or YAML) and checking it with the wire codec, before anything is written.
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { canonicalHash } from "../contracts/canonical-json.js";
import { decode } from "../contracts/decode.js";
import { ReconcileScore } from "../contracts/score.codec.js";
import { UsageError } from "./common.js";

export interface ScoreFile {
  score: ReconcileScore;
  hash: string;
  /** What is written to desired-state: the decoded score as compact JSON (YAML becomes JSON). */
  text: string;
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
    value = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${path}: not valid ${yaml ? "YAML" : "JSON"}`, [`(root): ${(e as Error).message.split("\n")[0]}`]);
  }
  const r = decode(ReconcileScore, value);
  if (!r.ok) throw new UsageError(`${path}: invalid score, nothing written`, r.errors);
  return { score: r.value, hash: canonicalHash(r.value), text: JSON.stringify(r.value) };
}
