// One e2e scenario: a unique device, its own state dir, a NATS connection for the operator's side
// (desired puts, device-state reads, stream reads), the agent child process, and the invariant
// check every scenario ends with. Cleans up after itself (containers by the device label, the
// device's NATS keys and subjects, the state dir), even when the test failed.
import { expect } from "chai";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { lastMessageOnSubject, readStreamEvents } from "../../../fleet/stream.reader.js";
import { ensureFleetResources } from "../../../fleet/resources.js";
import { canonicalJson } from "../../../contracts/canonical-json.js";
import { decodeJson } from "../../../contracts/decode.js";
import { DeploymentState } from "../../../contracts/deployment-state.codec.js";
import { JournalEvent, JournalEventV2 } from "../../../contracts/journal-event.codec.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_HEARTBEAT, BUCKET_DEVICE_STATE, deploymentKey, eventSubject, LABEL_DEVICE, STREAM_FLEET_EVENTS } from "../../../contracts/wire-names.js";
import { foldJournal } from "../../../machines/journal.fold.js";
import type { ListedContainer } from "../../../runtime/podman/libpod.client.js";
import { cleanupDevice, tempDir, waitFor } from "../../support/nats.js";
import { AgentProcess } from "./agent.process.js";
import { recordRow, removeDeviceContainers, suiteWorld, type SuiteWorld } from "./suite.js";

export { waitFor };

export interface ServiceDef {
  name: string;
  image: string;
  hostPort?: number;
  env?: Record<string, string>;
  command?: string[];
}

