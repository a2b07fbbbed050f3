// One exact-object codec and one error format for every value that crosses a wire.
// io-ts's own `t.exact` strips unknown keys; a misspelt `grace_period_sec` must be an error instead.
import * as t from "io-ts";
import { isLeft } from "fp-ts/lib/Either.js";
import { withShape, type Constraint } from "./codec.shape.js";
import { didYouMean } from "./suggest.js";

/** A decoded value or the list of `path: problem` lines that explain why not. */
export type Decoded<A> = { ok: true; value: A } | { ok: false; errors: string[] };

export class DecodeError extends Error {
  constructor(readonly what: string, readonly errors: string[]) {
    super(`invalid ${what}: ${errors.join("; ")}`);
    this.name = "DecodeError";
  }
}

const UNKNOWN_FIELD = "unknown field";

/**
 * An object codec that names every key it accepts: `required` must be present, `optional` may be
 * absent (or null is refused: absent means absent). Any other key is reported as an unknown field,
 * with the nearest accepted key when one is close (`grace_period_sec: unknown field (did you mean
 * grace_period_secs?)`).
 */
export function struct<R extends t.Props, O extends t.Props = {}>(
  name: string,
  required: R,
  optional: O = {} as O,
): t.Type<t.TypeOfProps<R> & t.TypeOfPartialProps<O>, t.OutputOfProps<R> & t.OutputOfPartialProps<O>, unknown> {
  type A = t.TypeOfProps<R> & t.TypeOfPartialProps<O>;
  type Out = t.OutputOfProps<R> & t.OutputOfPartialProps<O>;
  const known = new Set([...Object.keys(required), ...Object.keys(optional)]);
  const codec = new t.Type<A, Out, unknown>(
    name,
    (u): u is A => {
      if (!isPlainObject(u)) return false;
      for (const k of Object.keys(u)) if (!known.has(k)) return false;
      for (const [k, c] of Object.entries(required)) if (!c.is(u[k])) return false;
      for (const [k, c] of Object.entries(optional)) if (k in u && !c.is(u[k])) return false;
      return true;
    },
    (u, ctx) => {
      if (!isPlainObject(u)) return t.failure(u, ctx);
      const errors: t.Errors = [];
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(u)) {
        if (!known.has(k)) errors.push({ value: u[k], context: [...ctx, { key: k, type: t.never, actual: u[k] }], message: `${UNKNOWN_FIELD}${didYouMean(k, known)}` });
      }
      const check = (k: string, c: t.Mixed) => {
        const r = c.validate(u[k], [...ctx, { key: k, type: c, actual: u[k] }]);
        if (isLeft(r)) errors.push(...r.left);
        else out[k] = r.right;
      };
      for (const [k, c] of Object.entries(required)) check(k, c);
      for (const [k, c] of Object.entries(optional)) if (k in u) check(k, c);
      return errors.length ? t.failures(errors) : t.success(out as A);
    },
    (a) => {
      const out: Record<string, unknown> = {};
      const src = a as Record<string, unknown>;
      for (const [k, c] of [...Object.entries(required), ...Object.entries(optional)]) {
        if (src[k] !== undefined) out[k] = c.encode(src[k]);
      }
      return out as Out;
    },
  );
  return withShape(codec, { kind: "object", required, optional });
}

/**
 * A refinement whose failure message says what was wanted, in words. `constraint` says the same
 * as data, for the score's reference and JSON Schema (codec.shape.ts); `problem` stays the judge.
 */
export function refine<C extends t.Mixed>(codec: C, name: string, problem: (a: t.TypeOf<C>) => string | null, constraint: Constraint = {}) {
  const refined = new t.Type<t.TypeOf<C>, t.OutputOf<C>, unknown>(
    name,
    (u): u is t.TypeOf<C> => codec.is(u) && problem(u) === null,
    (u, ctx) => {
      const r = codec.validate(u, ctx);
      // A wrong base type reads "expected string", not the refinement's name.
      if (isLeft(r)) return t.failures(r.left.map((e) => (e.message || e.context.length !== ctx.length ? e : { ...e, message: `expected ${codec.name}, got ${describe(e.value)}` })));
      const why = problem(r.right);
      return why === null ? r : t.failure(u, ctx, why);
    },
    codec.encode,
  );
  return withShape(refined, { kind: "refined", base: codec, constraint });
}

export function isPlainObject(u: unknown): u is Record<string, unknown> {
  return typeof u === "object" && u !== null && !Array.isArray(u);
}

/** Decodes `u` with `codec`, giving errors as `a.b[1].c: expected X, got Y` lines. */
export function decode<A, O>(codec: t.Type<A, O, unknown>, u: unknown): Decoded<A> {
  const r = codec.decode(u);
  return isLeft(r) ? { ok: false, errors: dedupe(r.left.map(formatError)) } : { ok: true, value: r.right };
}

/** Like `decode`, for callers that would rather throw a DecodeError. */
export function decodeOrThrow<A, O>(codec: t.Type<A, O, unknown>, u: unknown, what = codec.name): A {
  const r = decode(codec, u);
  if (!r.ok) throw new DecodeError(what, r.errors);
  return r.value;
}

/** Parses JSON text, then decodes it: one path for every value read off a wire. */
export function decodeJson<A, O>(codec: t.Type<A, O, unknown>, text: string): Decoded<A> {
  let u: unknown;
  try {
    u = JSON.parse(text);
  } catch (e) {
    return { ok: false, errors: [`(root): malformed JSON: ${(e as Error).message}`] };
  }
  return decode(codec, u);
}

