// NATS authentication and TLS for the agent and fleetctl: one set of flags and environment
// variables, parsed purely (`parseAuthFlags`), turned into nats.js connection options by
// `natsConnectOptions`, which reads the files. Secrets (passwords, seeds, creds) are never put in
// an error message, a log record or the parsed value's string form: errors name the flag or the
// variable and the file path only.
import { readFileSync } from "node:fs";
import {
  credsAuthenticator,
  nkeyAuthenticator,
  nkeys,
  usernamePasswordAuthenticator,
  type ConnectionOptions,
} from "@nats-io/transport-node";

/** What the operator asked for; paths, and a user name and password. */
export interface NatsAuth {
  /** A NATS credentials file (JWT + nkey seed), `--creds` / `FLEET_NATS_CREDS`. */
  credsFile?: string;
  /** A file holding an nkey user seed (`SU…`), `--nkey` / `FLEET_NATS_NKEY`. */
  nkeyFile?: string;
  /** `--user` / `FLEET_NATS_USER` with `--password` / `FLEET_NATS_PASSWORD`. */
  user?: string;
  password?: string;
  /** CA bundle the server's certificate must chain to (and TLS required), `--tls-ca` / `FLEET_NATS_TLS_CA`. */
  tlsCa?: string;
  /** Client certificate and key for mutual TLS, `--tls-cert` / `--tls-key`. */
  tlsCert?: string;
  tlsKey?: string;
}

/** Where and how to connect: servers from --nats / FLEET_NATS_URL, auth and TLS from their flags. */
export interface NatsTarget {
  servers: string[];
  auth: NatsAuth;
}

/** Options for node:util parseArgs; spread into a command's own options. */
export const AUTH_OPTIONS = {
  creds: { type: "string" },
  nkey: { type: "string" },
  user: { type: "string" },
  password: { type: "string" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
} as const;

export const AUTH_ENV = {
  creds: "FLEET_NATS_CREDS",
  nkey: "FLEET_NATS_NKEY",
  user: "FLEET_NATS_USER",
  password: "FLEET_NATS_PASSWORD",
  "tls-ca": "FLEET_NATS_TLS_CA",
  "tls-cert": "FLEET_NATS_TLS_CERT",
  "tls-key": "FLEET_NATS_TLS_KEY",
} as const satisfies Record<keyof typeof AUTH_OPTIONS, string>;

export const authFlagsHelp = `NATS authentication and TLS (at most one of --creds, --nkey, --user):
  --creds FILE       FLEET_NATS_CREDS     a NATS credentials file (JWT and nkey seed).
  --nkey FILE        FLEET_NATS_NKEY      a file holding this user's nkey seed (SU...), e.g. from
                                          \`fleetctl device add ID --seed-out FILE\`.
  --user NAME        FLEET_NATS_USER      user name; needs a password.
  --password PASS    FLEET_NATS_PASSWORD  password (prefer the variable: a flag shows in \`ps\`).
  --tls-ca FILE      FLEET_NATS_TLS_CA    CA certificate(s) the server's certificate must chain to;
                                          TLS is then required and the server's name is checked.
  --tls-cert FILE    FLEET_NATS_TLS_CERT  client certificate for mutual TLS (with --tls-key).
  --tls-key FILE     FLEET_NATS_TLS_KEY   the client certificate's private key.
  Secrets are never logged; files are read when connecting.`;

export type AuthResult = { ok: true; auth: NatsAuth } | { ok: false; error: string };

/**
 * The auth part of a command line: `values` are parseArgs values (flags win over `env`). Pure.
 * Errors are one line and never contain a secret.
 */
export function parseAuthFlags(values: Readonly<Record<string, unknown>>, env: Readonly<Record<string, string | undefined>>): AuthResult {
  const got: Partial<Record<keyof typeof AUTH_OPTIONS, { value: string; from: string }>> = {};
  for (const flag of Object.keys(AUTH_OPTIONS) as Array<keyof typeof AUTH_OPTIONS>) {
    const f = values[flag];
    if (typeof f === "string") {
      if (f === "") return { ok: false, error: `--${flag}: empty value` };
      got[flag] = { value: f, from: `--${flag}` };
      continue;
    }
    const e = env[AUTH_ENV[flag]];
    if (e !== undefined && e !== "") got[flag] = { value: e, from: AUTH_ENV[flag] };
  }
  const methods = [got.creds, got.nkey, got.user ?? got.password].filter((m) => m !== undefined);
  if (methods.length > 1) {
    return { ok: false, error: `choose one way to authenticate: ${methods.map((m) => m.from).join(", ")} given together` };
  }
  if (got.user && !got.password) return { ok: false, error: `${got.user.from} needs a password: --password or FLEET_NATS_PASSWORD` };
  if (got.password && !got.user) return { ok: false, error: `${got.password.from} needs a user: --user or FLEET_NATS_USER` };
  if (got["tls-cert"] && !got["tls-key"]) return { ok: false, error: `${got["tls-cert"].from} needs the certificate's key: --tls-key or FLEET_NATS_TLS_KEY` };
  if (got["tls-key"] && !got["tls-cert"]) return { ok: false, error: `${got["tls-key"].from} needs a certificate: --tls-cert or FLEET_NATS_TLS_CERT` };
  const auth: NatsAuth = {};
  if (got.creds) auth.credsFile = got.creds.value;
  if (got.nkey) auth.nkeyFile = got.nkey.value;
  if (got.user && got.password) {
    auth.user = got.user.value;
    auth.password = got.password.value;
  }
  if (got["tls-ca"]) auth.tlsCa = got["tls-ca"].value;
  if (got["tls-cert"]) auth.tlsCert = got["tls-cert"].value;
  if (got["tls-key"]) auth.tlsKey = got["tls-key"].value;
  return { ok: true, auth };
}

/** True when `auth` asks for anything (a user, a key, TLS). */
export const hasAuth = (auth: NatsAuth | undefined): auth is NatsAuth => auth !== undefined && Object.keys(auth).length > 0;

/** A copy safe to log: paths and the user name, never the password. */
export function describeAuth(auth: NatsAuth | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!auth) return out;
  if (auth.credsFile) out["creds"] = auth.credsFile;
  if (auth.nkeyFile) out["nkey"] = auth.nkeyFile;
  if (auth.user) out["user"] = auth.user;
  if (auth.tlsCa) out["tls_ca"] = auth.tlsCa;
  if (auth.tlsCert) out["tls_cert"] = auth.tlsCert;
  return out;
}

