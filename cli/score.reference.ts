// The score's reference, generated from its codec (codec.shape.ts) and SCORE_DOCS: `fleetctl explain`
// prints it for one field or all, and docs/score.md is its Markdown rendering (a unit test keeps the
// committed file equal to it).
import type * as t from "io-ts";
import { Document, isScalar, visit } from "yaml";
import { constraintsOf, fieldsOf, shapeOf, unwrap, type Constraint, type Field } from "../contracts/codec.shape.js";
import { LIMITS, ReconcileScore } from "../contracts/score.codec.js";
import { FULL_EXAMPLE, SCORE_DOCS, type FieldDoc } from "../contracts/score.docs.js";
import { closestName } from "../contracts/suggest.js";

export interface FieldReference {
  path: string;
  required: boolean;
  /** `integer`, `list of object`, `one of SIGTERM, …`. */
  type: string;
  /** Limits in words: `0 to 3600`, `at most 64 items`. */
  limits: string[];
  /** What only the decoder checks (no JSON Schema can say it). */
  rules: string[];
  doc: FieldDoc;
}

// A pattern is shown when it is short enough to read; the image reference's is not.
const READABLE_PATTERN = 60;

// Refined strings an operator knows by a name of their own.
const STRING_KINDS: Record<string, string> = { ServiceName: "service name", ImageRef: "image reference", AbsolutePath: "absolute path" };

function typeName(codec: t.Any): string {
  const s = unwrap(codec);
  switch (s.kind) {
    case "string":
      return STRING_KINDS[codec.name] ?? "string";
    case "boolean":
      return s.kind;
    case "number":
      return constraintsOf(codec).integer ? "integer" : "number";
    case "literal":
      return JSON.stringify(s.value);
    case "enum":
      return `one of ${s.values.join(", ")}`;
    case "object":
      return "object";
    case "array":
      return `list of ${typeName(s.item)}`;
    case "map":
      return `map of ${mapKeyName(s.key)} → ${typeName(s.value)}`;
    default:
      return s.kind;
  }
}

const mapKeyName = (key: t.Any) => (constraintsOf(key).pattern === "^[A-Za-z_][A-Za-z0-9_]*$" ? "variable name" : typeName(key));

function limitsOf(c: Constraint, codec: t.Any): string[] {
  const out: string[] = [];
  const range = (lo: number | undefined, hi: number | undefined, unit: string) => {
    if (lo !== undefined && hi !== undefined) out.push(lo === hi ? `exactly ${lo} ${unit}` : `${lo} to ${hi} ${unit}`.trimEnd());
    else if (lo !== undefined && lo > 0) out.push(`at least ${lo} ${unit}`.trimEnd());
    else if (hi !== undefined) out.push(`at most ${hi} ${unit}`.trimEnd());
  };
  range(c.minimum, c.maximum, "");
  range(c.minLength, c.maxLength, "characters");
  range(c.minItems, c.maxItems, "items");
  if (c.maxProperties !== undefined) out.push(`at most ${c.maxProperties} entries`);
  if (c.pattern !== undefined && c.pattern.length <= READABLE_PATTERN) out.push(`matches ${c.pattern}`);
  if (c.uniqueItems) out.push("no duplicates");
  const s = unwrap(codec);
  if (s.kind === "map") {
    const k = constraintsOf(s.key);
    const v = constraintsOf(s.value);
    if (k.pattern !== undefined) out.push(`names match ${k.pattern}${k.maxLength !== undefined ? `, at most ${k.maxLength} characters` : ""}`);
    if (v.maxLength !== undefined) out.push(`values at most ${v.maxLength} characters`);
  }
  if (s.kind === "array" && shapeOf(s.item).kind !== "object") {
    const item = constraintsOf(s.item);
    const itemLimits = limitsOf(item, s.item).filter((l) => !l.includes("items"));
    if (itemLimits.length) out.push(`each ${itemLimits.join(", ")}`);
  }
  return out;
}

