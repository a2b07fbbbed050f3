// A nats-server of the test's own, started from a config file (authorization, TLS), whose log the
// test can read (permission violations are logged by the server).
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, spawnNatsServer, stopProcess } from "../../support/nats.js";

export class ConfiguredNats {
  private proc: ChildProcess | null = null;
  readonly dir = mkdtempSync(join(tmpdir(), "nats-secure-"));
  /** Everything the server wrote to stderr, across restarts. */
  log = "";
  private constructor(
    readonly port: number,
    private readonly body: string,
  ) {}

  /** `body` is the config without `listen` and `jetstream`, which are added here. */
  static async start(body: string): Promise<ConfiguredNats> {
    const s = new ConfiguredNats(await freePort(), body);
    await s.start();
    return s;
  }

  get url() {
    return `nats://127.0.0.1:${this.port}`;
  }

  get configFile() {
    return join(this.dir, "nats-server.conf");
  }

  async start(): Promise<void> {
    if (this.proc) return;
    writeFileSync(this.configFile, `listen: "127.0.0.1:${this.port}"\njetstream { store_dir: ${JSON.stringify(join(this.dir, "store"))} }\n${this.body}\n`);
    this.proc = await spawnNatsServer(["-c", this.configFile], (text) => (this.log += text));
  }

  /** The server's "Permissions Violation" lines since `from` (an offset into `log`). */
  violations(from = 0): string[] {
    return this.log.slice(from).split("\n").filter((l) => /Violation/.test(l));
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (p) await stopProcess(p);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
