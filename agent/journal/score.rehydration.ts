// Putting env values back into what the redacted journal folds to (docs/design.md, "Recovery").
// The journal keeps scores with every env value replaced by "<redacted>"; a deployment rebuilt from
// it needs the real values, both to recreate a container and for the planner to see that a service
// is unchanged. Each value put back is one known to be exactly right:
// - a full score of the same canonical hash (the score store, the desired-state history);
// - a score rebuilt from the redacted one with env values taken from known scores' services of the
//   same name, kept only if it hashes to the journaled hash;
// - a witness: while a deployment is `running`, every applied service is the target's own spec
//   (an upgrade that reached running started or kept exactly the target's services, and a repair
//   restarts the applied spec), so a spec known only redacted is the target's spec of that service
//   whenever the deployment ran that target with it;
// - the env of the container itself, which was created from that spec (labels checked).
// Values are filled into the redacted structure itself (its key order is the live one), so what is
// rebuilt is byte for byte what ran. Pure: callers gather the known scores.
import { canonicalHash, canonicalJson } from "../../contracts/canonical-json.js";
import type { PodmanService, PodmanV0Score } from "../../contracts/score.codec.js";
import { deploymentMachine, type DeploymentContext, type DeploymentSnapshot, type Queued } from "../../machines/deployment.machine.js";
import type { AppliedService, Plan } from "../../machines/upgrade.plan.js";
import { REDACTED } from "./redact.js";

export const serviceIsRedacted = (s: PodmanService) => Object.values(s.env ?? {}).includes(REDACTED);
export const scoreIsRedacted = (s: PodmanV0Score) => s.services.some(serviceIsRedacted);

/** The hash of a PodmanV0 score's ReconcileScore, as the journal records it. */
export const scoreHashOf = (data: PodmanV0Score) => canonicalHash({ type: "PodmanV0", data });

/** True when `full` is what `redacted` was before its env values were replaced. */
export function redactsTo(full: PodmanService, redacted: PodmanService): boolean {
  const blank = (s: PodmanService) => canonicalJson({ ...s, env: s.env ? Object.fromEntries(Object.keys(s.env).map((k) => [k, REDACTED])) : undefined });
  return blank(full) === blank(redacted);
}

/** `redacted` with the env values of `full` (same service, same shape), or null when they don't match. */
export function fillService(redacted: PodmanService, full: PodmanService): PodmanService | null {
  if (!serviceIsRedacted(redacted)) return redacted;
  if (!full.env || serviceIsRedacted(full) || !redactsTo(full, redacted)) return null;
  const env = full.env;
  return { ...redacted, env: Object.fromEntries(Object.keys(redacted.env!).map((k) => [k, env[k]!])) };
}

/** `redacted` with the env values of `full`, a score of the same hash; null when it isn't one. */
export function fillScore(redacted: PodmanV0Score, full: PodmanV0Score): PodmanV0Score | null {
  if (!scoreIsRedacted(redacted)) return redacted;
  if (full.services.length !== redacted.services.length) return null;
  const services: PodmanService[] = [];
  for (const [i, s] of redacted.services.entries()) {
    const f = fillService(s, full.services[i]!);
    if (!f) return null;
    services.push(f);
  }
  return { ...redacted, services };
}

/** How many env combinations `reconstructScore` tries at most. */
const MAX_COMBINATIONS = 256;

/**
 * The full score behind a redacted one, rebuilt from the env values of `known` scores' services of
 * the same name and shape, or null. A candidate counts only if it hashes to `hash`.
 */
export function reconstructScore(redacted: PodmanV0Score, hash: string, known: readonly PodmanV0Score[]): PodmanV0Score | null {
  const options: PodmanService[][] = [];
  let combinations = 1;
  for (const s of redacted.services) {
    if (!serviceIsRedacted(s)) {
      options.push([s]);
      continue;
    }
    const seen = new Map<string, PodmanService>();
    for (const k of known) {
      for (const c of k.services) {
        const f = c.name === s.name ? fillService(s, c) : null;
        if (f) seen.set(canonicalJson(f), f);
      }
    }
    if (seen.size === 0) return null;
    options.push([...seen.values()]);
    combinations *= seen.size;
    if (combinations > MAX_COMBINATIONS) return null;
  }
  const pick = (i: number, acc: PodmanService[]): PodmanV0Score | null => {
    if (i === options.length) {
      const candidate = { ...redacted, services: acc };
      return scoreHashOf(candidate) === hash ? candidate : null;
    }
    for (const o of options[i]!) {
      const r = pick(i + 1, [...acc, o]);
      if (r) return r;
    }
    return null;
  };
  return pick(0, []);
}

