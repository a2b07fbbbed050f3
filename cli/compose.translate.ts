// A Compose file (docker-compose.yml) as a score: the keys that map onto one are translated, every
// other key is refused by name, so nothing in an operator's file is dropped without a word. Pure: the
// caller reads and parses the file; the score that comes out is decoded with the wire codec.
import { decode, isPlainObject } from "../contracts/decode.js";
import { serviceNameProblem } from "../contracts/names.js";
import { ReconcileScore } from "../contracts/score.codec.js";
import { STOP_SIGNALS, type StopSignal } from "../contracts/signals.js";
import { didYouMean } from "../contracts/suggest.js";

export type Translation = { ok: true; score: ReconcileScore; notes: string[] } | { ok: false; errors: string[] };

/** A Compose file has a top-level `services` map; a score has `type` and `data` (and services in a list). */
export function isComposeShape(u: unknown): boolean {
  return isPlainObject(u) && isPlainObject(u["services"]) && !("type" in u) && !("data" in u);
}

const NOT_SUPPORTED = "not supported by fleet-agent";

// Why some keys that look translatable are refused: said in the error, so the operator knows what to do.
const WHY: Record<string, string> = {
  build: "it runs images, it does not build them: build and push the image, then give `image`",
  container_name: "containers are named <deployment>.<service>",
  env_file: "write the variables under `environment`",
  networks: "services use Podman's default network",
  network_mode: "services use Podman's default network",
  profiles: "every service of the file is deployed",
  extends: "write the service out in full",
  name: "the deployment is named on the command line",
};

const refuse = (path: string, key: string) => `${path}: ${NOT_SUPPORTED}${WHY[key] ? ` (${WHY[key]})` : ""}`;

/** Translates a parsed Compose file; errors name Compose paths (`services.web.ports[1]`). */
export function translateCompose(doc: unknown): Translation {
  const errors: string[] = [];
  const notes: string[] = [];
  if (!isComposeShape(doc) || !isPlainObject(doc)) return { ok: false, errors: ["(root): expected a Compose file with a `services` map"] };
  const unescaped = unescapeDollars(doc, "", errors) as Record<string, unknown>;

  for (const key of Object.keys(unescaped)) {
    if (key === "services") continue;
    if (key === "version") notes.push("version: ignored (obsolete in the Compose specification, it changes nothing)");
    else if (key.startsWith("x-")) notes.push(`${key}: an extension field, not translated (Compose ignores it too)`);
    else errors.push(refuse(key, key));
  }

  const composeServices = unescaped["services"] as Record<string, unknown>;
  const names = Object.keys(composeServices);
  if (names.length === 0) errors.push("services: expected at least one service");
  const lifecycle = new LifecycleMerge(errors);
  const services: Record<string, unknown>[] = [];
  for (const name of names) {
    const path = `services.${name}`;
    const problem = serviceNameProblem(name);
    if (problem) errors.push(`${path}: invalid service name for fleet-agent: ${problem}`);
    const svc = composeServices[name];
    if (!isPlainObject(svc)) {
      errors.push(`${path}: expected a map of service keys, got ${kind(svc)}`);
      continue;
    }
    services.push(translateService(name, svc, path, names, lifecycle, errors, notes));
  }
  if (errors.length) return { ok: false, errors };

  const data: Record<string, unknown> = { services };
  const policy = lifecycle.result(names, notes);
  if (Object.keys(policy).length) data["lifecycle"] = policy;
  const r = decode(ReconcileScore, { type: "PodmanV0", data });
  if (!r.ok) return { ok: false, errors: r.errors.map((e) => inComposeTerms(e, names)) };
  return { ok: true, score: r.value, notes };
}

