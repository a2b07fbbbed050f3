// What the device commands do (docs/design.md, "Device commands"): ping answers from memory; logs
// reads a service's recorded container through the runtime, hides the deployment's env values and
// fits the reply; restart starts a recorded container anew and journals it. Each works beside the
// deployment's machine, reading its snapshot, never waiting on it.
import type { LogLine, LogsRequest, RestartRequest } from "../../contracts/command.codec.js";
import { LOGS_DEFAULT_TAIL } from "../../contracts/command.codec.js";
import type { DeploymentSnapshot } from "../../machines/deployment.machine.js";
import type { ContainerRuntime } from "../../runtime/container-runtime.js";
import { cutJsonText } from "../../runtime/log-window.js";
import { REDACTED, logSecrets, redactText, withoutSecretStart, type LogSecrets } from "../journal/redact.js";
import { CommandRefused, type CommandHandlers } from "../nats/command.responder.js";
import type { DeploymentSupervisor } from "./supervisor.js";
import type { ScoreStore } from "./score.store.js";

export interface CommandDeps {
  device: string;
  agentVersion: string;
  supervisor: Pick<DeploymentSupervisor, "deployments" | "snapshot" | "phases" | "serviceRestarted">;
  runtime: Pick<ContainerRuntime, "logs" | "restart">;
  scores: Pick<ScoreStore, "get">;
  /** When the agent started (ms since the epoch). */
  startedAt: number;
  now?: () => number;
}

/** States in which a deployment's containers are its own to touch: no step is moving them. */
const SETTLED = new Set(["running", "failed"]);

export function deviceCommandHandlers(d: CommandDeps): CommandHandlers {
  const now = d.now ?? Date.now;
  return {
    ping: async () => ({
      device: d.device,
      agent_version: d.agentVersion,
      uptime_secs: Math.max(0, Math.round((now() - d.startedAt) / 1000)),
      at: new Date(now()).toISOString(),
      deployments: d.supervisor.phases(),
    }),

    logs: async (req: LogsRequest, ctx) => {
      const snapshot = deploymentOf(d, req.deployment);
      const id = containerOf(d.device, snapshot, req);
      const secrets = await secretsOf(d, snapshot, req.deployment);
      const logs = await d.runtime.logs(id, {
        tail: req.tail ?? LOGS_DEFAULT_TAIL,
        ...(req.since !== undefined ? { since: new Date(req.since) } : {}),
        maxBytes: ctx.maxBytes,
      });
      return fitRedacted(logs.lines, logs.truncated, secrets, ctx.maxBytes);
    },

    restart: async (req: RestartRequest) => {
      const snapshot = deploymentOf(d, req.deployment);
      const state = String(snapshot.value);
      if (!SETTLED.has(state)) throw new CommandRefused(`deployment ${req.deployment} is busy (${state}); try again once it is running`);
      const id = containerOf(d.device, snapshot, req);
      // Ownership is the runtime's check (its labels): a container not the agent's is refused there.
      const restarted = await d.runtime.restart(id);
      await d.supervisor.serviceRestarted(req.deployment, { service: req.service, id: restarted, by: "operator" });
      return { id: restarted };
    },
  };
}

function deploymentOf(d: CommandDeps, deployment: string): DeploymentSnapshot {
  const s = d.supervisor.snapshot(deployment);
  if (s && s.value !== "removed") return s;
  const known = d.supervisor.deployments();
  throw new CommandRefused(`no deployment ${JSON.stringify(deployment)} on ${d.device} (${known.length ? `it runs ${known.join(", ")}` : "it runs none"})`);
}

function containerOf(device: string, s: DeploymentSnapshot, req: { deployment: string; service: string }): string {
  const id = s.context.containerIds[req.service];
  if (id) return id;
  const services = [...new Set([...Object.keys(s.context.containerIds), ...(s.context.target?.score.services ?? []).map((x) => x.name)])].sort();
  if (services.includes(req.service)) throw new CommandRefused(`service ${req.service} of ${req.deployment} has no container on ${device} (the deployment is ${String(s.value)})`);
  throw new CommandRefused(`no service ${JSON.stringify(req.service)} in deployment ${req.deployment} (its services: ${services.join(", ") || "none"})`);
}

/**
 * Every env value the deployment's containers may know: those of the score being applied and of
 * each score a recorded container was created from, from the machine's context and the score store
 * (which holds what a redacted journal recovery could not). If a value is known only as `<redacted>`,
 * the logs are refused rather than shown unredacted.
 */
async function secretsOf(d: CommandDeps, s: DeploymentSnapshot, deployment: string): Promise<LogSecrets> {
  const envs: Array<Readonly<Record<string, string>> | undefined> = [];
  const hashes = new Set<string>();
  if (s.context.target) {
    hashes.add(s.context.target.hash);
    for (const svc of s.context.target.score.services) envs.push(svc.env);
  }
  for (const a of Object.values(s.context.applied)) {
    hashes.add(a.scoreHash);
    envs.push(a.service.env);
  }
  const stored = new Set<string>();
  for (const hash of hashes) {
    const score = await d.scores.get(hash);
    if (!score) continue;
    stored.add(hash);
    for (const svc of score.data.services) envs.push(svc.env);
  }
  const unknown = [
    ...(s.context.target && !stored.has(s.context.target.hash) ? s.context.target.score.services : []),
    ...Object.values(s.context.applied).flatMap((a) => (stored.has(a.scoreHash) ? [] : [a.service])),
  ].filter((svc) => Object.values(svc.env ?? {}).includes(REDACTED));
  if (unknown.length) {
    throw new CommandRefused(`the logs of ${deployment} can't be shown: the env values of ${[...new Set(unknown.map((x) => x.name))].join(", ")} are not known on ${d.device} to hide them`);
  }
  return logSecrets(envs);
}

const jsonBytes = (lines: LogLine[]) => Buffer.byteLength(JSON.stringify(lines));

/**
 * The lines with the secrets hidden, within `maxBytes` as JSON: `<redacted>` can be longer than the
 * value it hides, so the oldest lines go again if need be. A line the runtime cut (before anything
 * was hidden) loses a trailing start of a secret.
 */
export function fitRedacted(raw: readonly LogLine[], truncated: boolean, secrets: LogSecrets, maxBytes: number): { lines: LogLine[]; truncated: boolean } {
  const lines = raw.map((l) => ({ ...l, text: redactText(l.text, secrets) }));
  // The runtime cuts only a line too long on its own, which then is the oldest it keeps.
  if (truncated && lines[0]) lines[0].text = withoutSecretStart(lines[0].text, secrets);
  let size = jsonBytes(lines);
  let first = 0;
  while (size > maxBytes && lines.length - first > 1) {
    size -= Buffer.byteLength(JSON.stringify(lines[first])) + 1;
    first++;
    truncated = true;
  }
  const kept = lines.slice(first);
  const only = kept[0];
  if (only && kept.length === 1 && jsonBytes(kept) > maxBytes) {
    const overhead = jsonBytes([{ ...only, text: "" }]);
    // Cut after hiding: what is cut off here can't be part of a secret that shows.
    only.text = cutJsonText(only.text, Math.max(0, maxBytes - overhead));
    truncated = true;
    if (jsonBytes(kept) > maxBytes) return { lines: [], truncated };
  }
  return { lines: kept, truncated };
}
