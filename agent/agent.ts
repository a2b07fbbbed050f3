// The device process, assembled: journal and scores on disk first (an offline device keeps working
// from them), then NATS as it becomes reachable: resources, reports, the journal's publication and
// the desired-state watch. The tick runs from the start, NATS or not.
import { mkdirSync } from "node:fs";
import { hostname, arch } from "node:os";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, KvWatchInclude, type KvWatchEntry } from "@nats-io/kv";
import { canonicalHash } from "../contracts/canonical-json.js";
import { decodeJson } from "../contracts/decode.js";
import type { Health } from "../contracts/score.codec.js";
import { DesiredValue } from "../contracts/signed-score.js";
import { BUCKET_DESIRED_STATE, deploymentKey } from "../contracts/wire-names.js";
import type { StepBudgets } from "../machines/deployment.machine.js";
import type { ContainerRuntime } from "../runtime/container-runtime.js";
import type { AgentConfig } from "./config.js";
import { DeploymentSupervisor } from "./deployments/supervisor.js";
import { DesiredStateWatch, type DesiredChange } from "./nats/desired-state.watch.js";
import { EventJournal } from "./journal/journal.js";
import { CheckpointStore } from "./journal/checkpoint.js";
import { JournalPublisher } from "./journal/publisher.js";
import { readStreamEvents } from "../fleet/stream.reader.js";
import type { Logger } from "./logger.js";
import { policyViolations } from "./deployments/policy.js";
import { describeAuth, natsConnectOptions } from "../fleet/auth.js";
import { deviceSigningKey } from "../fleet/signing-key.js";
import { connectAgent, type NatsConnection } from "../fleet/connection.js";
import { deviceInboxPrefix } from "../fleet/device.permissions.js";
import { ensureFleetResources } from "../fleet/resources.js";
import { loadContainerPolicy } from "./deployments/policy.file.js";
import { sleep } from "../fleet/sleep.js";
import { ScoreStore } from "./deployments/score.store.js";
import { lockStateDir } from "./state-dir.lock.js";
import { StateReporter } from "./nats/state.reporter.js";
import { CommandResponder, type VerbLimit } from "./nats/command.responder.js";
import { deviceCommandHandlers } from "./deployments/commands.js";
import type { CommandVerb } from "../contracts/command.codec.js";
import { AGENT_VERSION } from "./version.js";

export interface AgentDeps {
  runtime: ContainerRuntime;
  logger: Logger;
  /** Podman's version for device-info, when the runtime can tell. */
  runtimeVersion?: () => Promise<string | null>;
  budgets?: Partial<StepBudgets>;
  /** The time between a service's health checks; default its `interval_secs` (tests shorten it). */
  healthIntervalMs?: (h: Health) => number;
  /** Journal events between snapshot checkpoints (default 500); tests make it small. */
  checkpointEvery?: number;
  /** Replicas for buckets and stream when this agent creates them (a clustered fleet). */
  replicas?: number;
  /** nats.js connection options (tests shorten reconnect waits). */
  natsOptions?: Parameters<typeof connectAgent>[0]["options"];
  /** Per-verb bounds of the device commands (tests tighten them). */
  commandLimits?: Partial<Record<CommandVerb, VerbLimit>>;
}

export interface RunningAgent {
  supervisor: DeploymentSupervisor;
  journal: EventJournal;
  publisher: JournalPublisher;
  reporter: StateReporter;
  /** Resolves once connected and the desired-state watch is running. */
  online: Promise<void>;
  /** Runs one tick now (tests, the demo). */
  tick(): Promise<void>;
  /** Graceful stop: no new work, in-flight steps settle (bounded), journal flushed, NATS drained. */
  stop(timeoutMs?: number): Promise<void>;
}

