// fleetctl rollout <deployment> -f score (--devices a,b,c | --selector GLOB) [--waves 1,10%,50%,100%]
import type { DeploymentState } from "../contracts/deployment-state.codec.js";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { deploymentKey } from "../contracts/wire-names.js";
import { COMMON_HELP, COMMON_OPTIONS, EXIT, JSON_OPTION, OperationError, UsageError, duration, natsTarget, parse, positionals, positiveNumber, sleep, type CliIo } from "./common.js";
import { didYouMean } from "../contracts/suggest.js";
import { NEW_DEVICE_HINT, writeDesired } from "./deploy.command.js";
import { Fleet } from "../fleet/fleet.client.js";
import { readScoreFile, type ScoreFile } from "./score.file.js";
import type { SigningKey } from "../contracts/nkey.js";
import { SIGNING_HELP, SIGNING_OPTION, UNSIGNED_NOTE, alreadySigned, desiredText, signingKeyOf } from "./signing.js";

export const ROLLOUT_HELP = `Usage: fleetctl rollout <deployment> -f <score> (--devices a,b,c | --selector GLOB) [options]

Rolls a score out to many devices in waves. Each wave's devices get the score in desired-state
(compare-and-set, as deploy does), then the rollout waits until every device of the wave reports
Running with the new score hash. A device that reports Failed halts the rollout: it prints which
device and why, and exits 3. Progress goes to stderr.

Resumable: run the same command again. Devices already Running the target hash are skipped; devices
that already have it as desired state are awaited, not rewritten. A device that failed on the target
stays failed (roll forward only: the agent does not retry the same score by itself); after fixing the
cause, add --retry-failed to have the rollout re-arm it (it writes a marker value that the agent
rejects, then the score again, so the agent applies it afresh; both show in the device's journal).

Options:
  -f, --file PATH       the score (.json or .yaml), or a Compose file (see fleetctl deploy --help)
  --devices LIST        device ids, comma separated, in rollout order
  --selector GLOBS      device-id globs ('*' any run, '?' one character), comma separated, over the
                        devices known from device-info, device-heartbeat and device-state; sorted
  --waves LIST          cumulative wave sizes: a count (N devices so far) or a percentage of all
                        selected devices (default 100%). Each wave adds at least one device; if the
                        list stops short of every device, a last wave takes the rest.
                        Example: --waves 1,10%,50%,100%
  --wave-timeout SECS   halt when a wave is not Running after this long (default 600)
  --retry-failed        re-arm devices that failed on this very score (see above)
  --new-device          allow --devices that never reported (no device-info, heartbeat or
                        device-state); without it such a device refuses the whole rollout
  --json                print a JSON summary on stdout at the end
${SIGNING_HELP}
${COMMON_HELP}

Exit: 0 every device Running the score, 1 a write was refused or failed, 2 usage or invalid score,
3 halted (a device failed, a wave timed out, or interrupted; re-run to resume).
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

type DeviceOutcome = "skipped" | "running" | "failed" | "timeout";
interface WaveReport {
  wave: number;
  devices: Array<{ device: string; outcome: DeviceOutcome; error?: string | null }>;
}

export async function rolloutCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, {
    ...COMMON_OPTIONS,
    ...JSON_OPTION,
    file: { type: "string", short: "f" },
    devices: { type: "string" },
    selector: { type: "string" },
    waves: { type: "string" },
    "wave-timeout": { type: "string" },
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
      let halted: { device: string; why: string } | null = null;
      while (pending.size > 0) {
        for (const [device, rev] of [...pending]) {
          const s = await fleet.deploymentState(device, deployment);
          const v = verdict(s, file.hash, rev);
          if (v === "running") {
            pending.delete(device);
            report.devices.push({ device, outcome: "running" });
          } else if (v === "failed") {
            pending.delete(device);
            report.devices.push({ device, outcome: "failed", error: s?.last_error ?? null });
            halted ??= { device, why: s?.last_error ?? `state ${s?.state}` };
          }
        }
        progress.draw(label, wave.length - pending.size, wave.length, report.devices.filter((d) => d.outcome === "failed").length, Date.now() - started);
        if (halted || pending.size === 0) break;
        if (io.signal?.aborted) {
          halted = { device: [...pending.keys()].join(","), why: "interrupted" };
          break;
        }
        if (Date.now() - started > waveTimeoutMs) {
          for (const d of pending.keys()) report.devices.push({ device: d, outcome: "timeout" });
          halted = { device: [...pending.keys()].join(","), why: `not Running after ${duration(waveTimeoutMs)}` };
          break;
        }
        await sleep(pollMs, io.signal);
      }
      progress.end();
      if (halted) {
        io.err(`HALTED at ${label}: device ${halted.device} failed: ${halted.why}\n`);
        io.err(`fix the cause, then re-run the same command to resume${halted.why === "interrupted" || halted.why.startsWith("not Running") ? "" : " (with --retry-failed for the failed device)"}\n`);
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

/** Where one device stands against the target: done, failed on it, or still to wait for. */
function verdict(s: DeploymentState | null, hash: string, revision: number): "running" | "failed" | "wait" {
  if (!s) return "wait";
  if (s.phase === "Running" && s.score_hash === hash) return "running";
  // Failed on our write (or later): the agent acted on it and it did not work.
  if (s.phase === "Failed" && (s.desired_revision ?? 0) >= revision) return "failed";
  return "wait";
}

/** Writes the target for one device unless it is there already; gives the revision to await, or "skip". */
async function prepare(fleet: Fleet, device: string, deployment: string, file: ScoreFile, retryFailed: boolean, signingKey: SigningKey | null): Promise<number | "skip"> {
  const key = deploymentKey(device, deployment);
  const target = { device, deployment };
  const [desired, state] = await Promise.all([fleet.desiredEntry(device, deployment), fleet.deploymentState(device, deployment)]);
  if (desired?.hash === file.hash && alreadySigned(desired.signed, target, signingKey)) {
    if (state?.phase === "Running" && state.score_hash === file.hash) return "skip";
    const failedOnIt = state?.phase === "Failed" && (state.desired_revision ?? 0) >= desired.revision;
    if (failedOnIt && retryFailed) return rearm(fleet, key, device, deployment, file, desired.revision, signingKey);
    return desired.revision;
  }
  return writeDesired(fleet, key, desiredText(file.score, target, signingKey), desired?.revision ?? null);
}

/**
 * The agent applies a score once per hash (invariant 4) and never retries a failed one by itself.
 * A value it rejects (the score plus an unknown field) resets that, then the score is written again.
 */
async function rearm(fleet: Fleet, key: string, device: string, deployment: string, file: ScoreFile, revision: number, signingKey: SigningKey | null): Promise<number> {
  const marker = JSON.stringify({ ...file.score, fleetctl_retry: new Date().toISOString() });
  const markerRev = await writeDesired(fleet, key, marker, revision);
  // Let the agent see the marker before the score (a watch that restarted in between would skip it).
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    const s = await fleet.deploymentState(device, deployment);
    if ((s?.desired_revision ?? 0) >= markerRev) break;
    await sleep(100);
  }
  return writeDesired(fleet, key, desiredText(file.score, { device, deployment }, signingKey), markerRev);
}

class Progress {
  private last = "";
  private drawn = false;
  constructor(private readonly io: CliIo) {}
  draw(label: string, done: number, total: number, failed: number, elapsedMs: number) {
    const width = 20;
    const filled = total === 0 ? width : Math.round((done / total) * width);
    const bar = "#".repeat(filled) + ".".repeat(width - filled);
    const counts = `${done}/${total} settled${failed ? `, ${failed} failed` : ""}`;
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
