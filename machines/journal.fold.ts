// Recovery and inspection: rebuild a deployment's snapshot from its journal through the machine's
// pure transition, calling no actor (invariant 5). Each journaled cause (v2, or v1's XState names)
// becomes the machine event that replays it through machines/journal.vocabulary.ts.
import { createActor, initialTransition, type ActorScope } from "xstate";
import type { DomainEvent, JournalCause } from "../contracts/journal-event.codec.js";
import { deploymentMachine, type DeploymentEvent, type DeploymentInput, type DeploymentSnapshot } from "./deployment.machine.js";
import { domainEventOf, isDomainCause, machineEventOf, type MachineEvent } from "./journal.vocabulary.js";

/** One folded event: the cause in the domain vocabulary (a v1 cause translated) and the snapshot after it. */
export interface FoldStep {
  event: DomainEvent;
  snapshot: DeploymentSnapshot;
}

/** Folds events in order. A deployment that reached `removed` and was deployed again starts afresh. */
export function foldJournal(input: DeploymentInput, events: readonly JournalCause[], from?: DeploymentSnapshot): DeploymentSnapshot {
  let last: DeploymentSnapshot | undefined;
  fold(input, events, (s) => (last = s), from);
  return last ?? from ?? initialTransition(deploymentMachine, input)[0];
}

/** Every intermediate snapshot with its cause, for a timeline and a visualiser that steps through it. */
export function foldSteps(input: DeploymentInput, events: readonly JournalCause[]): FoldStep[] {
  const out: FoldStep[] = [];
  fold(input, events, (snapshot, event) => out.push({ event, snapshot }));
  return out;
}

function fold(input: DeploymentInput, events: readonly JournalCause[], each: (s: DeploymentSnapshot, e: DomainEvent) => void, from?: DeploymentSnapshot) {
  const [initial] = initialTransition(deploymentMachine, input);
  const scope = inertScope(input);
  let snapshot = from ?? initial;
  for (const cause of events) {
    if (snapshot.status === "done") snapshot = initial;
    const event = domainEventOf(cause, snapshot);
    const machineEvent = machineEventOf(event, snapshot);
    // XState types `transition` with the events the machine is sent; its step actors' outcomes
    // (`xstate.done.actor.*`) are the machine's events too.
    if (machineEvent) snapshot = deploymentMachine.transition(snapshot, machineEvent as DeploymentEvent, scope);
    // A version 1 journal knows no readiness step: a start it records as done was ready then.
    if (!isDomainCause(cause) && snapshot.value === "verifying") snapshot = deploymentMachine.transition(snapshot, readyAt(snapshot, event.at) as DeploymentEvent, scope);
    each(snapshot, event);
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

/** Every service the readiness step of `s` waits for, ready at `at`. */
function readyAt(s: DeploymentSnapshot, at: number): MachineEvent {
  return { type: "xstate.done.actor.verify", output: { ready: (s.context.plan?.start ?? []).map((x) => x.service.name), at } };
}
