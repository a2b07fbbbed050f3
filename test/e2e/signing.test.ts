// e2e: signed desired state on the real, compiled agent (docs/design.md, "Signed desired state"):
// an upgrade written with fleetctl --signing-key, through a key rotation; then values no operator
// signed for this device and deployment (unsigned, a replay of an older one, a tampered one,
// another device's) injected straight into the KV: each is refused naming its reason, and no
// container is touched. Reports and events are signed by the device's nkey and verify.
import { expect } from "chai";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../cli/main.js";
import { canonicalHash } from "../../contracts/canonical-json.js";
import { decodeJson } from "../../contracts/decode.js";
import { signingKeyFromText } from "../../contracts/nkey.js";
import { ReconcileScore } from "../../contracts/score.codec.js";
import { DesiredValue, signScore } from "../../contracts/signed-score.js";
import { BUCKET_DESIRED_STATE, deploymentKey } from "../../contracts/wire-names.js";
import { tempDir } from "../support/nats.js";
import { TEST_IMAGES } from "../support/podman.env.js";
import { score, startsSeen, useScenario, type ContainerEvent, type Scenario } from "./support/scenario.js";

const hashOf = (s: unknown) => canonicalHash(s as never);
/** Anything Podman does to a container: none of it may follow a refused value. */
const TOUCHES = new Set(["create", "init", "start", "restart", "kill", "stop", "died", "remove", "cleanup", "pause"]);
const touches = (events: readonly ContainerEvent[]) => events.filter((e) => TOUCHES.has(e.action)).map((e) => `${e.action} ${e.name}`);

async function fleetctl(s: Scenario, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await run(argv, { out: (t) => void (out += t), err: (t) => void (err += t), env: { FLEET_NATS_URL: s.natsUrls.join(",") } });
  return { code, out, err };
}

