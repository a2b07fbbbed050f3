import { expect } from "chai";
import { MACHINE_STATES } from "../../contracts/deployment-state.codec.js";
import { deploymentMachine } from "../../machines/deployment.machine.js";
import { machineEdges } from "../../machines/statechart.js";
import { layoutChart, renderChartSvg } from "../../inspector/statechart.svg.js";

type Box = { x: number; y: number; width: number; height: number };
const overlap = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
/** A label box from dagre's centre point. */
const labelBox = (l: Box): Box => ({ x: l.x - l.width / 2, y: l.y - l.height / 2, width: l.width, height: l.height });

describe("statechart SVG (dagre layout)", () => {
  const l = layoutChart(deploymentMachine);

  it("draws every state, and one edge per pair of states the machine connects", () => {
    expect(l.states.map((s) => s.id).sort()).to.deep.equal([...MACHINE_STATES].sort());
    const pairs = new Set(machineEdges(deploymentMachine).map((e) => `${e.from}>${e.to}`));
    expect(l.edges.map((e) => `${e.from}>${e.to}`).sort()).to.deep.equal([...pairs].sort());
    const svg = renderChartSvg(deploymentMachine);
    for (const s of MACHINE_STATES) expect(svg).to.include(`data-state="${s}"`);
    expect(svg).to.not.match(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it("labels edges in the journal's domain words, never XState ids, event constants or guard names", () => {
    const drawn = l.edges.flatMap((e) => e.lines);
    const all = l.edges.flatMap((e) => e.words);
    for (const w of [...drawn, ...all]) {
      expect(w).to.not.match(/xstate|actor|UPDATE|REJECT|DELETE|TICK|always|isNewHash|queued update|nextIs|needsRepair|hasPlan|hasFailure/);
    }
    const edge = (from: string, to: string) => l.edges.find((e) => e.from === from && e.to === to)!;
    expect(edge("stoppingOld", "startingNew").lines).to.deep.equal(["stop.done"]);
    expect(edge("running", "pending").lines).to.deep.equal(["desired.updated"]);
    expect(edge("running", "startingNew").lines).to.deep.equal(["liveness.repair"]);
    expect(edge("pulling", "failed").lines).to.deep.equal(["pull.failed", "step.timed_out"]);
    // Taken only for a desired value that waited for the step: drawn without words, listed in the tooltip.
    expect(edge("pulling", "pending").lines).to.deep.equal([]);
    expect(edge("pulling", "pending").words).to.deep.equal(["desired.updated (queued)"]);
  });

  it("no label overlaps a state or another label, and the way forward reads top to bottom", () => {
    const labels = l.edges.filter((e) => e.lines.length).map((e) => labelBox(e.label));
    for (const [i, a] of labels.entries()) {
      for (const s of l.states) expect(overlap(a, s), `label ${i} over ${s.id}`).to.equal(false);
      for (const b of labels.slice(i + 1)) expect(overlap(a, b), `labels ${i}`).to.equal(false);
    }
    // Since retries return to a step, the steps no longer share one column; they still go down, one rank each.
    const top = (id: string) => l.states.find((x) => x.id === id)!.y;
    const way = ["pending", "pulling", "stoppingOld", "startingNew", "verifying", "running"].map(top);
    for (let i = 1; i < way.length; i++) expect(way[i], `step ${i} of the way forward`).to.be.greaterThan(way[i - 1]!);
    expect(top("failed"), "failures end below the way forward").to.be.greaterThan(top("running"));
  });
});
