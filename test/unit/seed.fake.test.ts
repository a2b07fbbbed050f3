import { FakeRuntime } from "../../runtime/fake.runtime.js";
import { seedScenarios } from "../scenarios/seed.scenarios.js";

describe("seed behaviours on FakeRuntime", () => {
  let n = 0;
  let fake: FakeRuntime;
  beforeEach(() => {
    fake = new FakeRuntime({ device: "unit" });
  });
  seedScenarios(() => ({
    runtime: fake,
    device: "unit",
    deployment: () => `seed${++n}`,
    images: { v1: "localhost/fleet-test:v1", v2: "localhost/fleet-test:v2", crash: "localhost/fleet-test:crash" },
    volumeDir: "/srv/data",
    arrangeCrash: (_deployment, service) => fake.exitAtStart(service, 1),
    ticks: 50,
  }));
});
