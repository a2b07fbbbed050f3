// A nats-server of the bench's own (a temp store, a free port, optionally its monitoring port), so
// that what a bench writes never lands on the shared server and the message counters are ours.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

export class PrivateNats {
  private proc: ChildProcess | null = null;
  readonly storeDir = mkdtempSync(join(tmpdir(), "bench-nats-"));
  private constructor(readonly port: number, readonly monitorPort: number | null) {}

  static async start(opts: { monitor?: boolean; storeRoot?: string } = {}): Promise<PrivateNats> {
    const s = new PrivateNats(await freePort(), opts.monitor ? await freePort() : null);
    const args = ["-a", "127.0.0.1", "-p", String(s.port), "-js", "-sd", s.storeDir];
    if (s.monitorPort) args.push("-m", String(s.monitorPort));
    const proc = spawn("/usr/sbin/nats-server", args, { stdio: ["ignore", "ignore", "pipe"] });
    s.proc = proc;
    let log = "";
    proc.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    const until = Date.now() + 10_000;
    while (!/Server is ready/.test(log)) {
      if (proc.exitCode !== null) throw new Error(`nats-server exited: ${log}`);
      if (Date.now() > until) throw new Error(`nats-server did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return s;
  }

  get url() {
    return `nats://127.0.0.1:${this.port}`;
  }
  get pid(): number {
    return this.proc?.pid ?? 0;
  }

  /** `/varz` of the monitoring port. */
  async varz(): Promise<{ in_msgs: number; out_msgs: number; in_bytes: number; out_bytes: number; connections: number; mem: number; cpu: number }> {
    if (!this.monitorPort) throw new Error("started without a monitoring port");
    const r = await fetch(`http://127.0.0.1:${this.monitorPort}/varz`);
    return (await r.json()) as never;
  }

  async destroy(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (p && p.exitCode === null) {
      const exited = new Promise<void>((r) => p.once("exit", () => r()));
      p.kill("SIGTERM");
      const t = setTimeout(() => p.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
