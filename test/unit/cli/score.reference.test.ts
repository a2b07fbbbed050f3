// The score's reference and JSON Schema are generated from the codec: every field documented, the
// committed docs/score.md equal to the generator's output, and the schema agreeing with the decoder
// on valid scores and on the bad-input corpus.
import { expect } from "chai";
import { Ajv } from "ajv";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { explainField, nearestFieldPath, referenceMarkdown, resolveFieldPath, scoreReference } from "../../../cli/score.reference.js";
import { fieldsOf } from "../../../contracts/codec.shape.js";
import { decode } from "../../../contracts/decode.js";
import { ReconcileScore } from "../../../contracts/score.codec.js";
import { FULL_EXAMPLE, SCORE_DOCS } from "../../../contracts/score.docs.js";
import { scoreJsonSchema } from "../../../contracts/score.schema.js";
import { closestName, editDistance } from "../../../contracts/suggest.js";

const ROOT = join(dirname(new URL(import.meta.url).pathname), "..", "..", "..");
const CORPUS = join(ROOT, "test", "e2e", "bad-input");

interface Case {
  file: string;
  kind: string;
  expand?: { placeholder: string; char: string; bytes: number };
}

/**
 * Bad scores a JSON Schema cannot refuse, and why; the decoder refuses each when deployed. The test
 * checks that the schema accepts exactly these, so a new gap can't slip in unnoticed.
 */
const SCHEMA_GAPS: Record<string, string> = {
  "12-duplicate-services.json": "unique service names: no JSON Schema keyword compares one property across items",
  "46-policy-low-host-port.json": "a device's container policy, not the score's format",
  "47-policy-mount-etc.json": "a device's container policy, not the score's format",
};

const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(scoreJsonSchema());

describe("the score's reference and JSON Schema", () => {
  it("every field of the codec is documented, and every entry is a field", () => {
    const paths = fieldsOf(ReconcileScore).map((f) => f.path);
    expect(paths).to.include.members(["data.services[].depends_on", "data.lifecycle.min_ready_secs", "data.services[].health.interval_secs"]);
    expect(Object.keys(SCORE_DOCS).sort()).to.deep.equal([...paths].sort());
  });

  it("every example in the reference decodes where it stands, and the full example decodes", () => {
    expect(decode(ReconcileScore, FULL_EXAMPLE).ok).to.equal(true);
    for (const r of scoreReference()) {
      // Put the example into the full example at its path and decode the whole score.
      const score = structuredClone(FULL_EXAMPLE) as Record<string, unknown>;
      const keys = r.path.split(".");
      let at: Record<string, unknown> = score;
      for (const k of keys.slice(0, -1)) {
        const key = k.replace(/\[\]$/, "");
        const v = at[key];
        at = (Array.isArray(v) ? v[0] : v) as Record<string, unknown>;
        if (at === undefined) break;
      }
      if (at === undefined) continue;
      const leaf = keys[keys.length - 1]!.replace(/\[\]$/, "");
      if (Array.isArray(at[leaf]) && keys[keys.length - 1]!.endsWith("[]")) continue;
      at[leaf] = r.doc.example;
      const d = decode(ReconcileScore, score);
      expect(d.ok, `${r.path}: ${d.ok ? "" : d.errors.join("; ")}`).to.equal(true);
    }
  });

  it("docs/score.md is the generator's output (npm run docs:score writes it)", () => {
    expect(readFileSync(join(ROOT, "docs", "score.md"), "utf8")).to.equal(referenceMarkdown());
  });

  it("explain finds a field with or without data. and [] and names the nearest for a misspelt one", () => {
    const paths = scoreReference().map((r) => r.path);
    expect(resolveFieldPath("lifecycle.grace_period_secs", paths)).to.equal("data.lifecycle.grace_period_secs");
    expect(resolveFieldPath("services.health", paths)).to.equal("data.services[].health");
    expect(resolveFieldPath("data.services[0].ports[].host_port", paths)).to.equal("data.services[].ports[].host_port");
    expect(resolveFieldPath("lifecycle.grace_period_sec", paths)).to.equal(null);
    expect(nearestFieldPath("lifecycle.grace_period_sec", paths)).to.equal("data.lifecycle.grace_period_secs");
    const text = explainField("data.lifecycle.grace_period_secs");
    expect(text).to.include("TYPE    integer").and.include("optional, default 30").and.include("LIMITS  0 to 3600").and.include("grace_period_secs: 10");
  });

  it("the schema accepts the full example and every score the codec accepts (300 generated)", () => {
    expect(validate(FULL_EXAMPLE), ajv.errorsText(validate.errors)).to.equal(true);
    fc.assert(
      fc.property(validScore, (score) => {
        expect(decode(ReconcileScore, score).ok).to.equal(true);
        expect(validate(score), ajv.errorsText(validate.errors)).to.equal(true);
      }),
      { numRuns: 300 },
    );
  });

  it(`the schema refuses the bad-input corpus, but for the ${Object.keys(SCHEMA_GAPS).length} cases no JSON Schema can state`, () => {
    const cases = (JSON.parse(readFileSync(join(CORPUS, "cases.json"), "utf8")) as Case[]).filter((c) => c.kind === "desired");
    expect(cases.length).to.be.at.least(40);
    const accepted: string[] = [];
    let judged = 0;
    for (const c of cases) {
      let text: string;
      let value: unknown;
      try {
        const raw = readFileSync(join(CORPUS, c.file));
        text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
        if (c.expand) text = text.replace(c.expand.placeholder, c.expand.char.repeat(c.expand.bytes));
        value = JSON.parse(text);
      } catch {
        continue; // not UTF-8 or not JSON: there is no value for a schema to judge
      }
      judged++;
      if (!c.file.startsWith("46-") && !c.file.startsWith("47-")) expect(decode(ReconcileScore, value).ok, c.file).to.equal(false);
      if (validate(value)) accepted.push(c.file);
    }
    expect(judged).to.be.at.least(35);
    expect(accepted).to.deep.equal(Object.keys(SCHEMA_GAPS));
  });

  it("the schema says what the agent checks beyond it, in the field's description", () => {
    const schema = scoreJsonSchema() as { properties: { data: { properties: { services: { description: string } } } } };
    expect(schema.properties.data.properties.services.description).to.include("service names are unique");
  });
});

