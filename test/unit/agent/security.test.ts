// Auth and TLS flags, the container policy, and the device permissions generator (issue 8).
import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nkeys } from "@nats-io/transport-node";
import { parseConfig } from "../../../agent/config.js";
import { decodePolicy, DEFAULT_POLICY, mountAllowed, policyViolations, type ContainerPolicy } from "../../../agent/deployments/policy.js";
import { loadContainerPolicy } from "../../../agent/deployments/policy.file.js";
import { AuthFileError, natsConnectOptions, parseAuthFlags } from "../../../fleet/auth.js";
import { decodeJson } from "../../../contracts/decode.js";
import { ReconcileScore } from "../../../contracts/score.codec.js";
import { LibpodClient } from "../../../runtime/podman/libpod.client.js";
import { PodmanRuntime } from "../../../runtime/podman/podman.runtime.js";
import { deviceCommand } from "../../../cli/device.command.js";
import { accountsBlock, deviceAccount, deviceImports, deviceInboxPrefix, fleetAccounts, newDeviceKey } from "../../../fleet/device.permissions.js";

const score = (service: Record<string, unknown>): ReconcileScore => {
  const r = decodeJson(ReconcileScore, JSON.stringify({ type: "PodmanV0", data: { services: [{ name: "web", image: "img/web:1", ...service }] } }));
  if (!r.ok) throw new Error(r.errors.join("; "));
  return r.value;
};

describe("NATS auth and TLS flags", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "auth-unit-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("reads flags and env (a flag wins), and refuses mixed or half-given methods in one line", () => {
    expect(parseAuthFlags({ nkey: "/a/seed" }, { FLEET_NATS_NKEY: "/b/seed" })).to.deep.equal({ ok: true, auth: { nkeyFile: "/a/seed" } });
    expect(parseAuthFlags({}, { FLEET_NATS_USER: "u", FLEET_NATS_PASSWORD: "pw", FLEET_NATS_TLS_CA: "/ca" })).to.deep.equal({ ok: true, auth: { user: "u", password: "pw", tlsCa: "/ca" } });
    const bad = [
      parseAuthFlags({ creds: "/c", nkey: "/n" }, {}),
      parseAuthFlags({ user: "u" }, {}),
      parseAuthFlags({}, { FLEET_NATS_PASSWORD: "hunter2-secret" }),
      parseAuthFlags({ "tls-cert": "/c" }, {}),
      parseAuthFlags({ nkey: "" }, {}),
    ];
    const errors = bad.map((r) => (r.ok ? "" : r.error));
    expect(errors[0]).to.equal("choose one way to authenticate: --creds, --nkey given together");
    expect(errors[1]).to.equal("--user needs a password: --password or FLEET_NATS_PASSWORD");
    expect(errors[2]).to.equal("FLEET_NATS_PASSWORD needs a user: --user or FLEET_NATS_USER");
    expect(errors[3]).to.match(/^--tls-cert needs the certificate's key/);
    expect(errors[4]).to.equal("--nkey: empty value");
    for (const e of errors) {
      expect(e).to.not.include("\n");
      expect(e).to.not.include("hunter2");
    }
  });

  it("agent config: auth and policy flags, help lists them, defaults unchanged", () => {
    const r = parseConfig(["--device-id", "pi-1", "--nkey", "/k", "--tls-ca", "/ca", "--policy", "/p.json"], {});
    expect(r).to.deep.include({ ok: true });
    if (!("ok" in r) || !r.ok) throw new Error("expected ok");
    expect(r.config.auth).to.deep.equal({ nkeyFile: "/k", tlsCa: "/ca" });
    expect(r.config.policyFile).to.equal("/p.json");
    const plain = parseConfig(["--device-id", "pi-1"], {});
    expect(plain).to.deep.include({ ok: true });
    if ("ok" in plain && plain.ok) expect(plain.config).to.not.have.keys("auth", "policyFile");
    const env = parseConfig([], { FLEET_DEVICE_ID: "pi-1", FLEET_POLICY: "/q.json", FLEET_NATS_CREDS: "/c.creds" });
    if (!("ok" in env) || !env.ok) throw new Error("expected ok");
    expect(env.config).to.deep.include({ policyFile: "/q.json", auth: { credsFile: "/c.creds" } });
    const mixed = parseConfig(["--device-id", "pi-1", "--user", "u", "--password", "pw", "--nkey", "/k"], {});
    expect(mixed).to.deep.equal({ ok: false, error: "choose one way to authenticate: --nkey, --user given together" });
    const help = parseConfig(["--help"], {});
    expect("help" in help && help.help).to.include("--tls-ca FILE").and.include("--policy FILE").and.include("FLEET_NATS_NKEY");
  });

  it("natsConnectOptions: an authenticator from a seed file; TLS files; errors name the file, never its content", () => {
    const { seed, publicKey } = newDeviceKey();
    const seedFile = join(dir, "seed");
    writeFileSync(seedFile, `${seed}\n`);
    const o = natsConnectOptions({ nkeyFile: seedFile, tlsCa: seedFile });
    expect(o.authenticator).to.be.a("function");
    const a = (o.authenticator as (nonce?: string) => { nkey?: string; sig?: string })("abc");
    expect(a.nkey).to.equal(publicKey);
    expect(o.tls).to.deep.equal({ caFile: seedFile });
    const garbage = join(dir, "garbage");
    writeFileSync(garbage, "SECRET-CONTENT-not-a-seed");
    const errOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).to.be.instanceOf(AuthFileError);
        return (e as Error).message;
      }
      throw new Error("expected a throw");
    };
    expect(errOf(() => natsConnectOptions({ nkeyFile: garbage }))).to.equal(`nkey seed file ${JSON.stringify(garbage)}: no nkey user seed (SU...) in it`);
    expect(errOf(() => natsConnectOptions({ creds: undefined, credsFile: garbage } as never))).to.match(/not a NATS credentials file/).and.not.include("SECRET");
    expect(errOf(() => natsConnectOptions({ nkeyFile: join(dir, "missing") }))).to.match(/cannot read it \(ENOENT\)$/);
    expect(errOf(() => natsConnectOptions({ tlsCa: join(dir, "missing-ca") }))).to.match(/^TLS CA file .*ENOENT/);
    const up = natsConnectOptions({ user: "u", password: "pw" });
    expect((up.authenticator as () => { user?: string; pass?: string })()).to.deep.equal({ user: "u", pass: "pw" });
  });
});