function translateService(
  name: string,
  svc: Record<string, unknown>,
  path: string,
  allNames: string[],
  lifecycle: LifecycleMerge,
  errors: string[],
  notes: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = { name };
  let entrypoint: string[] | null = null;
  let command: string[] | null = null;
  for (const [key, value] of Object.entries(svc)) {
    const at = `${path}.${key}`;
    switch (key) {
      case "image":
        if (typeof value === "string") out["image"] = value;
        else errors.push(`${at}: expected an image reference, got ${kind(value)}`);
        break;
      case "command":
        command = argv(value, at, errors);
        break;
      case "entrypoint":
        entrypoint = argv(value, at, errors);
        if (entrypoint?.length === 0) {
          errors.push(`${at}: an empty entrypoint (clearing the image's) is ${NOT_SUPPORTED}: a score keeps the image's ENTRYPOINT`);
          entrypoint = null;
        }
        break;
      case "environment": {
        const env = environment(value, at, errors);
        if (env && Object.keys(env).length) out["env"] = env;
        break;
      }
      case "ports": {
        const ports = list(value, at, errors).flatMap((p, i) => port(p, `${at}[${i}]`, errors));
        if (ports.length) out["ports"] = ports;
        break;
      }
      case "volumes": {
        const volumes = list(value, at, errors).flatMap((v, i) => volume(v, `${at}[${i}]`, errors));
        if (volumes.length) out["volumes"] = volumes;
        break;
      }
      case "healthcheck": {
        const health = healthcheck(value, at, errors);
        if (health) out["health"] = health;
        break;
      }
      case "stop_signal":
        lifecycle.add("stop_signal", stopSignal(value, at, errors), at);
        break;
      case "stop_grace_period":
        lifecycle.add("grace_period_secs", seconds(value, at, errors, 0), at);
        break;
      case "depends_on": {
        const deps = dependsOn(value, at, allNames, errors);
        if (deps.length) out["depends_on"] = deps;
        break;
      }
      case "restart":
        // The agent restarts a service that dies, with backoff, unless it is removed: `always` and
        // `unless-stopped` say the same; `no` and `on-failure` ask for what it does not do.
        if (value !== "always" && value !== "unless-stopped") errors.push(`${at}: ${JSON.stringify(value)} is ${NOT_SUPPORTED} (it restarts every service that stops: only "always" or "unless-stopped" say so)`);
        break;
      default:
        if (key.startsWith("x-")) notes.push(`${at}: an extension field, not translated (Compose ignores it too)`);
        else errors.push(refuse(at, key));
    }
  }
  if (!("image" in svc)) errors.push(`${path}.image: required (${WHY["build"]})`);
  if (entrypoint) {
    out["command"] = [...entrypoint, ...(command ?? [])];
    notes.push(`${path}.entrypoint: folded into the score's command, ahead of the command; a score keeps the image's own ENTRYPOINT, so this runs as written only for an image without one`);
  } else if (command) out["command"] = command;
  return out;
}

// ---- keys ------------------------------------------------------------------------------------

/** A command or entrypoint: a list, or a string split as a shell would (no shell runs it). */
function argv(value: unknown, at: string, errors: string[]): string[] | null {
  if (typeof value === "string") {
    const words = shellWords(value);
    if (words === null) errors.push(`${at}: unbalanced quotes in ${JSON.stringify(value.slice(0, 60))}`);
    return words;
  }
  if (Array.isArray(value)) {
    const out: string[] = [];
    value.forEach((v, i) => {
      if (typeof v === "string") out.push(v);
      else if (typeof v === "number" || typeof v === "boolean") out.push(String(v));
      else errors.push(`${at}[${i}]: expected a string, got ${kind(v)}`);
    });
    return out;
  }
  errors.push(`${at}: expected a string or a list, got ${kind(value)}`);
  return null;
}

function environment(value: unknown, at: string, errors: string[]): Record<string, string> | null {
  const env: Record<string, string> = {};
  const noValue = (k: string, where: string) =>
    errors.push(`${where}: ${k} has no value (Compose would take it from the shell that runs it; fleet-agent has no such shell: write the value)`);
  if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (v === null || v === undefined) noValue(k, `${at}.${k}`);
      else if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") env[k] = String(v);
      else errors.push(`${at}.${k}: expected a string, got ${kind(v)}`);
    }
    return env;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      if (typeof item !== "string") return void errors.push(`${at}[${i}]: expected "NAME=value", got ${kind(item)}`);
      const eq = item.indexOf("=");
      if (eq < 0) noValue(item, `${at}[${i}]`);
      else env[item.slice(0, eq)] = item.slice(eq + 1);
    });
    return env;
  }
  errors.push(`${at}: expected a map or a list of NAME=value, got ${kind(value)}`);
  return null;
}

