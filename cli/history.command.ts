// fleetctl history <device> <deployment> [--json]
import { buildTimeline } from "../machines/timeline.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, OperationError, deviceAndDeployment, duration, natsTarget, parse, shortId, table, type CliIo } from "./common.js";
import { Fleet, signatureSummary, type SignatureSummary } from "../fleet/fleet.client.js";

export const HISTORY_HELP = `Usage: fleetctl history <device> <deployment> [--json]

The deployment's journal (stream FLEET_EVENTS) as a timeline: n, time, from → to, the event that
caused the transition, how long the deployment stayed in the state it entered, and the container
ids after it; then the total time spent in each state. Env values never appear (the agent redacts
them before publishing). Each event's signature is checked against the device's recorded key: the
last line says whether all were verified, and names any the device did not sign (FORGED).

Options:
  --json   print {device, deployment, steps: [...], time_in_state: {state: ms},
           signatures: {verified, unverified, forged: [{n, why}]}}
${COMMON_HELP}

Exit: 0 ok, 1 no events or NATS unreachable, 2 usage error.
`;

export async function historyCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { ...COMMON_OPTIONS, ...JSON_OPTION });
  if (values.help) {
    io.out(HISTORY_HELP);
    return EXIT.OK;
  }
  const [device, deployment] = deviceAndDeployment(ps);
  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    const checked = await fleet.checkedJournal(device, deployment);
    if (checked.length === 0) throw new OperationError(`no journal events for ${device}/${deployment}`);
    const timeline = buildTimeline(device, deployment, checked.map((c) => c.event));
    const signatures = signatureSummary(checked);
    if (values.json) {
      io.out(JSON.stringify({ ...timeline, signatures }, null, 2) + "\n");
      return EXIT.OK;
    }
    io.out(`history of ${device}/${deployment}: ${timeline.steps.length} transitions\n`);
    io.out(
      table(
        ["N", "TIME", "TRANSITION", "EVENT", "STAYED", "CONTAINERS"],
        timeline.steps.map((s) => [
          String(s.n),
          s.at,
          `${s.from} → ${s.to}`,
          s.label,
          s.spent_ms === null ? "(now)" : duration(s.spent_ms),
          Object.entries(s.container_ids).map(([svc, id]) => `${svc}=${shortId(id)}`).join(",") || "-",
        ]),
      ),
    );
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
