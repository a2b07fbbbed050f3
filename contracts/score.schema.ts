// The score's JSON Schema, generated from its codec and SCORE_DOCS: what `fleetctl schema` prints,
// for editors whose YAML or JSON language server validates and completes score files.
import { constraintsOf, fieldsOf, jsonSchemaOf, type JsonSchema } from "./codec.shape.js";
import { ReconcileScore } from "./score.codec.js";
import { SCORE_DOCS } from "./score.docs.js";

/** The text an editor shows for a field: what it is, what its absence means, what only the agent checks. */
export function fieldDescription(path: string): string | undefined {
  const doc = SCORE_DOCS[path];
  if (!doc) return undefined;
  const field = fieldsOf(ReconcileScore).find((f) => f.path === path);
  const rules = field ? (constraintsOf(field.codec).rules ?? []) : [];
  return [doc.summary, doc.details, doc.absent ? `Absent: ${doc.absent}.` : undefined, rules.length ? `Also checked when deployed: ${rules.join("; ")}.` : undefined]
    .filter((s): s is string => s !== undefined)
    .join(" ");
}

export function scoreJsonSchema(): JsonSchema {
  const body = jsonSchemaOf(ReconcileScore, (path) => {
    const doc = SCORE_DOCS[path];
    if (!doc || path === "") return undefined;
    return { description: fieldDescription(path)!, ...(doc.default !== undefined ? { default: doc.default } : {}), examples: [doc.example] };
  });
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "fleet-agent score (PodmanV0)",
    description: "The desired state of one deployment, as `fleetctl deploy -f` reads it. Generated from the agent's codecs: `fleetctl explain` describes every field.",
    ...body,
  };
}
