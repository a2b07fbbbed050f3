// The desired state of one deployment, as operators write it to `desired-state`.
import * as t from "io-ts";
import { withShape } from "./codec.shape.js";
import { isPlainObject, refine, struct } from "./decode.js";
import { ServiceName } from "./names.js";
import { STOP_SIGNALS } from "./signals.js";
import { didYouMean } from "./suggest.js";

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
  minReadySecs: 3600,
} as const;

const int = (name: string, min: number, max: number) =>
  refine(
    t.number,
    name,
    (n) => (Number.isInteger(n) && n >= min && n <= max ? null : `expected an integer from ${min} to ${max}, got ${n}`),
    { integer: true, minimum: min, maximum: max },
  );

const boundedString = (name: string, max: number, nonEmpty = false) =>
  refine(
    t.string,
    name,
    (s) => (nonEmpty && s.length === 0 ? "must not be empty" : s.length > max ? `must be at most ${max} characters, got ${s.length}` : null),
    { ...(nonEmpty ? { minLength: 1 } : {}), maxLength: max },
  );

const boundedArray = <C extends t.Mixed>(item: C, name: string, min: number, max: number) =>
  refine(
    t.array(item),
    name,
    (a) => (a.length < min ? `expected at least ${min} item${min === 1 ? "" : "s"}, got ${a.length}` : a.length > max ? `expected at most ${max} items, got ${a.length}` : null),
    { minItems: min, maxItems: max },
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

export const ImageRef = refine(
  t.string,
  "ImageRef",
  (s) =>
    s.length === 0
      ? "must not be empty"
      : s.length > LIMITS.imageRef
        ? `must be at most ${LIMITS.imageRef} characters, got ${s.length}`
        : IMAGE_REF.test(s)
          ? null
          : `not a valid image reference: ${JSON.stringify(s.slice(0, 60))}`,
  { minLength: 1, maxLength: LIMITS.imageRef, pattern: IMAGE_REF.source },
);

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Env values are secrets: errors about them give types and sizes, never contents.
const typeName = (u: unknown) => (u === null ? "null" : Array.isArray(u) ? "array" : typeof u);
const SecretString = withShape(
  new t.Type<string, string, unknown>(
    "string",
    (u): u is string => typeof u === "string",
    (u, ctx) => (typeof u === "string" ? t.success(u) : t.failure(u, ctx, `expected string, got ${typeName(u)}`)),
    t.identity,
  ),
  { kind: "string" },
);
const StringRecord = t.record(t.string, SecretString);
// What Env's checks below accept, as a shape: the decoder keeps its own messages (never a value).
const EnvKeyShape = refine(t.string, "EnvKey", () => null, { maxLength: LIMITS.envKey, pattern: ENV_KEY.source });
const EnvValueShape = refine(SecretString, "EnvValue", () => null, { maxLength: LIMITS.envValue });
const EnvMap = withShape(
  new t.Type<Record<string, string>, Record<string, string>, unknown>(
    "object of strings",
    StringRecord.is,
    (u, ctx) => (isPlainObject(u) ? StringRecord.validate(u, ctx) : t.failure(u, ctx, `expected an object of strings, got ${typeName(u)}`)),
    t.identity,
  ),
  { kind: "map", key: EnvKeyShape, value: EnvValueShape },
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
}, { maxProperties: LIMITS.envEntries });

