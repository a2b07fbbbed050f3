import { expect } from "chai";
import { appliedFromScore, dependencyOrder, planUpgrade, servicesNeedingRepair, stopOrder } from "../../machines/upgrade.plan.js";
import type { PodmanV0Score } from "../../contracts/score.codec.js";

const v1: PodmanV0Score = {
  services: [
    { name: "web", image: "app/web:1", env: { MODE: "prod" } },
    { name: "db", image: "app/db:1" },
    { name: "old", image: "app/old:1" },
  ],
};

describe("upgrade planner", () => {
  it("plans every service of a first deployment as add", () => {
    const p = planUpgrade({}, v1, "sha256:1");
    expect(p.actions).to.deep.equal({ web: "add", db: "add", old: "add" });
    expect(p.pull).to.deep.equal(["app/web:1", "app/db:1", "app/old:1"]);
    expect(p.stop).to.deep.equal([]);
  });

  it("diffs per service: add, replace, remove, unchanged", () => {
    const v2: PodmanV0Score = {
      services: [
        { name: "web", image: "app/web:1", env: { MODE: "dev" } },
        { name: "db", image: "app/db:1" },
        { name: "cache", image: "app/cache:1" },
      ],
    };
    const p = planUpgrade(appliedFromScore(v1, "sha256:1"), v2, "sha256:2");
    expect(p.actions).to.deep.equal({ web: "replace", db: "unchanged", cache: "add", old: "remove" });
    expect(p.stop).to.deep.equal(["web", "old"]);
    expect(p.start.map((s) => [s.service.name, s.scoreHash])).to.deep.equal([["web", "sha256:2"], ["cache", "sha256:2"]]);
    expect(p.pull).to.deep.equal(["app/web:1", "app/cache:1"]);
  });

  it("treats key order as no change, and a default lifecycle written out as no change", () => {
    const reordered: PodmanV0Score = {
      lifecycle: { grace_period_secs: 30, stop_signal: "SIGTERM" },
      services: [{ image: "app/web:1", name: "web", env: { MODE: "prod" } }, { name: "db", image: "app/db:1" }, { name: "old", image: "app/old:1" }],
    };
    const p = planUpgrade(appliedFromScore(v1, "sha256:1"), reordered, "sha256:2");
    expect(Object.values(p.actions)).to.deep.equal(["unchanged", "unchanged", "unchanged"]);
    expect(p.start).to.deep.equal([]);
  });

  it("replaces every service when the lifecycle changes", () => {
    const p = planUpgrade(appliedFromScore(v1, "sha256:1"), { ...v1, lifecycle: { grace_period_secs: 5 } }, "sha256:2");
    expect(Object.values(p.actions)).to.deep.equal(["replace", "replace", "replace"]);
  });

  it("liveness asks only for services whose recorded container is not seen running", () => {
    const applied = appliedFromScore(v1, "sha256:1");
    const ids = { web: "w", db: "d", old: "o" };
    expect(servicesNeedingRepair(applied, ids, [
      { id: "w", service: "web", state: "running" },
      { id: "d", service: "db", state: "running" },
      { id: "o", service: "old", state: "running" },
    ])).to.deep.equal([]);
    expect(servicesNeedingRepair(applied, ids, [
      { id: "w", service: "web", state: "running" },
      { id: "d", service: "db", state: "exited" },
      { id: "x", service: "old", state: "running" },
    ])).to.deep.equal(["db", "old"]);
  });

  it("starts a service after what it depends on and stops it before; otherwise keeps the score's order", () => {
    const deps = [
      { name: "web", depends_on: ["api"] },
      { name: "api", depends_on: ["db", "cache"] },
      { name: "db" },
      { name: "cache" },
      { name: "worker" },
    ];
    expect(dependencyOrder(deps).map((s) => s.name)).to.deep.equal(["db", "cache", "api", "web", "worker"]);
    expect(stopOrder(deps).map((s) => s.name)).to.deep.equal(["web", "api", "db", "cache", "worker"]);
    const plain = [{ name: "a" }, { name: "b" }];
    expect(dependencyOrder(plain)).to.deep.equal(plain);
    expect(stopOrder(plain)).to.deep.equal(plain);
  });

  it("plans starts in dependency order and stops of replaced services dependents first", () => {
    const before: PodmanV0Score = { services: [{ name: "web", image: "app/web:1", depends_on: ["db"] }, { name: "db", image: "app/db:1" }] };
    const first = planUpgrade({}, before, "sha256:1");
    expect(first.start.map((s) => s.service.name)).to.deep.equal(["db", "web"]);
    const after: PodmanV0Score = { services: [{ name: "db", image: "app/db:2" }, { name: "web", image: "app/web:2", depends_on: ["db"] }] };
    const p = planUpgrade(appliedFromScore(before, "sha256:1"), after, "sha256:2");
    expect(p.stop).to.deep.equal(["web", "db"]);
    expect(p.start.map((s) => s.service.name)).to.deep.equal(["db", "web"]);
  });
});
