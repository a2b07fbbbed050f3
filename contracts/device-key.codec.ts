// `device-keys/<device>`: the public half of a device's nkey, recorded by the operator when the
// device is added (`fleetctl device add`). Only the operator writes this bucket; it is what a
// device's reports are checked against (docs/design.md, "Report signatures").
import type * as t from "io-ts";
import { struct } from "./decode.js";
import { IsoTime } from "./deployment-state.codec.js";
import { DeviceId } from "./names.js";
import { UserPublicKey } from "./nkey.js";

export const DeviceKey = struct("DeviceKey", {
  device: DeviceId,
  public_key: UserPublicKey,
  added_at: IsoTime,
});
export type DeviceKey = t.TypeOf<typeof DeviceKey>;
