// Names that end up in NATS keys and subjects and in Podman container names.
import * as t from "io-ts";
import { refine } from "./decode.js";

const DEVICE_OR_DEPLOYMENT = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const SERVICE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Why `name` is not a valid device id or deployment name, or null when it is. */
export function deviceOrDeploymentNameProblem(name: string): string | null {
  if (name.length === 0) return "must not be empty";
  if (Buffer.byteLength(name) > 253) return `must be at most 253 bytes, got ${Buffer.byteLength(name)}`;
  if (!DEVICE_OR_DEPLOYMENT.test(name)) {
    return `must be letters, digits, '_' or '-', starting with a letter or digit, got ${JSON.stringify(name.slice(0, 40))}`;
  }
  return null;
}

/** Why `name` is not a valid service name (a DNS label), or null when it is. */
export function serviceNameProblem(name: string): string | null {
  if (name.length === 0) return "must not be empty";
  if (name.length > 63) return `must be at most 63 characters, got ${name.length}`;
  if (!SERVICE.test(name)) return `must be a DNS label ([a-z0-9-], not starting or ending with '-'), got ${JSON.stringify(name.slice(0, 40))}`;
  return null;
}

export const isDeviceId = (s: string) => deviceOrDeploymentNameProblem(s) === null;
export const isDeploymentName = isDeviceId;
export const isServiceName = (s: string) => serviceNameProblem(s) === null;

// The limit is in bytes; the pattern allows ASCII only, so characters and bytes agree.
const DEVICE_OR_DEPLOYMENT_SHAPE = { minLength: 1, maxLength: 253, pattern: DEVICE_OR_DEPLOYMENT.source };
export const DeviceId = refine(t.string, "DeviceId", deviceOrDeploymentNameProblem, DEVICE_OR_DEPLOYMENT_SHAPE);
export const DeploymentName = refine(t.string, "DeploymentName", deviceOrDeploymentNameProblem, DEVICE_OR_DEPLOYMENT_SHAPE);
export const ServiceName = refine(t.string, "ServiceName", serviceNameProblem, { minLength: 1, maxLength: 63, pattern: SERVICE.source });

/** Podman's name for a service's container; `.` occurs in neither part, so names never collide. */
export const containerName = (deployment: string, service: string) => `${deployment}.${service}`;