/** What is known to fill a snapshot's redacted specs. */
export interface Known {
  /** A full score by hash. */
  score(hash: string): PodmanV0Score | null;
  /** The full spec of `service` as score `scoreHash` has it, known some other way (a witness, the container). */
  spec?(service: string, scoreHash: string): PodmanService | null;
}

/**
 * Specs the snapshot's context knows only redacted, with what a running snapshot proves about them:
 * `service|scoreHash` → the target's full spec. Called on every snapshot of a fold.
 */
export function witnessSpecs(s: DeploymentSnapshot, into: Map<string, PodmanService>): void {
  const ctx = s.context;
  if (s.value !== "running" || !ctx.target || scoreIsRedacted(ctx.target.score)) return;
  for (const [name, a] of Object.entries(ctx.applied)) {
    if (!serviceIsRedacted(a.service)) continue;
    const t = ctx.target.score.services.find((x) => x.name === name);
    if (t && redactsTo(t, a.service)) into.set(witnessKey(name, a.scoreHash), t);
  }
}
export const witnessKey = (service: string, scoreHash: string) => `${service}|${scoreHash}`;

/** The snapshot with every redacted spec that `known` can fill filled; the same object when none can. */
export function rehydrateSnapshot(s: DeploymentSnapshot, known: Known): DeploymentSnapshot {
  const ctx = s.context;
  let changed = false;
  const scoreOf = (hash: string, redacted: PodmanV0Score): PodmanV0Score => {
    if (!scoreIsRedacted(redacted)) return redacted;
    const full = known.score(hash);
    const filled = full ? fillScore(redacted, full) : null;
    if (!filled) return redacted;
    changed = true;
    return filled;
  };
  const specOf = (a: AppliedService): AppliedService => {
    if (!serviceIsRedacted(a.service)) return a;
    const fromScore = known.score(a.scoreHash)?.services.find((x) => x.name === a.service.name) ?? null;
    const filled = (fromScore && fillService(a.service, fromScore)) ?? (() => {
      const other = known.spec?.(a.service.name, a.scoreHash);
      return other ? fillService(a.service, other) : null;
    })();
    if (!filled) return a;
    changed = true;
    return { ...a, service: filled };
  };
  const target = ctx.target ? { ...ctx.target, score: scoreOf(ctx.target.hash, ctx.target.score) } : null;
  const next: Queued | null = ctx.next?.kind === "update" ? { ...ctx.next, score: scoreOf(ctx.next.hash, ctx.next.score) } : ctx.next;
  const applied = Object.fromEntries(Object.entries(ctx.applied).map(([k, a]) => [k, specOf(a)]));
  const plan: Plan | null = ctx.plan ? { ...ctx.plan, start: ctx.plan.start.map(specOf) } : null;
  if (!changed) return s;
  const context: DeploymentContext = { ...ctx, target, next, applied, plan };
  return deploymentMachine.resolveState({ value: s.value as string, context });
}

/** The (service, score hash) pairs of a snapshot still known only redacted. */
export function redactedSpecs(s: DeploymentSnapshot): Array<{ service: string; scoreHash: string; id: string | undefined; keys: string[] }> {
  const out: Array<{ service: string; scoreHash: string; id: string | undefined; keys: string[] }> = [];
  for (const [name, a] of Object.entries(s.context.applied)) {
    if (serviceIsRedacted(a.service)) out.push({ service: name, scoreHash: a.scoreHash, id: s.context.containerIds[name], keys: Object.keys(a.service.env ?? {}) });
  }
  return out;
}

/** True when the snapshot's context still holds a redacted env value anywhere. */
export function snapshotIsRedacted(s: DeploymentSnapshot): boolean {
  const ctx = s.context;
  return (
    (ctx.target !== null && scoreIsRedacted(ctx.target.score)) ||
    (ctx.next?.kind === "update" && scoreIsRedacted(ctx.next.score)) ||
    Object.values(ctx.applied).some((a) => serviceIsRedacted(a.service)) ||
    (ctx.plan?.start.some((a) => serviceIsRedacted(a.service)) ?? false)
  );
}
