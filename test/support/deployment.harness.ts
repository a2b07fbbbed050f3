// Runs one deployment's machine against a runtime the way the agent does (UPDATE, REJECT, DELETE,
// TICK from one list call) and keeps its journal, for unit, model and integration tests.
import { createActor, waitFor, type Actor } from "xstate";
import { canonicalHash } from "../../contracts/canonical-json.js";
import { ReconcileScore, type PodmanV0Score } from "../../contracts/score.codec.js";
import { decode } from "../../contracts/decode.js";
import { runtimeDeploymentMachine } from "../../agent/deployments/executor.js";
import type { DeploymentInput, DeploymentSnapshot } from "../../machines/deployment.machine.js";
import { foldJournal } from "../../machines/journal.fold.js";
import { snapshotView, transitionRecorder, type Transition } from "../../machines/transition.recorder.js";
import type { ContainerRuntime } from "../../runtime/container-runtime.js";

const SETTLED = new Set(["running", "failed", "removed"]);

export class DeploymentHarness {
  readonly journal: Transition[] = [];
  readonly actor: Actor<ReturnType<typeof runtimeDeploymentMachine>>;
  private revision = 0;

  constructor(
    readonly runtime: ContainerRuntime,
    readonly input: DeploymentInput,
    now: () => number = Date.now,
  ) {
    this.now = now;
    this.actor = createActor(runtimeDeploymentMachine(runtime, { now }), {
      input,
      inspect: transitionRecorder((t) => this.journal.push(t)),
    });
    this.actor.start();
  }
  private readonly now: () => number;

  get snapshot(): DeploymentSnapshot {
    return this.actor.getSnapshot();
  }
  get state(): string {
    return String(this.snapshot.value);
  }

  /** Sends a desired score as the agent would after decoding; returns its hash. */
  update(score: PodmanV0Score | ReconcileScore): string {
    const full: ReconcileScore = "type" in score ? score : { type: "PodmanV0", data: score };
    const hash = canonicalHash(full);
    this.actor.send({ type: "UPDATE", score: full.data, hash, revision: ++this.revision, at: this.now() });
    return hash;
  }

  /** Sends a raw desired value through the decoder, as the watcher does. */
  desired(value: unknown): string | null {
    const r = decode(ReconcileScore, value);
    if (r.ok) return this.update(r.value);
    this.actor.send({ type: "REJECT", error: r.errors.join("; "), revision: ++this.revision, at: this.now() });
    return null;
  }

  delete(): void {
    this.actor.send({ type: "DELETE", revision: ++this.revision, at: this.now() });
  }

  /** One list call for the device, then TICK with this deployment's containers. */
  async tick(): Promise<DeploymentSnapshot> {
    const all = await this.runtime.list();
    this.actor.send({ type: "TICK", containers: all.filter((c) => c.deployment === this.input.deployment), at: this.now() });
    return this.settled();
  }

  /** Waits until no step is in flight and nothing is queued. */
  settled(timeout = 60_000): Promise<DeploymentSnapshot> {
    return waitFor(this.actor, (s) => SETTLED.has(String(s.value)) && s.context.next === null, { timeout });
  }

  /** The journal folded through the pure `transition`: must equal the live snapshot (invariant 5). */
  replay(): DeploymentSnapshot {
    return foldJournal(this.input, this.journal.map((t) => t.event));
  }
  replayMatches(): boolean {
    return snapshotView(this.replay()) === snapshotView(this.snapshot);
  }

  /** Transitions as `from→to` strings, for readable assertions. */
  path(): string[] {
    return this.journal.map((t) => `${t.from}→${t.to}`);
  }

  stop(): void {
    this.actor.stop();
  }
}