export async function startAgent(config: AgentConfig, deps: AgentDeps): Promise<RunningAgent> {
  const log = deps.logger;
  const device = config.deviceId;
  const startedAt = Date.now();
  // Both throw (before anything starts) on a bad policy or an unreadable key file; messages name files only.
  const policy = loadContainerPolicy(config);
  const deviceKey = deviceSigningKey(config.auth);
  // Its own inboxes: in a secured fleet the watch's and the history reader's deliveries reach the
  // device's account through imports of exactly this prefix (fleet/device.permissions.ts).
  const natsOptions = { inboxPrefix: deviceInboxPrefix(device), ...natsConnectOptions(config.auth), ...deps.natsOptions };
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const unlock = lockStateDir(config.stateDir);
  const journal = EventJournal.open(config.stateDir, device);
  const scores = await ScoreStore.open(config.stateDir);
  log.info({ policy: policy.from ?? "defaults", auth: describeAuth(config.auth) }, "container policy and NATS auth");
  const operatorKeys = config.operatorKeys ?? [];
  if (operatorKeys.length) log.info({ signing: "on", operatorKeys }, "applying only desired states signed by these operator keys");
  else log.warn({ signing: "off" }, "signing is off: any desired state written to this device's keys is applied, signed or not (start with --operator-keys to require an operator's signature)");
  if (deviceKey) log.info({ deviceKey: deviceKey.publicKey }, "reports and journal events are signed with this device's nkey");
  else log.warn("no nkey seed (--nkey or --creds): reports and journal events go unsigned, and the operator can't tell them from forged ones");
  const offline = new AbortController();
  const connecting = connectAgent({ servers: config.natsServers, device, logger: log, options: natsOptions, signal: offline.signal });
  let nc: NatsConnection | null = null;
  const signing = deviceKey ? { signingKey: deviceKey } : {};
  const reporter = new StateReporter({ device, nc: connecting, logger: log, ...signing });

  const publisher = new JournalPublisher({ journal, nc: connecting, logger: log, ...signing });
  const supervisor = new DeploymentSupervisor({
    device,
    runtime: deps.runtime,
    journal,
    scores,
    sink: { deploymentState: (s) => reporter.reportDeployment(s) },
    logger: log,
    checkpoints: CheckpointStore.open(config.stateDir),
    published: (deployment) => publisher.state(deployment).published,
    streamHistory: async (deployment) => {
      if (!nc) return [];
      try {
        return await readStreamEvents(jetstream(nc), device, deployment, { timeoutMs: 10_000 });
      } catch (e) {
        log.warn({ deployment, err: (e as Error).message }, "no local journal and the stream's history can't be read; the deployment starts afresh");
        return [];
      }
    },
    lookupScore: (deployment, hash, revision) => (nc ? scoreFromHistory(nc, device, deployment, hash, revision) : Promise.resolve(null)),
    ...(deps.budgets ? { budgets: deps.budgets } : {}),
    ...(config.backoff ? { backoff: config.backoff } : {}),
    ...(deps.healthIntervalMs ? { healthIntervalMs: deps.healthIntervalMs } : {}),
    ...(deps.checkpointEvery ? { checkpointEvery: deps.checkpointEvery } : {}),
  });
  const resumed = await supervisor.recover();
  log.info({ resumed, stateDir: config.stateDir }, "fleet-agent started");

  publisher.start();

  // Changes are applied strictly in the order the watch delivers them.
  let applying: Promise<void> = Promise.resolve();
  const onChange = (change: DesiredChange) => {
    // The device's policy bounds what a desired score may do: a score that breaks it is refused
    // like an invalid one (Failed, naming rule and service; nothing on the device changes).
    const broken = change.kind === "update" ? policyViolations(policy.policy, change.score) : [];
    const c: DesiredChange =
      change.kind === "update" && broken.length > 0 ? { kind: "reject", deployment: change.deployment, revision: change.revision, error: broken.join("; ") } : change;
    applying = applying.then(() => supervisor.apply(c)).catch((e: Error) => log.error({ deployment: c.deployment, err: e.message }, "applying a desired change failed"));
  };
  let watch: DesiredStateWatch | null = null;
  let commands: CommandResponder | null = null;
  let stopping = false;
  const online = (async () => {
    const conn = await connecting;
    nc = conn;
    if (stopping) return;
    // Commands first: an operator can ping a device while it is still catching up.
    commands = CommandResponder.start({
      device,
      nc: conn,
      logger: log,
      handlers: deviceCommandHandlers({ device, agentVersion: AGENT_VERSION, supervisor, runtime: deps.runtime, scores, startedAt }),
      ...(deps.commandLimits ? { limits: deps.commandLimits } : {}),
    });
    for (let attempt = 1; !stopping; attempt++) {
      try {
        const r = await ensureFleetResources(conn, deps.replicas ? { replicas: deps.replicas } : {});
        if (r === "not-permitted") log.info("this device may not create the fleet's buckets and stream (its own NATS account, or restricted permissions); using the operator's");
        break;
      } catch (e) {
        log.warn({ attempt, err: (e as Error).message }, "creating the fleet's buckets and stream failed; retrying");
        await sleep(Math.min(5000, 250 * attempt));
      }
    }
    if (stopping) return;
    reporter.reportDeviceInfo({
      device,
      hostname: hostname(),
      arch: arch(),
      podman_version: (await deps.runtimeVersion?.().catch(() => null)) ?? null,
      agent_version: AGENT_VERSION,
      ...(operatorKeys.length ? { signing: "on", operator_keys: operatorKeys } : { signing: "off" }),
    });
    watch = DesiredStateWatch.start({ device, nc: conn, logger: log, onChange, operatorKeys });
  })();
  online.catch((e: Error) => {
    if (!offline.signal.aborted) log.error({ err: e.message }, "connecting to NATS failed");
  });

  let ticking: Promise<void> | null = null;
  const tick = async () => {
    if (ticking) return ticking; // a slow tick is never overlapped by the next
    ticking = (async () => {
      await supervisor.tick();
      reporter.reportHeartbeat({ device, agent_version: AGENT_VERSION, at: new Date().toISOString(), deployments: supervisor.phases(), tick_secs: config.tickSecs });
    })().finally(() => (ticking = null));
    return ticking;
  };
  void tick();
  const timer = setInterval(() => void tick(), config.tickSecs * 1000);

  return {
    supervisor,
    journal,
    publisher,
    reporter,
    online,
    tick,
    async stop(timeoutMs = 30_000) {
      stopping = true;
      offline.abort(); // a first connection still being tried is given up; an open one is drained below
      clearInterval(timer);
      await (watch as DesiredStateWatch | null)?.stop();
      await (commands as CommandResponder | null)?.stop();
      await applying;
      await ticking;
      await supervisor.shutdown(timeoutMs);
      const connected = nc !== null && !(nc as NatsConnection).isClosed();
      if (connected) {
        await publisher.idle(5000).catch((e: Error) => log.warn({ err: e.message }, "shutdown: some events stay queued on disk"));
        await reporter.flush(5000).catch((e: Error) => log.warn({ err: e.message }, "shutdown: some reports were not written"));
      }
      await publisher.stop();
      await reporter.stop();
      if (nc) await (nc as NatsConnection).drain().catch(() => undefined);
      else void connecting.then((c) => c.close()).catch(() => undefined);
      unlock();
      log.info("fleet-agent stopped; containers keep running");
    },
  };
}

/** A score the local store lost, from the desired-state KV's history at the revision journaled. */
async function scoreFromHistory(nc: NatsConnection, device: string, deployment: string, hash: string, revision: number) {
  try {
    // A watch of this one key from `revision` (not kv.get by revision: a get by sequence can't be
    // limited to this device's keys by NATS permissions, a consumer filtered to the key can).
    const kv = await new Kvm(nc).open(BUCKET_DESIRED_STATE);
    const iter = await kv.watch({ key: deploymentKey(device, deployment), include: KvWatchInclude.AllHistory, resumeFromRevision: revision });
    const timer = setTimeout(() => iter.stop(), 5000);
    let entry: KvWatchEntry | null = null;
    try {
      for await (const e of iter) {
        entry = e;
        break;
      }
    } finally {
      clearTimeout(timer);
      iter.stop();
    }
    if (!entry || entry.revision !== revision || entry.operation !== "PUT") return null;
    const r = decodeJson(DesiredValue, entry.string());
    return r.ok && canonicalHash(r.value.score) === hash ? r.value.score : null;
  } catch {
    return null;
  }
}