function formatError(e: t.ValidationError): string {
  const path = pathOf(e.context);
  const last = e.context[e.context.length - 1];
  const problem = e.message ?? `expected ${last?.type.name ?? "value"}, got ${describe(e.value)}`;
  return `${path || "(root)"}: ${problem}`;
}

function pathOf(ctx: t.Context): string {
  let path = "";
  for (let i = 1; i < ctx.length; i++) {
    const entry = ctx[i]!;
    const parent = ctx[i - 1]!;
    // Unions and intersections add a context entry per member; it is not part of the value's path.
    const tag = (parent.type as t.Any & { _tag?: string })._tag;
    if (tag === "UnionType" || tag === "IntersectionType") continue;
    path += Array.isArray(parent.actual) ? `[${entry.key}]` : path === "" ? entry.key : `.${entry.key}`;
  }
  return path;
}

/** A short, safe rendering of a bad value: its type and at most 40 characters of it. */
export function describe(u: unknown): string {
  if (u === undefined) return "nothing";
  if (u === null) return "null";
  if (Array.isArray(u)) return `array(${u.length})`;
  if (typeof u === "object") return "object";
  if (typeof u === "string") {
    if (u.length > 40) return `string of ${u.length} characters`;
    return JSON.stringify(u);
  }
  return `${typeof u} ${String(u)}`;
}

function dedupe(lines: string[]): string[] {
  return [...new Set(lines)];
}

/**
 * `codec` or null, with one error line for a bad value (`expected string | null, got number 5`),
 * not one per union member (`…; expected null, got …`).
 */
export function nullable<C extends t.Mixed>(codec: C) {
  const n = new t.Type<t.TypeOf<C> | null, t.OutputOf<C> | null, unknown>(
    `${codec.name} | null`,
    (u): u is t.TypeOf<C> | null => u === null || codec.is(u),
    (u, ctx) => (u === null ? t.success(null) : codec.validate(u, ctx)),
    (a) => (a === null ? null : codec.encode(a)),
  );
  return withShape(n, { kind: "nullable", inner: codec });
}

/**
 * A string-keyed record whose keys are checked too: a bad key is an error naming it
 * (`container_ids.Web: invalid key: …`). io-ts's `t.record` with a refined key silently drops it.
 */
export function dict<K extends t.Mixed, V extends t.Mixed>(name: string, key: K, value: V) {
  type A = Record<t.TypeOf<K> & string, t.TypeOf<V>>;
  const d = new t.Type<A, Record<string, t.OutputOf<V>>, unknown>(
    name,
    (u): u is A => isPlainObject(u) && Object.entries(u).every(([k, v]) => key.is(k) && value.is(v)),
    (u, ctx) => {
      if (!isPlainObject(u)) return t.failure(u, ctx);
      const errors: t.Errors = [];
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(u)) {
        const at = [...ctx, { key: k, type: value, actual: v }];
        const kr = key.validate(k, at);
        if (isLeft(kr)) {
          for (const e of kr.left) errors.push({ ...e, message: `invalid key: ${e.message ?? `expected ${key.name}`}` });
          continue;
        }
        const vr = value.validate(v, at);
        if (isLeft(vr)) errors.push(...vr.left);
        else out[k] = vr.right;
      }
      return errors.length ? t.failures(errors) : t.success(out as A);
    },
    (a) => Object.fromEntries(Object.entries(a as Record<string, unknown>).map(([k, v]) => [k, value.encode(v)])),
  );
  return withShape(d, { kind: "map", key, value });
}

/**
 * A union of object codecs told apart by one literal field (`type`, `v`): the value's tag picks the
 * member, whose errors are reported as its own (`event.hash: …`), and an unknown tag is one error
 * naming the tags there are, not one per member.
 */
export function tagged<K extends string, M extends Record<string, t.Mixed>>(name: string, key: K, members: M, unknown?: (tag: unknown) => string) {
  type A = t.TypeOf<M[keyof M]>;
  type O = t.OutputOf<M[keyof M]>;
  const tags = Object.keys(members);
  const memberOf = (u: unknown): t.Mixed | undefined => {
    if (!isPlainObject(u)) return undefined;
    const tag = u[key];
    return (typeof tag === "string" || typeof tag === "number") && Object.hasOwn(members, String(tag)) ? members[String(tag)] : undefined;
  };
  const expected = tags.map((k) => JSON.stringify(Number.isNaN(Number(k)) ? k : Number(k))).join(" | ");
  return new t.Type<A, O, unknown>(
    name,
    (u): u is A => memberOf(u)?.is(u) ?? false,
    (u, ctx) => {
      if (!isPlainObject(u)) return t.failure(u, ctx);
      const member = memberOf(u);
      if (member) return member.validate(u, ctx) as t.Validation<A>;
      const tag = u[key];
      return t.failure(tag, [...ctx, { key, type: t.never, actual: tag }], unknown ? unknown(tag) : `expected ${expected}, got ${describe(tag)}`);
    },
    (a) => {
      const member = memberOf(a);
      if (!member) throw new Error(`${name}: no member for ${key} ${describe((a as Record<string, unknown>)[key])}`);
      return member.encode(a) as O;
    },
  );
}
