// fleetctl rollout <deployment> -f score (--devices a,b,c | --selector GLOB) [--waves 1,10%,50%,100%]
import type { DeploymentState } from "../contracts/deployment-state.codec.js";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { deploymentKey } from "../contracts/wire-names.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, OperationError, UsageError, duration, natsTarget, nonNegativeNumber, parse, positionals, positiveNumber, sleep, type CliIo } from "./common.js";
import { didYouMean } from "../contracts/suggest.js";
import { NEW_DEVICE_HINT, writeDesired } from "./deploy.command.js";
import { Fleet } from "../fleet/fleet.client.js";
import { readScoreFile, type ScoreFile } from "./score.file.js";
import type { SigningKey } from "../contracts/nkey.js";
import { SIGNING_HELP, SIGNING_OPTION, UNSIGNED_NOTE, alreadySigned, desiredText, signingKeyOf } from "./signing.js";

export const ROLLOUT_HELP = `Usage: fleetctl rollout <deployment> -f <score> (--devices a,b,c | --selector GLOB) [options]

Rolls a score out to many devices in waves. Each wave's devices get the score in desired-state
(compare-and-set, as deploy does), then the rollout waits until every device of the wave reports
Running with the new score hash and has stayed Running, with no service restarted, for --soak
seconds. A device that reports Degraded (a service crashed, waits for a restart, or is unhealthy)
or Failed on the new score halts the rollout, naming the device, the service and why; so does a
device still not Running when --wave-timeout has passed. It exits 3. Progress goes to stderr.

Resumable: run the same command again. Devices already Running the target hash are skipped; devices
that already have it as desired state are awaited, not rewritten. A device that failed on the target
retries by itself (a pull, create, start or readiness failure, with backoff; its retry_at says when);
--retry-failed makes it retry at once, by writing the same desired value again (as fleetctl retry).

Options:
  -f, --file PATH       the score (.json or .yaml), or a Compose file (see fleetctl deploy --help)
  --devices LIST        device ids, comma separated, in rollout order
  --selector GLOBS      device-id globs ('*' any run, '?' one character), comma separated, over the
                        devices known from device-info, device-heartbeat and device-state; sorted
  --waves LIST          cumulative wave sizes: a count (N devices so far) or a percentage of all
                        selected devices (default 100%). Each wave adds at least one device; if the
                        list stops short of every device, a last wave takes the rest.
                        Example: --waves 1,10%,50%,100%
  --soak SECS           how long each device of a wave must stay Running before the next wave (default 30)
  --wave-timeout SECS   halt when a device of a wave is not Running after this long (default 600)
  --retry-failed        write the desired value again for devices that failed on this very score
  --new-device          allow --devices that never reported (no device-info, heartbeat or
                        device-state); without it such a device refuses the whole rollout
  --json                print a JSON summary on stdout at the end
${SIGNING_HELP}
${COMMON_HELP}

Exit: 0 every device Running the score, 1 a write was refused or failed, 2 usage or invalid score,
3 halted (a device Degraded or failed, a wave timed out, or interrupted; re-run to resume).
`;

/** Splits `devices` into cumulative waves as `spec` says (see ROLLOUT_HELP). */
export function planWaves(devices: readonly string[], spec: string): string[][] {
  const total = devices.length;
  const targets: number[] = [];
  for (const raw of spec.split(",").map((s) => s.trim())) {
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(raw);
    let n: number;
    if (pct) {
      const p = Number(pct[1]);
      if (!(p > 0 && p <= 100)) throw new UsageError(`--waves: a percentage must be in (0, 100], got ${raw}`);
      n = Math.ceil((p / 100) * total);
    } else if (/^\d+$/.test(raw) && Number(raw) > 0) n = Number(raw);
    else throw new UsageError(`--waves: expected a count or a percentage, got ${JSON.stringify(raw)}`);
    targets.push(n);
  }
  const waves: string[][] = [];
  let done = 0;
  for (const t of targets) {
    if (done >= total) break;
    const upTo = Math.min(total, Math.max(done + 1, t));
    waves.push(devices.slice(done, upTo));
    done = upTo;
  }
  if (done < total) waves.push(devices.slice(done));
  return waves;
}

