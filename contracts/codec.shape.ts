// What a codec accepts, as data: the shape the decoder checks, walked to generate the score's
// reference (`fleetctl explain`, docs/score.md) and its JSON Schema (`fleetctl schema`). One source,
// so the documentation and the editors' validation cannot drift from what the agent decodes.
import * as t from "io-ts";

/** What a refinement adds to its base type, in the terms a JSON Schema can carry. */
export interface Constraint {
  integer?: boolean;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  /** An ECMAScript regular expression, anchored by the caller. */
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  maxProperties?: number;
  /** Rules no JSON Schema can express (checked by the decoder alone), in words. */
  rules?: string[];
}

export type Shape =
  | { kind: "string" }
  | { kind: "number" }
  | { kind: "boolean" }
  | { kind: "literal"; value: string | number | boolean }
  | { kind: "enum"; values: string[] }
  | { kind: "object"; required: t.Props; optional: t.Props }
  | { kind: "array"; item: t.Mixed }
  /** A map with checked keys (each key a `key`, each value a `value`). */
  | { kind: "map"; key: t.Mixed; value: t.Mixed }
  | { kind: "nullable"; inner: t.Mixed }
  | { kind: "refined"; base: t.Mixed; constraint: Constraint };

const SHAPES = new WeakMap<t.Any, Shape>();

/** Records what `codec` accepts; for codecs built with `new t.Type`, whose shape io-ts can't see. */
export function withShape<C extends t.Any>(codec: C, shape: Shape): C {
  SHAPES.set(codec, shape);
  return codec;
}

/** The shape of `codec`; throws for a codec of unknown shape rather than document it as "anything". */
export function shapeOf(codec: t.Any): Shape {
  const known = SHAPES.get(codec);
  if (known) return known;
  if (codec instanceof t.StringType) return { kind: "string" };
  if (codec instanceof t.NumberType) return { kind: "number" };
  if (codec instanceof t.BooleanType) return { kind: "boolean" };
  if (codec instanceof t.LiteralType) return { kind: "literal", value: (codec as t.LiteralType<string | number | boolean>).value };
  if (codec instanceof t.KeyofType) return { kind: "enum", values: Object.keys((codec as t.KeyofType<Record<string, unknown>>).keys) };
  if (codec instanceof t.ArrayType) return { kind: "array", item: (codec as t.ArrayType<t.Mixed>).type };
  throw new Error(`the shape of codec ${codec.name} is unknown: build it with struct/refine/dict/nullable or give it withShape`);
}

// ---- JSON Schema (draft-07: what editors' YAML and JSON language servers support best) ------------

export type JsonSchema = Record<string, unknown>;

/** Per path (`data.services[].image`), what to say about a field beside its type. */
export type Describe = (path: string) => { description?: string; default?: unknown; examples?: unknown[] } | undefined;

/** A draft-07 JSON Schema accepting what `codec` decodes (less the `rules` no schema can state). */
export function jsonSchemaOf(codec: t.Any, describe: Describe = () => undefined, path = ""): JsonSchema {
  const schema = schemaOfShape(shapeOf(codec), describe, path);
  const doc = describe(path);
  if (!doc) return schema;
  return {
    ...schema,
    ...(doc.description !== undefined ? { description: doc.description } : {}),
    ...(doc.default !== undefined ? { default: doc.default } : {}),
    ...(doc.examples !== undefined ? { examples: doc.examples } : {}),
  };
}

const join = (path: string, key: string) => (path === "" ? key : `${path}.${key}`);

function schemaOfShape(s: Shape, describe: Describe, path: string): JsonSchema {
  switch (s.kind) {
    case "string":
    case "number":
    case "boolean":
      return { type: s.kind };
    case "literal":
      return { const: s.value };
    case "enum":
      return { type: "string", enum: s.values };
    case "object": {
      const props = { ...s.required, ...s.optional };
      return {
        type: "object",
        properties: Object.fromEntries(Object.entries(props).map(([k, c]) => [k, jsonSchemaOf(c, describe, join(path, k))])),
        ...(Object.keys(s.required).length ? { required: Object.keys(s.required) } : {}),
        additionalProperties: false,
      };
    }
    case "array":
      return { type: "array", items: jsonSchemaOf(s.item, describe, `${path}[]`) };
    case "map": {
      const key = schemaOfShape(shapeOf(s.key), () => undefined, path);
      const { type: _type, ...keyRules } = key;
      return { type: "object", ...(Object.keys(keyRules).length ? { propertyNames: keyRules } : {}), additionalProperties: jsonSchemaOf(s.value, () => undefined, `${path}.*`) };
    }
    case "nullable":
      return { anyOf: [jsonSchemaOf(s.inner, describe, path), { type: "null" }] };
    case "refined": {
      const base = jsonSchemaOf(s.base, () => undefined, path);
      const { integer, rules: _rules, ...rest } = s.constraint;
      return { ...base, ...(integer ? { type: "integer" } : {}), ...rest };
    }
  }
}

// ---- the fields of a codec, for the reference -----------------------------------------------------

export interface Field {
  /** `data.services[].health.interval_secs`; `[]` stands for every item of a list. */
  path: string;
  required: boolean;
  codec: t.Mixed;
}

/** Every field under `codec`, depth first, in declaration order (required before optional). */
export function fieldsOf(codec: t.Any, path = ""): Field[] {
  const s = unwrap(codec);
  const out: Field[] = [];
  if (s.kind === "object") {
    for (const [props, required] of [[s.required, true], [s.optional, false]] as const) {
      for (const [k, c] of Object.entries(props)) {
        const p = join(path, k);
        out.push({ path: p, required, codec: c }, ...fieldsOf(c, p));
      }
    }
  } else if (s.kind === "array") out.push(...fieldsOf(s.item, `${path}[]`));
  return out;
}

/** The shape under refinements and `| null`: what the value is made of. */
export function unwrap(codec: t.Any): Shape {
  const s = shapeOf(codec);
  return s.kind === "refined" ? unwrap(s.base) : s.kind === "nullable" ? unwrap(s.inner) : s;
}

/** Every constraint on `codec`, outermost last (a refinement of a refinement keeps both). */
export function constraintsOf(codec: t.Any): Constraint {
  const s = shapeOf(codec);
  if (s.kind === "refined") {
    const inner = constraintsOf(s.base);
    return { ...inner, ...s.constraint, rules: [...(inner.rules ?? []), ...(s.constraint.rules ?? [])] };
  }
  if (s.kind === "nullable") return constraintsOf(s.inner);
  return {};
}
