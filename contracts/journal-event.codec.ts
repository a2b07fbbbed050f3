// One journal event: a transition of one deployment's machine, as appended locally and published
// to `fleet.events.<device>.<deployment>` with Nats-Msg-Id `<device>.<deployment>.<n>`.
//
// Version 2 (written since December 2026) names its cause in a closed domain vocabulary, one exact
// codec per type below; version 1 carried XState's own event (`xstate.done.actor.stopOld`) and is
// still read, so journals already in streams and state dirs replay and display. machines/
// journal.vocabulary.ts translates both to and from the machine's events.
import * as t from "io-ts";
import { describe, dict, isPlainObject, nullable, refine, struct, tagged } from "./decode.js";
import { IsoTime, MachineState, ScoreHash, Seq } from "./deployment-state.codec.js";
import { DeploymentName, DeviceId, ServiceName } from "./names.js";
import { ImageRef, PodmanV0Score } from "./score.codec.js";

const EventNumber = refine(t.number, "EventNumber", (n) => (Number.isInteger(n) && n >= 1 ? null : `expected an integer ≥ 1, got ${n}`));

// ---- version 2: the domain vocabulary ----------------------------------------------------------

/** When the event happened, in epoch milliseconds: the machine's own clock value, kept exact for replay. */
export const EpochMs = refine(t.number, "EpochMs", (n) => (Number.isInteger(n) && n >= 0 ? null : `expected epoch milliseconds (an integer ≥ 0), got ${n}`));
const ContainerId = refine(t.string, "ContainerId", (s) => (s.length > 0 && s.length <= 128 ? null : `expected a container id of 1 to 128 characters, got ${s.length}`));
const Text = refine(t.string, "Text", (s) => (s.length <= 64 * 1024 ? null : `must be at most 65536 characters, got ${s.length}`));

/** The steps a deployment's machine runs (`verify`: readiness, docs/design.md "Service health"). */
export const STEPS = ["pull", "stop", "start", "verify", "remove"] as const;
export type Step = (typeof STEPS)[number];
export const StepName = t.keyof(Object.fromEntries(STEPS.map((s) => [s, null])) as Record<Step, null>, "Step");

/** A step that did part of its work, then failed on one service (its name as the container's label gives it). */
export const StepFailure = struct("StepFailure", { service: t.string, message: Text });
/** A start that failed on one service; `id` when its container exists (it exited at start). */
export const StartFailure = struct("StartFailure", { service: t.string, message: Text }, { id: ContainerId });
/** One container of the deployment as a device-wide list saw it. */
export const ObservedContainer = struct("ObservedContainer", { service: t.string, id: ContainerId, state: t.string });

/** A codec for event `type`: `{type, at}` and the payload, nothing else. */
function event<T extends string, R extends t.Props, O extends t.Props = {}>(type: T, required: R, optional?: O) {
  return struct(type, { type: t.literal(type), at: EpochMs, ...required }, optional);
}

/** `signed_at`: when the operator signed the value, on a device that checks signatures (docs/design.md, "Signed desired state"). */
export const DesiredUpdated = event("desired.updated", { hash: ScoreHash, revision: Seq, score: PodmanV0Score }, { signed_at: IsoTime });
export const DesiredRetried = event("desired.retried", { hash: ScoreHash, revision: Seq });
export const DesiredRejected = event("desired.rejected", { revision: Seq, error: Text });
export const DesiredDeleted = event("desired.deleted", { revision: Seq });
export const PullDone = event("pull.done", { images: t.array(ImageRef) });
export const PullFailed = event("pull.failed", { error: Text }, { retry_at: EpochMs });
export const StopDone = event("stop.done", { stopped: t.array(ServiceName), swept: t.array(ContainerId) }, { failure: StepFailure });
export const StopFailed = event("stop.failed", { error: Text });
export const StartDone = event("start.done", { started: dict("Started", ServiceName, ContainerId) }, { failure: StartFailure, retry_at: EpochMs });
export const StartFailed = event("start.failed", { error: Text }, { retry_at: EpochMs });
export const VerifyDone = event("verify.done", { ready: t.array(ServiceName) });
export const VerifyFailed = event("verify.failed", { service: ServiceName, reason: Text }, { retry_at: EpochMs });
export const RemoveDone = event("remove.done", { removed: t.array(ContainerId) }, { failure: StepFailure });
export const RemoveFailed = event("remove.failed", { error: Text });
export const StepTimedOut = event("step.timed_out", { step: StepName }, { retry_at: EpochMs });
/** A failed step's forward retry came due (docs/design.md, "Service health"): the step runs again, toward the same target. */
export const StepRetried = event("step.retried", { step: StepName });
export const LivenessRepair = event("liveness.repair", { services: t.array(ServiceName), observed: t.array(ObservedContainer) });
export const ServiceExited = event("service.exited", { service: ServiceName, exit_code: nullable(t.number), restart_at: nullable(EpochMs) });
export const ServiceRestarted = event("service.restarted", { service: ServiceName, id: ContainerId, restarts: Seq }, { by: t.keyof({ agent: null, operator: null }) });
export const ServiceUnhealthy = event("service.unhealthy", { service: ServiceName, output: Text });
export const ServiceHealthy = event("service.healthy", { service: ServiceName, output: Text });
export const AgentResumed = event("agent.resumed", { state: MachineState });

