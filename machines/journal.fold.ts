// Recovery and inspection: rebuild a deployment's snapshot from its journal through the machine's
// pure `transition`, calling no actor (invariant 5).
import { initialTransition, transition, type AnyEventObject } from "xstate";
import { deploymentMachine, type DeploymentInput, type DeploymentSnapshot } from "./deployment.machine.js";

/** Folds events in order. A deployment that reached `removed` and was deployed again starts afresh. */
export function foldJournal(input: DeploymentInput, events: readonly AnyEventObject[]): DeploymentSnapshot {
  return foldSteps(input, events).at(-1) ?? initialTransition(deploymentMachine, input)[0];
}

/** Every intermediate snapshot, for a visualiser that steps through a timeline. */
export function foldSteps(input: DeploymentInput, events: readonly AnyEventObject[]): DeploymentSnapshot[] {
  const [initial] = initialTransition(deploymentMachine, input);
  const out: DeploymentSnapshot[] = [];
  let snapshot = initial;
  for (const event of events) {
    if (snapshot.status === "done") snapshot = initial;
    [snapshot] = transition(deploymentMachine, snapshot, event as never);
    out.push(snapshot);
  }
  return out;
}
