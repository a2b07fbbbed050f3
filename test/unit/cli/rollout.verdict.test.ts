import { expect } from "chai";
import { verdict, type Soak } from "../../../cli/rollout.command.js";
import type { DeploymentState, ServiceStatus } from "../../../contracts/deployment-state.codec.js";

const HASH = `sha256:${"a".repeat(64)}`;
const OLD = `sha256:${"b".repeat(64)}`;
const web = (over: Partial<ServiceStatus> = {}): ServiceStatus => ({
  container_id: "c1",
  image: "img/web:2",
  state: "running",
  health: "healthy",
  restarts: 0,
  last_exit_code: null,
  restart_at: null,
  ...over,
});
const state = (over: Partial<DeploymentState> = {}): DeploymentState => ({
  device: "pi-1",
  deployment: "app",
  phase: "Running",
  state: "running",
  score_hash: HASH,
  desired_revision: 7,
  container_ids: { web: "c1" },
  last_error: null,
  last_event_seq: 9,
  last_event_at: "2026-12-01T10:00:00.000Z",
  retry_at: null,
  services: { web: web() },
  ...over,
});

describe("rollout: a device's verdict on the wave (pure)", () => {
  it("Running on the new hash soaks first, and is done once it stayed so for the soak", () => {
    const first = verdict(state(), HASH, 7, null, 1000, 30_000);
    expect(first.kind).to.equal("soaking");
    const soak = (first as { soak: Soak }).soak;
    expect(verdict(state(), HASH, 7, soak, 30_999, 30_000).kind).to.equal("soaking");
    expect(verdict(state(), HASH, 7, soak, 31_000, 30_000).kind).to.equal("done");
    expect(verdict(state(), HASH, 7, null, 1000, 0).kind).to.equal("done");
  });

  it("a restart during the soak halts, naming the service", () => {
    const soak: Soak = { since: 0, restarts: { web: 0 } };
    expect(verdict(state({ services: { web: web({ restarts: 1 }) } }), HASH, 7, soak, 5000, 30_000)).to.deep.equal({
      kind: "halt",
      outcome: "degraded",
      service: "web",
      why: "restarted during the soak (restarts 1)",
    });
  });

  it("Degraded on the new hash halts with the service and why", () => {
    const s = state({ phase: "Degraded", services: { web: web({ state: "exited", last_exit_code: 1, restarts: 2, restart_at: "2026-12-01T10:00:20.000Z" }) } });
    expect(verdict(s, HASH, 7, null, 0, 30_000)).to.deep.equal({
      kind: "halt",
      outcome: "degraded",
      service: "web",
      why: "exited with code 1 (restarts 2, next restart at 2026-12-01T10:00:20.000Z)",
    });
    const sick = state({ phase: "Degraded", services: { web: web({ health: "unhealthy", restarts: 1 }) } });
    expect(verdict(sick, HASH, 7, null, 0, 30_000)).to.include({ kind: "halt", service: "web", why: "unhealthy (restarts 1)" });
  });

  it("Failed after our write halts with its error; before it, or Degraded on the old hash, waits", () => {
    const failed = state({ phase: "Failed", state: "failed", last_error: "pull: manifest unknown", retry_at: "2026-12-01T10:00:10.000Z" });
    expect(verdict(failed, HASH, 7, null, 0, 30_000)).to.deep.equal({ kind: "halt", outcome: "failed", why: "pull: manifest unknown" });
    expect(verdict({ ...failed, desired_revision: 6 }, HASH, 7, null, 0, 30_000).kind).to.equal("wait");
    expect(verdict(state({ phase: "Degraded", score_hash: OLD, desired_revision: 6 }), HASH, 7, null, 0, 30_000).kind).to.equal("wait");
    expect(verdict(state({ phase: "Pending", state: "verifying" }), HASH, 7, null, 0, 30_000).kind).to.equal("wait");
    expect(verdict(null, HASH, 7, null, 0, 30_000).kind).to.equal("wait");
  });
});