/** A problem with an auth or TLS file; the message names the file, never its content. */
export class AuthFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuthFileError";
  }
}

function readSecretFile(what: string, path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
    throw new AuthFileError(`${what} ${JSON.stringify(path)}: cannot read it (${code})`);
  }
}

/** The first `S…` seed in a seed file (a bare seed, or a creds-style file with a seed block). */
function seedOf(path: string, bytes: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(bytes);
  const m = /\bSU[A-Z2-7]{40,}\b/.exec(text);
  if (!m) throw new AuthFileError(`nkey seed file ${JSON.stringify(path)}: no nkey user seed (SU...) in it`);
  const seed = new TextEncoder().encode(m[0]);
  try {
    nkeys.fromSeed(seed);
  } catch {
    throw new AuthFileError(`nkey seed file ${JSON.stringify(path)}: the seed in it is not valid`);
  }
  return seed;
}

/**
 * nats.js connection options for `auth`: an authenticator and TLS settings. Reads and checks the
 * files now (throws AuthFileError, whose message names the file only); the creds and seed files are
 * read again at each (re)connection, so a rotated key is picked up.
 */
export function natsConnectOptions(auth: NatsAuth | undefined): Partial<ConnectionOptions> {
  const o: Partial<ConnectionOptions> = {};
  if (!auth) return o;
  if (auth.credsFile) {
    const path = auth.credsFile;
    const first = readSecretFile("creds file", path);
    if (!/-----BEGIN NATS USER JWT-----/.test(new TextDecoder().decode(first))) {
      throw new AuthFileError(`creds file ${JSON.stringify(path)}: not a NATS credentials file (no user JWT block)`);
    }
    o.authenticator = credsAuthenticator(() => readSecretFile("creds file", path));
  } else if (auth.nkeyFile) {
    const path = auth.nkeyFile;
    seedOf(path, readSecretFile("nkey seed file", path));
    o.authenticator = nkeyAuthenticator(() => seedOf(path, readSecretFile("nkey seed file", path)));
  } else if (auth.user !== undefined && auth.password !== undefined) {
    o.authenticator = usernamePasswordAuthenticator(auth.user, auth.password);
  }
  if (auth.tlsCa || auth.tlsCert) {
    const tls: NonNullable<ConnectionOptions["tls"]> = {};
    if (auth.tlsCa) {
      readSecretFile("TLS CA file", auth.tlsCa);
      tls.caFile = auth.tlsCa;
    }
    if (auth.tlsCert && auth.tlsKey) {
      readSecretFile("TLS certificate file", auth.tlsCert);
      readSecretFile("TLS key file", auth.tlsKey);
      tls.certFile = auth.tlsCert;
      tls.keyFile = auth.tlsKey;
    }
    o.tls = tls;
  }
  return o;
}
