import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { deploymentMachine } from "../../machines/deployment.machine.js";
import { domainTypeOf } from "../../machines/journal.vocabulary.js";
import { edgeLabel, machineEdges, toMermaid } from "../../machines/statechart.js";
import { MACHINE_STATES } from "../../contracts/deployment-state.codec.js";

describe("statechart export", () => {
  it("draws every state of the machine and its edges from the definition", () => {
    const chart = toMermaid(deploymentMachine);
    expect(chart.split("\n")[0]).to.equal("stateDiagram-v2");
    for (const s of MACHINE_STATES) expect(chart).to.match(new RegExp(`\\b${s}\\b`));
    expect(chart).to.include("stoppingOld --> startingNew: stop.done");
    expect(chart).to.include("running --> startingNew: liveness.repair [needsRepair]");
    expect(chart.split("\n").filter((l) => l.includes(": "))).to.have.length(machineEdges(deploymentMachine).length);
  });

  it("labels every edge in the journal's vocabulary: no XState name, one domain type per machine event", () => {
    for (const e of machineEdges(deploymentMachine)) {
      const label = edgeLabel(e);
      expect(label, `${e.from} → ${e.to} on ${e.event}`).to.not.match(/xstate|UPDATE|REJECT|DELETE|TICK/);
      if (e.event !== "always") expect(domainTypeOf(e.event), e.event).to.be.a("string");
    }
    expect(edgeLabel({ from: "pulling", to: "pending", event: "xstate.done.actor.pull", guard: "queued", params: "update" })).to.equal("pull.done [queued update]");
  });

  it("the contract's state list is exactly the machine's", () => {
    expect(Object.keys(deploymentMachine.root.states)).to.deep.equal([...MACHINE_STATES]);
  });

  it("npm run statechart prints the diagram", () => {
    const out = execFileSync("npx", ["tsx", "machines/statechart.main.ts"], { encoding: "utf8" });
    expect(out).to.equal(`${toMermaid(deploymentMachine)}\n`);
  });
});
