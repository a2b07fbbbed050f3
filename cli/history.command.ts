// fleetctl history <device> <deployment> [-o wide] [--json]
import { canonicalHash } from "../contracts/canonical-json.js";
import { decode } from "../contracts/decode.js";
import { ScoreHash } from "../contracts/deployment-state.codec.js";
import { PodmanV0Score, ReconcileScore } from "../contracts/score.codec.js";
import { Fleet, signatureSummary, type SignatureSummary } from "../fleet/fleet.client.js";
import { buildTimeline, type TimelineStep } from "../machines/timeline.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, OperationError, deviceAndDeployment, duration, natsTarget, parse, shortId, type CliIo } from "./common.js";
import { ago, fitTable, outputStyle } from "./output.js";
import { formatChanges, serviceChanges, type ServiceChange } from "./score.changes.js";
import { wideOption } from "./status.command.js";

export const HISTORY_HELP = `Usage: fleetctl history <device> <deployment> [-o wide] [--json]

The deployment's journal (stream FLEET_EVENTS) as a timeline: n, when, from → to, the phase then
(Running, Pending, Degraded while a service waits for or has just had a restart, Failed), the event
that caused the transition, how long the deployment stayed in the state it entered, and the container
ids after it; then the total time spent in each state. Under each accepted update, what it changed
per service against the update before it (as deploy --dry-run shows it: + added, ~ replaced and
why, - removed, = unchanged). Env values never appear (the agent redacts them before publishing),
so a change of an env value alone shows as such, without the value. Each event's signature is
checked against the device's recorded key: the last line says whether all were verified, and names
any the device did not sign (FORGED).

Options:
  -o wide  times as ISO-8601, nothing cut to the terminal's width
  --json   print {device, deployment, steps: [{…, changes}], time_in_state: {state: ms},
           signatures: {verified, unverified, forged: [{n, why}]}}
${COMMON_HELP}

Exit: 0 ok, 1 no events or NATS unreachable, 2 usage error.
`;

interface UpdateRecord {
  hash: string;
  score: PodmanV0Score;
}

/** An accepted update's score, as journaled (env values redacted); a v1 journal's UPDATE reads as desired.updated. */
function updateOf(step: TimelineStep): UpdateRecord | null {
  return step.event.type === "desired.updated" ? { hash: step.event.hash, score: step.event.score } : null;
}

export interface HistoryChanges {
  changes: ServiceChange[];
  /** Said when no service's container changes although the score's hash did. */
  note: string | null;
}

/** For each step that accepted an update: its per-service changes against the update before it. */
export function updateChanges(steps: readonly TimelineStep[]): Map<number, HistoryChanges> {
  const out = new Map<number, HistoryChanges>();
  let before: UpdateRecord | null = null;
  for (const step of steps) {
    const u = updateOf(step);
    if (!u) continue;
    const changes = serviceChanges(before, u.score, u.hash);
    let note: string | null = null;
    if (before && before.hash !== u.hash && changes.every((c) => c.action === "unchanged")) {
      note = canonicalHash(before.score) === canonicalHash(u.score) ? "only env values changed (the journal keeps none)" : "no service's container changes";
    }
    out.set(step.n, { changes, note });
    before = u;
  }
  return out;
}

/** The one place a journal event is named for an operator (the vocabulary lives in machines/). */
export const eventName = (step: TimelineStep): string => step.label;

export async function historyCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, ...JSON_OPTION, output: { type: "string", short: "o" } });
  if (values.help) {
    io.out(HISTORY_HELP);
    return EXIT.OK;
  }
  const [device, deployment] = deviceAndDeployment(ps);
  const wide = wideOption(values);
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    const checked = await fleet.checkedJournal(device, deployment);
    if (checked.length === 0) throw new OperationError(`no journal events for ${device}/${deployment}`);
    const timeline = buildTimeline(device, deployment, checked.map((c) => c.event));
    const signatures = signatureSummary(checked);
    const changes = updateChanges(timeline.steps);
    if (values.json) {
      const steps = timeline.steps.map((s) => ({ ...s, changes: changes.get(s.n)?.changes ?? null }));
      io.out(JSON.stringify({ ...timeline, steps, signatures }, null, 2) + "\n");
      return EXIT.OK;
    }
    const style = outputStyle(io, wide);
    const now = Date.now();
    io.out(`history of ${device}/${deployment}: ${timeline.steps.length} transitions\n`);
    const rows = timeline.steps.map((s) => [
      String(s.n),
      wide ? s.at : ago(s.at, now),
      `${s.from} → ${s.to}`,
      // What operators saw then: a crash loop reads Degraded, a failed step that retries Failed.
      s.phase,
      eventName(s),
      s.spent_ms === null ? "(now)" : duration(s.spent_ms),
      Object.entries(s.container_ids).map(([svc, id]) => `${svc}=${shortId(id)}`).join(",") || "-",
    ]);
    const lines = fitTable(["N", "TIME", "TRANSITION", "PHASE", "EVENT", "STAYED", "CONTAINERS"], rows, { style, flex: [4, 6] }).trimEnd().split("\n");
    const out = [lines[0]!];
    timeline.steps.forEach((s, i) => {
      out.push(lines[i + 1]!);
      const c = changes.get(s.n);
      if (c) out.push(formatChanges(c.changes, "     ").trimEnd(), ...(c.note ? [`       (${c.note})`] : []));
    });
    io.out(out.join("\n") + "\n");
    const totals = Object.entries(timeline.time_in_state);
    if (totals.length) io.out(`time in state: ${totals.map(([st, ms]) => `${st} ${duration(ms)}`).join(", ")}\n`);
    io.out(`${signatureLine(signatures, checked.length)}\n`);
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}

export function signatureLine(s: SignatureSummary, total: number): string {
  if (s.forged.length) return `signatures: FORGED ${s.forged.length} of ${total}: ${s.forged.map((f) => `n ${f.n} (${f.why})`).join(", ")}`;
  if (s.unverified) return `signatures: UNVERIFIED: no key recorded for the device (fleetctl device add / device record-key)`;
  return `signatures: all ${total} events signed by the device`;
}
