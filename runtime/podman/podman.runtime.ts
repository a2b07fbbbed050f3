// ContainerRuntime on Podman's libpod REST API. Touches only containers that carry this device's
// labels; every failure is a RuntimeError that names the image, service or container.
import { containerName } from "../../contracts/names.js";
import type { PodmanService } from "../../contracts/score.codec.js";
import { signalNumber } from "../../contracts/signals.js";
import { LABEL_DEPLOYMENT, LABEL_DEVICE, LABEL_MANAGED, LABEL_SCORE_HASH, LABEL_SERVICE } from "../../contracts/wire-names.js";
import { RuntimeError, type ContainerRuntime, type ContainerState, type ManagedContainer, type ServiceSpec } from "../container-runtime.js";
import {
  LibpodClient,
  LibpodError,
  isImageNotKnown,
  isNameInUse,
  isNotFound,
  type ContainerInspect,
  type CreateSpec,
  type HealthConfig,
} from "./libpod.client.js";

export interface PodmanRuntimeOptions {
  /** This device's id: labelled on every container, and the filter of everything it touches. */
  device: string;
  /** Defaults to a client on resolveSocketPath(). */
  client?: LibpodClient;
  /** More labels for every container it creates (tests add a per-run label). Ours win on a clash. */
  extraLabels?: Record<string, string>;
  /** See ContainerRuntime.startSettleMs; 0 (the default) means no check. */
  startSettleMs?: number;
}

const NS_PER_SEC = 1_000_000_000;
// Podman's own defaults for a health check field the score leaves out.
const HEALTH_DEFAULTS = { interval_secs: 30, timeout_secs: 30, retries: 3, start_period_secs: 0 } as const;

export class PodmanRuntime implements ContainerRuntime {
  readonly device: string;
  readonly client: LibpodClient;
  private readonly extraLabels: Record<string, string>;
  readonly startSettleMs: number | null;

  constructor(opts: PodmanRuntimeOptions) {
    this.device = opts.device;
    this.client = opts.client ?? new LibpodClient();
    this.extraLabels = { ...(opts.extraLabels ?? {}) };
    this.startSettleMs = opts.startSettleMs ? opts.startSettleMs : null;
  }

  async ensureImage(image: string): Promise<void> {
    try {
      if (await this.client.imageExists(image)) return;
      await this.client.pull(image, "missing");
    } catch (e) {
      throw runtimeError(`image ${image} is not available: ${reason(e)}`, image, e);
    }
  }

  async startService(spec: ServiceSpec): Promise<string> {
    const name = containerName(spec.deployment, spec.service.name);
    const create = this.createSpec(spec, name);
    // At most: create → (name taken by our leftover) remove → create.
    for (let attempt = 0; attempt < 3; attempt++) {
      let id: string;
      try {
        id = (await this.client.create(create)).Id;
      } catch (e) {
        if (isImageNotKnown(e)) throw runtimeError(`service ${spec.service.name}: image ${spec.service.image} is not present`, spec.service.image, e);
        if (!isNameInUse(e)) throw runtimeError(`service ${spec.service.name}: creating container ${name} failed: ${reason(e)}`, name, e);
        const existing = await this.inspectOrNull(name);
        if (!existing) continue; // removed in between: create again
        if (!this.isOurs(existing) || labelsOf(existing)[LABEL_DEPLOYMENT] !== spec.deployment || labelsOf(existing)[LABEL_SERVICE] !== spec.service.name) {
          throw new RuntimeError(`container ${name} already exists and is not managed by fleet-agent for device ${this.device}; not touching it`, name);
        }
        if (labelsOf(existing)[LABEL_SCORE_HASH] === spec.scoreHash) {
          // Ours, same score: adopt it.
          if (!existing.State.Running) await this.startContainer(existing.Id, spec);
          return existing.Id;
        }
        // Ours, from another score: a leftover (a crash between stop and remove). Replace it.
        try {
          await this.client.remove(existing.Id, { force: true, timeout: spec.lifecycle.grace_period_secs });
        } catch (re) {
          if (!isNotFound(re)) throw runtimeError(`service ${spec.service.name}: removing leftover container ${name} failed: ${reason(re)}`, name, re);
        }
        continue;
      }
      await this.startContainer(id, spec);
      return id;
    }
    throw new RuntimeError(`service ${spec.service.name}: container name ${name} stays taken`, name);
  }

  async status(idOrName: string): Promise<ManagedContainer | null> {
    const c = await this.inspectOrNull(idOrName);
    return c && this.isOurs(c) ? this.fromInspect(c) : null;
  }

  async stop(id: string, graceSecs: number): Promise<void> {
    const c = await this.ownedOrNull(id, "stop");
    if (!c) return;
    try {
      await this.client.stop(c.Id, graceSecs);
    } catch (e) {
      if (isNotFound(e)) return;
      throw runtimeError(`stopping container ${c.Name} failed: ${reason(e)}`, c.Name, e);
    }
  }

  async remove(id: string): Promise<void> {
    const c = await this.ownedOrNull(id, "remove");
    if (!c) return;
    try {
      await this.client.remove(c.Id, { force: true, timeout: c.Config.StopTimeout ?? 10 });
    } catch (e) {
      if (isNotFound(e)) return;
      throw runtimeError(`removing container ${c.Name} failed: ${reason(e)}`, c.Name, e);
    }
  }

