// The agent's configuration: command-line flags first, then environment variables, then defaults.
// Pure: the entry point prints `error` and exits 2, or prints `help` and exits 0.
import { parseArgs } from "node:util";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { userPublicKeyProblem } from "../contracts/nkey.js";
import { AUTH_OPTIONS, authFlagsHelp, hasAuth, parseAuthFlags, type NatsAuth } from "../fleet/auth.js";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface AgentConfig {
  deviceId: string;
  /** NATS server URLs, tried in order, reconnected to forever. */
  natsServers: string[];
  stateDir: string;
  tickSecs: number;
  logLevel: LogLevel;
  /** `CONTAINER_HOST` as given (the Podman socket URL), or undefined. */
  containerHost: string | undefined;
  /** NATS authentication and TLS (paths and a user; files are read when connecting). Absent: none. */
  auth?: NatsAuth;
  /**
   * The device's container policy file (`--policy` / `FLEET_POLICY`). Absent: `policy.json` in the
   * state dir if it exists, else the built-in defaults.
   */
  policyFile?: string;
  /** Restart and retry backoff in ms, when not the default (10 s doubling to 300 s). */
  backoff?: { baseMs: number; capMs: number };
  /**
   * The operator public keys (`U…`) whose signatures this device trusts (`--operator-keys` /
   * `FLEET_OPERATOR_KEYS`). Absent: signing is off, any desired value is applied.
   */
  operatorKeys?: string[];
}

export type ConfigResult = { ok: true; config: AgentConfig } | { ok: false; error: string } | { help: string };

export const DEFAULTS = {
  nats: "nats://127.0.0.1:4222",
  stateDir: "/var/lib/fleet-agent",
  tickSecs: 30,
  logLevel: "info" as LogLevel,
};

export const HELP = `fleet-agent: keeps this device's Podman containers converged to the desired state in NATS.

Usage: fleet-agent --device-id ID [options]

Options (a flag wins over its environment variable):
  --device-id ID     FLEET_DEVICE_ID   required. This device's id: 1-253 bytes of letters, digits,
                                       '_' or '-', starting with a letter or digit.
  --nats URLS        FLEET_NATS_URL    NATS servers, comma separated (default ${DEFAULTS.nats}).
                                       The agent starts even if none is reachable and reconnects forever.
  --state-dir DIR    FLEET_STATE_DIR   where the event journal and scores are kept
                                       (default ${DEFAULTS.stateDir}).
  --tick-secs N      FLEET_TICK_SECS   seconds between liveness ticks, a positive number (default ${DEFAULTS.tickSecs}).
  --log-level LEVEL  FLEET_LOG_LEVEL   one of ${LOG_LEVELS.join(", ")} (default ${DEFAULTS.logLevel}).
                                       Logs are JSON lines on stdout.
  --backoff-secs B[:C]  FLEET_BACKOFF_SECS
                                       restarts of a dead or unhealthy service, and forward retries of
                                       a failed step: at once, then after B seconds, doubling up to C
                                       (default 10:300); 2 × C seconds up start it afresh.
  --policy FILE      FLEET_POLICY      this device's container policy (JSON): host ports below 1024,
                                       bind-mount sources. Default: policy.json in the state dir if
                                       present, else ports >= 1024 and mounts under /srv or
                                       /var/lib/fleet-data only. The desired state can't change it.
  --operator-keys KEYS  FLEET_OPERATOR_KEYS
                                       operator public keys (U..., from \`fleetctl key create\`), comma
                                       separated (several during a key rotation): only desired states
                                       one of them signed for this device and deployment are applied.
                                       Without them any desired state is applied (a warning at start).
  -h, --help                           print this text and exit.

${authFlagsHelp}

Environment only:
  CONTAINER_HOST                       Podman API URL (e.g. unix:///run/podman/podman.sock), passed through.

Exit status 2 means the configuration was invalid; the reason is printed on one line.
`;

