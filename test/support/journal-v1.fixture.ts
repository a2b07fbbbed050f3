// The committed v1 journals (test/fixtures/journal-v1): the snapshots the previous release had live.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { DeploymentInput } from "../../machines/deployment.machine.js";
import { foldJournal } from "../../machines/journal.fold.js";

export const FIXTURE_DIR = join(import.meta.dirname, "..", "fixtures", "journal-v1");

export interface FixtureDeployment {
  input: DeploymentInput;
  events: number;
  view: unknown;
}

export const fixtureDeployments = (): FixtureDeployment[] => JSON.parse(readFileSync(join(FIXTURE_DIR, "expected.json"), "utf8")) as FixtureDeployment[];

/**
 * The view the previous release had, in today's context: a field added to the context since (its
 * release knew nothing of it, so nothing in a v1 journal can set it) holds its initial value.
 */
export function inTodaysContext(x: FixtureDeployment): string {
  const v = x.view as { context: Record<string, unknown> };
  const initial = foldJournal(x.input, []).context as unknown as Record<string, unknown>;
  // Key order as the machine builds it, so the views compare as strings.
  const context = Object.fromEntries(Object.keys(initial).map((k) => [k, k in v.context ? v.context[k] : initial[k]]));
  return JSON.stringify({ ...v, context });
}
