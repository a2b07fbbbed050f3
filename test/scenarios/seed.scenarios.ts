// The four behaviours of the seed write-up, as one scenario module run twice: on FakeRuntime by the
// unit suite, and on real Podman by the integration suite.
import { expect } from "chai";
import type { PodmanV0Score } from "../../contracts/score.codec.js";
import type { ContainerRuntime } from "../../runtime/container-runtime.js";
import { DeploymentHarness } from "../support/deployment.harness.js";
import { RecordingRuntime } from "../support/recording.runtime.js";

export interface ScenarioEnv {
  runtime: ContainerRuntime;
  device: string;
  /** A fresh deployment name (Podman's store is shared: names must not repeat across runs). */
  deployment(): string;
  images: { v1: string; v2: string; crash: string };
  /** A host directory a bind volume may mount. */
  volumeDir: string;
  /** Makes the named service's next container exit at start (FakeRuntime: a fault; Podman: the crash image does it). */
  arrangeCrash?(deployment: string, service: string): void;
  ticks: number;
}

export function seedScenarios(env: () => ScenarioEnv) {
  let h: DeploymentHarness | null = null;
  let rec: RecordingRuntime;
  const start = () => {
    const e = env();
    rec = new RecordingRuntime(e.runtime);
    h = new DeploymentHarness(rec, { device: e.device, deployment: e.deployment(), budgets: { stopSlackSecs: 15 } });
    return { e, h };
  };
  const web = (image: string, extra: Partial<PodmanV0Score["services"][number]> = {}): PodmanV0Score => ({
    services: [{ name: "web", image, ...extra }],
    lifecycle: { stop_signal: "SIGTERM", grace_period_secs: 5 },
  });
  afterEach(async () => {
    if (!h) return;
    h.delete();
    await h.settled();
    h.stop();
    h = null;
  });

  it("a tick never recreates a running service that has env and volumes (the redeploy-loop fix)", async () => {
    const { e, h } = start();
    h.update(web(e.images.v1, { env: { MODE: "prod", TOKEN: "s3cret" }, volumes: [{ source: e.volumeDir, target: "/data", read_only: true }] }));
    const s = await h.settled();
    expect(s.value).to.equal("running");
    const id = s.context.containerIds["web"];
    rec.clear();
    for (let i = 0; i < e.ticks; i++) await h.tick();
    expect(h.snapshot.context.containerIds["web"]).to.equal(id);
    expect(rec.mutations(), "create/stop/remove calls during ticks").to.deep.equal([]);
    expect(rec.calls.filter((c) => c.op === "list")).to.have.length(e.ticks);
    expect((await e.runtime.status(id!))?.state).to.equal("running");
  });

  it("a changed score stops the old container by its recorded id, then starts the new one", async () => {
    const { e, h } = start();
    h.update(web(e.images.v1));
    const id1 = (await h.settled()).context.containerIds["web"]!;
    rec.clear();
    h.update(web(e.images.v2));
    const s = await h.settled();
    expect(s.value).to.equal("running");
    const id2 = s.context.containerIds["web"]!;
    expect(id2).to.not.equal(id1);
    const ops = rec.mutations().map((c) => (c.op === "startService" ? `start:${c.id}` : `${c.op}:${c.id}`));
    expect(ops).to.deep.equal([`stopAndRemove:${id1}`, `start:${id2}`]);
    expect(await e.runtime.status(id1)).to.equal(null);
    expect(h.replayMatches()).to.equal(true);
  });

  it("an unchanged score, keys reordered, is a no-op", async () => {
    const { e, h } = start();
    const hash1 = h.update({ services: [{ name: "web", image: e.images.v1, env: { A: "1", B: "2" } }], lifecycle: { stop_signal: "SIGTERM", grace_period_secs: 5 } });
    await h.settled();
    const transitions = h.journal.length;
    rec.clear();
    const hash2 = h.update({ lifecycle: { grace_period_secs: 5, stop_signal: "SIGTERM" }, services: [{ env: { B: "2", A: "1" }, image: e.images.v1, name: "web" }] });
    await h.settled();
    expect(hash2).to.equal(hash1);
    expect(h.journal.length, "transitions after the same score").to.equal(transitions);
    expect(rec.calls).to.deep.equal([]);
  });

  it("a failed upgrade ends failed and is never reverted", async () => {
    const { e, h } = start();
    const hash1 = h.update(web(e.images.v1));
    const id1 = (await h.settled()).context.containerIds["web"]!;
    e.arrangeCrash?.(h.input.deployment, "web");
    h.update(web(e.images.crash));
    const s = await h.settled();
    expect(s.value).to.equal("failed");
    expect(s.context.lastError).to.match(/web/);
    rec.clear();
    for (let i = 0; i < e.ticks; i++) await h.tick();
    expect(h.state).to.equal("failed");
    expect(rec.mutations(), "no container of the earlier score is started again").to.deep.equal([]);
    expect(await e.runtime.status(id1)).to.equal(null);
    const running = (await e.runtime.list()).filter((c) => c.deployment === h.input.deployment && c.state === "running");
    expect(running.filter((c) => c.scoreHash === hash1)).to.deep.equal([]);
    expect(h.replayMatches()).to.equal(true);
  });
}