describe("container policy", () => {
  const webPort = (host_port: number) => score({ ports: [{ host_port, container_port: 8080 }] });
  const mount = (source: string) => score({ volumes: [{ source, target: "/data" }] });

  it("refuses a privileged / host-network / host-PID service at decode: the score has no such fields", () => {
    for (const field of ["privileged", "network_mode", "pid"]) {
      const r = decodeJson(ReconcileScore, JSON.stringify({ type: "PodmanV0", data: { services: [{ name: "web", image: "img/web:1", [field]: field === "privileged" ? true : "host" }] } }));
      expect(r.ok).to.equal(false);
      if (!r.ok) expect(r.errors.join("; ")).to.include(`data.services[0].${field}`).and.include("unknown field");
    }
  });

  it("host port 80 is refused naming rule and service; 8080 passes; allow_low_ports true or a list allows", () => {
    expect(policyViolations(DEFAULT_POLICY, webPort(80))).to.deep.equal([
      "services[0] (web): host port 80 is below 1024, not allowed by this device's policy (allow_low_ports)",
    ]);
    expect(policyViolations(DEFAULT_POLICY, webPort(8080))).to.deep.equal([]);
    expect(policyViolations({ ...DEFAULT_POLICY, allowLowPorts: true }, webPort(80))).to.deep.equal([]);
    expect(policyViolations({ ...DEFAULT_POLICY, allowLowPorts: [443] }, webPort(443))).to.deep.equal([]);
    expect(policyViolations({ ...DEFAULT_POLICY, allowLowPorts: [443] }, webPort(80))).to.have.length(1);
  });

  it("bind mounts: only under the allowed host paths; /etc and '..' refused; an allowed mount passes", () => {
    expect(policyViolations(DEFAULT_POLICY, mount("/etc"))).to.deep.equal([
      'services[0] (web): bind mount of "/etc" is outside the host paths this device\'s policy allows (allowed_mount_paths: /srv, /var/lib/fleet-data)',
    ]);
    expect(policyViolations(DEFAULT_POLICY, mount("/srv/../etc"))).to.deep.equal(['services[0] (web): bind mount source "/srv/../etc" contains "..", refused by this device\'s policy']);
    expect(policyViolations(DEFAULT_POLICY, mount("/srv/data"))).to.deep.equal([]);
    expect(policyViolations(DEFAULT_POLICY, mount("/var/lib/fleet-data"))).to.deep.equal([]);
    expect(mountAllowed("/srvx", ["/srv"])).to.equal(false);
    expect(mountAllowed("/srv//data/", ["/srv/"])).to.equal(true);
    const etcAllowed: ContainerPolicy = { ...DEFAULT_POLICY, allowedMountPaths: ["/etc/app"] };
    expect(policyViolations(etcAllowed, mount("/etc/app/conf"))).to.deep.equal([]);
    expect(policyViolations(etcAllowed, mount("/etc/passwd"))).to.have.length(1);
  });

  it("policy file codec is exact; loading: --policy file, policy.json in the state dir, else the defaults", () => {
    expect(decodePolicy('{"allow_low_ports":[80],"allowed_mount_paths":["/data/"]}')).to.deep.equal({ ok: true, value: { allowLowPorts: [80], allowedMountPaths: ["/data"] } });
    const bad = decodePolicy('{"allow_low_port":true}');
    expect(bad.ok).to.equal(false);
    if (!bad.ok) expect(bad.errors.join("; ")).to.include("allow_low_port").and.include("unknown field");
    const bad2 = decodePolicy('{"allowed_mount_paths":["/srv/../etc"]}');
    expect(bad2.ok).to.equal(false);
    const dir = mkdtempSync(join(tmpdir(), "policy-unit-"));
    try {
      expect(loadContainerPolicy({ stateDir: dir })).to.deep.equal({ policy: DEFAULT_POLICY, from: null });
      writeFileSync(join(dir, "policy.json"), '{"allow_low_ports":true}');
      expect(loadContainerPolicy({ stateDir: dir }).policy.allowLowPorts).to.equal(true);
      expect(() => loadContainerPolicy({ stateDir: dir, policyFile: join(dir, "nope.json") })).to.throw(/cannot read it \(ENOENT\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("PodmanRuntime's create spec never asks for privileges or host namespaces", () => {
    const rt = new PodmanRuntime({ device: "d", client: new LibpodClient({ socketPath: "/nonexistent.sock" }) });
    const s = score({ ports: [{ host_port: 8080, container_port: 80 }], volumes: [{ source: "/srv/x", target: "/x" }], env: { A: "b" } });
    const spec = rt.createSpec({ deployment: "app", service: s.data.services[0]!, scoreHash: "sha256:x", lifecycle: { stop_signal: "SIGTERM", grace_period_secs: 3 } } as Parameters<PodmanRuntime["createSpec"]>[0]);
    const keys = Object.keys(spec);
    for (const k of ["privileged", "netns", "pidns", "ipcns", "utsns", "cap_add", "devices", "userns"]) expect(keys).to.not.include(k);
  });
});

describe("device accounts (fleetctl device add, fleetctl device accounts)", () => {
  it("a device's account imports only its own keys and subjects, each with a reason, none mapped", () => {
    const { publicKey, seed } = newDeviceKey();
    expect(nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey()).to.equal(publicKey);
    const a = deviceAccount("pi-7", publicKey);
    expect(a.name).to.equal("FLEET_DEVICE_pi-7");
    expect(a.users).to.have.length(1);
    // No command may come from a device, not even one to itself (issue 15).
    expect(a.users![0]!.entry).to.equal(`{ nkey: "${publicKey}", permissions: { publish: { deny: ["fleet.cmd.>"] } } }`);
    expect(a.users![0]!.why).to.include("It may publish no command (fleet.cmd.>)");
    const subjects = deviceImports("pi-7").map((l) => {
      expect(l.why, l.entry).to.not.equal("");
      // A mapped import (`to`) with a wildcard crashes nats-server 2.9 when an answer lands on it.
      expect(l.entry, l.entry).to.not.include(" to:");
      const m = /^\{ (service|stream): \{ account: "(\w+)", subject: "([^"]+)" \} \}$/.exec(l.entry);
      expect(m, l.entry).to.not.equal(null);
      return `${m![1]} ${m![2]} ${m![3]}`;
    });
    expect(subjects).to.deep.equal([
      "service FLEET_REPORTS $KV.device-state.pi-7.>",
      "service FLEET_REPORTS $KV.device-heartbeat.pi-7",
      "service FLEET_REPORTS $KV.device-info.pi-7",
      "service FLEET_JOURNAL fleet.events.pi-7.>",
      "service FLEET_JOURNAL $JS.API.DIRECT.GET.FLEET_EVENTS.fleet.events.pi-7.>",
      "service FLEET_JOURNAL $JS.API.CONSUMER.CREATE.FLEET_EVENTS.*.fleet.events.pi-7.>",
      "service FLEET_JOURNAL $JS.FC.FLEET_EVENTS.>",
      "stream FLEET_JOURNAL _INBOX_device.pi-7.>",
      "service FLEET_DESIRED $JS.API.CONSUMER.CREATE.KV_desired-state.*.$KV.desired-state.pi-7.>",
      "service FLEET_DESIRED $JS.FC.KV_desired-state.>",
      "stream FLEET_DESIRED _INBOX_device.pi-7.>",
      "service FLEET_NO_JETSTREAM $JS.API.INFO",
    ]);
    expect(deviceInboxPrefix("pi-7")).to.equal("_INBOX_device.pi-7");
    expect(a.exports!.map((l) => l.entry)).to.deep.equal(['{ service: "fleet.cmd.pi-7.>", accounts: ["FLEET_OPERATOR"] }']);
    expect(() => deviceAccount("a.b", publicKey)).to.throw(/invalid device id/);
  });

  it("the fleet's accounts: streams apart, the operator imports every stream's API by name and each device's commands", () => {
    const { publicKey } = newDeviceKey();
    const accounts = fleetAccounts({ user: "op", password: "pw" }, [{ id: "pi-7", publicKey }]);
    expect(accounts.map((a) => a.name)).to.deep.equal(["FLEET_OPERATOR", "FLEET_DESIRED", "FLEET_JOURNAL", "FLEET_REPORTS", "FLEET_NO_JETSTREAM", "FLEET_DEVICE_pi-7"]);
    expect(accounts.filter((a) => a.jetstream).map((a) => a.name)).to.deep.equal(["FLEET_DESIRED", "FLEET_JOURNAL", "FLEET_REPORTS"]);
    const op = accounts[0]!;
    expect(op.users!.map((l) => l.entry)).to.deep.equal(['{ user: "op", password: "pw" }']);
    const imports = op.imports!.map((l) => l.entry);
    expect(imports).to.include('{ service: { account: "FLEET_DESIRED", subject: "$JS.API.STREAM.*.KV_desired-state" } }');
    expect(imports).to.include('{ service: { account: "FLEET_JOURNAL", subject: "$JS.API.CONSUMER.*.FLEET_EVENTS.>" } }');
    expect(imports).to.include('{ service: { account: "FLEET_REPORTS", subject: "$JS.API.INFO" } }');
    expect(imports.at(-1)).to.equal('{ service: { account: "FLEET_DEVICE_pi-7", subject: "fleet.cmd.pi-7.>" } }');
    // Stream-scoped only: nothing of the whole API, so no account's API overlaps another's.
    expect(imports.filter((i) => /"\$JS\.API\.>"|STREAM\.(NAMES|LIST)/.test(i))).to.deep.equal([]);
    for (const a of accounts) for (const l of [...(a.users ?? []), ...(a.imports ?? []), ...(a.exports ?? [])]) expect(l.why, `${a.name} ${l.entry}`).to.not.equal("");
    const text = accountsBlock({ user: "op", password: "pw" }, [{ id: "pi-7", publicKey }]);
    expect(text).to.match(/^accounts \{\n/).and.match(/\n\}\n$/);
    expect(text.split("\n").filter((l) => /^\s+\{ (service|stream|user|nkey)/.test(l)).length).to.equal(imports.length + accounts.slice(1).reduce((n, a) => n + (a.imports?.length ?? 0) + (a.exports?.length ?? 0) + (a.users?.length ?? 0), 0) + 1);
  });

  it("fleetctl device add prints the entry; --seed-out writes the seed 0600 and never overwrites", async () => {
    const dir = mkdtempSync(join(tmpdir(), "device-add-"));
    try {
      let out = "";
      let err = "";
      const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s), env: {} };
      expect(await deviceCommand(["add", "pi-9", "--offline"], io)).to.equal(0);
      expect(out).to.include('"FLEET_DEVICE_pi-9": {').and.include('{ service: { account: "FLEET_DEVICE_pi-9", subject: "fleet.cmd.pi-9.>" } }').and.match(/# seed of pi-9 .*: SU[A-Z2-7]+\n$/);
      out = "";
      const seedFile = join(dir, "pi-9.seed");
      expect(await deviceCommand(["add", "pi-9", "--offline", "--seed-out", seedFile], io)).to.equal(0);
      expect(statSync(seedFile).mode & 0o777).to.equal(0o600);
      const seed = readFileSync(seedFile, "utf8").trim();
      expect(out).to.not.include(seed).and.not.include("# seed");
      expect(err).to.include(seedFile);
      await deviceCommand(["add", "pi-9", "--offline", "--seed-out", seedFile], io).then(
        (code) => expect.fail(`expected a refusal, got ${code}`),
        (e: Error) => expect(e.message).to.include("EEXIST"),
      );
      expect(readFileSync(seedFile, "utf8").trim()).to.equal(seed);

      out = "";
      const pub = nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey();
      expect(await deviceCommand(["accounts", "--operator-password", "$2a$11$x", "--device", `pi-9=${pub}`], io)).to.equal(0);
      expect(out).to.include('{ user: "operator", password: "$2a$11$x" }').and.include(`{ nkey: "${pub}", permissions: { publish: { deny: ["fleet.cmd.>"] } } }`);
      for (const bad of ["pi-9", "pi-9=SUXYZ", `pi.9=${pub}`]) {
        await deviceCommand(["accounts", "--device", bad], io).then(
          (code) => expect.fail(`expected a refusal of ${bad}, got ${code}`),
          (e: Error) => expect(e.message).to.include("--device"),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
