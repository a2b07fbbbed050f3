// Wraps any ContainerRuntime and records its calls in order, so the same scenario asserts the same
// way on FakeRuntime and on Podman.
import type { ContainerRuntime, ContainerWatcher, LogQuery, ManagedContainer, ServiceSpec, StopAndRemoveOptions } from "../../runtime/container-runtime.js";

export type RecordedCall =
  | { op: "ensureImage"; image: string }
  | { op: "startService"; name: string; scoreHash: string; id?: string }
  | { op: "status"; idOrName: string }
  | { op: "stop"; id: string; graceSecs: number }
  | { op: "remove"; id: string }
  | { op: "list" }
  | { op: "stopAndRemove"; id: string; graceSecs: number }
  | { op: "healthcheck"; id: string }
  | { op: "restart"; id: string }
  | { op: "logs"; id: string };

export class RecordingRuntime implements ContainerRuntime {
  readonly calls: RecordedCall[] = [];
  constructor(readonly inner: ContainerRuntime) {}

  /** Calls that create, start, stop or remove a container. */
  mutations() {
    return this.calls.filter((c) => c.op === "startService" || c.op === "stop" || c.op === "remove" || c.op === "stopAndRemove" || c.op === "restart");
  }
  clear() {
    this.calls.length = 0;
  }

  ensureImage(image: string) {
    this.calls.push({ op: "ensureImage", image });
    return this.inner.ensureImage(image);
  }
  async startService(spec: ServiceSpec) {
    const call: RecordedCall = { op: "startService", name: `${spec.deployment}.${spec.service.name}`, scoreHash: spec.scoreHash };
    this.calls.push(call);
    call.id = await this.inner.startService(spec);
    return call.id;
  }
  status(idOrName: string): Promise<ManagedContainer | null> {
    this.calls.push({ op: "status", idOrName });
    return this.inner.status(idOrName);
  }
  stop(id: string, graceSecs: number) {
    this.calls.push({ op: "stop", id, graceSecs });
    return this.inner.stop(id, graceSecs);
  }
  remove(id: string) {
    this.calls.push({ op: "remove", id });
    return this.inner.remove(id);
  }
  list() {
    this.calls.push({ op: "list" });
    return this.inner.list();
  }
  stopAndRemove(id: string, graceSecs: number, opts?: StopAndRemoveOptions) {
    this.calls.push({ op: "stopAndRemove", id, graceSecs });
    return this.inner.stopAndRemove(id, graceSecs, opts);
  }
  healthcheck(id: string) {
    this.calls.push({ op: "healthcheck", id });
    return this.inner.healthcheck(id);
  }
  restart(id: string) {
    this.calls.push({ op: "restart", id });
    return this.inner.restart(id);
  }
  logs(id: string, query: LogQuery) {
    this.calls.push({ op: "logs", id });
    return this.inner.logs(id, query);
  }
  /** Not recorded: following events changes nothing. */
  watchContainers(watcher: ContainerWatcher, signal: AbortSignal) {
    return this.inner.watchContainers(watcher, signal);
  }
}
