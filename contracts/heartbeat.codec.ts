// `device-heartbeat/<device>`: written each tick; its age tells operators a device is alive.
import * as t from "io-ts";
import { dict, refine, struct } from "./decode.js";
import { IsoTime, Phase } from "./deployment-state.codec.js";
import { DeploymentName, DeviceId } from "./names.js";
import { ReportSignature } from "./report-signature.js";

export const Heartbeat = struct("Heartbeat", {
  device: DeviceId,
  agent_version: t.string,
  at: IsoTime,
  /** deployment → its phase at this tick. */
  deployments: dict("DeploymentPhases", DeploymentName, Phase),
}, {
  /** The agent's tick in seconds: a heartbeat is late by the device's own tick, not a guess (absent from older agents). */
  tick_secs: refine(t.number, "TickSecs", (n) => (Number.isFinite(n) && n > 0 ? null : `expected a positive number of seconds, got ${n}`), { minimum: 0 }),
  /** The device's own signature of this report (docs/design.md, "Report signatures"). */
  signed: ReportSignature,
});
export type Heartbeat = t.TypeOf<typeof Heartbeat>;