describe("e2e: signed desired state", function () {
  const sc = useScenario();

  it("1. signed v1 → v2 with a rotated key; an unsigned value, a replay of v1, a tampered and another device's value change nothing, also after a restart", async () => {
    const s = sc.current;
    const dir = tempDir("fleet-e2e-keys-");
    s.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const keyCreate = async (name: string) => {
      const r = await fleetctl(s, ["key", "create", "--seed-out", join(dir, name)]);
      expect(r.code, r.err).to.equal(0);
      return { file: join(dir, name), publicKey: r.out.trim() };
    };
    const [k1, k2] = [await keyCreate("k1.seed"), await keyCreate("k2.seed")];
    const deviceSeed = join(dir, "device.seed");
    const add = await fleetctl(s, ["device", "add", s.device, "--seed-out", deviceSeed]);
    expect(add.code, add.err).to.equal(0);
    const deploy = async (value: unknown, key: { file: string }) => {
      const file = join(dir, `score-${hashOf(value).slice(7, 19)}.json`);
      writeFileSync(file, JSON.stringify(value));
      // --new-device: the agent may not have reported yet when the first value is written.
      const r = await fleetctl(s, ["deploy", s.device, "app", "-f", file, "--signing-key", key.file, "--json", "--new-device"]);
      expect(r.code, r.err).to.equal(0);
      return (JSON.parse(r.out) as { revision: number }).revision;
    };

    const events = await s.podmanEvents();
    const port = await s.podman.freePort();
    s.startAgent({ extraArgs: ["--operator-keys", `${k1.publicKey},${k2.publicKey}`, "--nkey", deviceSeed] });

    const v1 = score([{ name: "web", image: TEST_IMAGES.v1, hostPort: port }, { name: "side", image: TEST_IMAGES.v1 }]);
    await deploy(v1, k1);
    await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v1), "v1 Running");
    expect(await s.http(port)).to.equal("v1");
    const desired = await s.kv(BUCKET_DESIRED_STATE);
    const v1Signed = (await desired.get(deploymentKey(s.device, "app")))!.string();

    // The operator rotates to k2 (the device trusts both): v2 signed by k2 upgrades as usual.
    const v2 = score([{ name: "web", image: TEST_IMAGES.v2, hostPort: port }, { name: "side", image: TEST_IMAGES.v1 }]);
    await deploy(v2, k2);
    const r2 = await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v2), "v2 Running");
    expect(await s.http(port)).to.equal("v2");
    const v2Value = decodeJson(DesiredValue, (await desired.get(deploymentKey(s.device, "app")))!.string());
    if (!v2Value.ok) throw new Error(v2Value.errors.join("; "));
    await startsSeen(events, Object.values(r2.container_ids));
    const mark = events.length;
    expect(touches(events.slice(0, mark)), "the recording sees the upgrades' own container events").to.include(`remove app.web`);

    // Each value below is put straight into the KV, as anything with write access could.
    const v3 = score([{ name: "web", image: TEST_IMAGES.crash, hostPort: port }, { name: "side", image: TEST_IMAGES.v3 }]);
    const refuses = async (value: unknown, error: RegExp, what: string) => {
      const rev = await s.put("app", value);
      const r = await s.waitState("app", (x) => x.phase === "Failed" && x.desired_revision === rev, `${what} refused`);
      expect(r.last_error, what).to.match(error);
      expect(r.container_ids, `${what}: the running containers keep their ids`).to.deep.equal(r2.container_ids);
      expect(r.score_hash, `${what}: v2 is still what runs`).to.equal(hashOf(v2));
      return r;
    };
    await refuses(v3, /^signed: missing: this device applies only desired states signed by one of its operator keys$/, "an unsigned v3");
    await refuses(v1Signed, /^signed\.at: .* is older than .*: a replayed old desired state$/, "a replay of the signed v1");
    await refuses({ ...v3, signed: v2Value.value.signed }, /^signed\.sig: not a signature by signed\.by of this score, device, deployment and time/, "v3 under v2's signature");
    const k1Key = signingKeyFromText(readFileSync(k1.file, "utf8"));
    if (!k1Key.ok) throw new Error(k1Key.error);
    const v3Score = decodeJson(ReconcileScore, JSON.stringify(v3));
    if (!v3Score.ok) throw new Error(v3Score.errors.join("; "));
    const otherDevice = signScore(v3Score.value, { device: `${s.device}-other`, deployment: "app" }, new Date().toISOString(), k1Key.key);
    await refuses(JSON.stringify(DesiredValue.encode(otherDevice)), /^signed\.device: signed for device ".*-other", this is ".*"$/, "v3 signed for another device");

    // A restart: the newest signature time accepted is in the journal, so the replay is still one.
    expect((await s.agent!.stop()).code).to.equal(0);
    s.startAgent({ extraArgs: ["--operator-keys", `${k1.publicKey},${k2.publicKey}`, "--nkey", deviceSeed] });
    await refuses(v1Signed, /a replayed old desired state$/, "the replay again, after a restart");

    for (const [service, id] of Object.entries(r2.container_ids)) expect((await s.podman.client.inspect(id)).State.Running, `v2 ${service} still running`).to.equal(true);
    expect(await s.http(port), "v2 still answers").to.equal("v2");
    expect(touches(events.slice(mark)), "no container created, started, stopped or removed since v2").to.deep.equal([]);

    // The operator writes v2 again (signed anew): Running, with the very containers that ran.
    const rev = await deploy(v2, k2);
    const back = await s.waitState("app", (x) => x.phase === "Running" && x.desired_revision === rev, "v2 Running again");
    expect(back.container_ids).to.deep.equal(r2.container_ids);
    expect(touches(events.slice(mark))).to.deep.equal([]);
    await s.verify(["app"]);

    // Every report and event the device wrote is signed with its nkey and verifies against the key `device add` recorded.
    const st = await fleetctl(s, ["status", s.device, "--json"]);
    const [row] = JSON.parse(st.out) as Array<{ signing: string; info: { operator_keys?: string[] }; checks: unknown }>;
    expect(row!.signing).to.equal("on");
    expect(row!.info.operator_keys).to.deep.equal([k1.publicKey, k2.publicKey]);
    expect(row!.checks).to.deep.equal({ info: { verdict: "verified" }, heartbeat: { verdict: "verified" }, deployments: { app: { verdict: "verified" } } });
    const h = await fleetctl(s, ["history", s.device, "app", "--json"]);
    const sig = (JSON.parse(h.out) as { signatures: { verified: number; unverified: number; forged: unknown[] } }).signatures;
    expect(sig).to.deep.equal({ verified: s.journal("app").length, unverified: 0, forged: [] });
    s.notes.push(`${s.journal("app").length} events verified; 5 refusals, 0 container touched`);
  });

  it("2. without operator keys: the agent warns, device-info says signing off, status marks the device UNSIGNED, and an unsigned value is applied", async () => {
    const s = sc.current;
    const a = s.startAgent();
    await a.waitLog("the signing-off warning", (l) => l.level === 40 && String(l.msg).startsWith("signing is off"));
    const v1 = score([{ name: "web", image: TEST_IMAGES.v1 }]);
    await s.put("app", v1);
    await s.waitState("app", (x) => x.phase === "Running" && x.score_hash === hashOf(v1), "v1 Running");
    await s.verify(["app"]);
    const table = await fleetctl(s, ["status", s.device]);
    // No nkey and no recorded key: nothing to check the reports against either.
    expect(table.err).to.include(`UNSIGNED: ${s.device}: they apply desired states nobody signed`).and.include(`UNVERIFIED: ${s.device}: no device key recorded`);
    const wide = await fleetctl(s, ["status", s.device, "-o", "wide"]);
    expect(wide.out.split("\n").find((l) => l.startsWith(s.device))).to.match(/\sUNSIGNED, UNVERIFIED\s+-$/);
    const [row] = JSON.parse((await fleetctl(s, ["status", s.device, "--json"])).out) as Array<{ signing: string; info: { signing?: string } }>;
    expect(row!.signing).to.equal("off");
    expect(row!.info.signing).to.equal("off");
  });
});
