import { expect } from "chai";
import type { PodmanV0Score } from "../../contracts/score.codec.js";
import { scoreChanges } from "../../machines/score.diff.js";

const v1: PodmanV0Score = {
  services: [
    { name: "web", image: "app/web:1", env: { MODE: "<redacted>", TOKEN: "<redacted>" } },
    { name: "db", image: "app/db:1" },
    { name: "old", image: "app/old:1" },
  ],
};

describe("score diff (deploy --dry-run and the timeline)", () => {
  it("a first score adds every service, naming its image", () => {
    expect(scoreChanges(null, v1)).to.deep.equal([
      { service: "web", action: "add", details: ["image app/web:1"] },
      { service: "db", action: "add", details: ["image app/db:1"] },
      { service: "old", action: "add", details: ["image app/old:1"] },
    ]);
  });

  it("per service: a changed image and env names replace, a same spec is unchanged, a missing one is removed", () => {
    const v2: PodmanV0Score = {
      services: [
        { name: "web", image: "app/web:2", env: { MODE: "<redacted>", LEVEL: "<redacted>" } },
        { name: "db", image: "app/db:1" },
        { name: "cache", image: "app/cache:1" },
      ],
    };
    expect(scoreChanges(v1, v2)).to.deep.equal([
      { service: "web", action: "replace", details: ["image app/web:1 → app/web:2", "env + LEVEL", "env - TOKEN"] },
      { service: "db", action: "unchanged", details: [] },
      { service: "cache", action: "add", details: ["image app/cache:1"] },
      { service: "old", action: "remove", details: [] },
    ]);
  });

  it("env values are compared but never shown, and a lifecycle change is named when no spec differs", () => {
    const a: PodmanV0Score = { services: [{ name: "web", image: "app/web:1", env: { TOKEN: "s3cr3t" } }] };
    const b: PodmanV0Score = { services: [{ name: "web", image: "app/web:1", env: { TOKEN: "other" } }] };
    const changed = scoreChanges(a, b);
    expect(changed).to.deep.equal([{ service: "web", action: "replace", details: ["env value of TOKEN changed"] }]);
    expect(JSON.stringify(changed)).to.not.include("s3cr3t");
    const c: PodmanV0Score = { ...a, lifecycle: { grace_period_secs: 5 } };
    expect(scoreChanges(a, c)).to.deep.equal([{ service: "web", action: "replace", details: ["grace_period_secs 30 → 5"] }]);
  });
});
