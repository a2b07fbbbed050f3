// `device-info/<device>`: written once at agent start.
import * as t from "io-ts";
import { nullable, refine, struct } from "./decode.js";
import { DeviceId } from "./names.js";
import { UserPublicKey } from "./nkey.js";
import { ReportSignature } from "./report-signature.js";

export const DeviceInfo = struct("DeviceInfo", {
  device: DeviceId,
  hostname: t.string,
  arch: t.string,
  podman_version: nullable(t.string),
  agent_version: t.string,
}, {
  /**
   * Whether the agent applies only operator-signed desired values. Absent (an agent from before
   * signing) reads as "off": such a device runs whatever is written to its desired state.
   */
  signing: t.keyof({ on: null, off: null }),
  /** The operator keys it trusts, when signing is on. */
  operator_keys: refine(t.array(UserPublicKey), "OperatorKeys", (a) => (a.length === 0 ? "expected at least 1 key" : null)),
  /** The device's own signature of this report (docs/design.md, "Report signatures"). */
  signed: ReportSignature,
});
export type DeviceInfo = t.TypeOf<typeof DeviceInfo>;
