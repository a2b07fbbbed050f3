// Turns a running deployment actor's inspection stream into transitions: one per macrostep that
// changed the state or the context. That is the unit the journal records, and the unit a replay
// through `transition` reproduces; a healthy tick or a same-hash update changes nothing and
// records nothing. Each transition's cause is named in the journal's vocabulary.
import type { InspectionEvent } from "xstate";
import type { MachineState } from "../contracts/deployment-state.codec.js";
import type { DomainEvent } from "../contracts/journal-event.codec.js";
import type { DeploymentSnapshot } from "./deployment.machine.js";
import { isMachineEvent, journalEventOf } from "./journal.vocabulary.js";

export interface Transition {
  /** The cause, as the journal keeps it (v2). */
  event: DomainEvent;
  from: MachineState;
  to: MachineState;
  snapshot: DeploymentSnapshot;
}

/** The part of a snapshot a replay must reproduce exactly (a live actor's "stopped" is not a state). */
export const snapshotView = (s: DeploymentSnapshot) => JSON.stringify({ value: s.value, done: s.status === "done", context: s.context });

/** An `inspect` callback for `createActor` that reports the root actor's transitions. */
export function transitionRecorder(onTransition: (t: Transition) => void, initial?: DeploymentSnapshot) {
  type Seen = { value: MachineState; status: string; context: DeploymentSnapshot["context"]; view: string };
  const seen = (s: DeploymentSnapshot): Seen => ({ value: s.value as MachineState, status: s.status, context: s.context, view: snapshotView(s) });
  let last: Seen | null = initial ? seen(initial) : null;
  return (ev: InspectionEvent) => {
    if (ev.type !== "@xstate.snapshot" || ev.actorRef.sessionId !== ev.rootId) return;
    const snapshot = ev.snapshot as DeploymentSnapshot;
    // Stopping an actor (shutdown, or a crash in a test) is not a transition of the deployment.
    if (snapshot.status === "stopped") return;
    // No assign ran and the state stayed (a healthy tick): nothing changed, nothing to serialise.
    if (last && last.context === snapshot.context && last.value === snapshot.value && last.status === snapshot.status) return;
    const prev = last;
    last = seen(snapshot);
    if (!prev || prev.view === last.view) return;
    const cause = ev.event;
    if (!isMachineEvent(cause)) throw new Error(`transition caused by ${JSON.stringify(cause.type)}, which the journal has no name for`);
    onTransition({ event: journalEventOf(cause, prev), from: prev.value, to: last.value, snapshot });
  };
}