  async list(): Promise<ManagedContainer[]> {
    let listed;
    try {
      listed = await this.client.list({ all: true, filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_DEVICE}=${this.device}`] } });
    } catch (e) {
      throw runtimeError(`listing containers failed: ${reason(e)}`, this.device, e);
    }
    const out: ManagedContainer[] = [];
    for (const c of listed) {
      const labels = c.Labels ?? {};
      // Podman filtered already; checked again so that a filter Podman ignored can't let a stranger in.
      if (labels[LABEL_MANAGED] !== "true" || labels[LABEL_DEVICE] !== this.device) continue;
      out.push({
        id: c.Id,
        name: c.Names?.[0] ?? "",
        deployment: labels[LABEL_DEPLOYMENT] ?? "",
        service: labels[LABEL_SERVICE] ?? "",
        scoreHash: labels[LABEL_SCORE_HASH] ?? "",
        state: mapState(c.State),
        exitCode: isFinished(c.State) ? c.ExitCode : null,
      });
    }
    return out;
  }

  /** The SpecGenerator for a service: name, labels, stop signal and timeout, env, ports, mounts, health. */
  createSpec(spec: ServiceSpec, name = containerName(spec.deployment, spec.service.name)): CreateSpec {
    const s = spec.service;
    const create: CreateSpec = {
      name,
      image: s.image,
      labels: {
        ...this.extraLabels,
        [LABEL_MANAGED]: "true",
        [LABEL_DEVICE]: this.device,
        [LABEL_DEPLOYMENT]: spec.deployment,
        [LABEL_SERVICE]: s.name,
        [LABEL_SCORE_HASH]: spec.scoreHash,
      },
      stop_signal: signalNumber(spec.lifecycle.stop_signal),
      stop_timeout: spec.lifecycle.grace_period_secs,
    };
    if (s.command) create.command = [...s.command];
    if (s.env) create.env = { ...s.env };
    if (s.ports?.length) {
      create.portmappings = s.ports.map((p) => ({ container_port: p.container_port, host_port: p.host_port, protocol: p.protocol ?? "tcp" }));
    }
    if (s.volumes?.length) {
      create.mounts = s.volumes.map((v) => ({
        destination: v.target,
        type: "bind",
        source: v.source,
        options: v.read_only ? ["rbind", "ro"] : ["rbind", "rw"],
      }));
    }
    if (s.health) create.healthconfig = healthConfig(s.health);
    return create;
  }

  // ---- internals ----

  private async startContainer(id: string, spec: ServiceSpec): Promise<void> {
    const service = spec.service.name;
    try {
      await this.client.start(id);
    } catch (e) {
      throw runtimeError(`service ${service} failed to start: ${reason(e)}`, service, e);
    }
  }

  private async inspectOrNull(idOrName: string): Promise<ContainerInspect | null> {
    try {
      return await this.client.inspect(idOrName);
    } catch (e) {
      if (isNotFound(e)) return null;
      throw runtimeError(`inspecting container ${idOrName} failed: ${reason(e)}`, idOrName, e);
    }
  }

  /** The container if it is ours; null if it is missing; a RuntimeError (and no action) if it is not ours. */
  private async ownedOrNull(idOrName: string, action: string): Promise<ContainerInspect | null> {
    const c = await this.inspectOrNull(idOrName);
    if (!c) return null;
    if (!this.isOurs(c)) {
      throw new RuntimeError(`refusing to ${action} container ${c.Name}: it is not managed by fleet-agent for device ${this.device}`, c.Name);
    }
    return c;
  }

  private isOurs(c: ContainerInspect): boolean {
    const labels = labelsOf(c);
    return labels[LABEL_MANAGED] === "true" && labels[LABEL_DEVICE] === this.device;
  }

  private fromInspect(c: ContainerInspect): ManagedContainer {
    const labels = labelsOf(c);
    return {
      id: c.Id,
      name: c.Name,
      deployment: labels[LABEL_DEPLOYMENT] ?? "",
      service: labels[LABEL_SERVICE] ?? "",
      scoreHash: labels[LABEL_SCORE_HASH] ?? "",
      state: mapState(c.State.Status),
      exitCode: isFinished(c.State.Status) ? c.State.ExitCode : null,
    };
  }
}

const labelsOf = (c: ContainerInspect): Record<string, string> => c.Config.Labels ?? {};

/** Podman's container states (libpod/define/containerstate.go) as ContainerState. */
export function mapState(podmanState: string): ContainerState {
  switch (podmanState.toLowerCase()) {
    case "running":
      return "running";
    case "created":
    case "configured":
    case "initialized":
      return "created";
    case "exited":
    case "stopped":
      return "exited";
    case "paused":
      return "paused";
    case "stopping":
      return "stopping";
    default:
      return "unknown";
  }
}

const isFinished = (podmanState: string) => mapState(podmanState) === "exited";

function healthConfig(h: NonNullable<PodmanService["health"]>): HealthConfig {
  const first = h.cmd[0];
  // Docker's convention: the first word says how to run the rest. A bare command means CMD.
  const test = first === "CMD" || first === "CMD-SHELL" || first === "NONE" ? [...h.cmd] : ["CMD", ...h.cmd];
  return {
    Test: test,
    Interval: (h.interval_secs ?? HEALTH_DEFAULTS.interval_secs) * NS_PER_SEC,
    Timeout: (h.timeout_secs ?? HEALTH_DEFAULTS.timeout_secs) * NS_PER_SEC,
    StartPeriod: (h.start_period_secs ?? HEALTH_DEFAULTS.start_period_secs) * NS_PER_SEC,
    Retries: h.retries ?? HEALTH_DEFAULTS.retries,
  };
}

function reason(e: unknown): string {
  if (e instanceof LibpodError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

function runtimeError(message: string, subject: string, cause: unknown): RuntimeError {
  const err = new RuntimeError(message, subject);
  err.cause = cause;
  return err;
}
