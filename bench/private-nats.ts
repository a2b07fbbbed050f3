// A nats-server of the bench's own (a temp store, a free port, optionally its monitoring port), so
// that what a bench writes never lands on the shared server and the message counters are ours.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, spawnNatsServer, stopProcess } from "../test/support/nats.js";

export { freePort };

export class PrivateNats {
  private proc: ChildProcess | null = null;
  readonly storeDir = mkdtempSync(join(tmpdir(), "bench-nats-"));
  private constructor(readonly port: number, readonly monitorPort: number | null) {}

  static async start(opts: { monitor?: boolean } = {}): Promise<PrivateNats> {
    const s = new PrivateNats(await freePort(), opts.monitor ? await freePort() : null);
    const args = ["-a", "127.0.0.1", "-p", String(s.port), "-js", "-sd", s.storeDir];
    if (s.monitorPort) args.push("-m", String(s.monitorPort));
    s.proc = await spawnNatsServer(args);
    return s;
  }

  get url() {
    return `nats://127.0.0.1:${this.port}`;
  }
  get pid(): number {
    return this.proc?.pid ?? 0;
  }

  /** `/varz` of the monitoring port. */
  async varz(): Promise<{ in_msgs: number; out_msgs: number; in_bytes: number; out_bytes: number; connections: number; subscriptions: number; mem: number; cpu: number }> {
    return this.monitor("varz");
  }

  /** `/jsz`: JetStream totals (consumers of every stream, bytes stored). */
  async jsz(): Promise<{ streams: number; consumers: number; messages: number; bytes: number; memory: number; storage: number }> {
    return this.monitor("jsz");
  }

  private async monitor<T>(endpoint: string): Promise<T> {
    if (!this.monitorPort) throw new Error("started without a monitoring port");
    const r = await fetch(`http://127.0.0.1:${this.monitorPort}/${endpoint}`);
    return (await r.json()) as T;
  }

  async destroy(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (p) await stopProcess(p);
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
