// Loads the device's container policy: `--policy FILE` / `FLEET_POLICY` (must exist), else
// `policy.json` in the state dir when present, else the built-in defaults.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decodePolicy, DEFAULT_POLICY, type ContainerPolicy } from "./policy.js";

export const POLICY_FILE_NAME = "policy.json";

export interface LoadedPolicy {
  policy: ContainerPolicy;
  /** The file it came from, or null for the defaults. */
  from: string | null;
}

/** Throws an Error naming the file and the problem (one line) when the file can't be used. */
export function loadContainerPolicy(o: { policyFile?: string | undefined; stateDir: string }): LoadedPolicy {
  const path = o.policyFile ?? join(o.stateDir, POLICY_FILE_NAME);
  if (o.policyFile === undefined && !existsSync(path)) return { policy: DEFAULT_POLICY, from: null };
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`container policy ${JSON.stringify(path)}: cannot read it (${(e as NodeJS.ErrnoException).code ?? "error"})`);
  }
  const r = decodePolicy(text);
  if (!r.ok) throw new Error(`container policy ${JSON.stringify(path)}: ${r.errors.join("; ")}`);
  return { policy: r.value, from: path };
}
