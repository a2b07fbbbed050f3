#!/usr/bin/env node
// `fleet-agent`: parse the configuration, start the agent on Podman, stop gracefully on a signal.
import { parseConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { startAgent } from "./agent.js";
import { natsConnectOptions } from "../fleet/auth.js";
import { deviceSigningKey } from "../fleet/signing-key.js";
import { loadContainerPolicy } from "./deployments/policy.file.js";
import { LibpodClient } from "../runtime/podman/libpod.client.js";
import { PodmanRuntime } from "../runtime/podman/podman.runtime.js";

const parsed = parseConfig(process.argv.slice(2), process.env);
if ("help" in parsed) {
  process.stdout.write(parsed.help);
  process.exit(0);
}
if (!parsed.ok) {
  process.stderr.write(`fleet-agent: ${parsed.error}\n`);
  process.exit(2);
}
const config = parsed.config;
try {
  // A policy or key file that can't be used is a configuration error too (messages name files only).
  loadContainerPolicy(config);
  natsConnectOptions(config.auth);
  deviceSigningKey(config.auth);
} catch (e) {
  process.stderr.write(`fleet-agent: ${(e as Error).message}\n`);
  process.exit(2);
}
const logger = createLogger({ level: config.logLevel, device: config.deviceId });

const client = new LibpodClient(config.containerHost ? { containerHost: config.containerHost } : {});
const runtime = new PodmanRuntime({ device: config.deviceId, client });

const agent = await startAgent(config, {
  runtime,
  logger,
  runtimeVersion: async () => (await client.version()).Version,
}).catch((e: Error) => {
  // Another agent on this state dir, or a state dir that can't be used: nothing was started.
  process.stderr.write(`fleet-agent: ${e.message}\n`);
  process.exit(2);
});

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, "stopping");
  agent.stop(30_000).then(
    () => process.exit(0),
    (e: Error) => {
      logger.error({ err: e.message }, "unclean stop");
      process.exit(1);
    },
  );
};
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
