// fleetctl explain [field.path] [--markdown]; fleetctl schema: the score's reference and JSON Schema,
// both generated from the codec the agent decodes with (cli/score.reference.ts).
import { scoreJsonSchema } from "../contracts/score.schema.js";
import { EXIT, UsageError, parse, positionals, type CliIo } from "./common.js";
import { explainField, explainOverview, nearestFieldPath, referenceMarkdown, resolveFieldPath, scoreReference } from "./score.reference.js";

export const EXPLAIN_HELP = `Usage: fleetctl explain [field] [--markdown]

What a score may hold: every field, its type, whether it is required, its default, its limits, what
it does, and an example; generated from the codec the agent decodes scores with.
Without a field: all fields and a full example. With one: that field and the fields under it.
A field is named by its path, with or without the leading "data." and "[]" for list items:
  fleetctl explain lifecycle.grace_period_secs
  fleetctl explain services.health        (= data.services[].health)

Options:
  --markdown   the whole reference as Markdown (what docs/score.md holds)
  -h, --help   this text

Exit: 0 ok, 2 no such field (the nearest one is suggested).
`;

export const SCHEMA_HELP = `Usage: fleetctl schema

Prints the score's JSON Schema (draft-07), generated from the codec the agent decodes scores with,
for editors that validate and complete YAML or JSON files:
  fleetctl schema > score.schema.json
then start a score file with the line
  # yaml-language-server: $schema=./score.schema.json
The schema checks everything the codec does except what no JSON Schema can say (unique service
names, depends_on naming existing services without cycles); deploy checks those.

Exit: 0 ok, 2 usage error.
`;

export async function explainCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { help: { type: "boolean", short: "h" }, markdown: { type: "boolean" } });
  if (values.help) {
    io.out(EXPLAIN_HELP);
    return EXIT.OK;
  }
  const [field] = positionals(ps, ["field"], 0);
  const refs = scoreReference();
  if (values.markdown) {
    if (field !== undefined) throw new UsageError("--markdown prints the whole reference: give no field");
    io.out(referenceMarkdown(refs));
    return EXIT.OK;
  }
  if (field === undefined) {
    io.out(explainOverview(refs));
    return EXIT.OK;
  }
  const paths = refs.map((r) => r.path);
  const path = resolveFieldPath(field, paths);
  if (path === null) {
    const near = nearestFieldPath(field, paths);
    throw new UsageError(`no field ${JSON.stringify(field)} in a score${near ? ` (did you mean ${near}?)` : ""}; fleetctl explain lists them all`);
  }
  io.out(explainField(path, refs));
  return EXIT.OK;
}

export async function schemaCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals: ps } = parse(argv, { help: { type: "boolean", short: "h" } });
  if (values.help) {
    io.out(SCHEMA_HELP);
    return EXIT.OK;
  }
  positionals(ps, [], 0);
  io.out(JSON.stringify(scoreJsonSchema(), null, 2) + "\n");
  return EXIT.OK;
}
