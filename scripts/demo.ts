// The demo: an agent for device `demo` (the compiled bin, on real Podman and NATS), a two-service
// deployment at v1, then v2 of one service, each signed with an operator key the agent trusts; an
// unsigned value refused; prints the transitions from the stream and the ids.
// `--once` cleans up and exits at the end; otherwise the agent keeps running until Ctrl-C.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { readStreamEvents } from "../fleet/stream.reader.js";
import { ensureFleetResources } from "../fleet/resources.js";
import { canonicalHash } from "../contracts/canonical-json.js";
import { decodeJson } from "../contracts/decode.js";
import { DeploymentState } from "../contracts/deployment-state.codec.js";
import { newUserKey, signingKeyFromText } from "../contracts/nkey.js";
import { ReconcileScore } from "../contracts/score.codec.js";
import { DesiredValue, signScore } from "../contracts/signed-score.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, deploymentKey } from "../contracts/wire-names.js";
import { buildTimeline } from "../machines/timeline.js";
import { Fleet } from "../fleet/fleet.client.js";

const DEVICE = "demo";
const DEPLOYMENT = "hello";
const once = process.argv.includes("--once");
const key = deploymentKey(DEVICE, DEPLOYMENT);

const score = (webVersion: string) => ({
  type: "PodmanV0",
  data: {
    services: [
      { name: "web", image: `localhost/fleet-test:${webVersion}`, ports: [{ host_port: 18080, container_port: 8080 }], env: { GREETING: "hello" } },
      { name: "api", image: "localhost/fleet-test:v1", ports: [{ host_port: 18081, container_port: 8080 }] },
    ],
    lifecycle: { stop_signal: "SIGTERM", grace_period_secs: 10 },
  },
});

const say = (s: string) => process.stdout.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

mkdirSync(".run/demo/state", { recursive: true });
/** A key pair kept across runs (as `fleetctl key create` / `device add --seed-out` make them). */
function keyFile(path: string) {
  if (!existsSync(path)) writeFileSync(path, `${newUserKey().seed}\n`, { mode: 0o600, flag: "wx" });
  const r = signingKeyFromText(readFileSync(path, "utf8"));
  if (!r.ok) throw new Error(`${path}: ${r.error}`);
  return r.key;
}
// The operator's signing key, and the device's nkey (it signs the device's reports with it).
const operatorKey = keyFile(".run/demo/operator.seed");
const deviceKey = keyFile(".run/demo/demo.seed");

const nc = await connect({ servers: process.env["FLEET_NATS_URL"] ?? "nats://127.0.0.1:4222" });
await ensureFleetResources(nc);
await (await Fleet.open(nc)).recordDeviceKey(DEVICE, deviceKey.publicKey);

const log = openSync(".run/demo/agent.log", "a");
const agentArgs = ["--device-id", DEVICE, "--state-dir", ".run/demo/state", "--tick-secs", "5", "--operator-keys", operatorKey.publicKey, "--nkey", ".run/demo/demo.seed"];
const agent = spawn(process.execPath, ["dist/fleet-agent.mjs", ...agentArgs], {
  stdio: ["ignore", log, log],
  env: process.env,
});
say(`agent: pid ${agent.pid}, logs in .run/demo/agent.log, Podman at ${process.env["CONTAINER_HOST"]}`);
say(`  applies only desired states signed by operator key ${operatorKey.publicKey.slice(0, 12)}… (.run/demo/operator.seed); signs its reports with ${deviceKey.publicKey.slice(0, 12)}…`);

const kvm = new Kvm(nc);
const desired = await kvm.open(BUCKET_DESIRED_STATE);
const states = await kvm.open(BUCKET_DEVICE_STATE);

async function until(what: string, pred: (s: DeploymentState) => boolean): Promise<DeploymentState> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const e = await states.get(key);
    const r = e && e.operation === "PUT" ? decodeJson(DeploymentState, e.string()) : null;
    if (r?.ok && pred(r.value)) return r.value;
    if (agent.exitCode !== null) throw new Error(`the agent exited (${agent.exitCode}); see .run/demo/agent.log`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; see .run/demo/agent.log`);
    await sleep(50);
  }
}

/** What `fleetctl deploy --signing-key` writes: the score signed for this device and deployment, now. */
function signed(value: ReturnType<typeof score>) {
  const r = decodeJson(ReconcileScore, JSON.stringify(value));
  if (!r.ok) throw new Error(r.errors.join("; "));
  return JSON.stringify(DesiredValue.encode(signScore(r.value, { device: DEVICE, deployment: DEPLOYMENT }, new Date().toISOString(), operatorKey)));
}

async function deploy(version: string) {
  const value = score(version);
  const hash = canonicalHash(value);
  const t0 = Date.now();
  const rev = await desired.put(key, signed(value));
  say(`\nput desired-state ${key}: web=${version}, api=v1 (${hash.slice(0, 19)}…), signed by ${operatorKey.publicKey.slice(0, 12)}…`);
  const s = await until(`${version} Running`, (x) => x.score_hash === hash && x.desired_revision === rev && x.phase !== "Pending");
  if (s.phase === "Failed") throw new Error(`${version} failed: ${s.last_error}`);
  say(`  ${s.phase} after ${Date.now() - t0} ms; container ids: ${Object.entries(s.container_ids).map(([k, v]) => `${k}=${v.slice(0, 12)}`).join(" ")}`);
  const res = await fetch("http://127.0.0.1:18080/").then((r) => r.text()).catch((e: Error) => `unreachable (${e.message})`);
  say(`  GET http://127.0.0.1:18080/ → ${res.trim()}`);
  return s;
}

try {
  const first = await deploy("v1");
  const second = await deploy("v2");
  say(`\nweb replaced (${first.container_ids["web"]!.slice(0, 12)} → ${second.container_ids["web"]!.slice(0, 12)}); api untouched (${second.container_ids["api"] === first.container_ids["api"] ? "same id" : "CHANGED"})`);
  // Anyone who can write the KV, without the operator's key: refused, nothing touched.
  const rev = await desired.put(key, JSON.stringify(score("v3")));
  say(`\nput an UNSIGNED desired-state ${key}: web=v3`);
  const refused = await until("the unsigned value refused", (x) => x.desired_revision === rev && x.phase === "Failed");
  say(`  ${refused.phase}: ${refused.last_error}`);
  say(`  containers untouched: ${JSON.stringify(refused.container_ids) === JSON.stringify(second.container_ids) ? "same ids" : "CHANGED"}`);
  await deploy("v2");
  await sleep(300);
  const events = await readStreamEvents(jetstream(nc), DEVICE, DEPLOYMENT);
  say(`\nfleet.events.${DEVICE}.${DEPLOYMENT} (${events.length} events):`);
  // In the journal's vocabulary (an earlier run's v1 events, if the stream still holds them, translated).
  for (const e of buildTimeline(DEVICE, DEPLOYMENT, events).steps) say(`  n=${String(e.n).padStart(3)}  ${e.at}  ${e.from.padEnd(11)} → ${e.to.padEnd(11)}  ${e.label}`);
  if (once) {
    await desired.delete(key);
    await until("removed", (x) => x.state === "removed");
    say("\n--once: deployment deleted, containers removed");
  } else {
    say("\nThe agent keeps running (Ctrl-C stops it; containers keep running). Try: node dist/cli/main.js status demo");
    await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
  }
} finally {
  agent.kill("SIGTERM");
  await new Promise((r) => agent.once("exit", r));
  await nc.close();
  say(`agent stopped (exit ${agent.exitCode})`);
}