/** A PodmanV0 ReconcileScore (as a plain object). */
export function score(services: ServiceDef[], lifecycle: { grace_period_secs?: number; stop_signal?: string } = { grace_period_secs: 2 }) {
  return {
    type: "PodmanV0",
    data: {
      services: services.map((s) => ({
        name: s.name,
        image: s.image,
        ...(s.command ? { command: s.command } : {}),
        ...(s.env ? { env: s.env } : {}),
        ...(s.hostPort ? { ports: [{ host_port: s.hostPort, container_port: 8080 }] } : {}),
      })),
      lifecycle,
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Podman's event stream can lag the agent's reports: waits until `events` holds the start of each
 * container, so that a later slice of it holds only what happened after.
 */
export const startsSeen = (events: readonly ContainerEvent[], ids: readonly string[]) =>
  waitFor(`Podman's start events of ${ids.join(", ")}`, () => ids.every((id) => events.some((e) => e.action === "start" && e.id === id)));

export interface ContainerEvent {
  action: string;
  id: string;
  name: string;
  deployment: string;
  service: string;
  scoreHash: string;
  exitCode: number | null;
  /** epoch ms */
  at: number;
}

export interface Verified {
  lost: number;
  duplicates: number;
  leaked: number;
}

export class Scenario {
  agent: AgentProcess | null = null;
  readonly stateDir = tempDir("fleet-e2e-state-");
  private nc: NatsConnection | null = null;
  private connecting: Promise<NatsConnection> | null = null;
  private kvs = new Map<string, KV>();
  /** Extra cleanup (servers, timers), run last-in first-out. */
  readonly cleanups: Array<() => Promise<unknown> | unknown> = [];
  private recorded = false;
  /** The measurements of this scenario for the summary table. */
  recoveryMs: number | null = null;
  recoveryWhat = "";
  notes: string[] = [];
  private verified: Verified | null = null;

  private constructor(
    readonly w: SuiteWorld,
    readonly title: string,
    readonly device: string,
    public natsUrls: string[],
    /** JetStream replicas of the buckets and stream this scenario's operator creates. */
    public replicas = 1,
  ) {}

  static async create(title: string, opts: { nats?: string[] } = {}): Promise<Scenario> {
    const w = await suiteWorld();
    const device = w.podman.unique("e2e");
    w.devices.add(device);
    return new Scenario(w, title, device, opts.nats ?? [w.nats.url]);
  }

  /** Points this scenario at other NATS servers (before its first connection). */
  useNats(urls: string[], replicas = 1) {
    if (this.connecting) throw new Error("already connected");
    this.natsUrls = urls;
    this.replicas = replicas;
  }

  get podman() {
    return this.w.podman;
  }

  /** The operator's connection (reconnects forever, quickly: outage scenarios keep it). One per scenario. */
  conn(): Promise<NatsConnection> {
    this.connecting ??= (async () => {
      const nc = await connect({ servers: this.natsUrls, name: `e2e-operator/${this.device}`, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: true });
      try {
        // The operator's side exists before any device: it creates the buckets and the stream.
        await ensureFleetResources(nc, { replicas: this.replicas });
      } catch (e) {
        await nc.close().catch(() => undefined);
        throw e;
      }
      this.nc = nc;
      return nc;
    })();
    // A failed attempt (a cluster still electing) may be tried again.
    this.connecting.catch(() => (this.connecting = null));
    return this.connecting;
  }

  async kv(bucket: string): Promise<KV> {
    let kv = this.kvs.get(bucket);
    if (!kv) {
      kv = await new Kvm(await this.conn()).open(bucket);
      this.kvs.set(bucket, kv);
    }
    return kv;
  }

  startAgent(opts: { tickSecs?: number; nats?: string[]; extraArgs?: string[] } = {}): AgentProcess {
    if (this.agent?.running) throw new Error("an agent is already running for this scenario");
    this.agent = AgentProcess.start({
      device: this.device,
      stateDir: this.stateDir,
      nats: opts.nats ?? this.natsUrls,
      containerHost: this.podman.containerHost,
      tickSecs: opts.tickSecs ?? 1,
      logFile: join(this.w.logDir, `${this.device}.log`),
      ...(opts.extraArgs ? { extraArgs: opts.extraArgs } : {}),
    });
    return this.agent;
  }

  /** Starts the agent and waits until its desired-state watch runs (NATS reachable). */
  async startAgentOnline(opts: { tickSecs?: number } = {}): Promise<AgentProcess> {
    const a = this.startAgent(opts);
    await a.waitLog("connected to NATS", (l) => l.msg === "connected to NATS");
    return a;
  }

  /** Writes a desired value (an object is JSON-encoded; a string or bytes go as they are). */
  async put(deployment: string, value: unknown, key = deploymentKey(this.device, deployment)): Promise<number> {
    const kv = await this.kv(BUCKET_DESIRED_STATE);
    const data = typeof value === "string" || value instanceof Uint8Array ? value : JSON.stringify(value);
    return kv.put(key, data as string | Uint8Array);
  }

  async del(deployment: string): Promise<void> {
    await (await this.kv(BUCKET_DESIRED_STATE)).delete(deploymentKey(this.device, deployment));
  }

  async state(deployment: string): Promise<DeploymentState | null> {
    const e = await (await this.kv(BUCKET_DEVICE_STATE)).get(deploymentKey(this.device, deployment));
    if (!e || e.operation !== "PUT") return null;
    const r = decodeJson(DeploymentState, e.string());
    if (!r.ok) throw new Error(`device-state of ${deployment} does not decode: ${r.errors.join("; ")}`);
    return r.value;
  }

  waitState(deployment: string, pred: (s: DeploymentState) => boolean, what: string, timeoutMs = 60_000): Promise<DeploymentState> {
    return waitFor(`${deployment}: ${what}`, async () => {
      const s = await this.state(deployment).catch(() => null);
      return s && pred(s) ? s : undefined;
    }, timeoutMs);
  }

  async heartbeatAt(): Promise<string | null> {
    const e = await (await this.kv(BUCKET_DEVICE_HEARTBEAT)).get(this.device);
    return e && e.operation === "PUT" ? (e.json<{ at: string }>().at ?? null) : null;
  }

  /**
   * The agent's local journal of `deployment`, straight from its state dir (a torn tail is skipped).
   * A fresh agent writes version 2 only: a v1 line here is an error.
   */
  journal(deployment: string): JournalEventV2[] {
    let text: string;
    try {
      text = readFileSync(join(this.stateDir, "journal", `${deployment}.jsonl`), "utf8");
    } catch {
      return [];
    }
    const out: JournalEventV2[] = [];
    for (const line of text.split("\n")) {
      if (!line) continue;
      const r = decodeJson(JournalEventV2, line);
      if (r.ok) out.push(r.value);
      else if (decodeJson(JournalEvent, line).ok) throw new Error(`a v1 event in the fresh journal of ${deployment}: ${line.slice(0, 200)}`);
    }
    return out;
  }

  /** Polls the local journal until `pred` holds (10 ms steps: fast enough to catch a 1 s state). */
  waitJournal(deployment: string, pred: (events: JournalEventV2[]) => boolean, what: string, timeoutMs = 60_000): Promise<JournalEventV2[]> {
    const until = Date.now() + timeoutMs;
    return (async () => {
      for (;;) {
        const ev = this.journal(deployment);
        if (pred(ev)) return ev;
        if (this.agent && !this.agent.running) throw new Error(`agent exited while waiting for ${deployment}: ${what}`);
        if (Date.now() > until) throw new Error(`timed out waiting for the journal of ${deployment}: ${what} (last: ${JSON.stringify(ev.at(-1)?.to)})`);
        await sleep(10);
      }
    })();
  }

  /** The deployment's events as the stream holds them (retried: a cluster may be electing a leader); version 2 only. */
  async streamEvents(deployment: string): Promise<JournalEventV2[]> {
    const until = Date.now() + 60_000;
    for (;;) {
      let events: JournalEvent[];
      try {
        events = await readStreamEvents(jetstream(await this.conn()), this.device, deployment, { timeoutMs: 20_000 });
      } catch (e) {
        if (Date.now() > until) throw e;
        await sleep(500);
        continue;
      }
      const v1 = events.find((e) => e.v !== 2);
      if (v1) throw new Error(`a v1 event in the stream of a fresh agent's ${deployment}: n=${v1.n} ${v1.event.type}`);
      return events.filter((e): e is JournalEventV2 => e.v === 2);
    }
  }

  /** n of the subject's last event in the stream (0: none; -1: not readable right now). */
  async lastStreamN(deployment: string): Promise<number> {
    try {
      const jsm = await jetstreamManager(await this.conn());
      const m = await lastMessageOnSubject(jsm, STREAM_FLEET_EVENTS, eventSubject(this.device, deployment));
      if (!m) return 0;
      const r = decodeJson(JournalEvent, m.string());
      return r.ok ? r.value.n : -1;
    } catch {
      return -1; // NATS restarting, JetStream not ready yet
    }
  }

  /** This device's containers, as Podman lists them (all states). */
  async containers(): Promise<ListedContainer[]> {
    return this.podman.client.list({ all: true, filters: { label: [`${LABEL_DEVICE}=${this.device}`] } });
  }

  async containersOf(deployment: string): Promise<ListedContainer[]> {
    return (await this.containers()).filter((c) => c.Labels?.["io.fleet.deployment"] === deployment);
  }

  /**
   * Records this device's container events from Podman's event stream from now on (create, start,
   * died with its exit code, remove...), in order. Ends at cleanup (or when Podman goes away).
   */
  async podmanEvents(): Promise<ContainerEvent[]> {
    const out: ContainerEvent[] = [];
    const stream = await this.podman.client.events({ type: ["container"], label: [`${LABEL_DEVICE}=${this.device}`] });
    this.cleanups.push(() => stream.close());
    void (async () => {
      try {
        for await (const e of stream) {
          const a = e.Actor.Attributes ?? {};
          const code = a["containerExitCode"];
          out.push({
            action: e.Action,
            id: e.Actor.ID,
            name: a["name"] ?? "",
            deployment: a["io.fleet.deployment"] ?? "",
            service: a["io.fleet.service"] ?? "",
            scoreHash: a["io.fleet.score-hash"] ?? "",
            exitCode: code === undefined ? null : Number(code),
            at: e.timeNano ? e.timeNano / 1e6 : e.time * 1000,
          });
        }
      } catch {
        // the service went away (a restart scenario): the recording simply ends
      }
    })();
    return out;
  }

  async http(port: number): Promise<string> {
    const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
    return (await r.text()).trim();
  }

  /** Waits until every local journal event is in the stream and device-state names the last one. */
  async caughtUp(deployments: string[], timeoutMs = 60_000): Promise<void> {
    // Each look is capped at 1 s: a request sent while the operator's connection is reconnecting
    // would otherwise wait out its 5 s time-out and blur the measured recovery time.
    const look = async () => {
      for (const d of deployments) {
        const local = this.journal(d).length;
        if ((await this.lastStreamN(d)) !== local) return false;
        const s = await this.state(d).catch(() => null);
        if (!s || s.last_event_seq !== local) return false;
      }
      return true;
    };
    await waitFor(`journal published and device-state caught up (${deployments.join(", ")})`, () => Promise.race([look().catch(() => false), sleep(1000).then(() => false)]), timeoutMs);
  }

  /**
   * The invariants every scenario ends with, for each deployment: exactly one managed container per
   * service, its id the one in device-state; no other container of this device; the stream's
   * journal contiguous from n=1, without gap or duplicate, equal to the local one; its fold equal
   * to device-state. Counts are kept for the summary before anything is asserted.
   */
  async verify(deployments: string[]): Promise<Verified> {
    await this.caughtUp(deployments);
    const all = await this.containers();
    const claimed = new Set<string>();
    let lost = 0;
    let duplicates = 0;
    const problems: string[] = [];
    for (const d of deployments) {
      const s = (await this.state(d))!;
      const stream = await this.streamEvents(d);
      const local = this.journal(d);
      const ns = stream.map((e) => e.n);
      const seen = new Set(ns);
      duplicates += ns.length - seen.size;
      lost += local.filter((e) => !seen.has(e.n)).length;
      if (ns.some((n, i) => n !== i + 1)) problems.push(`${d}: stream n not contiguous from 1: ${ns.join(",")}`);
      if (canonicalJson(stream.map((e) => JournalEvent.encode(e))) !== canonicalJson(local.map((e) => JournalEvent.encode(e)))) {
        problems.push(`${d}: the stream's events differ from the local journal`);
      }
      const folded = foldJournal({ device: this.device, deployment: d }, stream.map((e) => e.event));
      const view = {
        state: String(folded.value),
        container_ids: folded.context.containerIds,
        score_hash: folded.context.target?.hash ?? null,
        last_error: folded.context.lastError,
        desired_revision: folded.context.revision,
        last_event_seq: stream.length,
      };
      const reported = {
        state: s.state,
        container_ids: s.container_ids,
        score_hash: s.score_hash,
        last_error: s.last_error,
        desired_revision: s.desired_revision,
        last_event_seq: s.last_event_seq,
      };
      if (canonicalJson(view) !== canonicalJson(reported)) problems.push(`${d}: fold ${JSON.stringify(view)} != device-state ${JSON.stringify(reported)}`);
      const mine = all.filter((c) => c.Labels?.["io.fleet.deployment"] === d);
      for (const [service, id] of Object.entries(s.container_ids)) {
        const of = mine.filter((c) => c.Labels?.["io.fleet.service"] === service);
        if (of.length !== 1 || of[0]!.Id !== id) problems.push(`${d}.${service}: want exactly container ${id.slice(0, 12)}, found ${of.map((c) => `${c.Id.slice(0, 12)}(${c.State})`).join(",") || "none"}`);
        claimed.add(id);
      }
    }
    const strays = all.filter((c) => !claimed.has(c.Id));
    for (const c of strays) problems.push(`leaked container ${c.Names?.[0]} ${c.Id.slice(0, 12)} (${c.State})`);
    this.verified = { lost, duplicates, leaked: strays.length };
    expect(problems, problems.join("\n")).to.deep.equal([]);
    expect(lost, "events lost").to.equal(0);
    expect(duplicates, "duplicate events").to.equal(0);
    return this.verified;
  }

  /** Records the summary row (once). */
  record(passed: boolean) {
    if (this.recorded) return;
    this.recorded = true;
    recordRow({
      scenario: this.title.split(" — ")[0]!,
      result: passed ? "pass" : "FAIL",
      recoveryMs: this.recoveryMs,
      recoveryWhat: this.recoveryWhat,
      lost: this.verified?.lost ?? null,
      duplicates: this.verified?.duplicates ?? null,
      leaked: this.verified?.leaked ?? null,
      notes: this.notes.join("; "),
    });
  }

  async cleanup(passed: boolean): Promise<void> {
    this.record(passed);
    await this.agent?.kill().catch(() => undefined);
    await removeDeviceContainers(this.w, this.device);
    if (this.nc && !this.nc.isClosed()) {
      await Promise.race([cleanupDevice(this.nc, this.device).catch(() => undefined), sleep(5000)]);
      await this.nc.close().catch(() => undefined);
    }
    for (const c of this.cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/**
 * mocha glue: `const sc = useScenario()` in a describe gives each test a fresh Scenario (named after
 * the test) in `sc.current`, cleaned up after it.
 */
export function useScenario(opts: { nats?: () => string[] } = {}) {
  const holder: { current: Scenario } = { current: null as unknown as Scenario };
  beforeEach(async function () {
    holder.current = await Scenario.create(this.currentTest?.title ?? "scenario", opts.nats ? { nats: opts.nats() } : {});
  });
  afterEach(async function () {
    this.timeout(120_000);
    await holder.current?.cleanup(this.currentTest?.state === "passed");
  });
  return holder;
}