export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ConfigResult {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        "device-id": { type: "string" },
        nats: { type: "string" },
        "state-dir": { type: "string" },
        "tick-secs": { type: "string" },
        "log-level": { type: "string" },
        policy: { type: "string" },
        "backoff-secs": { type: "string" },
        "operator-keys": { type: "string" },
        ...AUTH_OPTIONS,
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    return { ok: false, error: `${firstLine((e as Error).message)} (see --help)` };
  }
  if (values["help"] === true) return { help: HELP };

  const pick = (flag: string, envName: string): { value: string; from: string } | undefined => {
    const f = values[flag];
    if (typeof f === "string") return { value: f, from: `--${flag}` };
    const e = env[envName];
    if (e !== undefined && e !== "") return { value: e, from: envName };
    return undefined;
  };

  const device = pick("device-id", "FLEET_DEVICE_ID");
  if (!device) return { ok: false, error: "a device id is required: --device-id ID or FLEET_DEVICE_ID (see --help)" };
  const deviceProblem = deviceOrDeploymentNameProblem(device.value);
  if (deviceProblem) return { ok: false, error: `${device.from}: invalid device id: ${deviceProblem}` };

  const nats = pick("nats", "FLEET_NATS_URL") ?? { value: DEFAULTS.nats, from: "default" };
  const natsServers = nats.value.split(",").map((s) => s.trim());
  for (const s of natsServers) {
    if (s === "") return { ok: false, error: `${nats.from}: empty server in the list ${JSON.stringify(nats.value)}` };
    if (/\s/.test(s)) return { ok: false, error: `${nats.from}: server ${JSON.stringify(s)} contains white space` };
    if (s.includes("://") && !/^(nats|tls|ws|wss):\/\/[^/]+\/?$/.test(s)) {
      return { ok: false, error: `${nats.from}: unsupported server URL ${JSON.stringify(s)} (want nats://host:port)` };
    }
  }

  const stateDir = pick("state-dir", "FLEET_STATE_DIR") ?? { value: DEFAULTS.stateDir, from: "default" };

  let tickSecs = DEFAULTS.tickSecs;
  const tick = pick("tick-secs", "FLEET_TICK_SECS");
  if (tick) {
    const n = tick.value.trim() === "" ? NaN : Number(tick.value);
    if (!Number.isFinite(n) || n <= 0) return { ok: false, error: `${tick.from}: expected a positive number of seconds, got ${JSON.stringify(tick.value)}` };
    tickSecs = n;
  }

  let logLevel = DEFAULTS.logLevel;
  const level = pick("log-level", "FLEET_LOG_LEVEL");
  if (level) {
    const l = level.value.toLowerCase();
    if (!(LOG_LEVELS as readonly string[]).includes(l)) {
      return { ok: false, error: `${level.from}: expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level.value)}` };
    }
    logLevel = l as LogLevel;
  }

  let backoff: AgentConfig["backoff"];
  const bo = pick("backoff-secs", "FLEET_BACKOFF_SECS");
  if (bo) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(?::\s*(\d+(?:\.\d+)?)\s*)?$/.exec(bo.value);
    const base = m ? Number(m[1]) : NaN;
    const cap = m?.[2] !== undefined ? Number(m[2]) : base * 30;
    if (!m || !(base > 0) || !(cap >= base)) {
      return { ok: false, error: `${bo.from}: expected BASE or BASE:CAP seconds, 0 < BASE <= CAP, got ${JSON.stringify(bo.value)}` };
    }
    backoff = { baseMs: Math.round(base * 1000), capMs: Math.round(cap * 1000) };
  }

  const auth = parseAuthFlags(values, env);
  if (!auth.ok) return auth;
  const policy = pick("policy", "FLEET_POLICY");

  let operatorKeys: string[] | undefined;
  const keys = pick("operator-keys", "FLEET_OPERATOR_KEYS");
  if (keys) {
    operatorKeys = keys.value.split(",").map((k) => k.trim());
    for (const [i, k] of operatorKeys.entries()) {
      const problem = k === "" ? "empty key in the list" : userPublicKeyProblem(k);
      if (problem) return { ok: false, error: `${keys.from}: key ${i + 1}: ${problem}` };
    }
  }

  const containerHost = env["CONTAINER_HOST"] === "" ? undefined : env["CONTAINER_HOST"];
  return {
    ok: true,
    config: {
      deviceId: device.value,
      natsServers,
      stateDir: stateDir.value,
      tickSecs,
      logLevel,
      containerHost,
      ...(hasAuth(auth.auth) ? { auth: auth.auth } : {}),
      ...(policy ? { policyFile: policy.value } : {}),
      ...(backoff ? { backoff } : {}),
      ...(operatorKeys ? { operatorKeys: [...new Set(operatorKeys)] } : {}),
    },
  };
}

const firstLine = (s: string) => s.split("\n")[0]!.trim();
