import { expect } from "chai";
import type { DeploymentState } from "../../contracts/deployment-state.codec.js";
import type { DesiredEntry } from "../../fleet/fleet.client.js";
import { deploymentRow, desiredView, serviceRows, summarise, type DeviceRow } from "../../inspector/views.js";

const base: DeploymentState = {
  device: "pi-1", deployment: "app", phase: "Running", state: "running", score_hash: null, desired_revision: 1,
  container_ids: { web: "w1", db: "d1" }, last_error: null, last_event_seq: 4, last_event_at: null,
};
const desired: DesiredEntry = {
  key: "pi-1.app", revision: 1, hash: null, signed: null, errors: [],
  score: { type: "PodmanV0", data: { services: [{ name: "web", image: "img/web:2", env: { TOKEN: "s3cr3t" }, ports: [{ host_port: 8080, container_port: 80 }] }, { name: "db", image: "img/db:1" }] } },
};

describe("dashboard views", () => {
  it("per service: the agent's report where it gives one, else the desired image marked as such", () => {
    const reported: DeploymentState = {
      ...base,
      services: { web: { container_id: "w1", image: "img/web:1", state: "running", health: "unhealthy", restarts: 2, last_exit_code: 1, restart_at: null } },
    };
    expect(serviceRows(reported, desired)).to.deep.equal([
      { service: "web", image: "img/web:1", image_source: "reported", container_id: "w1", state: "running", health: "unhealthy", restarts: 2, last_exit_code: 1, restart_at: null },
      { service: "db", image: "img/db:1", image_source: "desired", container_id: "d1", state: null, health: null, restarts: null, last_exit_code: null, restart_at: null },
    ]);
    // A service that runs but is no longer desired still shows, with what is known of it.
    expect(serviceRows({ ...base, container_ids: { old: "o1" } }, null)).to.deep.equal([
      { service: "old", image: null, image_source: null, container_id: "o1", state: null, health: null, restarts: null, last_exit_code: null, restart_at: null },
    ]);
  });

  it("the summary counts deployments by phase, failing ones, stale and unsigned devices", () => {
    const row = (phase: DeploymentState["phase"]) => deploymentRow({ ...base, phase }, null);
    const dev = (stale: boolean, signing: DeviceRow["signing"], phases: Array<DeploymentState["phase"]>): DeviceRow => ({
      device: "d", info: null, heartbeat: null, heartbeat_age_ms: null, tick_secs: 30, tick_from_device: false, stale, signing, device_key: null,
      checks: { info: null, heartbeat: null, deployments: {} }, deployments: phases.map(row),
    });
    expect(summarise([dev(false, "on", ["Running", "Degraded"]), dev(true, "off", ["Failed", "Pending", "Running"]), dev(false, "unknown", [])])).to.deep.equal({
      devices: 3, stale: 1, unsigned: 1, deployments: 5, phases: { Pending: 1, Running: 2, Degraded: 1, Failed: 1 }, failing: 2,
    });
  });

  it("the desired state as shown: env variable names, never values", () => {
    const v = desiredView(desired)!;
    expect(v.signed).to.equal(null);
    expect(v.services[0]).to.deep.equal({ name: "web", image: "img/web:2", env: ["TOKEN"], ports: ["8080:80"], volumes: [], health: false });
    expect(JSON.stringify(v)).to.not.include("s3cr3t");
  });
});