/** Every field of the score, with its type and limits from the codec and its words from SCORE_DOCS. */
export function scoreReference(): FieldReference[] {
  return fieldsOf(ReconcileScore).map((f: Field) => {
    const doc = SCORE_DOCS[f.path];
    if (!doc) throw new Error(`SCORE_DOCS has no entry for ${f.path}: document the new field in contracts/score.docs.ts`);
    const c = constraintsOf(f.codec);
    return { path: f.path, required: f.required, type: typeName(f.codec), limits: limitsOf(c, f.codec), rules: c.rules ?? [], doc };
  });
}

/** `services.health` → `data.services[].health`: the path as the reference names it, or null. */
export function resolveFieldPath(input: string, paths: readonly string[]): string | null {
  const norm = input.trim().replace(/\[\d*\]/g, "[]").replace(/^\./, "");
  const bare = (p: string) => p.replace(/\[\]/g, "");
  for (const candidate of [norm, `data.${norm}`]) {
    const hit = paths.find((p) => p === candidate || bare(p) === bare(candidate));
    if (hit) return hit;
  }
  return null;
}

/** The nearest known path to a misspelt one, for `no field X (did you mean Y?)`. */
export function nearestFieldPath(input: string, paths: readonly string[]): string | null {
  const last = input.split(".").pop() ?? input;
  const byLeaf = closestName(last.replace(/\[\d*\]/g, ""), paths.map((p) => p.split(".").pop()!.replace(/\[\]/g, "")));
  return byLeaf === null ? null : (paths.find((p) => p.split(".").pop()!.replace(/\[\]/g, "") === byLeaf) ?? null);
}

const leafKey = (path: string) => path.split(".").pop()!.replace(/\[\]$/, "");
/** YAML as an operator writes it: lists of plain values on one line (`cmd: [CMD, true]`). */
export function yamlOf(value: unknown): string {
  const doc = new Document(value);
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((i) => isScalar(i))) node.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false }).trimEnd();
}
const exampleYaml = (r: FieldReference) => yamlOf({ [leafKey(r.path)]: r.doc.example });
const indent = (text: string, by: string) => text.split("\n").map((l) => `${by}${l}`).join("\n");

function presence(r: FieldReference): string {
  if (r.required) return "required";
  if (r.doc.default !== undefined) return `optional, default ${JSON.stringify(r.doc.default)}`;
  return r.doc.absent ? `optional; absent: ${r.doc.absent}` : "optional";
}

/** `fleetctl explain <path>`: one field, then its direct children. */
export function explainField(path: string, refs = scoreReference()): string {
  const r = refs.find((x) => x.path === path)!;
  const lines = [`FIELD   ${r.path}`, `TYPE    ${r.type}`, `        ${presence(r)}`];
  if (r.limits.length) lines.push(`LIMITS  ${r.limits.join("; ")}`);
  if (r.rules.length) lines.push(`CHECKS  ${r.rules.join("; ")}`);
  lines.push("", wrap(r.doc.summary, 96));
  if (r.doc.details) lines.push("", wrap(r.doc.details, 96));
  lines.push("", "EXAMPLE", indent(exampleYaml(r), "  "));
  const children = directChildren(r.path, refs);
  if (children.length) {
    lines.push("", "FIELDS");
    const w = Math.max(...children.map((c) => leafKey(c.path).length + (c.required ? 2 : 0)));
    for (const c of children) lines.push(`  ${`${leafKey(c.path)}${c.required ? " *" : ""}`.padEnd(w)}  ${c.type}: ${c.doc.summary}`);
    lines.push("", "(* required)  fleetctl explain <field> for more");
  }
  return lines.join("\n") + "\n";
}

function directChildren(path: string, refs: FieldReference[]): FieldReference[] {
  return refs.filter((c) => {
    const prefix = path === "" ? "" : `${path}.`;
    const under = c.path.startsWith(prefix) ? c.path.slice(prefix.length) : c.path.startsWith(`${path}[].`) ? c.path.slice(path.length + 3) : null;
    return under !== null && under !== "" && !under.includes(".");
  });
}

