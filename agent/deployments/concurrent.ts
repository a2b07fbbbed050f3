// The parts of one step (a container to stop, a service to start, an image to pull) carried out side
// by side, a few at a time, each only after the parts it must follow (docs/design.md, "Service
// health": `depends_on`). A step still ends as it did one part at a time: the first failure is the
// step's failure, nothing new begins after it, and what had already begun is waited for and kept.

/** One part of a step: `after` names the parts (by key) that must have succeeded before it begins. */
export interface Part<T> {
  key: string;
  after: readonly string[];
  value: T;
}

export interface PartsOutcome<T> {
  /** The parts that succeeded, in the order they finished. */
  done: T[];
  /**
   * The first part that failed, in time; or, when the step was abandoned (its signal aborted), the
   * first part that never began. Absent when every part succeeded.
   */
  failure?: { part: T; error: unknown } | { part: T; abandoned: true };
}

/**
 * Runs `work` on every part, at most `limit` at once. A part waits for its `after` parts (keys not
 * among the parts are ignored); a part whose `after` failed or never ran does not run. Should the
 * parts' order have a cycle (the score's codec refuses one), the first waiting part in the given
 * order begins anyway rather than none.
 */
export async function runParts<T>(parts: readonly Part<T>[], limit: number, work: (value: T) => Promise<void>, signal: AbortSignal): Promise<PartsOutcome<T>> {
  const keys = new Set(parts.map((p) => p.key));
  const waiting = [...parts];
  const succeeded = new Set<string>();
  const done: T[] = [];
  let failure: PartsOutcome<T>["failure"];
  let running = 0;
  return new Promise((resolve) => {
    const finish = () => {
      if (signal.aborted && !failure && waiting.length > 0) failure = { part: waiting[0]!.value, abandoned: true };
      resolve(failure ? { done, failure } : { done });
    };
    const ready = (p: Part<T>) => p.after.every((k) => !keys.has(k) || k === p.key || succeeded.has(k));
    const begin = (p: Part<T>) => {
      waiting.splice(waiting.indexOf(p), 1);
      running++;
      Promise.resolve()
        .then(() => work(p.value))
        .then(
          () => {
            succeeded.add(p.key);
            done.push(p.value);
          },
          (error: unknown) => {
            failure ??= { part: p.value, error };
          },
        )
        .finally(() => {
          running--;
          pump();
        });
    };
    const pump = () => {
      if (!failure && !signal.aborted) {
        for (const p of waiting.filter(ready)) {
          if (running >= limit) break;
          begin(p);
        }
        // Nothing runs and nothing is ready: a cycle. The given order decides.
        if (running === 0 && waiting.length > 0) begin(waiting[0]!);
      }
      if (running === 0) finish();
    };
    pump();
  });
}