const AbsolutePath = refine(
  t.string,
  "AbsolutePath",
  (s) =>
    !s.startsWith("/") ? `expected an absolute path, got ${JSON.stringify(s.slice(0, 60))}` : s.length > LIMITS.path ? `must be at most ${LIMITS.path} characters` : s.includes("\0") ? "must not contain NUL" : null,
  { maxLength: LIMITS.path, pattern: "^/[^\\u0000]*$" },
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

// Which services must run first; whether the names exist and form no cycle is the Services check.
const DependsOn = refine(
  boundedArray(ServiceName, "DependsOn", 0, LIMITS.services),
  "DependsOn",
  (names) => {
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    return twice === undefined ? null : `lists ${JSON.stringify(twice)} twice`;
  },
  { uniqueItems: true, rules: ["each name is another service of this score", "no cycles"] },
);

export const PodmanService = struct("PodmanService", { name: ServiceName, image: ImageRef }, {
  command: boundedArray(boundedString("Arg", LIMITS.argLength), "Command", 1, LIMITS.args),
  env: Env,
  ports: boundedArray(Port, "Ports", 0, LIMITS.ports),
  volumes: boundedArray(Volume, "Volumes", 0, LIMITS.volumes),
  health: Health,
  depends_on: DependsOn,
});

export const LifecyclePolicy = struct("LifecyclePolicy", {}, {
  stop_signal: t.keyof(STOP_SIGNALS, "StopSignal"),
  grace_period_secs: int("GracePeriodSecs", 0, LIMITS.gracePeriodSecs),
  min_ready_secs: int("MinReadySecs", 0, LIMITS.minReadySecs),
});

type Service = t.TypeOf<typeof PodmanService>;
const ServiceList = boundedArray(PodmanService, "Services", 1, LIMITS.services);

/** Unique names, then every `depends_on` naming another service of the score, with no cycle. */
function servicesProblems(services: Service[], ctx: t.Context): t.Errors {
  const at = (i: number, ...rest: Array<{ key: string; actual: unknown }>): t.Context => [
    ...ctx,
    { key: String(i), type: PodmanService, actual: services[i] },
    ...rest.map((r) => ({ key: r.key, type: t.unknown, actual: r.actual })),
  ];
  const errors: t.Errors = [];
  const index = new Map<string, number>();
  for (const [i, s] of services.entries()) {
    if (index.has(s.name)) {
      errors.push({ value: s.name, context: at(i, { key: "name", actual: s.name }), message: `duplicate service name ${JSON.stringify(s.name)}` });
      return errors;
    }
    index.set(s.name, i);
  }
  for (const [i, s] of services.entries()) {
    for (const [j, dep] of (s.depends_on ?? []).entries()) {
      const ctxOf = at(i, { key: "depends_on", actual: s.depends_on }, { key: String(j), actual: dep });
      if (dep === s.name) errors.push({ value: dep, context: ctxOf, message: `${JSON.stringify(dep)} cannot depend on itself` });
      else if (!index.has(dep)) errors.push({ value: dep, context: ctxOf, message: `no service named ${JSON.stringify(dep)} in this score${didYouMean(dep, index.keys())}` });
    }
  }
  if (errors.length) return errors;
  // Depth first; a dependency met again while still on the path closes a cycle.
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (name: string): string[] | null => {
    state.set(name, "open");
    path.push(name);
    for (const dep of services[index.get(name)!]!.depends_on ?? []) {
      if (state.get(dep) === "open") return [...path.slice(path.indexOf(dep)), dep];
      if (!state.has(dep)) {
        const cycle = visit(dep);
        if (cycle) return cycle;
      }
    }
    path.pop();
    state.set(name, "done");
    return null;
  };
  for (const s of services) {
    if (state.has(s.name)) continue;
    const cycle = visit(s.name);
    if (cycle) {
      const i = index.get(cycle[0]!)!;
      errors.push({ value: services[i]!.depends_on, context: at(i, { key: "depends_on", actual: services[i]!.depends_on }), message: `dependency cycle ${cycle.join(" → ")}` });
      break;
    }
  }
  return errors;
}

const Services = withShape(
  new t.Type<Service[], unknown[], unknown>(
    "Services",
    (u): u is Service[] => ServiceList.is(u) && servicesProblems(u, []).length === 0,
    (u, ctx) => {
      const base = ServiceList.validate(u, ctx);
      if (base._tag === "Left") return base;
      const problems = servicesProblems(base.right, ctx);
      return problems.length ? t.failures(problems) : base;
    },
    (a) => a.map(PodmanService.encode),
  ),
  { kind: "refined", base: t.array(PodmanService), constraint: { minItems: 1, maxItems: LIMITS.services, rules: ["service names are unique"] } },
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

/**
 * A lifecycle with its defaults filled in: what the runtime actually does. `min_ready_secs` is not
 * part of it: it decides when a start counts, not how a container is made, so it never makes the
 * planner replace a service (docs/design.md, "Service health").
 */
export interface Lifecycle {
  stop_signal: keyof typeof STOP_SIGNALS;
  grace_period_secs: number;
}
export const DEFAULT_LIFECYCLE: Lifecycle = { stop_signal: "SIGTERM", grace_period_secs: 30 };
/** How long a started service without a health check must keep running before its start counts. */
export const DEFAULT_MIN_READY_SECS = 1;
/** A health check's timings where the score leaves them out (Podman's own defaults). */
export const HEALTH_DEFAULTS = { interval_secs: 30, timeout_secs: 30, retries: 3, start_period_secs: 0 } as const;

export const resolveLifecycle = (l: LifecyclePolicy | undefined): Lifecycle => ({
  stop_signal: l?.stop_signal ?? DEFAULT_LIFECYCLE.stop_signal,
  grace_period_secs: l?.grace_period_secs ?? DEFAULT_LIFECYCLE.grace_period_secs,
});
