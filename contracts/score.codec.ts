// The desired state of one deployment, as operators write it to `desired-state`.
import * as t from "io-ts";
import { isPlainObject, refine, struct } from "./decode.js";
import { ServiceName } from "./names.js";
import { STOP_SIGNALS } from "./signals.js";

/** Limits that keep one bad value from exhausting a small device; each is far above real use. */
export const LIMITS = {
  services: 64,
  imageRef: 255,
  args: 256,
  argLength: 4096,
  envEntries: 256,
  envKey: 256,
  envValue: 32 * 1024,
  ports: 64,
  volumes: 64,
  path: 4096,
  gracePeriodSecs: 3600,
  healthSecs: 86_400,
  healthRetries: 100,
} as const;

const int = (name: string, min: number, max: number) =>
  refine(t.number, name, (n) =>
    Number.isInteger(n) && n >= min && n <= max ? null : `expected an integer from ${min} to ${max}, got ${n}`,
  );

const boundedString = (name: string, max: number, nonEmpty = false) =>
  refine(t.string, name, (s) =>
    nonEmpty && s.length === 0 ? "must not be empty" : s.length > max ? `must be at most ${max} characters, got ${s.length}` : null,
  );

const boundedArray = <C extends t.Mixed>(item: C, name: string, min: number, max: number) =>
  refine(t.array(item), name, (a) =>
    a.length < min ? `expected at least ${min} item${min === 1 ? "" : "s"}, got ${a.length}` : a.length > max ? `expected at most ${max} items, got ${a.length}` : null,
  );

// A container image reference: [host[:port]/]path[:tag][@sha256:digest], as the OCI distribution
// spec shapes it. Refused here, not by a pull that fails later. As in Docker's and Podman's parser,
// the first component is a registry host only if it is `localhost` or has a `.` or a `:port`;
// otherwise it is part of the path, which is lower case (`MyOrg/app` is not a valid reference).
const HOST_PART = "[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
const REGISTRY = `(?:localhost(?::[0-9]+)?|${HOST_PART}(?:\\.${HOST_PART})+(?::[0-9]+)?|${HOST_PART}:[0-9]+)`;
const PATH_PART = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const IMAGE_REF = new RegExp(
  `^(?:${REGISTRY}/)?${PATH_PART}(?:/${PATH_PART})*(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`,
);

export const ImageRef = refine(t.string, "ImageRef", (s) =>
  s.length === 0
    ? "must not be empty"
    : s.length > LIMITS.imageRef
      ? `must be at most ${LIMITS.imageRef} characters, got ${s.length}`
      : IMAGE_REF.test(s)
        ? null
        : `not a valid image reference: ${JSON.stringify(s.slice(0, 60))}`,
);

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Env values are secrets: errors about them give types and sizes, never contents.
const typeName = (u: unknown) => (u === null ? "null" : Array.isArray(u) ? "array" : typeof u);
const SecretString = new t.Type<string, string, unknown>(
  "string",
  (u): u is string => typeof u === "string",
  (u, ctx) => (typeof u === "string" ? t.success(u) : t.failure(u, ctx, `expected string, got ${typeName(u)}`)),
  t.identity,
);
const StringRecord = t.record(t.string, SecretString);
const EnvMap = new t.Type<Record<string, string>, Record<string, string>, unknown>(
  "object of strings",
  StringRecord.is,
  (u, ctx) => (isPlainObject(u) ? StringRecord.validate(u, ctx) : t.failure(u, ctx, `expected an object of strings, got ${typeName(u)}`)),
  t.identity,
);
const Env = refine(EnvMap, "Env", (env) => {
  const keys = Object.keys(env);
  if (keys.length > LIMITS.envEntries) return `expected at most ${LIMITS.envEntries} variables, got ${keys.length}`;
  for (const k of keys) {
    if (k.length > LIMITS.envKey || !ENV_KEY.test(k)) return `invalid variable name ${JSON.stringify(k.slice(0, 40))}`;
    const v = env[k]!;
    if (v.length > LIMITS.envValue) return `value of ${k} must be at most ${LIMITS.envValue} characters, got ${v.length}`;
  }
  return null;
});

