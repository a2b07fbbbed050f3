// The e2e suite's shared world, set up once per mocha run (lazily, by the first scenario that asks):
// a fresh `npm run build`, a private Podman service (its own dir, so it can be restarted, with a
// registries.conf that trusts the suite's registry), a tiny stalling registry, and a private
// nats-server (the shared one on 4222 is never used). A root `after` hook prints the summary table,
// writes it to .test-artifacts/e2e-summary.md, and tears everything down.
import { execFile } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LABEL_DEVICE } from "../../../contracts/wire-names.js";
import { PrivateNats } from "../../support/nats.js";
import { freePort, startPodmanEnv, type PodmanTestEnv } from "../../support/podman.env.js";
import { AGENT_ENTRY } from "./agent.process.js";
import { StallingRegistry } from "./registry.js";
import { ARTIFACTS, REPO } from "./paths.js";

export interface SuiteWorld {
  podman: PodmanTestEnv;
  podmanDir: string;
  registry: StallingRegistry;
  nats: PrivateNats;
  logDir: string;
  /** Devices this run created: their containers are removed at the end whatever happened. */
  devices: Set<string>;
  /** Image references pulled from the registry (untagged at the end). */
  pulledRefs: Set<string>;
}

export interface SummaryRow {
  scenario: string;
  result: "pass" | "FAIL";
  recoveryMs: number | null;
  recoveryWhat: string;
  lost: number | null;
  duplicates: number | null;
  leaked: number | null;
  notes: string;
}

/**
 * One world per mocha process, whatever loads this module: mocha require()s a test file when it
 * can and import()s it when it can't, so two instances of this module can exist (one CommonJS,
 * one ESM) and must not set up two registries and restart the Podman service under each other.
 */
interface SharedSuite {
  world: Promise<SuiteWorld> | null;
  rows: SummaryRow[];
  hooked: boolean;
}
declare global {
  var fleetAgentE2eSuite: SharedSuite | undefined;
}
const shared: SharedSuite = (globalThis.fleetAgentE2eSuite ??= { world: null, rows: [], hooked: false });
const rows = shared.rows;
export const recordRow = (r: SummaryRow) => {
  rows.push(r);
  const f = (n: number | null) => (n === null ? "-" : String(n));
  console.log(
    `      [e2e] ${r.scenario}: ${r.result}; recovery ${r.recoveryMs === null ? "-" : `${r.recoveryMs} ms`} (${r.recoveryWhat}); lost ${f(r.lost)}, duplicates ${f(r.duplicates)}, leaked ${f(r.leaked)}${r.notes ? `; ${r.notes}` : ""}`,
  );
};

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeout = 600_000): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { cwd: REPO, env, timeout, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(" ")}: ${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

export function suiteWorld(): Promise<SuiteWorld> {
  shared.world ??= setUp();
  return shared.world;
}

async function setUp(): Promise<SuiteWorld> {
  const t0 = Date.now();
  // The agent under test is the compiled one: build it from this tree, once per run.
  await sh("npm", ["run", "--silent", "build"]);
  const podmanDir = join(REPO, ".run/podman-e2e");
  mkdirSync(podmanDir, { recursive: true });
  const localEnv = { ...process.env };
  delete localEnv.CONTAINER_HOST;
  // Restart this suite's own service so that it reads the registries.conf written below.
  await sh("bash", [join(REPO, "scripts/podman-env.sh"), "stop", podmanDir], localEnv);
  const registryPort = await freePort();
  const registriesConf = join(podmanDir, "registries.conf");
  StallingRegistry.registriesConf(registriesConf, registryPort);
  process.env.CONTAINERS_REGISTRIES_CONF = registriesConf;
  const podman = await startPodmanEnv({ dir: podmanDir, stopService: true });
  const ociDir = join(podmanDir, "oci-v2");
  rmSync(ociDir, { recursive: true, force: true });
  await podman.podman(["save", "--format", "oci-dir", "-o", ociDir, "localhost/fleet-test:v2"]);
  const registry = await StallingRegistry.start(ociDir, registryPort);
  const nats = await PrivateNats.start();
  const logDir = join(ARTIFACTS, "e2e-logs");
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  console.log(`      [e2e] set up in ${Date.now() - t0} ms: build (agent ${AGENT_ENTRY}), podman ${podman.containerHost}, registry ${registry.host}, nats ${nats.url}; agent logs in ${logDir}`);
  return { podman, podmanDir, registry, nats, logDir, devices: new Set(), pulledRefs: new Set() };
}

/** Removes every container labelled with `device` (forced, no grace). */
export async function removeDeviceContainers(w: SuiteWorld, device: string): Promise<number> {
  const mine = await w.podman.client.list({ all: true, filters: { label: [`${LABEL_DEVICE}=${device}`] } }).catch(() => []);
  await Promise.all(mine.map((c) => w.podman.client.remove(c.Id, { force: true, timeout: 0 }).catch(() => undefined)));
  return mine.length;
}

function summaryMarkdown(): string {
  const f = (n: number | null) => (n === null ? "-" : String(n));
  const lines = [
    "# fleet-agent e2e summary",
    "",
    `Run ${new Date().toISOString()}; the real \`fleet-agent\` process, real NATS, real Podman.`,
    "",
    "| scenario | result | recovery time | measured | events lost | duplicates | containers leaked | notes |",
    "|---|---|---|---|---|---|---|---|",
    ...[...rows].sort((a, b) => parseInt(a.scenario, 10) - parseInt(b.scenario, 10) || a.scenario.localeCompare(b.scenario)).map(
      (r) =>
        `| ${r.scenario} | ${r.result} | ${r.recoveryMs === null ? "-" : `${(r.recoveryMs / 1000).toFixed(2)} s`} | ${r.recoveryWhat} | ${f(r.lost)} | ${f(r.duplicates)} | ${f(r.leaked)} | ${r.notes.replace(/\|/g, "/")} |`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}

// The teardown and summary, once per process (see SharedSuite).
if (!shared.hooked) {
  shared.hooked = true;
  after(teardown);
}

async function teardown(this: Mocha.Context) {
  this.timeout(180_000);
  const world = shared.world;
  if (!world) return;
  const md = summaryMarkdown();
  console.log(`\n${md}`);
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(join(ARTIFACTS, "e2e-summary.md"), md);
  const w = await world.catch(() => null);
  if (!w) return;
  for (const d of w.devices) await removeDeviceContainers(w, d);
  for (const ref of w.pulledRefs) await w.podman.podman(["rmi", ref]).catch(() => undefined);
  await w.registry.stop().catch(() => undefined);
  await w.nats.destroy().catch(() => undefined);
  await w.podman.cleanup().catch((e: Error) => console.log(`      [e2e] podman cleanup: ${e.message}`));
}

/** Stops the suite's Podman service (containers keep running under conmon). */
export async function stopPodmanService(w: SuiteWorld): Promise<void> {
  const env = { ...process.env };
  delete env.CONTAINER_HOST;
  await sh("bash", [join(REPO, "scripts/podman-env.sh"), "stop", w.podmanDir], env);
}

/** Starts the suite's Podman service again on the same socket (same registries.conf). */
export async function startPodmanService(w: SuiteWorld): Promise<void> {
  const env = { ...process.env };
  delete env.CONTAINER_HOST;
  await sh("bash", [join(REPO, "scripts/podman-env.sh"), "start", w.podmanDir], env);
}
