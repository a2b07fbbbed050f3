// `device-heartbeat/<device>`: written each tick; its age tells operators a device is alive.
import * as t from "io-ts";
import { dict, refine, struct } from "./decode.js";
import { IsoTime, Phase } from "./deployment-state.codec.js";
import { DeploymentName, DeviceId } from "./names.js";

export const Heartbeat = struct("Heartbeat", {
  device: DeviceId,
  agent_version: t.string,
  at: IsoTime,
  /** deployment → its phase at this tick. */
  deployments: dict("DeploymentPhases", DeploymentName, Phase),
}, {
  /** The agent's own tick: a heartbeat older than a few of these marks the device stale. */
  tick_secs: refine(t.number, "TickSecs", (n) => (n > 0 && Number.isFinite(n) ? null : `expected a positive number, got ${n}`)),
});
export type Heartbeat = t.TypeOf<typeof Heartbeat>;