const PORT_SHORT = /^(?:(?<hostIp>\[[0-9a-fA-F:.]+\]|\d+\.\d+\.\d+\.\d+):)?(?:(?<host>\d+(?:-\d+)?):)?(?<container>\d+(?:-\d+)?)(?:\/(?<proto>[a-z]+))?$/;

function port(value: unknown, at: string, errors: string[]): Record<string, unknown>[] {
  const containerOnly = `${at}: a container port alone is ${NOT_SUPPORTED} (Compose publishes it on a random host port; a score names the host port: write "HOST:CONTAINER")`;
  if (typeof value === "number") return fail(errors, containerOnly);
  if (typeof value === "string") {
    const m = PORT_SHORT.exec(value);
    if (!m?.groups) return fail(errors, `${at}: expected "HOST:CONTAINER[/PROTOCOL]", got ${JSON.stringify(value.slice(0, 60))}`);
    const { hostIp, host, container, proto } = m.groups;
    if (hostIp !== undefined) return fail(errors, `${at}: a host IP (${hostIp}) is ${NOT_SUPPORTED} (a port is published on every address of the device)`);
    if (host === undefined) return fail(errors, containerOnly);
    const hosts = range(host);
    const containers = range(container!);
    if (hosts.length === 0 || containers.length === 0) return fail(errors, `${at}: invalid port range in ${JSON.stringify(value)}`);
    if (hosts.length !== containers.length) return fail(errors, `${at}: the ranges ${host} and ${container} differ in length`);
    return hosts.map((h, i) => ({ host_port: h, container_port: containers[i]!, ...(proto ? { protocol: proto } : {}) }));
  }
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === "target") out["container_port"] = v;
      else if (k === "published") out["host_port"] = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
      else if (k === "protocol") out["protocol"] = v;
      else errors.push(refuse(`${at}.${k}`, k));
    }
    if (!("target" in value)) errors.push(`${at}.target: required`);
    if (!("published" in value)) errors.push(containerOnly);
    return [out];
  }
  errors.push(`${at}: expected "HOST:CONTAINER" or a map, got ${kind(value)}`);
  return [];
}

function range(s: string): number[] {
  const [a, b] = s.split("-").map(Number) as [number, number | undefined];
  if (b === undefined) return [a];
  return b < a || b - a > 1024 ? [] : Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

function volume(value: unknown, at: string, errors: string[]): Record<string, unknown>[] {
  const source = (src: string): string | null => {
    if (src.startsWith("/")) return src;
    if (src.startsWith(".") || src.startsWith("~")) errors.push(`${at}: a relative host path (${src}) is ${NOT_SUPPORTED} (the source is a path on the device: write it absolute)`);
    else errors.push(`${at}: the named volume ${JSON.stringify(src)} is ${NOT_SUPPORTED} (only bind mounts of absolute paths on the device)`);
    return null;
  };
  if (typeof value === "string") {
    const parts = value.split(":");
    if (parts.length === 1) return fail(errors, `${at}: an anonymous volume (${value}) is ${NOT_SUPPORTED} (only bind mounts of absolute paths on the device)`);
    if (parts.length > 3) return fail(errors, `${at}: expected "SOURCE:TARGET[:ro|rw]", got ${JSON.stringify(value.slice(0, 60))}`);
    const [src, target, opts] = parts as [string, string, string | undefined];
    let readOnly = false;
    for (const opt of opts ? opts.split(",") : []) {
      if (opt === "ro") readOnly = true;
      else if (opt !== "rw") errors.push(`${at}: the mount option ${JSON.stringify(opt)} is ${NOT_SUPPORTED} (only ro or rw)`);
    }
    const s = source(src);
    return s ? [{ source: s, target, ...(readOnly ? { read_only: true } : {}) }] : [];
  }
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === "type") {
        if (v !== "bind") errors.push(`${at}.type: ${JSON.stringify(v)} is ${NOT_SUPPORTED} (only bind mounts of absolute paths on the device)`);
      } else if (k === "source") {
        if (typeof v === "string") {
          const s = source(v);
          if (s) out["source"] = s;
        } else errors.push(`${at}.source: expected a path, got ${kind(v)}`);
      } else if (k === "target") out["target"] = v;
      else if (k === "read_only") out["read_only"] = v;
      else errors.push(refuse(`${at}.${k}`, k));
    }
    if (!("type" in value)) errors.push(`${at}.type: required (bind)`);
    return [out];
  }
  errors.push(`${at}: expected "SOURCE:TARGET" or a map, got ${kind(value)}`);
  return [];
}