/** `fleetctl explain` without a path: the whole tree, one line a field, and a full example. */
export function explainOverview(refs = scoreReference()): string {
  const w = Math.max(...refs.map((r) => r.path.length + (r.required ? 2 : 0)));
  const tree = refs.map((r) => `  ${`${r.path}${r.required ? " *" : ""}`.padEnd(w)}  ${r.type}`);
  return [
    "A score: the desired state of one deployment (fleetctl deploy -f FILE, JSON or YAML).",
    "",
    "FIELDS (* required; fleetctl explain <field> for one, e.g. fleetctl explain lifecycle.grace_period_secs)",
    ...tree,
    "",
    "EXAMPLE",
    indent(yamlOf(FULL_EXAMPLE), "  "),
    "",
    "fleetctl schema prints the same as a JSON Schema, for editors (see docs/score.md).",
  ].join("\n") + "\n";
}

function wrap(text: string, width: number): string {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out.join("\n");
}

// ---- docs/score.md ---------------------------------------------------------------------------

const md = (s: string) => s.replace(/\|/g, "\\|");

/** docs/score.md: generated; `npm run docs:score` writes it. */
export function referenceMarkdown(refs = scoreReference()): string {
  const out: string[] = [
    "<!-- Generated from contracts/score.codec.ts and contracts/score.docs.ts by `npm run docs:score`; do not edit. -->",
    "# The score",
    "",
    "A score is the desired state of one deployment: what `fleetctl deploy <device> <deployment> -f FILE`",
    "writes to the `desired-state` bucket (JSON or YAML; a Compose file is translated, see the README).",
    "The agent decodes it exactly: an unknown field is an error naming its path, with the nearest known",
    "field when one is close (`data.lifecycle.grace_period_sec: unknown field (did you mean grace_period_secs?)`),",
    "and a refused score changes nothing on the device.",
    "",
    "`fleetctl explain [field]` prints any part of this page; `fleetctl schema` prints the score's JSON Schema.",
    "With an editor whose YAML language server reads schemas (VS Code's YAML extension, for one), start a",
    "score file with",
    "",
    "```yaml",
    "# yaml-language-server: $schema=./score.schema.json",
    "```",
    "",
    "after `fleetctl schema > score.schema.json`, and the editor checks and completes it as you type.",
    "The schema checks all that the agent's decoder checks but for what no JSON Schema can say; deploy checks these:",
    "",
    ...refs.filter((r) => r.rules.length).map((r) => `- \`${r.path}\`: ${r.rules.join("; ")}`),
    "",
    "## Example",
    "",
    "```yaml",
    yamlOf(FULL_EXAMPLE),
    "```",
    "",
    "## Fields",
    "",
    "| field | type | | limits |",
    "|---|---|---|---|",
    ...refs.map((r) => `| [\`${r.path}\`](#${anchor(r.path)}) | ${md(r.type)} | ${r.required ? "required" : r.doc.default !== undefined ? `default \`${JSON.stringify(r.doc.default)}\`` : "optional"} | ${md(r.limits.join("; "))} |`),
    "",
  ];
  for (const r of refs) {
    out.push(`### ${r.path}`, "");
    out.push(`${r.type}; ${presence(r)}.${r.limits.length ? ` Limits: ${r.limits.join("; ")}.` : ""}${r.rules.length ? ` Also checked: ${r.rules.join("; ")}.` : ""}`, "");
    out.push(r.doc.summary + (r.doc.details ? ` ${r.doc.details}` : ""), "");
    out.push("```yaml", exampleYaml(r), "```", "");
  }
  out.push(`Limits are there to keep one bad value from exhausting a small device; each is far above real use (at most ${LIMITS.services} services, ${LIMITS.envEntries} environment variables, ${LIMITS.ports} ports a service).`, "");
  return out.join("\n");
}

// GitHub's heading anchors: lower case, punctuation other than - and _ dropped.
const anchor = (path: string) => path.toLowerCase().replace(/[^a-z0-9_ -]/g, "").replace(/ /g, "-");
