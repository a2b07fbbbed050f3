// Checkpoints of a deployment's snapshot every so many journal events, so recovery folds only the
// tail of a long journal: `<stateDir>/checkpoints/<deployment>.json`, mode 0600 (like the score
// store, it holds full scores), written atomically. The journal stays the record; a checkpoint
// that is missing, unreadable, ahead of the journal or of another machine version (MACHINE_VERSION:
// its context may not mean what this machine's does) is ignored and the journal is folded instead;
// one that does not read back is moved aside and reported (docs/design.md, "Storage faults").
import { mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { MACHINE_STATES } from "../../contracts/deployment-state.codec.js";
import { isPlainObject } from "../../contracts/decode.js";
import { deploymentMachine, MACHINE_VERSION, type DeploymentContext, type DeploymentSnapshot } from "../../machines/deployment.machine.js";
import { removeStaleTemps, StorageError, writeFileDurably } from "./durable-file.js";
import type { StorageHealth } from "./storage.health.js";

export interface Checkpoint {
  /** The journal event after which the snapshot was taken. */
  n: number;
  snapshot: DeploymentSnapshot;
}

export class CheckpointStore {
  private constructor(readonly dir: string, private readonly health?: StorageHealth) {}

  static open(stateDir: string, health?: StorageHealth): CheckpointStore {
    const dir = join(stateDir, "checkpoints");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    removeStaleTemps(dir);
    return new CheckpointStore(dir, health);
  }

  /** Writes the checkpoint; a failure throws a StorageError naming the file (nothing is left behind). */
  async put(deployment: string, n: number, snapshot: DeploymentSnapshot): Promise<void> {
    const file = this.fileOf(deployment);
    try {
      await writeFileDurably(file, JSON.stringify({ machine: MACHINE_VERSION, n, value: snapshot.value, context: snapshot.context }), "writing checkpoint");
    } catch (e) {
      const err = StorageError.of("writing checkpoint", file, e);
      this.health?.note({ kind: "write_failures", path: file, fault: err.message, action: "no checkpoint this time; recovery folds more of the journal" });
      throw err;
    }
  }

  /**
   * The deployment's checkpoint, or null: none, one of another machine version, or one that does
   * not read back as a checkpoint of this deployment (moved aside and reported; recovery then folds
   * the journal instead).
   */
  get(device: string, deployment: string): Checkpoint | null {
    const file = this.fileOf(deployment);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.damaged(file, `unreadable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return null;
    }
    let u: unknown;
    try {
      u = JSON.parse(text);
    } catch {
      this.damaged(file, text.length === 0 ? "empty file" : "malformed JSON");
      return null;
    }
    // Another machine's checkpoint (or one from before versions) is not damage: it is ignored.
    if (isPlainObject(u) && u["machine"] !== MACHINE_VERSION) return null;
    if (!isPlainObject(u) || !Number.isInteger(u["n"]) || (u["n"] as number) < 1 || !(MACHINE_STATES as readonly unknown[]).includes(u["value"])) {
      this.damaged(file, "not a checkpoint (no n, or no machine state)");
      return null;
    }
    const context = u["context"];
    if (!isPlainObject(context) || context["device"] !== device || context["deployment"] !== deployment) {
      this.damaged(file, "not a checkpoint of this deployment");
      return null;
    }
    const snapshot = deploymentMachine.resolveState({ value: u["value"] as string, context: context as unknown as DeploymentContext });
    return { n: u["n"] as number, snapshot };
  }

  /** Moves a damaged checkpoint out of the way (a rename needs no free space) and reports it. */
  private damaged(file: string, fault: string) {
    const aside = `${file}.corrupt`;
    let moved = true;
    try {
      renameSync(file, aside);
    } catch {
      moved = false;
    }
    this.health?.note({
      kind: "corrupt_files",
      path: file,
      fault: `checkpoint ${fault}`,
      action: `${moved ? `moved to ${aside}` : "left in place"}; the deployment is folded from its journal (or the stream) instead`,
    });
  }

  private fileOf(deployment: string) {
    return join(this.dir, `${deployment}.json`);
  }
}
