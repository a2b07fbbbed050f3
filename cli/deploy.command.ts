// fleetctl deploy <device> <deployment> -f score.json|yaml [--dry-run] [--json]
import { deploymentKey } from "../contracts/wire-names.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, OperationError, UsageError, deviceAndDeployment, natsTarget, parse, type CliIo } from "./common.js";
import { Fleet, scoreWithoutEnvValues } from "../fleet/fleet.client.js";
import { formatChanges, serviceChanges } from "./score.changes.js";
import { readScoreFile } from "./score.file.js";
import { SIGNING_HELP, SIGNING_OPTION, UNSIGNED_NOTE, alreadySigned, desiredText, signingKeyOf } from "./signing.js";
import { yamlOf } from "./score.reference.js";
import { requireKnownDevice } from "./status.command.js";

/** The hint that goes with refusing a device that never reported. */
export const NEW_DEVICE_HINT = "; check the id, or pass --new-device to write desired state for a device not installed yet";

export const DEPLOY_HELP = `Usage: fleetctl deploy <device> <deployment> -f <score.json|score.yaml|docker-compose.yml> [--dry-run] [--new-device] [--json]

Validates the score locally with the wire codecs (an invalid file is refused, naming the field, and
nothing is written), prints what changes per service against the current desired state, then writes
it with a compare-and-set on the revision it read: if someone changed the deployment in between, the
write is refused, not overwritten.

The score: {type: PodmanV0, data: {services: [{name, image, command?, env?, ports?, volumes?, health?,
depends_on?}], lifecycle?: {stop_signal?, grace_period_secs?, min_ready_secs?}}}. fleetctl explain
describes every field (types, defaults, limits, examples); fleetctl schema prints its JSON Schema.

A Compose file (a top-level "services" map) is translated: image, command, entrypoint (put ahead of
the command), environment, ports "HOST:CONTAINER[/proto]", bind volumes of absolute paths,
healthcheck, stop_signal and stop_grace_period (one lifecycle for the whole score), depends_on
(service_started), restart always/unless-stopped. Every other key is refused by name, nothing is
dropped; what the translation approximated is printed. --dry-run shows the score it would write.

A device that never reported (no device-info, heartbeat or device-state) is refused, naming a known
device when the id is close to one: a typo must not write desired state nobody will ever read.

Options:
  -f, --file PATH   the score (.json, or .yaml/.yml), or a Compose file
  --dry-run         validate and print the changes (and a translated score); write nothing
  --new-device      write even though the device never reported (it is about to be installed)
  --json            print the result as JSON
${SIGNING_HELP}
${COMMON_HELP}

Exit: 0 written (or nothing to change, or dry run), 1 refused or failed, 2 invalid usage or score.
`;

export { formatChanges, serviceChanges, type ServiceChange } from "./score.changes.js";

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

const indent = (text: string) => text.replace(/^(?=.)/gm, "  ");

export async function deployCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, ...JSON_OPTION, ...SIGNING_OPTION, file: { type: "string", short: "f" }, "dry-run": { type: "boolean" }, "new-device": { type: "boolean" } });
  if (values.help) {
    io.out(DEPLOY_HELP);
    return EXIT.OK;
  }
  const [device, deployment] = deviceAndDeployment(ps);
  if (!values.file) throw new UsageError("missing -f <score file> (see --help)");
  const file = await readScoreFile(values.file);
  const signingKey = signingKeyOf(values, io.env);

  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    const key = deploymentKey(device, deployment);
    if (values["new-device"] !== true) await requireKnownDevice(fleet, device, NEW_DEVICE_HINT);
    const current = await fleet.desiredEntry(device, deployment);
    const before = current?.score && current.hash ? { score: current.score.data, hash: current.hash } : null;
    const changes = serviceChanges(before, file.score.data, file.hash);
    // Signing the same score again changes nothing on the device; writing it signed where it wasn't does.
    const unchanged = current?.hash === file.hash && alreadySigned(current.signed, { device, deployment }, signingKey);
    const dryRun = values["dry-run"] === true;
    const result: Record<string, unknown> = {
      device,
      deployment,
      score_hash: file.hash,
      current_revision: current?.revision ?? null,
      current_hash: current?.hash ?? null,
      changes,
      source: file.source,
      notes: file.notes,
      written: false,
      revision: null,
      dry_run: dryRun,
      ...(file.source === "compose" ? { score: scoreWithoutEnvValues(file.score) } : {}),
    };
    if (!values.json) {
      io.out(`deploy ${device}/${deployment}: ${current ? `desired revision ${current.revision}` : "no desired state yet"} → ${file.hash.slice(0, 19)}…\n`);
      if (current && !current.score) io.out(`  (the current value does not decode: ${current.errors.join("; ")})\n`);
      io.out(formatChanges(changes));
      for (const n of file.notes) io.out(`note: ${n}\n`);
      if (dryRun && file.source === "compose") {
        io.out(`score translated from ${values.file} (env values not shown):\n${indent(`${yamlOf(scoreWithoutEnvValues(file.score))}\n`)}`);
      }
    }
    if (unchanged || dryRun) {
      if (!values.json) io.out(unchanged ? "no change: the same score (canonical hash) is already desired; nothing written\n" : "dry run: nothing written\n");
      else io.out(JSON.stringify(result, null, 2) + "\n");
      return EXIT.OK;
    }
    await io.hooks?.beforeWrite?.(key);
    const revision = await writeDesired(fleet, key, desiredText(file.score, { device, deployment }, signingKey), current?.revision ?? null);
    result["written"] = true;
    result["revision"] = revision;
    result["signed_by"] = signingKey?.publicKey ?? null;
    if (!signingKey && !values.json) io.err(UNSIGNED_NOTE);
    if (values.json) io.out(JSON.stringify(result, null, 2) + "\n");
    else io.out(`written: desired-state ${key} revision ${revision}\n`);
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}
