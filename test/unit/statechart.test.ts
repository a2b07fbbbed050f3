import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { deploymentMachine } from "../../machines/deployment.machine.js";
import { machineEdges, toMermaid } from "../../machines/statechart.js";
import { MACHINE_STATES } from "../../contracts/deployment-state.codec.js";

describe("statechart export", () => {
  it("draws every state of the machine and its edges from the definition", () => {
    const chart = toMermaid(deploymentMachine);
    expect(chart.split("\n")[0]).to.equal("stateDiagram-v2");
    for (const s of MACHINE_STATES) expect(chart).to.match(new RegExp(`\\b${s}\\b`));
    expect(chart).to.include("stoppingOld --> startingNew: stopOld done");
    expect(chart).to.include("running --> startingNew: TICK [needsRepair]");
    expect(chart.split("\n").filter((l) => l.includes(": "))).to.have.length(machineEdges(deploymentMachine).length);
  });

  it("the contract's state list is exactly the machine's", () => {
    expect(Object.keys(deploymentMachine.root.states)).to.deep.equal([...MACHINE_STATES]);
  });

  it("npm run statechart prints the diagram", () => {
    const out = execFileSync("npx", ["tsx", "machines/statechart.main.ts"], { encoding: "utf8" });
    expect(out).to.equal(`${toMermaid(deploymentMachine)}\n`);
  });
});
