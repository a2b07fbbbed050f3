// Checkpoints of a deployment's snapshot every so many journal events, so recovery folds only the
// tail of a long journal: `<stateDir>/checkpoints/<deployment>.json`, mode 0600 (like the score
// store, it holds full scores), written atomically. The journal stays the record; a checkpoint
// that is missing, unreadable, ahead of the journal or of another machine version (MACHINE_VERSION:
// its context may not mean what this machine's does) is ignored and the journal is folded instead.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MACHINE_STATES } from "../../contracts/deployment-state.codec.js";
import { isPlainObject } from "../../contracts/decode.js";
import { deploymentMachine, MACHINE_VERSION, type DeploymentContext, type DeploymentSnapshot } from "../../machines/deployment.machine.js";
import { writeFileDurably } from "./durable-file.js";

export interface Checkpoint {
  /** The journal event after which the snapshot was taken. */
  n: number;
  snapshot: DeploymentSnapshot;
}

export class CheckpointStore {
  private constructor(readonly dir: string) {}

  static open(stateDir: string): CheckpointStore {
    const dir = join(stateDir, "checkpoints");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return new CheckpointStore(dir);
  }

  async put(deployment: string, n: number, snapshot: DeploymentSnapshot): Promise<void> {
    await writeFileDurably(this.fileOf(deployment), JSON.stringify({ machine: MACHINE_VERSION, n, value: snapshot.value, context: snapshot.context }));
  }

  /** The deployment's checkpoint, or null (none, not one this agent wrote for it, or of another machine version). */
  get(device: string, deployment: string): Checkpoint | null {
    let u: unknown;
    try {
      u = JSON.parse(readFileSync(this.fileOf(deployment), "utf8"));
    } catch {
      return null;
    }
    if (!isPlainObject(u) || u["machine"] !== MACHINE_VERSION || !Number.isInteger(u["n"]) || !(MACHINE_STATES as readonly unknown[]).includes(u["value"])) return null;
    const context = u["context"];
    if (!isPlainObject(context) || context["device"] !== device || context["deployment"] !== deployment) return null;
    const snapshot = deploymentMachine.resolveState({ value: u["value"] as string, context: context as unknown as DeploymentContext });
    return { n: u["n"] as number, snapshot };
  }

  private fileOf(deployment: string) {
    return join(this.dir, `${deployment}.json`);
  }
}
