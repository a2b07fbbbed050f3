// The device's container policy: what this device lets a desired score do, set on the device (a
// file), never by the desired state. Pure: the codec for the policy file and the check of a score.
//
// Privileged containers, host network and host PID namespaces cannot be asked for at all: the
// score's codec is exact and has no such fields (an unknown field is a decode error), and
// PodmanRuntime never requests them. What a score can ask for and this policy bounds: host ports
// (below 1024 refused unless allowed) and bind mounts (sources only under allowed host paths).
import * as t from "io-ts";
import { posix } from "node:path";
import { decodeJson, refine, struct, type Decoded } from "../../contracts/decode.js";
import type { ReconcileScore } from "../../contracts/score.codec.js";

export const DEFAULT_ALLOWED_MOUNT_PATHS: readonly string[] = ["/srv", "/var/lib/fleet-data"];

const PolicyPath = refine(t.string, "AbsolutePath", (s) =>
  !s.startsWith("/")
    ? `expected an absolute path, got ${JSON.stringify(s.slice(0, 80))}`
    : s.split("/").some((seg) => seg === "..")
      ? `must not contain "..", got ${JSON.stringify(s.slice(0, 80))}`
      : null,
);
const LowPort = refine(t.number, "LowPort", (n) => (Number.isInteger(n) && n >= 1 && n < 1024 ? null : `expected an integer port from 1 to 1023, got ${n}`));

/** The policy file's JSON (`policy.json`): every field optional, unknown fields refused. */
export const ContainerPolicyFile = struct("ContainerPolicy", {}, {
  /** `true`: any host port; a list: these ports below 1024 too; absent or false: none below 1024. */
  allow_low_ports: t.union([t.boolean, t.array(LowPort)]),
  /** Host paths a bind mount's source must be at or under. Absent: DEFAULT_ALLOWED_MOUNT_PATHS. */
  allowed_mount_paths: t.array(PolicyPath),
});
export type ContainerPolicyFile = t.TypeOf<typeof ContainerPolicyFile>;

export interface ContainerPolicy {
  allowLowPorts: boolean | readonly number[];
  allowedMountPaths: readonly string[];
}

export const DEFAULT_POLICY: ContainerPolicy = { allowLowPorts: false, allowedMountPaths: DEFAULT_ALLOWED_MOUNT_PATHS };

export function policyFromFile(f: ContainerPolicyFile): ContainerPolicy {
  return {
    allowLowPorts: f.allow_low_ports ?? false,
    allowedMountPaths: (f.allowed_mount_paths ?? DEFAULT_ALLOWED_MOUNT_PATHS).map(normalizeDir),
  };
}

/** Decodes a policy file's text (errors name the path of the bad field). */
export function decodePolicy(text: string): Decoded<ContainerPolicy> {
  const r = decodeJson(ContainerPolicyFile, text);
  return r.ok ? { ok: true, value: policyFromFile(r.value) } : r;
}

const normalizeDir = (p: string) => {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
};

/** Is `source` at or under one of `allowed`? `..` segments are refused outright. */
export function mountAllowed(source: string, allowed: readonly string[]): boolean {
  if (!source.startsWith("/") || source.split("/").some((seg) => seg === "..")) return false;
  const s = normalizeDir(source);
  return allowed.some((a) => {
    const d = normalizeDir(a);
    return d === "/" || s === d || s.startsWith(`${d}/`);
  });
}

function lowPortAllowed(port: number, allow: ContainerPolicy["allowLowPorts"]): boolean {
  if (port >= 1024 || allow === true) return true;
  return Array.isArray(allow) && allow.includes(port);
}

/**
 * Every way `score` breaks `policy`, one message per rule and service, e.g.
 * `services[0] (web): host port 80 is below 1024, not allowed by this device's policy`. Empty: allowed.
 */
export function policyViolations(policy: ContainerPolicy, score: ReconcileScore): string[] {
  const out: string[] = [];
  score.data.services.forEach((svc, i) => {
    const who = `services[${i}] (${svc.name})`;
    for (const p of svc.ports ?? []) {
      if (!lowPortAllowed(p.host_port, policy.allowLowPorts)) {
        out.push(`${who}: host port ${p.host_port} is below 1024, not allowed by this device's policy (allow_low_ports)`);
      }
    }
    for (const v of svc.volumes ?? []) {
      const src = JSON.stringify(v.source.slice(0, 200));
      if (v.source.split("/").some((seg) => seg === "..")) {
        out.push(`${who}: bind mount source ${src} contains "..", refused by this device's policy`);
      } else if (!mountAllowed(v.source, policy.allowedMountPaths)) {
        out.push(`${who}: bind mount of ${src} is outside the host paths this device's policy allows (allowed_mount_paths: ${policy.allowedMountPaths.join(", ")})`);
      }
    }
  });
  return out;
}