const DOMAIN_EVENTS = {
  "desired.updated": DesiredUpdated,
  "desired.retried": DesiredRetried,
  "desired.rejected": DesiredRejected,
  "desired.deleted": DesiredDeleted,
  "pull.done": PullDone,
  "pull.failed": PullFailed,
  "stop.done": StopDone,
  "stop.failed": StopFailed,
  "start.done": StartDone,
  "start.failed": StartFailed,
  "verify.done": VerifyDone,
  "verify.failed": VerifyFailed,
  "remove.done": RemoveDone,
  "remove.failed": RemoveFailed,
  "step.timed_out": StepTimedOut,
  "step.retried": StepRetried,
  "liveness.repair": LivenessRepair,
  "service.exited": ServiceExited,
  "service.restarted": ServiceRestarted,
  "service.unhealthy": ServiceUnhealthy,
  "service.healthy": ServiceHealthy,
  "agent.resumed": AgentResumed,
} as const;

export type DomainEventType = keyof typeof DOMAIN_EVENTS;
/** Every type of the vocabulary, in the order of the table in docs/design.md. */
export const DOMAIN_EVENT_TYPES = Object.keys(DOMAIN_EVENTS) as DomainEventType[];
const KNOWN = new Set<string>(DOMAIN_EVENT_TYPES);
export const isDomainEventType = (type: string): type is DomainEventType => KNOWN.has(type);

/** The cause of a v2 transition: one of the vocabulary's events, decoded exactly by its type's codec. */
export const DomainEvent = tagged("DomainEvent", "type", DOMAIN_EVENTS, (type) =>
  typeof type === "string" ? `unknown event type ${JSON.stringify(type.slice(0, 60))}` : "expected an event with a string `type`",
);
export type DomainEvent = t.TypeOf<typeof DomainEvent>;
export type DomainEventOf<T extends DomainEventType> = Extract<DomainEvent, { type: T }>;

export const JournalEventV2 = struct("JournalEvent", {
  v: t.literal(2),
  device: DeviceId,
  deployment: DeploymentName,
  n: EventNumber,
  /** When the event was journaled (ISO); the cause's own `at` is when it happened (epoch ms). */
  at: IsoTime,
  event: DomainEvent,
  from: MachineState,
  to: MachineState,
});
export type JournalEventV2 = t.TypeOf<typeof JournalEventV2>;

// ---- version 1: read, never written ------------------------------------------------------------

/** A v1 cause: the XState event as it was (`UPDATE`, `xstate.done.actor.pull`, …), an error flattened to `{message}`. */
export type JournalCauseV1 = { type: string; [k: string]: unknown };
const isCauseV1 = (u: unknown): u is JournalCauseV1 => isPlainObject(u) && typeof u["type"] === "string" && u["type"].length > 0;
export const JournalCauseV1 = new t.Type<JournalCauseV1, JournalCauseV1, unknown>(
  "MachineEvent",
  isCauseV1,
  (u, ctx) =>
    isCauseV1(u) ? t.success(u) : t.failure(u, ctx, isPlainObject(u) ? "expected an event with a string `type`" : `expected UnknownRecord, got ${describe(u)}`),
  t.identity,
);

export const JournalEventV1 = struct("JournalEvent", {
  v: t.literal(1),
  device: DeviceId,
  deployment: DeploymentName,
  n: EventNumber,
  at: IsoTime,
  event: JournalCauseV1,
  from: MachineState,
  to: MachineState,
});
export type JournalEventV1 = t.TypeOf<typeof JournalEventV1>;

// ---- either, as read from a journal file or the stream -----------------------------------------

/** A journal line of either version (the `v` field tells them apart). Writers write v2 only. */
export const JournalEvent = tagged("JournalEvent", "v", { 1: JournalEventV1, 2: JournalEventV2 });
export type JournalEvent = t.TypeOf<typeof JournalEvent>;

/** What caused a journaled transition, of either version: what the fold takes. */
export type JournalCause = DomainEvent | JournalCauseV1;