const AbsolutePath = refine(t.string, "AbsolutePath", (s) =>
  !s.startsWith("/") ? `expected an absolute path, got ${JSON.stringify(s.slice(0, 60))}` : s.length > LIMITS.path ? `must be at most ${LIMITS.path} characters` : s.includes("\0") ? "must not contain NUL" : null,
);

export const Port = struct("Port", {
  host_port: int("HostPort", 1, 65535),
  container_port: int("ContainerPort", 1, 65535),
}, {
  protocol: t.keyof({ tcp: null, udp: null, sctp: null }),
});

export const Volume = struct("Volume", { source: AbsolutePath, target: AbsolutePath }, { read_only: t.boolean });

export const Health = struct("Health", {
  cmd: boundedArray(boundedString("HealthArg", LIMITS.argLength), "HealthCmd", 1, LIMITS.args),
}, {
  interval_secs: int("IntervalSecs", 1, LIMITS.healthSecs),
  timeout_secs: int("TimeoutSecs", 1, LIMITS.healthSecs),
  retries: int("Retries", 0, LIMITS.healthRetries),
  start_period_secs: int("StartPeriodSecs", 0, LIMITS.healthSecs),
});

export const PodmanService = struct("PodmanService", { name: ServiceName, image: ImageRef }, {
  command: boundedArray(boundedString("Arg", LIMITS.argLength), "Command", 1, LIMITS.args),
  env: Env,
  ports: boundedArray(Port, "Ports", 0, LIMITS.ports),
  volumes: boundedArray(Volume, "Volumes", 0, LIMITS.volumes),
  health: Health,
});

export const LifecyclePolicy = struct("LifecyclePolicy", {}, {
  stop_signal: t.keyof(STOP_SIGNALS, "StopSignal"),
  grace_period_secs: int("GracePeriodSecs", 0, LIMITS.gracePeriodSecs),
});

const Services = new t.Type<t.TypeOf<typeof PodmanService>[], unknown[], unknown>(
  "Services",
  (u): u is t.TypeOf<typeof PodmanService>[] => Array.isArray(u) && u.every(PodmanService.is),
  (u, ctx) => {
    const base = boundedArray(PodmanService, "Services", 1, LIMITS.services).validate(u, ctx);
    if (base._tag === "Left") return base;
    const seen = new Set<string>();
    for (const [i, s] of base.right.entries()) {
      if (seen.has(s.name)) {
        return t.failure(s.name, [...ctx, { key: String(i), type: PodmanService, actual: s }, { key: "name", type: ServiceName, actual: s.name }], `duplicate service name ${JSON.stringify(s.name)}`);
      }
      seen.add(s.name);
    }
    return base;
  },
  (a) => a.map(PodmanService.encode),
);

export const PodmanV0Score = struct("PodmanV0Score", { services: Services }, { lifecycle: LifecyclePolicy });

export const ReconcileScore = struct("ReconcileScore", { type: t.literal("PodmanV0"), data: PodmanV0Score });

export type Port = t.TypeOf<typeof Port>;
export type Volume = t.TypeOf<typeof Volume>;
export type Health = t.TypeOf<typeof Health>;
export type PodmanService = t.TypeOf<typeof PodmanService>;
export type LifecyclePolicy = t.TypeOf<typeof LifecyclePolicy>;
export type PodmanV0Score = t.TypeOf<typeof PodmanV0Score>;
export type ReconcileScore = t.TypeOf<typeof ReconcileScore>;

/** A lifecycle with its defaults filled in: what the runtime actually does. */
export interface Lifecycle {
  stop_signal: keyof typeof STOP_SIGNALS;
  grace_period_secs: number;
}
export const DEFAULT_LIFECYCLE: Lifecycle = { stop_signal: "SIGTERM", grace_period_secs: 30 };

export const resolveLifecycle = (l: LifecyclePolicy | undefined): Lifecycle => ({
  stop_signal: l?.stop_signal ?? DEFAULT_LIFECYCLE.stop_signal,
  grace_period_secs: l?.grace_period_secs ?? DEFAULT_LIFECYCLE.grace_period_secs,
});
