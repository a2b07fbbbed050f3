// fleetctl in process: run(argv) with captured stdout/stderr and exit code; in-process agents on
// FakeRuntime; score files in a temp dir.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startAgent, type RunningAgent } from "../../../agent/agent.js";
import { silentLogger } from "../../../agent/logger.js";
import { run, type CliIo } from "../../../cli/main.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";
import { SHARED_NATS, tempDir } from "../../support/nats.js";

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function fleetctl(argv: string[], extra: Partial<CliIo> = {}): Promise<CliResult> {
  let out = "";
  let err = "";
  const code = await run(argv, {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    env: { FLEET_NATS_URL: SHARED_NATS },
    ...extra,
  });
  return { code, out, err };
}

export interface TestAgent {
  device: string;
  fake: FakeRuntime;
  agent: RunningAgent;
  stateDir: string;
  stop(): Promise<void>;
}

export async function startTestAgent(device: string, fake = new FakeRuntime({ device })): Promise<TestAgent> {
  const stateDir = tempDir("fleetctl-agent-");
  const agent = await startAgent(
    { deviceId: device, natsServers: [SHARED_NATS], stateDir, tickSecs: 3600, logLevel: "silent", containerHost: undefined },
    { runtime: fake, logger: silentLogger() },
  );
  await agent.online;
  return {
    device,
    fake,
    agent,
    stateDir,
    async stop() {
      await agent.stop(5000);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** A score with a web service (with a secret env value) and a db service. */
export const scoreJson = (webImage: string, dbImage = "img/db:1") =>
  JSON.stringify({
    type: "PodmanV0",
    data: {
      services: [
        { name: "web", image: webImage, env: { SECRET: "s3cr3t-value", MODE: "prod" }, ports: [{ host_port: 8080, container_port: 8080 }] },
        { name: "db", image: dbImage },
      ],
      lifecycle: { grace_period_secs: 2 },
    },
  });

export class ScoreFiles {
  readonly dir = tempDir("fleetctl-scores-");
  private i = 0;
  write(text: string, ext = "json"): string {
    const p = join(this.dir, `score-${++this.i}.${ext}`);
    writeFileSync(p, text);
    return p;
  }
  remove() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
