// "Did you mean …?" for a misspelt name: the nearest of the names that would have been accepted.
// A misspelt field is the commonest bad score (`grace_period_sec`), and an operator fixes it faster
// when the error names the field that was meant.

/**
 * Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
 * neighbouring characters (`imgae` → `image` is one edit), each costing one.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate `name` most likely meant, or null when none is close: at most a third of its
 * length in edits (case ignored), or a candidate that starts with it (`interval` → `interval_secs`).
 * Ties go to the candidate listed first, so the answer is stable.
 */
export function closestName(name: string, candidates: Iterable<string>): string | null {
  const key = name.toLowerCase();
  let best: { name: string; score: number } | null = null;
  for (const c of candidates) {
    if (c === name) continue;
    const lc = c.toLowerCase();
    const distance = editDistance(key, lc);
    const limit = Math.max(1, Math.floor(Math.min(key.length, lc.length) / 3));
    // A prefix counts as a near miss only when it is long enough to mean something.
    const score = distance <= limit ? distance : key.length >= 4 && lc.startsWith(key) ? limit + 1 : Infinity;
    if (score !== Infinity && (best === null || score < best.score)) best = { name: c, score };
  }
  return best?.name ?? null;
}

/** ` (did you mean grace_period_secs?)`, or "" when nothing is close. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const c = closestName(name, candidates);
  return c === null ? "" : ` (did you mean ${c}?)`;
}
