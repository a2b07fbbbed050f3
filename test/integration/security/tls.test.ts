// TLS with a test CA: the agent connects with --tls-ca and converges; a server whose certificate
// does not chain to the CA, or names another host, is refused.
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { startAgent } from "../../../agent/agent.js";
import { parseConfig } from "../../../agent/config.js";
import { memoryLogger } from "../../../agent/logger.js";
import { natsConnectOptions } from "../../../fleet/auth.js";
import { BUCKET_DESIRED_STATE, BUCKET_DEVICE_STATE, deploymentKey } from "../../../contracts/wire-names.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";
import { ConfiguredNats, tempDir, waitFor } from "../../support/nats.js";

const score = (image: string) => JSON.stringify({ type: "PodmanV0", data: { services: [{ name: "web", image }], lifecycle: { grace_period_secs: 1 } } });

const openssl = (cwd: string, ...args: string[]) => execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });

function makeCa(cwd: string, name: string) {
  openssl(cwd, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "1", "-subj", `/CN=${name}`);
  return join(cwd, `${name}.pem`);
}
function makeServerCert(cwd: string, ca: string, name: string, san: string) {
  openssl(cwd, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
  writeFileSync(join(cwd, `${name}.ext`), `subjectAltName=${san}\n`);
  openssl(cwd, "x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-set_serial", String(Date.now()), "-out", `${name}.pem`, "-days", "1", "-extfile", `${name}.ext`);
  return { cert: join(cwd, `${name}.pem`), key: join(cwd, `${name}.key`) };
}
const tlsBlock = (c: { cert: string; key: string }) => `tls { cert_file: ${JSON.stringify(c.cert)}, key_file: ${JSON.stringify(c.key)} }`;

describe("security: TLS with a test CA", function () {
  let dir: string;
  let caFile: string;
  let otherCaFile: string;
  let good: ConfiguredNats;
  let wrongName: ConfiguredNats;
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    dir = tempDir("fleet-tls-");
    caFile = makeCa(dir, "fleet-ca");
    otherCaFile = makeCa(dir, "other-ca");
    good = await ConfiguredNats.withConfig(tlsBlock(makeServerCert(dir, "fleet-ca", "nats-good", "IP:127.0.0.1,DNS:localhost")));
    wrongName = await ConfiguredNats.withConfig(tlsBlock(makeServerCert(dir, "fleet-ca", "nats-wrong", "DNS:nats.elsewhere.invalid")));
  });
  afterEach(async () => {
    for (const s of stops.splice(0)) await s();
  });
  after(async () => {
    await good?.destroy();
    await wrongName?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const tryConnect = (url: string, ca: string) =>
    connect({ servers: url, ...natsConnectOptions({ tlsCa: ca }), maxReconnectAttempts: 0, timeout: 3000 }).then(
      async (nc) => {
        const info = nc.info;
        await nc.close();
        return { ok: true as const, tls: info?.tls_required === true };
      },
      (e: Error) => ({ ok: false as const, error: `${e.message} ${String((e as { cause?: unknown }).cause ?? "")}` }),
    );

  it("the agent connects with --tls-ca and converges", async () => {
    const device = "tls-dev";
    const stateDir = join(dir, "state-ok");
    const r = parseConfig(["--device-id", device, "--nats", good.url, "--state-dir", stateDir, "--tls-ca", caFile, "--tick-secs", "3600"], {});
    if (!("ok" in r) || !r.ok) throw new Error(JSON.stringify(r));
    const fake = new FakeRuntime({ device });
    const agent = await startAgent(r.config, { runtime: fake, logger: memoryLogger("warn").logger });
    stops.push(() => agent.stop(5000));
    await agent.online;
    const op = await connect({ servers: good.url, ...natsConnectOptions({ tlsCa: caFile }) });
    stops.push(() => op.close());
    expect(op.info?.tls_required).to.equal(true);
    const kvm = new Kvm(op);
    await (await kvm.open(BUCKET_DESIRED_STATE)).put(deploymentKey(device, "app"), score("img/web:1"));
    const states = await kvm.open(BUCKET_DEVICE_STATE);
    await waitFor("Running over TLS", async () => (await states.get(deploymentKey(device, "app")))?.json<{ phase: string }>().phase === "Running");
  });

  it("a server whose certificate doesn't chain to the given CA is refused", async () => {
    expect(await tryConnect(good.url, caFile)).to.deep.equal({ ok: true, tls: true });
    const r = await tryConnect(good.url, otherCaFile);
    expect(r.ok).to.equal(false);
    if (!r.ok) expect(r.error).to.match(/self[- ]signed|unable to verify|certificate/i);
    // The agent keeps trying and never comes online.
    const stateDir = join(dir, "state-bad-ca");
    const agent = await startAgent(
      { deviceId: "tls-bad", natsServers: [good.url], stateDir, tickSecs: 3600, logLevel: "silent", containerHost: undefined, auth: { tlsCa: otherCaFile } },
      { runtime: new FakeRuntime({ device: "tls-bad" }), logger: memoryLogger("silent").logger, natsOptions: { reconnectTimeWait: 200 } },
    );
    stops.push(() => agent.stop(2000));
    const online = await Promise.race([agent.online.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1500))]);
    expect(online).to.equal(false);
  });

  it("a server whose certificate names another host is refused", async () => {
    const r = await tryConnect(wrongName.url, caFile);
    expect(r.ok).to.equal(false);
    if (!r.ok) expect(r.error).to.match(/altnames|Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME_INVALID/i);
  });
});