export function globMatcher(globs: string): (s: string) => boolean {
  const res = globs
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== "")
    .map((g) => new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`));
  if (res.length === 0) throw new UsageError("--selector: empty");
  return (s) => res.some((r) => r.test(s));
}

type DeviceOutcome = "skipped" | "running" | "degraded" | "failed" | "timeout";
interface WaveReport {
  wave: number;
  devices: Array<{ device: string; outcome: DeviceOutcome; error?: string | null; service?: string }>;
}
interface Halt {
  device: string;
  why: string;
  outcome: DeviceOutcome;
  service?: string;
}

/** A device seen Running the target: since when, and its services' restarts then. */
export interface Soak {
  since: number;
  restarts: Record<string, number>;
}

export type Verdict =
  | { kind: "wait" }
  | { kind: "soaking"; soak: Soak }
  | { kind: "done" }
  | { kind: "halt"; outcome: "degraded" | "failed"; why: string; service?: string };

export async function rolloutCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, {
    ...COMMON_OPTIONS,
    ...JSON_OPTION,
    file: { type: "string", short: "f" },
    devices: { type: "string" },
    selector: { type: "string" },
    waves: { type: "string" },
    "wave-timeout": { type: "string" },
    soak: { type: "string" },
    "retry-failed": { type: "boolean" },
    "poll-ms": { type: "string" },
    ...SIGNING_OPTION,
    "new-device": { type: "boolean" },
  });
  if (values.help) {
    io.out(ROLLOUT_HELP);
    return EXIT.OK;
  }
  const [deployment] = positionals(ps, ["deployment"]) as [string];
  const p = deviceOrDeploymentNameProblem(deployment);
  if (p) throw new UsageError(`invalid deployment ${JSON.stringify(deployment.slice(0, 60))}: ${p}`);
  if (!values.file) throw new UsageError("missing -f <score file> (see --help)");
  if ((values.devices === undefined) === (values.selector === undefined)) throw new UsageError("give exactly one of --devices or --selector (see --help)");
  const waveTimeoutMs = positiveNumber("wave-timeout", values["wave-timeout"], 600) * 1000;
  const soakMs = nonNegativeNumber("soak", values.soak, 30) * 1000;
  const pollMs = positiveNumber("poll-ms", values["poll-ms"], 250);
  let listed: string[] | null = null;
  if (values.devices !== undefined) {
    listed = values.devices.split(",").map((d) => d.trim()).filter((d) => d !== "");
    for (const d of listed) {
      const q = deviceOrDeploymentNameProblem(d);
      if (q) throw new UsageError(`--devices: invalid device ${JSON.stringify(d.slice(0, 60))}: ${q}`);
    }
    if (new Set(listed).size !== listed.length) throw new UsageError("--devices: a device is listed twice");
  }
  const match = values.selector !== undefined ? globMatcher(values.selector) : null;
  const file = await readScoreFile(values.file);
  const signingKey = signingKeyOf(values, io.env);
  if (!signingKey) io.err(UNSIGNED_NOTE);
  for (const n of file.notes) io.err(`note: ${n}\n`);

  const fleet = await Fleet.connect(natsTarget(values, io.env));
  try {
    const known = await fleet.knownDevices();
    if (listed && values["new-device"] !== true) {
      const unknown = listed.filter((d) => !known.includes(d));
      if (unknown.length) {
        throw new OperationError(
          `refused, nothing written: ${unknown.map((d) => `${JSON.stringify(d)}${didYouMean(d, known)}`).join(", ")} never reported (no device-info, heartbeat or device-state)${NEW_DEVICE_HINT}`,
        );
      }
    }
    const devices = listed ?? known.filter((d) => match!(d));
    if (devices.length === 0) throw new UsageError(`--selector ${values.selector}: matches no known device`);
    const waves = planWaves(devices, values.waves ?? "100%");
    const reports: WaveReport[] = [];
    const progress = new Progress(io);
    io.err(`rollout ${deployment} ${file.hash.slice(0, 19)}… to ${devices.length} device(s) in ${waves.length} wave(s): ${waves.map((w) => w.length).join(", ")}\n`);
    for (const [i, wave] of waves.entries()) {
      const report: WaveReport = { wave: i + 1, devices: [] };
      reports.push(report);
      const pending = new Map<string, number>(); // device → revision written (or found)
      for (const device of wave) {
        const r = await prepare(fleet, device, deployment, file, values["retry-failed"] === true, signingKey);
        if (r === "skip") report.devices.push({ device, outcome: "skipped" });
        else pending.set(device, r);
      }
      const started = Date.now();
      const label = `wave ${i + 1}/${waves.length}`;
      const soaking = new Map<string, Soak>();
      let halted: Halt | null = null;
      while (pending.size > 0) {
        for (const [device, rev] of [...pending]) {
          const s = await fleet.deploymentState(device, deployment);
          const v = verdict(s, file.hash, rev, soaking.get(device) ?? null, Date.now(), soakMs);
          if (v.kind === "soaking") soaking.set(device, v.soak);
          else soaking.delete(device);
          if (v.kind === "done") {
            pending.delete(device);
            report.devices.push({ device, outcome: "running" });
          } else if (v.kind === "halt") {
            pending.delete(device);
            report.devices.push({ device, outcome: v.outcome, error: v.why, ...(v.service ? { service: v.service } : {}) });
            halted ??= { device, why: v.why, outcome: v.outcome, ...(v.service ? { service: v.service } : {}) };
          }
        }
        const settled = wave.length - pending.size;
        progress.draw(label, settled, wave.length, soaking.size, report.devices.filter((d) => d.outcome === "failed" || d.outcome === "degraded").length, Date.now() - started);
        if (halted || pending.size === 0) break;
        if (io.signal?.aborted) {
          halted = { device: [...pending.keys()].join(","), why: "interrupted", outcome: "timeout" };
          break;
        }
        // A device that is Running and soaking gets its soak; one that is not Running by now halts the wave.
        const late = [...pending.keys()].filter((d) => !soaking.has(d));
        if (Date.now() - started > waveTimeoutMs && late.length > 0) {
          for (const d of late) report.devices.push({ device: d, outcome: "timeout" });
          halted = { device: late.join(","), why: `not Running after ${duration(waveTimeoutMs)}`, outcome: "timeout" };
          break;
        }
        await sleep(pollMs, io.signal);
      }
      progress.end();
      if (halted) {
        const what = halted.outcome === "degraded" ? "is Degraded" : halted.outcome === "failed" ? "failed" : "halted the wave";
        io.err(`HALTED at ${label}: device ${halted.device} ${what}: ${halted.service ? `service ${halted.service}: ` : ""}${halted.why}\n`);
        io.err(`fix the cause, then re-run the same command to resume${halted.outcome === "failed" ? " (with --retry-failed to retry the failed device at once)" : ""}\n`);
        if (values.json) io.out(JSON.stringify({ deployment, score_hash: file.hash, completed: false, halted: { wave: i + 1, ...halted }, waves: reports }, null, 2) + "\n");
        return EXIT.HALTED;
      }
      const skipped = report.devices.filter((d) => d.outcome === "skipped").length;
      io.err(`${label}: ${wave.length} Running${skipped ? ` (${skipped} already were)` : ""}\n`);
    }
    if (values.json) io.out(JSON.stringify({ deployment, score_hash: file.hash, completed: true, halted: null, waves: reports }, null, 2) + "\n");
    else io.out(`rollout of ${deployment} complete: ${devices.length} device(s) Running ${file.hash}\n`);
    return EXIT.OK;
  } finally {
    await fleet.close();
  }
}

/**
 * Where one device stands against the target: still to wait for, Running and soaking, done (Running
 * with no restart for `soakMs`), or halting the rollout (Degraded or Failed on our write).
 */
export function verdict(s: DeploymentState | null, hash: string, revision: number, soak: Soak | null, now: number, soakMs: number): Verdict {
  if (!s) return { kind: "wait" };
  const actedOn = (s.desired_revision ?? 0) >= revision;
  // Failed on our write (or later): the agent acted on it and it did not work.
  if (s.phase === "Failed" && actedOn) {
    const t = troubleOf(s);
    return { kind: "halt", outcome: "failed", why: s.last_error ?? t?.why ?? `state ${s.state}`, ...(t ? { service: t.service } : {}) };
  }
  if (s.score_hash !== hash) return { kind: "wait" };
  if (s.phase === "Degraded" && actedOn) {
    const t = troubleOf(s);
    return { kind: "halt", outcome: "degraded", why: t?.why ?? s.last_error ?? "degraded", ...(t ? { service: t.service } : {}) };
  }
  if (s.phase !== "Running") return { kind: "wait" };
  const restarts = Object.fromEntries(Object.entries(s.services ?? {}).map(([svc, x]) => [svc, x.restarts]));
  if (!soak) return soakMs === 0 ? { kind: "done" } : { kind: "soaking", soak: { since: now, restarts } };
  // A restart between two looks is a crash the device got over before this one could see it.
  const restarted = Object.entries(restarts).find(([svc, n]) => n > (soak.restarts[svc] ?? n));
  if (restarted) return { kind: "halt", outcome: "degraded", service: restarted[0], why: `restarted during the soak (restarts ${restarted[1]})` };
  return now - soak.since >= soakMs ? { kind: "done" } : { kind: "soaking", soak };
}

/** The first service that is not well, and why, in the words of its status. */
export function troubleOf(s: DeploymentState): { service: string; why: string } | null {
  for (const [service, x] of Object.entries(s.services ?? {})) {
    const code = x.last_exit_code === null ? "" : ` with code ${x.last_exit_code}`;
    const restarts = `restarts ${x.restarts}${x.restart_at ? `, next restart at ${x.restart_at}` : ""}`;
    if (x.state === "exited") return { service, why: `exited${code} (${restarts})` };
    if (x.state === "missing") return { service, why: `its container is missing (${restarts})` };
    if (x.health === "unhealthy") return { service, why: `unhealthy (${restarts})` };
    if (x.restart_at) return { service, why: `last exited${code}; ${restarts}` };
  }
  return null;
}

/** Writes the target for one device unless it is there already; gives the revision to await, or "skip". */
async function prepare(fleet: Fleet, device: string, deployment: string, file: ScoreFile, retryFailed: boolean, signingKey: SigningKey | null): Promise<number | "skip"> {
  const key = deploymentKey(device, deployment);
  const target = { device, deployment };
  const [desired, state] = await Promise.all([fleet.desiredEntry(device, deployment), fleet.deploymentState(device, deployment)]);
  if (desired?.hash === file.hash && alreadySigned(desired.signed, target, signingKey)) {
    if (state?.phase === "Running" && state.score_hash === file.hash) return "skip";
    const failedOnIt = state?.phase === "Failed" && (state.desired_revision ?? 0) >= desired.revision;
    // The same value again, at a newer revision: the agent retries it at once (desired.retried).
    if (failedOnIt && retryFailed) return writeDesired(fleet, key, desiredText(file.score, target, signingKey), desired.revision);
    return desired.revision;
  }
  return writeDesired(fleet, key, desiredText(file.score, target, signingKey), desired?.revision ?? null);
}

class Progress {
  private last = "";
  private drawn = false;
  constructor(private readonly io: CliIo) {}
  draw(label: string, done: number, total: number, soaking: number, halted: number, elapsedMs: number) {
    const width = 20;
    const filled = total === 0 ? width : Math.round((done / total) * width);
    const bar = "#".repeat(filled) + ".".repeat(width - filled);
    const counts = `${done}/${total} settled${soaking ? `, ${soaking} soaking` : ""}${halted ? `, ${halted} halted` : ""}`;
    if (this.io.errIsTty) {
      this.io.err(`\r${label} [${bar}] ${counts} ${duration(elapsedMs)}   `);
      this.drawn = true;
    } else if (counts !== this.last) {
      this.io.err(`${label} [${bar}] ${counts}\n`);
    }
    this.last = counts;
  }
  end() {
    if (this.drawn) this.io.err("\n");
    this.drawn = false;
    this.last = "";
  }
}