function healthcheck(value: unknown, at: string, errors: string[]): Record<string, unknown> | null {
  if (!isPlainObject(value)) {
    errors.push(`${at}: expected a map, got ${kind(value)}`);
    return null;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const where = `${at}.${k}`;
    if (k === "test") {
      if (typeof v === "string") out["cmd"] = ["CMD-SHELL", v];
      else if (Array.isArray(v) && v.every((x) => typeof x === "string")) {
        if (v[0] === "NONE") errors.push(`${where}: NONE (turning off the image's check) is ${NOT_SUPPORTED}: leave healthcheck out instead`);
        else out["cmd"] = v;
      } else errors.push(`${where}: expected a string or a list of strings, got ${kind(v)}`);
    } else if (k === "interval") out["interval_secs"] = seconds(v, where, errors, 1);
    else if (k === "timeout") out["timeout_secs"] = seconds(v, where, errors, 1);
    else if (k === "start_period") out["start_period_secs"] = seconds(v, where, errors, 0);
    else if (k === "retries") out["retries"] = v;
    else if (k === "disable") {
      if (v !== false) errors.push(`${where}: ${NOT_SUPPORTED} (leave healthcheck out instead)`);
    } else errors.push(refuse(where, k));
  }
  if (!("test" in value) && value["disable"] !== true) errors.push(`${at}.test: required (the agent runs the score's own check, not the image's HEALTHCHECK)`);
  return out;
}

function stopSignal(value: unknown, at: string, errors: string[]): StopSignal | undefined {
  const byNumber = Object.entries(STOP_SIGNALS).find(([, n]) => n === value)?.[0];
  const name = typeof value === "number" ? byNumber : typeof value === "string" ? (value.startsWith("SIG") ? value : `SIG${value}`) : undefined;
  if (name !== undefined && name in STOP_SIGNALS) return name as StopSignal;
  errors.push(`${at}: expected one of ${Object.keys(STOP_SIGNALS).join(", ")}, got ${kind(value)}`);
  return undefined;
}

function dependsOn(value: unknown, at: string, names: string[], errors: string[]): string[] {
  const deps: string[] = [];
  const check = (dep: unknown, where: string) => {
    if (typeof dep !== "string") return void errors.push(`${where}: expected a service name, got ${kind(dep)}`);
    if (!names.includes(dep)) return void errors.push(`${where}: no service ${JSON.stringify(dep)} in this file${didYouMean(dep, names)}`);
    deps.push(dep);
  };
  if (Array.isArray(value)) value.forEach((d, i) => check(d, `${at}[${i}]`));
  else if (isPlainObject(value)) {
    for (const [dep, opts] of Object.entries(value)) {
      check(dep, `${at}.${dep}`);
      if (!isPlainObject(opts)) {
        if (opts !== null) errors.push(`${at}.${dep}: expected a map, got ${kind(opts)}`);
        continue;
      }
      for (const [k, v] of Object.entries(opts)) {
        if (k === "condition" && v === "service_started") continue;
        if (k === "required" && v === true) continue;
        if (k === "condition") errors.push(`${at}.${dep}.condition: ${JSON.stringify(v)} is ${NOT_SUPPORTED} (a service starts after what it depends on has started, not once it is healthy or done: only service_started)`);
        else errors.push(refuse(`${at}.${dep}.${k}`, k));
      }
    }
  } else errors.push(`${at}: expected a list or a map of service names, got ${kind(value)}`);
  return deps;
}

/** A score has one lifecycle for all its services; Compose has a stop signal and grace per service. */
class LifecycleMerge {
  private readonly values: Record<"stop_signal" | "grace_period_secs", { value: unknown; at: string } | undefined> = { stop_signal: undefined, grace_period_secs: undefined };
  private readonly setBy = new Map<string, Set<string>>();
  constructor(private readonly errors: string[]) {}

