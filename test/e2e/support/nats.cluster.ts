// Three nats-server nodes clustered on loopback with JetStream, each with its own store, each of
// which can be killed and started again on its store.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../support/nats.js";

interface Node {
  name: string;
  port: number;
  routePort: number;
  conf: string;
  proc: ChildProcess | null;
  log: string;
}

export class NatsCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "nats-cluster-"));
  private constructor(private readonly nodes: Node[]) {}

  static async start(size = 3): Promise<NatsCluster> {
    const ports: { port: number; routePort: number }[] = [];
    for (let i = 0; i < size; i++) ports.push({ port: await freePort(), routePort: await freePort() });
    const c = new NatsCluster([]);
    for (let i = 0; i < size; i++) {
      const name = `n${i + 1}`;
      const store = join(c.dir, name);
      mkdirSync(store, { recursive: true });
      const routes = ports.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p.routePort}`);
      const conf = join(c.dir, `${name}.conf`);
      writeFileSync(
        conf,
        [
          `server_name: ${name}`,
          `listen: 127.0.0.1:${ports[i]!.port}`,
          `jetstream { store_dir: "${store}" }`,
          `cluster { name: e2e, listen: 127.0.0.1:${ports[i]!.routePort}, routes: [${routes.join(", ")}] }`,
          "",
        ].join("\n"),
      );
      c.nodes.push({ name, port: ports[i]!.port, routePort: ports[i]!.routePort, conf, proc: null, log: "" });
    }
    await Promise.all(c.nodes.map((n) => c.startNode(n.name)));
    return c;
  }

  get urls(): string[] {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`);
  }

  url(name: string) {
    return `nats://127.0.0.1:${this.node(name).port}`;
  }

  /** The node serving `url` (as the agent logs it: host:port or nats://host:port). */
  nodeOf(url: string): string {
    const port = Number(/:(\d+)\/?$/.exec(url)?.[1]);
    const n = this.nodes.find((x) => x.port === port);
    if (!n) throw new Error(`no node on ${url}`);
    return n.name;
  }

  private node(name: string): Node {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  async startNode(name: string): Promise<void> {
    const n = this.node(name);
    if (n.proc) return;
    n.log = "";
    const proc = spawn("/usr/sbin/nats-server", ["-c", n.conf], { stdio: ["ignore", "ignore", "pipe"] });
    n.proc = proc;
    proc.stderr?.on("data", (d: Buffer) => (n.log += d.toString()));
    const until = Date.now() + 15_000;
    while (!/Server is ready/.test(n.log)) {
      if (proc.exitCode !== null) throw new Error(`nats-server ${name} exited: ${n.log}`);
      if (Date.now() > until) throw new Error(`nats-server ${name} did not start: ${n.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL: the node dies without leaving the cluster cleanly. */
  async killNode(name: string): Promise<void> {
    const n = this.node(name);
    const p = n.proc;
    if (!p) return;
    n.proc = null;
    if (p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill("SIGKILL");
    await exited;
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes) await this.killNode(n.name);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
