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