  add(field: "stop_signal" | "grace_period_secs", value: unknown, at: string) {
    if (value === undefined) return;
    const service = at.split(".")[1]!;
    const known = this.values[field];
    if (known && known.value !== value) {
      this.errors.push(`${at}: ${JSON.stringify(value)} differs from ${known.at} (${JSON.stringify(known.value)}): a score has one ${field === "stop_signal" ? "stop signal" : "stop grace period"} for all its services`);
      return;
    }
    this.values[field] = known ?? { value, at };
    if (!this.setBy.has(field)) this.setBy.set(field, new Set());
    this.setBy.get(field)!.add(service);
  }

  result(services: string[], notes: string[]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const field of ["stop_signal", "grace_period_secs"] as const) {
      const v = this.values[field];
      if (!v) continue;
      out[field] = v.value;
      const others = services.filter((s) => !this.setBy.get(field)!.has(s));
      if (others.length) notes.push(`lifecycle.${field} ${JSON.stringify(v.value)} (from ${v.at}) applies to every service of the score, also ${others.join(", ")}`);
    }
    return out;
  }
}

// ---- values ----------------------------------------------------------------------------------

/**
 * Compose interpolates `$VAR` and `${VAR}` from the shell that runs it; there is no such shell here,
 * so a reference is refused (naming where) rather than deployed as literal text. `$$` is a `$`.
 */
function unescapeDollars(u: unknown, path: string, errors: string[]): unknown {
  if (typeof u === "string") {
    if (/\$(?!\$)/.test(u.replace(/\$\$/g, ""))) errors.push(`${path || "(root)"}: variable interpolation ($NAME, \${NAME}) is ${NOT_SUPPORTED}: write the value (or $$ for a literal $)`);
    return u.replace(/\$\$/g, "$");
  }
  if (Array.isArray(u)) return u.map((v, i) => unescapeDollars(v, `${path}[${i}]`, errors));
  if (isPlainObject(u)) return Object.fromEntries(Object.entries(u).map(([k, v]) => [k, unescapeDollars(v, path ? `${path}.${k}` : k, errors)]));
  return u;
}

const DURATION = /^(?:\d+(?:\.\d+)?(?:h|ms|m|s|us|µs|ns))+$/;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };

/** A Compose duration (`1m30s`) as whole seconds, at least `min`. */
function seconds(value: unknown, at: string, errors: string[], min: number): number | undefined {
  if (typeof value !== "string" || !DURATION.test(value)) {
    errors.push(`${at}: expected a duration such as "10s" or "1m30s", got ${kind(value)}`);
    return undefined;
  }
  let ms = 0;
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  const secs = ms / 1000;
  if (!Number.isInteger(secs) || secs < min) {
    errors.push(`${at}: ${value} is not a whole number of seconds${min > 0 ? ` of at least ${min}` : ""} (a score counts in seconds)`);
    return undefined;
  }
  return secs;
}

/** POSIX-shell word splitting with quotes and backslashes, no expansion; null when a quote is open. */
export function shellWords(s: string): string[] | null {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return null;
      word += s.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === "\\" && j + 1 < s.length && '"\\$`'.includes(s[j + 1]!)) j++;
        word += s[j];
      }
      if (j >= s.length) return null;
      i = j;
      inWord = true;
    } else if (c === "\\" && i + 1 < s.length) {
      word += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** `data.services[1].image: …` → `services.db (score data.services[1].image): …`. */
function inComposeTerms(error: string, names: string[]): string {
  const m = /^data\.services\[(\d+)\]/.exec(error);
  const name = m ? names[Number(m[1])] : undefined;
  return name === undefined ? `score ${error}` : `services.${name} (score ${error.slice(0, error.indexOf(":"))}):${error.slice(error.indexOf(":") + 1)}`;
}

function kind(u: unknown): string {
  if (u === null || u === undefined) return "nothing";
  if (Array.isArray(u)) return "a list";
  if (typeof u === "object") return "a map";
  if (typeof u === "string") return JSON.stringify(u.length > 40 ? `${u.slice(0, 40)}…` : u);
  return `${typeof u} ${String(u)}`;
}

/** Records `message` and gives nothing to translate. */
function fail(errors: string[], message: string): Record<string, unknown>[] {
  errors.push(message);
  return [];
}

function list(value: unknown, at: string, errors: string[]): unknown[] {
  if (Array.isArray(value)) return value;
  errors.push(`${at}: expected a list, got ${kind(value)}`);
  return [];
}
