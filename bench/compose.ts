// docker-compose (Debian's 1.29 package, installed by scripts/bench.sh) driven against the bench's
// own Podman service through Podman's Docker-compatible API, as a single-device user would run it:
// `DOCKER_HOST=unix://… docker-compose -p <project> up -d` after editing the compose file. Also a
// counting proxy on a second socket, so a bench can say how many API requests compose makes.
import { rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { run } from "./lib.js";

export interface ComposeService {
  name: string;
  image: string;
}

/** The installed compose's version line, or null when there is none. */
export async function composeVersion(): Promise<string | null> {
  try {
    const { stdout } = await run("docker-compose", ["version", "--short"], process.env, 60_000);
    return stdout.trim() || null;
  } catch {
    return null;
  }
}

export class ComposeProject {
  readonly file: string;
  constructor(
    /** Lower-case letters, digits, `-`: compose names containers `<project>_<service>_1`. */
    readonly project: string,
    dir: string,
    private readonly socketPath: string,
    private readonly labels: Record<string, string>,
    private readonly graceSecs: number,
  ) {
    this.file = join(dir, `${project}.compose.json`);
  }

  /**
   * Writes the compose file (JSON is YAML) and runs `up -d`: compose recreates only the services
   * whose configuration changed, in parallel. `network_mode: bridge` puts the containers on Podman's
   * default network, the one the agent's containers use, so neither side pays for a network the
   * other does not.
   */
  async up(services: ComposeService[], socketPath = this.socketPath): Promise<void> {
    const doc = {
      version: "2.4",
      services: Object.fromEntries(
        services.map((s) => [s.name, { image: s.image, labels: this.labels, stop_grace_period: `${this.graceSecs}s`, network_mode: "bridge" }]),
      ),
    };
    writeFileSync(this.file, JSON.stringify(doc, null, 1));
    await run("docker-compose", ["-p", this.project, "-f", this.file, "--no-ansi", "up", "-d"], this.env(socketPath), 300_000);
  }

  async down(): Promise<void> {
    await run("docker-compose", ["-p", this.project, "-f", this.file, "--no-ansi", "down", "-t", "0"], this.env(this.socketPath), 300_000).catch(() => undefined);
    rmSync(this.file, { force: true });
  }

  private env(socketPath: string): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${socketPath}` };
    delete env.CONTAINER_HOST;
    return env;
  }
}

/**
 * A unix-socket proxy that forwards bytes to `target` unchanged and counts the HTTP requests it
 * sees, per route (`METHOD /path`, API version dropped, ids and names as `{id}`). Only for counting:
 * the timed rounds talk to Podman directly.
 */
export class CountingProxy {
  readonly byRoute = new Map<string, number>();
  private readonly server: net.Server;
  private constructor(readonly socketPath: string, target: string) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target);
      let pending = "";
      client.on("data", (chunk) => {
        pending += chunk.toString("latin1");
        const lines = pending.split("\r\n");
        pending = lines.pop()!.slice(-4096);
        for (const line of lines) {
          const m = /^(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP\/1\.[01]$/.exec(line);
          if (m) this.count(m[1]!, m[2]!);
        }
      });
      client.pipe(upstream);
      upstream.pipe(client);
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", end);
      upstream.on("error", end);
      client.on("close", end);
      upstream.on("close", end);
    });
  }

  static async start(socketPath: string, target: string): Promise<CountingProxy> {
    rmSync(socketPath, { force: true });
    const p = new CountingProxy(socketPath, target);
    await new Promise<void>((resolve, reject) => {
      p.server.once("error", reject);
      p.server.listen(socketPath, () => resolve());
    });
    return p;
  }

  get total(): number {
    let n = 0;
    for (const v of this.byRoute.values()) n += v;
    return n;
  }

  reset(): void {
    this.byRoute.clear();
  }

  private count(method: string, target: string) {
    const path = target.split("?")[0]!.replace(/^\/v\d+(\.\d+)*/, "");
    const route = path
      .replace(/^\/images\/(.+)\/(json|history|tag|push|get)$/, "/images/{name}/$2")
      .replace(/^\/(containers|networks|volumes)\/(?!json$|create$|prune$)[^/]+/, "/$1/{id}");
    const key = `${method} ${route}`;
    this.byRoute.set(key, (this.byRoute.get(key) ?? 0) + 1);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }
}
