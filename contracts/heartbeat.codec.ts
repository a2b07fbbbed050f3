// `device-heartbeat/<device>`: written each tick; its age tells operators a device is alive.
import * as t from "io-ts";
import { dict, struct } from "./decode.js";
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
  /** The device's own signature of this report (docs/design.md, "Report signatures"). */
  signed: ReportSignature,
});
export type Heartbeat = t.TypeOf<typeof Heartbeat>;
