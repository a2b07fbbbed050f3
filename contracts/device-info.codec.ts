// `device-info/<device>`: written once at agent start.
import * as t from "io-ts";
import { nullable, struct } from "./decode.js";
import { DeviceId } from "./names.js";

export const DeviceInfo = struct("DeviceInfo", {
  device: DeviceId,
  hostname: t.string,
  arch: t.string,
  podman_version: nullable(t.string),
  agent_version: t.string,
}, {
  /** "off": the agent applies unsigned desired values (started without operator keys). */
  signing: t.keyof({ on: null, off: null }, "Signing"),
});
export type DeviceInfo = t.TypeOf<typeof DeviceInfo>;
