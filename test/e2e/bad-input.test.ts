// e2e: the bad input corpus (test/e2e/bad-input/, described by cases.json). Every desired value in
// it must end Failed with a message naming the field, on a new deployment and on a running one, with
// the running containers untouched and the heartbeat going on. Values whose deployment name (the key)
// is invalid can have no device-state of their own: they must be refused without an actor, a journal
// or a container. Invalid device ids are the agent's own input: it refuses to start, naming the flag.
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { canonicalHash } from "../../contracts/canonical-json.js";
import { BUCKET_DEVICE_STATE } from "../../contracts/wire-names.js";
import { TEST_IMAGES } from "../support/podman.env.js";
import { AgentProcess } from "./support/agent.process.js";
import { score, sleep, startsSeen, useScenario, waitFor, type Scenario } from "./support/scenario.js";

const hashOf = (s: unknown) => canonicalHash(s as never);
const DIR = join(fileURLToPath(new URL(".", import.meta.url)), "bad-input");

interface Case {
  file: string;
  kind: "desired" | "key" | "device-id";
  expect: string;
  note: string;
  deployment?: string;
  expand?: { placeholder: string; char: string; bytes: number };
}

const cases = JSON.parse(readFileSync(join(DIR, "cases.json"), "utf8")) as Case[];

function valueOf(c: Case): Uint8Array {
  const raw = readFileSync(join(DIR, c.file));
  if (!c.expand) return new Uint8Array(raw);
  return new Uint8Array(Buffer.from(raw.toString("utf8").replace(c.expand.placeholder, c.expand.char.repeat(c.expand.bytes))));
}

const deploymentOf = (c: Case) => `bad-${c.file.slice(0, 2)}`;

describe("e2e: bad input corpus", function () {
  const sc = useScenario();

  it(`8. bad input corpus — ${cases.length} cases from test/e2e/bad-input: each Failed naming the field; running containers untouched; heartbeats continue`, async () => {
    const s = sc.current;
    expect(cases.length).to.be.at.least(30);
    const events = await s.podmanEvents();
    const port = await s.podman.freePort();
    s.startAgent();
    const v1 = score([{ name: "web", image: TEST_IMAGES.v1, hostPort: port }]);
    await s.put("keep", v1);
    const r1 = await s.waitState("keep", (x) => x.phase === "Running", "keep Running");
    const webId = r1.container_ids["web"]!;
    const startedAt = (await s.podman.client.inspect(webId)).State.StartedAt;
    await startsSeen(events, [webId]);
    const mark = events.length;
    const tBad = Date.now();

    // Every desired value, each on a deployment of its own.
    const desired = cases.filter((c) => c.kind === "desired");
    for (const c of desired) await s.put(deploymentOf(c), valueOf(c));
    const problems: string[] = [];
    for (const c of desired) {
      const st = await s.waitState(deploymentOf(c), (x) => x.phase === "Failed", `${c.file} Failed`, 30_000).catch(() => null);
      if (!st) problems.push(`${c.file}: never Failed`);
      else if (!st.last_error?.includes(c.expect)) problems.push(`${c.file} (${c.note}): error ${JSON.stringify(st.last_error?.slice(0, 200))} does not name ${JSON.stringify(c.expect)}`);
      else if (Object.keys(st.container_ids).length !== 0) problems.push(`${c.file}: containers recorded`);
    }
    const allFailedMs = Date.now() - tBad;

    // A few of them on the running deployment: Failed, and its container untouched.
    for (const file of ["22-lifecycle-misspelt.json", "31-env-1mb-value.json", "38-non-utf8.bin", "27-stop-signal-unknown.json"]) {
      const c = cases.find((x) => x.file === file)!;
      const before = (await s.state("keep"))!.last_event_seq;
      await s.put("keep", valueOf(c));
      const st = await s.waitState("keep", (x) => x.phase === "Failed" && x.last_event_seq > before, `keep Failed on ${file}`);
      if (!st.last_error?.includes(c.expect)) problems.push(`keep/${file}: error ${JSON.stringify(st.last_error?.slice(0, 200))} does not name ${JSON.stringify(c.expect)}`);
      expect(st.container_ids).to.deep.equal(r1.container_ids);
    }

    // Invalid deployment names, through the key: refused, nothing created, nothing reported.
    const keyed = cases.filter((c) => c.kind === "key");
    for (const c of keyed) await s.put("unused", valueOf(c), `${s.device}.${c.deployment}`);
    await sleep(2500);
    const stateKeys = await (await s.kv(BUCKET_DEVICE_STATE)).keys(`${s.device}.>`).then(async (it) => {
      const out: string[] = [];
      for await (const k of it) out.push(k);
      return out;
    });
    for (const c of keyed) {
      if (stateKeys.includes(`${s.device}.${c.deployment}`)) problems.push(`${c.file}: a device-state was written for ${c.deployment}`);
      if (s.journal(c.deployment!).length) problems.push(`${c.file}: journaled`);
      const refused = s.agent!.lines.some((l) => String(l["error"] ?? "").includes(c.expect) && String(l["error"]).includes(JSON.stringify(`${s.device}.${c.deployment}`).slice(1, -1)));
      if (!refused) problems.push(`${c.file}: no log line refusing ${c.deployment} with "${c.expect}"`);
    }

    // The running container never noticed; the agent keeps heartbeating.
    const c = await s.podman.client.inspect(webId);
    expect(c.State.Running && c.State.StartedAt === startedAt, "keep's container untouched").to.equal(true);
    expect(await s.http(port)).to.equal("v1");
    expect(events.slice(mark).filter((e) => e.action === "create" || e.action === "remove" || e.action === "died")).to.deep.equal([]);
    const tHb = Date.now();
    await waitFor("a heartbeat after the bad input", async () => {
      const at = await s.heartbeatAt();
      return at !== null && Date.parse(at) > tHb;
    }, 10_000);
    expect(s.agent!.logs(/dropped an invalid/), "no report dropped as invalid").to.deep.equal([]);

    // Invalid device ids: the agent refuses to start, naming the flag.
    for (const dc of cases.filter((x) => x.kind === "device-id")) {
      const id = readFileSync(join(DIR, dc.file), "utf8");
      const r = await AgentProcess.run({ device: id, stateDir: s.stateDir, nats: s.natsUrls, containerHost: s.podman.containerHost, logFile: join(s.w.logDir, `${s.device}-bad-device.log`) });
      if (r.code !== 2 || !r.stderr.includes(dc.expect)) problems.push(`${dc.file}: exit ${r.code}, stderr ${JSON.stringify(r.stderr.slice(0, 200))}`);
    }
    expect(problems, problems.join("\n")).to.deep.equal([]);

    // Roll forward out of it: a valid score on the deployment that failed on bad input.
    const v2 = score([{ name: "web", image: TEST_IMAGES.v2, hostPort: port }]);
    const t2 = Date.now();
    await s.put("keep", v2);
    await s.waitState("keep", (x) => x.phase === "Running" && x.score_hash === hashOf(v2), "keep v2 Running");
    s.recoveryMs = Date.now() - t2;
    s.recoveryWhat = "a valid score after bad input → Running";
    s.notes.push(`${desired.length} desired values all Failed within ${allFailedMs} ms; ${keyed.length} bad keys refused; ${cases.length - desired.length - keyed.length} bad device ids refused`);
    await s.verify(["keep", ...desired.map(deploymentOf)]);
  });
});

export type { Scenario };
