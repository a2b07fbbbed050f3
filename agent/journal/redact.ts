// Env values are secrets: nothing the agent journals, publishes or logs may carry them.
export const REDACTED = "<redacted>";

/**
 * A deep copy of `value` in which every value of every `env` map (an `env` key holding a plain
 * object, as in `score.data.services[*].env`, wherever a score sits in an event) is `"<redacted>"`.
 * Keys stay (they are names, useful when inspecting a deployment); the input is not changed.
 */
export function redactEvent<T>(value: T): T {
  return walk(value) as T;
}

function walk(u: unknown): unknown {
  if (Array.isArray(u)) return u.map(walk);
  if (!isPlain(u)) return u;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(u)) {
    out[k] = k === "env" && isPlain(v) ? Object.fromEntries(Object.keys(v).map((name) => [name, REDACTED])) : walk(v);
  }
  return out;
}

function isPlain(u: unknown): u is Record<string, unknown> {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false;
  const proto = Object.getPrototypeOf(u);
  return proto === Object.prototype || proto === null;
}

/**
 * An env value shorter than this is hidden in log lines only where a line is exactly the value: a
 * value of one to three characters ("1", "on", "dev") would otherwise turn every such run of text in
 * a service's output into `<redacted>`, and is no secret anyone could keep (docs/design.md, device
 * commands). Values of this length or more are hidden wherever they occur.
 */
export const MIN_REDACTED_CHARS = 4;

/** The env values to hide in a deployment's log lines. */
export interface LogSecrets {
  /** Hidden wherever they occur: values (and each line of a multi-line value) of MIN_REDACTED_CHARS or more. */
  anywhere: string[];
  /** Hidden only as a whole line: the shorter values. */
  whole: Set<string>;
}

/** The secrets of the given env maps (values already `<redacted>` are not secrets of their own). */
export function logSecrets(envs: Iterable<Readonly<Record<string, string>> | undefined>): LogSecrets {
  const anywhere = new Set<string>();
  const whole = new Set<string>();
  for (const env of envs) {
    for (const value of Object.values(env ?? {})) {
      if (value === "" || value === REDACTED) continue;
      // A log line never holds a newline: each line of a multi-line value (a key file) can be printed alone.
      for (const part of [value, ...value.split(/\r?\n/)]) {
        if (part === "") continue;
        if (part.length >= MIN_REDACTED_CHARS) anywhere.add(part);
        else whole.add(part);
      }
    }
  }
  return { anywhere: [...anywhere].sort((a, b) => b.length - a.length), whole };
}

/**
 * `text` with every secret replaced by `<redacted>`. Occurrences that overlap or touch (two values
 * printed together) become one `<redacted>`, so no part of either shows.
 */
export function redactText(text: string, secrets: LogSecrets): string {
  if (secrets.whole.has(text)) return REDACTED;
  const spans: Array<[number, number]> = [];
  for (const s of secrets.anywhere) {
    for (let i = text.indexOf(s); i !== -1; i = text.indexOf(s, i + 1)) spans.push([i, i + s.length]);
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const merged: Array<[number, number]> = [];
  for (const [from, to] of spans) {
    const last = merged[merged.length - 1];
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  let out = "";
  let at = 0;
  for (const [from, to] of merged) {
    out += text.slice(at, from) + REDACTED;
    at = to;
  }
  return out + text.slice(at);
}

/**
 * `text`, which may have been cut short, without a trailing start of a secret: a line cut inside a
 * value would otherwise show the value's first characters.
 */
export function withoutSecretStart(text: string, secrets: LogSecrets): string {
  let keep = text.length;
  for (const s of secrets.anywhere) {
    for (let n = Math.min(s.length - 1, text.length); n > 0; n--) {
      if (text.endsWith(s.slice(0, n))) {
        keep = Math.min(keep, text.length - n);
        break;
      }
    }
  }
  return text.slice(0, keep);
}
