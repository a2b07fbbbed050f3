// One journal event: a transition of one deployment's machine, as appended locally and published
// to `fleet.events.<device>.<deployment>` with Nats-Msg-Id `<device>.<deployment>.<n>`.
import * as t from "io-ts";
import { refine, struct } from "./decode.js";
import { IsoTime, MachineState } from "./deployment-state.codec.js";
import { DeploymentName, DeviceId } from "./names.js";

/** The event that caused the transition: an XState event, with an error flattened to `{message}`. */
export const JournalCause = refine(t.UnknownRecord, "MachineEvent", (e) =>
  typeof e["type"] === "string" && e["type"].length > 0 ? null : "expected an event with a string `type`",
);

export const JournalEvent = struct("JournalEvent", {
  v: t.literal(1),
  device: DeviceId,
  deployment: DeploymentName,
  n: refine(t.number, "EventNumber", (n) => (Number.isInteger(n) && n >= 1 ? null : `expected an integer ≥ 1, got ${n}`)),
  at: IsoTime,
  event: JournalCause,
  from: MachineState,
  to: MachineState,
});
export type JournalEvent = t.TypeOf<typeof JournalEvent>;
