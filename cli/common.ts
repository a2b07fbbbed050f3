// What every fleetctl command shares: its I/O, exit codes, option parsing and errors.
import { AUTH_OPTIONS, authFlagsHelp, parseAuthFlags, type NatsTarget } from "../fleet/auth.js";
import { deviceOrDeploymentNameProblem, serviceNameProblem } from "../contracts/names.js";
import { UsageError } from "../fleet/errors.js";
import { parseArgs, type ParseArgsConfig } from "node:util";

/** Exit codes scripts can rely on. */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** The operation failed or was refused (NATS unreachable, concurrent change, missing key). */
  FAILED: 1,
  /** Bad usage or an invalid score file: nothing was written. */
  USAGE: 2,
  /** A rollout halted: a device failed or a wave timed out. */
  HALTED: 3,
} as const;

export const DEFAULT_NATS = "nats://127.0.0.1:4222";

/** Where a command writes, what it reads from the environment, and how it is told to stop. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** stderr is a terminal: progress redraws in place. */
  errIsTty?: boolean;
  /** stdout is a terminal: tables fit its width and may be coloured (see outputStyle). */
  outIsTty?: boolean;
  /** The terminal's width, when stdout is one. */
  columns?: number;
  /** stdin is a terminal: a destructive command may ask for confirmation. */
  stdinIsTty?: boolean;
  /** Asks a yes/no question on the terminal (device rm); the bin reads stdin, tests answer. */
  confirm?: (question: string) => Promise<boolean>;
  /** Ends long-running commands (`status --watch`, `serve`, a rollout's wait). */
  signal?: AbortSignal;
  /** Test seams; never set by the bin. */
  hooks?: CliHooks;
}

export interface CliHooks {
  /** deploy: runs after the current desired state was read, before the write. */
  beforeWrite?: (key: string) => Promise<void>;
  /** serve: called with the running server's URL once it listens. */
  onListening?: (url: string) => void;
}


export const COMMON_OPTIONS = {
  nats: { type: "string" },
  help: { type: "boolean", short: "h" },
  ...AUTH_OPTIONS,
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

export const JSON_OPTION = { json: { type: "boolean" } } as const satisfies NonNullable<ParseArgsConfig["options"]>;

export const COMMON_HELP = `Common options:
  --nats URL     NATS server(s), comma separated (env FLEET_NATS_URL, default ${DEFAULT_NATS})
  -h, --help     this text
${authFlagsHelp}`;

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with usage errors as UsageError (exit 2). */
export function parse<O extends Options>(argv: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split("\n")[0]} (see --help)`);
  }
}


export function natsTarget(values: Readonly<Record<string, unknown>>, env: CliIo["env"]): NatsTarget {
  const flag = values["nats"];
  const v = typeof flag === "string" && flag !== "" ? flag : env["FLEET_NATS_URL"] || DEFAULT_NATS;
  const auth = parseAuthFlags(values, env);
  if (!auth.ok) throw new UsageError(auth.error);
  return { servers: v.split(",").map((s) => s.trim()).filter((s) => s !== ""), auth: auth.auth };
}

/** `<device> <deployment>` positionals, both valid names (else a usage error naming which). */
export function deviceAndDeployment(ps: string[]): [string, string] {
  const [device, deployment] = positionals(ps, ["device", "deployment"]) as [string, string];
  for (const [what, name] of [["device", device], ["deployment", deployment]] as const) {
    const p = deviceOrDeploymentNameProblem(name);
    if (p) throw new UsageError(`invalid ${what} ${JSON.stringify(name.slice(0, 60))}: ${p}`);
  }
  return [device, deployment];
}

/** A `<device>` positional, a valid device id (else a usage error). */
export function deviceArg(name: string): string {
  const p = deviceOrDeploymentNameProblem(name);
  if (p) throw new UsageError(`invalid device ${JSON.stringify(name.slice(0, 60))}: ${p}`);
  return name;
}

/** `<device> <deployment> <service>` positionals, each a valid name (else a usage error naming which). */
export function deviceDeploymentService(ps: string[]): [string, string, string] {
  const [, , service] = positionals(ps, ["device", "deployment", "service"]) as [string, string, string];
  const [device, deployment] = deviceAndDeployment(ps.slice(0, 2));
  const p = serviceNameProblem(service);
  if (p) throw new UsageError(`invalid service ${JSON.stringify(service.slice(0, 60))}: ${p}`);
  return [device, deployment, service];
}

export function positionals(ps: string[], names: string[], min = names.length): string[] {
  if (ps.length < min) throw new UsageError(`missing ${names.slice(ps.length).map((n) => `<${n}>`).join(" ")} (see --help)`);
  if (ps.length > names.length) throw new UsageError(`unexpected argument ${JSON.stringify(ps[names.length])} (see --help)`);
  return ps;
}

export function positiveNumber(flag: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag}: expected a positive number, got ${JSON.stringify(v)}`);
  return n;
}

export function nonNegativeNumber(flag: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n) || n < 0) throw new UsageError(`--${flag}: expected a number of seconds, 0 or more, got ${JSON.stringify(v)}`);
  return n;
}

// ---- formatting ------------------------------------------------------------------------------

/** A plain text table: columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** 950 ms → "950ms", 61 s → "1m1s", 3700 s → "1h1m". */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

export const shortId = (id: string) => id.slice(0, 12);

export { sleep } from "../fleet/sleep.js";
export { OperationError, UsageError } from "../fleet/errors.js";
export type { NatsTarget } from "../fleet/auth.js";
