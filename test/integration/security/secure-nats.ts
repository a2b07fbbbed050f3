// A nats-server of the test's own, started from a config file (authorization, TLS), whose log the
// test can read (permission violations are logged by the server).
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, PrivateNats, spawnNatsServer } from "../../support/nats.js";

export class ConfiguredNats extends PrivateNats {
  /** Everything the server wrote to stderr, across restarts. */
  log = "";
  private constructor(
    port: number,
    private readonly body: string,
  ) {
    super(port);
  }

  /** `body` is the config without `listen` and `jetstream`, which are added here. */
  static async withConfig(body: string): Promise<ConfiguredNats> {
    const s = new ConfiguredNats(await freePort(), body);
    await s.start();
    return s;
  }

  get configFile() {
    return join(this.storeDir, "nats-server.conf");
  }

  protected override spawn(): Promise<ChildProcess> {
    writeFileSync(this.configFile, `listen: "127.0.0.1:${this.port}"\njetstream { store_dir: ${JSON.stringify(join(this.storeDir, "store"))} }\n${this.body}\n`);
    return spawnNatsServer(["-c", this.configFile], (text) => (this.log += text));
  }

  /** The server's "Permissions Violation" lines since `from` (an offset into `log`). */
  violations(from = 0): string[] {
    return this.log.slice(from).split("\n").filter((l) => /Violation/.test(l));
  }
}
