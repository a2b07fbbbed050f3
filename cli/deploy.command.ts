// fleetctl deploy <device> <deployment> -f score.json|yaml [--dry-run] [--json]
import type { ReconcileScore } from "../contracts/score.codec.js";
import { deploymentKey } from "../contracts/wire-names.js";
import { scoreChanges, type ServiceChange } from "../machines/score.diff.js";
import type { ServiceAction } from "../machines/upgrade.plan.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, OperationError, UsageError, deviceAndDeployment, natsTarget, parse, type CliIo } from "./common.js";
import { Fleet, type DesiredEntry } from "../fleet/fleet.client.js";
import { readScoreFile } from "./score.file.js";

export const DEPLOY_HELP = `Usage: fleetctl deploy <device> <deployment> -f <score.json|score.yaml> [--dry-run] [--json]

Validates the score locally with the wire codecs (an invalid file is refused, naming the field, and
nothing is written), prints what changes per service against the current desired state, then writes
it with a compare-and-set on the revision it read: if someone changed the deployment in between, the
write is refused, not overwritten.

Options:
  -f, --file PATH   the score (.json, or .yaml/.yml)
  --dry-run         validate and print the changes; write nothing
  --json            print the result as JSON
${COMMON_HELP}

Exit: 0 written (or nothing to change, or dry run), 1 refused or failed, 2 invalid usage or score.
`;

export type { ServiceChange } from "../machines/score.diff.js";

/** Per service: added, replaced (and why), removed or unchanged, as the agent's planner decides it. */
export function serviceChanges(current: DesiredEntry | null, next: ReconcileScore): ServiceChange[] {
  return scoreChanges(current?.score?.data ?? null, next.data);
}

const SIGN: Record<ServiceAction, string> = { add: "+", replace: "~", remove: "-", unchanged: "=" };

export function formatChanges(changes: ServiceChange[]): string {
  const w = Math.max(...changes.map((c) => c.service.length));
  return changes.map((c) => `  ${SIGN[c.action]} ${c.service.padEnd(w)}  ${c.action.padEnd(9)} ${c.details.join("; ")}`.trimEnd()).join("\n") + "\n";
}

/** Writes `text` at `key` only if its revision is still `revision` (null: only if absent). */
export async function writeDesired(fleet: Fleet, key: string, text: string, revision: number | null): Promise<number> {
  try {
    return revision === null ? await fleet.desired.create(key, text) : await fleet.desired.update(key, text, revision);
  } catch (e) {
    const msg = (e as Error).message;
    if (/wrong last sequence|key exists/i.test(msg)) {
      const now = await fleet.desired.get(key).catch(() => null);
      throw new OperationError(
        `refused: ${key} changed since it was read (read ${revision === null ? "no entry" : `revision ${revision}`}, now ${now ? `revision ${now.revision}` : "unknown"}); nothing written. Re-run to see the new changes.`,
      );
    }
    throw new OperationError(`writing ${key} failed: ${msg}`);
  }
}

export async function deployCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, ...JSON_OPTION, file: { type: "string", short: "f" }, "dry-run": { type: "boolean" } });
  if (values.help) {
    io.out(DEPLOY_HELP);
    return EXIT.OK;
  }
  const [device, deployment] = deviceAndDeployment(ps);
  if (!values.file) throw new UsageError("missing -f <score file> (see --help)");
  const file = await readScoreFile(values.file);

  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    const key = deploymentKey(device, deployment);
    const current = await fleet.desiredEntry(device, deployment);
    const changes = serviceChanges(current, file.score);
    const unchanged = current?.hash === file.hash;
    const dryRun = values["dry-run"] === true;
    const result: Record<string, unknown> = {
      device,
      deployment,
      score_hash: file.hash,
      current_revision: current?.revision ?? null,
      current_hash: current?.hash ?? null,
      changes,
      written: false,
      revision: null,
      dry_run: dryRun,
    };
    if (!values.json) {
      io.out(`deploy ${device}/${deployment}: ${current ? `desired revision ${current.revision}` : "no desired state yet"} → ${file.hash.slice(0, 19)}…\n`);
      if (current && !current.score) io.out(`  (the current value does not decode: ${current.errors.join("; ")})\n`);
      io.out(formatChanges(changes));
    }
    if (unchanged || dryRun) {
      if (!values.json) io.out(unchanged ? "no change: the same score (canonical hash) is already desired; nothing written\n" : "dry run: nothing written\n");
      else io.out(JSON.stringify(result, null, 2) + "\n");
      return EXIT.OK;
    }
    await io.hooks?.beforeWrite?.(key);
    const revision = await writeDesired(fleet, key, file.text, current?.revision ?? null);
    result["written"] = true;
    result["revision"] = revision;
    if (values.json) io.out(JSON.stringify(result, null, 2) + "\n");
    else io.out(`written: desired-state ${key} revision ${revision}\n`);
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}
