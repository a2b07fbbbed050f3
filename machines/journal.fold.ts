// Recovery and inspection: rebuild a deployment's snapshot from its journal through the machine's
// pure transition, calling no actor (invariant 5).
import { createActor, initialTransition, type ActorScope, type AnyEventObject } from "xstate";
import { deploymentMachine, type DeploymentEvent, type DeploymentInput, type DeploymentSnapshot } from "./deployment.machine.js";

/** Folds events in order. A deployment that reached `removed` and was deployed again starts afresh. */
export function foldJournal(input: DeploymentInput, events: readonly AnyEventObject[], from?: DeploymentSnapshot): DeploymentSnapshot {
  let last: DeploymentSnapshot | undefined;
  fold(input, events, (s) => (last = s), from);
  return last ?? from ?? initialTransition(deploymentMachine, input)[0];
}

/** Every intermediate snapshot, for a visualiser that steps through a timeline. */
export function foldSteps(input: DeploymentInput, events: readonly AnyEventObject[]): DeploymentSnapshot[] {
  const out: DeploymentSnapshot[] = [];
  fold(input, events, (s) => out.push(s));
  return out;
}

/** Folds events in order, handing each snapshot to `each` (recovery looks at every step without keeping them). */
export function fold(input: DeploymentInput, events: readonly AnyEventObject[], each: (s: DeploymentSnapshot) => void, from?: DeploymentSnapshot) {
  const [initial] = initialTransition(deploymentMachine, input);
  const scope = inertScope(input);
  let snapshot = from ?? initial;
  for (const event of events) {
    if (snapshot.status === "done") snapshot = initial;
    snapshot = deploymentMachine.transition(snapshot, event as DeploymentEvent, scope);
    each(snapshot);
  }
}

/**
 * What xstate's `transition()` builds on every call (a new actor and actor system: a quarter of a
 * fold's time), built once per fold. Its action executor drops every action, so nothing runs and no
 * invoked actor starts: the snapshots are the same as `transition()`'s.
 */
function inertScope(input: DeploymentInput): ActorScope<DeploymentSnapshot, DeploymentEvent> {
  const self = createActor(deploymentMachine, { input });
  const ignore = () => {};
  return { self, id: "", sessionId: "", system: self.system, logger: ignore, defer: ignore, emit: ignore, stopChild: ignore, actionExecutor: ignore };
}
