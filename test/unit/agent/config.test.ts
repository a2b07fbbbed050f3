import { expect } from "chai";
import { parseConfig } from "../../../agent/config.js";
import { newUserKey } from "../../../contracts/nkey.js";

const ok = (argv: string[], env: Record<string, string> = {}) => {
  const r = parseConfig(argv, env);
  if (!("ok" in r) || !r.ok) throw new Error(`expected ok, got ${JSON.stringify(r)}`);
  return r.config;
};
const err = (argv: string[], env: Record<string, string> = {}) => {
  const r = parseConfig(argv, env);
  if (!("ok" in r) || r.ok) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  expect(r.error).not.to.include("\n");
  return r.error;
};

describe("agent config", () => {
  it("applies defaults", () => {
    expect(ok(["--device-id", "pi-17"])).to.deep.equal({
      deviceId: "pi-17",
      natsServers: ["nats://127.0.0.1:4222"],
      stateDir: "/var/lib/fleet-agent",
      tickSecs: 30,
      logLevel: "info",
      containerHost: undefined,
    });
  });

  it("reads the environment, and a flag wins over it", () => {
    const env = {
      FLEET_DEVICE_ID: "env-dev",
      FLEET_NATS_URL: "nats://a:4222, nats://b:4222",
      FLEET_STATE_DIR: "/tmp/x",
      FLEET_TICK_SECS: "2.5",
      FLEET_LOG_LEVEL: "DEBUG",
      CONTAINER_HOST: "unix:///run/podman/podman.sock",
    };
    expect(ok([], env)).to.deep.equal({
      deviceId: "env-dev",
      natsServers: ["nats://a:4222", "nats://b:4222"],
      stateDir: "/tmp/x",
      tickSecs: 2.5,
      logLevel: "debug",
      containerHost: "unix:///run/podman/podman.sock",
    });
    const c = ok(["--device-id=flag-dev", "--tick-secs", "5", "--nats", "nats://c:1", "--log-level", "warn", "--state-dir", "/s"], env);
    expect(c).to.include({ deviceId: "flag-dev", tickSecs: 5, logLevel: "warn", stateDir: "/s" });
    expect(c.natsServers).to.deep.equal(["nats://c:1"]);
  });

  it("requires a valid device id", () => {
    expect(err([])).to.match(/device id is required/);
    expect(err(["--device-id", "pi.17"])).to.match(/^--device-id: invalid device id: must be letters/);
    expect(err([], { FLEET_DEVICE_ID: "-x" })).to.match(/^FLEET_DEVICE_ID: invalid device id/);
    expect(err(["--device-id", "x".repeat(254)])).to.match(/at most 253 bytes/);
  });

  it("refuses bad tick, level, servers, unknown flags and positionals, each on one line", () => {
    for (const v of ["0", "-1", "abc", "", " ", "Infinity"]) expect(err(["--device-id", "d", `--tick-secs=${v}`])).to.match(/--tick-secs: expected a positive number/);
    expect(err(["--device-id", "d"], { FLEET_TICK_SECS: "nope" })).to.match(/^FLEET_TICK_SECS/);
    expect(err(["--device-id", "d", "--log-level", "loud"])).to.match(/--log-level: expected one of fatal, error/);
    expect(err(["--device-id", "d", "--nats", "nats://a:1,,nats://b:2"])).to.match(/empty server/);
    expect(err(["--device-id", "d", "--nats", "http://a:1"])).to.match(/unsupported server URL/);
    expect(err(["--device-id", "d", "--bogus"])).to.match(/Unknown option '--bogus'.*see --help/);
    expect(err(["--device-id", "d", "extra"])).to.match(/extra/);
    expect(err(["--device-id"])).to.match(/device-id/);
  });

  it("takes the restart and retry backoff in seconds, a cap defaulting to 30 times the base", () => {
    expect(ok(["--device-id", "d", "--backoff-secs", "0.2:2"]).backoff).to.deep.equal({ baseMs: 200, capMs: 2000 });
    expect(ok(["--device-id", "d"], { FLEET_BACKOFF_SECS: "1" }).backoff).to.deep.equal({ baseMs: 1000, capMs: 30_000 });
    expect(ok(["--device-id", "d"]).backoff).to.equal(undefined);
    for (const v of ["0", "-1", "x", "5:1", "1:2:3"]) expect(err(["--device-id", "d", `--backoff-secs=${v}`])).to.match(/--backoff-secs: expected BASE or BASE:CAP seconds/);
  });

  it("takes operator keys (several, for a rotation) from --operator-keys or FLEET_OPERATOR_KEYS, each checked", () => {
    const [k1, k2] = [newUserKey().publicKey, newUserKey().publicKey];
    expect(ok(["--device-id", "d", "--operator-keys", `${k1}, ${k2},${k1}`]).operatorKeys).to.deep.equal([k1, k2]);
    expect(ok(["--device-id", "d"], { FLEET_OPERATOR_KEYS: k2 }).operatorKeys).to.deep.equal([k2]);
    expect(ok(["--device-id", "d"])).to.not.have.property("operatorKeys");
    expect(err(["--device-id", "d", "--operator-keys", `${k1},UABC`])).to.equal('--operator-keys: key 2: expected an nkey user public key (U followed by 55 base32 characters), got "UABC"');
    expect(err(["--device-id", "d"], { FLEET_OPERATOR_KEYS: `${k1},` })).to.equal("FLEET_OPERATOR_KEYS: key 2: empty key in the list");
    const badSum = `${k1.slice(0, -1)}${k1.endsWith("A") ? "B" : "A"}`;
    expect(err(["--device-id", "d", "--operator-keys", badSum])).to.match(/^--operator-keys: key 1: not a valid nkey public key \(bad checksum\)/);
  });

  it("gives help text that explains every option", () => {
    for (const argv of [["--help"], ["-h"], ["--device-id", "bad.id", "--help"]]) {
      const r = parseConfig(argv, {});
      expect(r).to.have.property("help");
      const help = (r as { help: string }).help;
      for (const s of ["--device-id", "FLEET_DEVICE_ID", "--nats", "FLEET_NATS_URL", "--state-dir", "FLEET_STATE_DIR", "--tick-secs", "FLEET_TICK_SECS", "--log-level", "FLEET_LOG_LEVEL", "--backoff-secs", "FLEET_BACKOFF_SECS", "CONTAINER_HOST"]) {
        expect(help).to.include(s);
      }
    }
  });
});
