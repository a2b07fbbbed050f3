// A real Podman for integration tests: runs scripts/podman-env.sh (installs what is missing, starts a
// private `podman system service`, builds the localhost/fleet-test:* images), points this process at
// it, and hands out a per-run label so that cleanup removes exactly what this run created.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { LibpodClient } from "../../runtime/podman/libpod.client.js";
import { PodmanRuntime, type PodmanRuntimeOptions } from "../../runtime/podman/podman.runtime.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const PODMAN_ENV_SCRIPT = path.join(REPO, "scripts/podman-env.sh");
export const RUN_LABEL = "io.fleet.test-run";

/** The images the env script builds. */
export const TEST_IMAGES = {
  v1: "localhost/fleet-test:v1",
  v2: "localhost/fleet-test:v2",
  v3: "localhost/fleet-test:v3",
  /** Ignores SIGTERM: only the SIGKILL after the grace period ends it. */
  stubborn: "localhost/fleet-test:stubborn",
  /** Exits 1 at once. */
  crash: "localhost/fleet-test:crash",
} as const;

export interface PodmanTestEnv {
  /** `unix://…` of the private service (also set in process.env.CONTAINER_HOST). */
  containerHost: string;
  socketPath: string;
  containersConf: string;
  /** This run's random id; every container the run creates must carry `io.fleet.test-run=<runId>`. */
  runId: string;
  /** `{ "io.fleet.test-run": runId }`: pass as PodmanRuntime's extraLabels. */
  runLabels: Record<string, string>;
  /** A client on the private socket (its requestCount is yours to read). */
  client: LibpodClient;
  /** A name unique to this run, valid as a device id or deployment name: `<prefix>-<runId>-<n>`. */
  unique(prefix: string): string;
  /** A PodmanRuntime for `device` on this env, labelling its containers with the run label. */
  runtime(device: string, opts?: Omit<PodmanRuntimeOptions, "device">): PodmanRuntime;
  /** A free TCP port on this host (the kernel's pick from the ephemeral range). */
  freePort(): Promise<number>;
  /** Runs the podman CLI locally (never through CONTAINER_HOST), with this env's containers.conf. */
  podman(args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** Force-removes every container with this run's label, then stops the service if this run started it. */
  cleanup(): Promise<void>;
}

export interface PodmanEnvOptions {
  /** The script's state dir (socket, containers.conf, pid file). Default: PODMAN_ENV_DIR or <repo>/.run/podman. */
  dir?: string;
  /** Stop the service at cleanup if this run started it. Default true (unless PODMAN_ENV_KEEP=1). */
  stopService?: boolean;
}

/** Runs the env script, sets CONTAINER_HOST and CONTAINERS_CONF in process.env, and returns the env. */
export async function startPodmanEnv(opts: PodmanEnvOptions = {}): Promise<PodmanTestEnv> {
  const dir = opts.dir ?? process.env.PODMAN_ENV_DIR;
  const out = await run("bash", [PODMAN_ENV_SCRIPT, "start", ...(dir ? [dir] : [])], scriptEnv(), 10 * 60_000);
  const vars = parseEnvLines(out.stdout);
  const containerHost = need(vars, "CONTAINER_HOST");
  const containersConf = need(vars, "CONTAINERS_CONF");
  const envDir = need(vars, "PODMAN_ENV_DIR");
  const started = vars.PODMAN_ENV_STARTED === "1";
  process.env.CONTAINER_HOST = containerHost;
  process.env.CONTAINERS_CONF = containersConf;

  const client = new LibpodClient({ containerHost });
  const runId = randomBytes(4).toString("hex");
  const runLabels = { [RUN_LABEL]: runId };
  let counter = 0;
  const stopService = opts.stopService ?? process.env.PODMAN_ENV_KEEP !== "1";

  return {
    containerHost,
    socketPath: client.socketPath,
    containersConf,
    runId,
    runLabels,
    client,
    unique: (prefix) => `${prefix}-${runId}-${++counter}`,
    runtime: (device, rest = {}) =>
      new PodmanRuntime({ ...rest, device, client: rest.client ?? client, extraLabels: { ...runLabels, ...(rest.extraLabels ?? {}) } }),
    freePort,
    podman: (args) => run("podman", args, localPodmanEnv(containersConf), 120_000),
    async cleanup() {
      try {
        const mine = await client.list({ all: true, filters: { label: [`${RUN_LABEL}=${runId}`] } });
        await Promise.all(mine.map((c) => client.remove(c.Id, { force: true, timeout: 0 }).catch(() => undefined)));
      } finally {
        client.close();
        if (started && stopService) await run("bash", [PODMAN_ENV_SCRIPT, "stop", envDir], scriptEnv(), 60_000);
      }
    },
  };
}

/** `KEY=value` lines of the env script's stdout. */
export function parseEnvLines(stdout: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^(?:export )?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) vars[m[1]!] = m[2]!;
  }
  return vars;
}

function need(vars: Record<string, string>, key: string): string {
  const v = vars[key];
  if (!v) throw new Error(`scripts/podman-env.sh printed no ${key}`);
  return v;
}

/** The podman CLI and the script must act locally: no CONTAINER_HOST. */
function localPodmanEnv(containersConf?: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.CONTAINER_HOST;
  if (containersConf) env.CONTAINERS_CONF = containersConf;
  return env;
}
const scriptEnv = () => localPodmanEnv();

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeout: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "0.0.0.0", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}