describe("did you mean", () => {
  it("edit distance counts a swap of neighbours as one", () => {
    expect(editDistance("imgae", "image")).to.equal(1);
    expect(editDistance("grace_period_sec", "grace_period_secs")).to.equal(1);
    expect(editDistance("", "abc")).to.equal(3);
  });
  it("suggests a close name or one it starts, nothing for a stranger", () => {
    const fields = ["stop_signal", "grace_period_secs", "min_ready_secs"];
    expect(closestName("grace_period_sec", fields)).to.equal("grace_period_secs");
    expect(closestName("grace_period", fields)).to.equal("grace_period_secs");
    expect(closestName("Stop_Signal", fields)).to.equal("stop_signal");
    expect(closestName("replicas", fields)).to.equal(null);
    expect(closestName("host_ip", ["host_port", "container_port", "protocol"])).to.equal(null);
  });
});

// ---- valid scores, generated -------------------------------------------------------------------

const name = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
const image = fc.constantFrom("busybox", "localhost/app:v2", "localhost:5000/team/app:1.0", "docker.io/library/busybox:latest", `app@sha256:${"a".repeat(64)}`);
const path = fc.stringMatching(/^(\/[a-z0-9._-]{1,8}){1,4}$/);
const port = fc.integer({ min: 1, max: 65535 });
const service = (n: string) =>
  fc.record(
    {
      name: fc.constant(n),
      image,
      command: fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 4 }),
      env: fc.dictionary(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), fc.string({ maxLength: 20 }), { maxKeys: 4 }),
      ports: fc.array(fc.record({ host_port: port, container_port: port, protocol: fc.constantFrom("tcp", "udp", "sctp") }, { requiredKeys: ["host_port", "container_port"] }), { maxLength: 3 }),
      volumes: fc.array(fc.record({ source: path, target: path, read_only: fc.boolean() }, { requiredKeys: ["source", "target"] }), { maxLength: 3 }),
      health: fc.record(
        {
          cmd: fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 3 }),
          interval_secs: fc.integer({ min: 1, max: 86_400 }),
          timeout_secs: fc.integer({ min: 1, max: 86_400 }),
          retries: fc.integer({ min: 0, max: 100 }),
          start_period_secs: fc.integer({ min: 0, max: 86_400 }),
        },
        { requiredKeys: ["cmd"] },
      ),
    },
    { requiredKeys: ["name", "image"] },
  );
const validScore = fc
  .uniqueArray(name, { minLength: 1, maxLength: 5 })
  .chain((names) =>
    fc.record(
      {
        services: fc.tuple(...names.map(service)).chain((services) =>
          // depends_on only on services listed earlier: never a cycle.
          fc.tuple(...services.map((s, i) => fc.subarray(names.slice(0, i)).map((deps) => (deps.length ? { ...s, depends_on: deps } : s)))),
        ),
        lifecycle: fc.record(
          { stop_signal: fc.constantFrom("SIGTERM", "SIGINT", "SIGKILL"), grace_period_secs: fc.integer({ min: 0, max: 3600 }), min_ready_secs: fc.integer({ min: 0, max: 3600 }) },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: ["services"] },
    ),
  )
  .map((data) => ({ type: "PodmanV0", data }));
