// The operator's actions from the dashboard, each a write the CLI could make too, behind a
// confirmation on the page and a `confirm` field naming the target here (a stray or replayed
// request naming another target does nothing):
// - retry: the same desired value written again. The agent treats the same score at a newer
//   revision, while the deployment is failed, as a retry (docs/design.md, service health);
// - delete: the desired key deleted; the agent removes the deployment's containers;
// - restart a service: the device command `fleet.cmd.<device>.restart` (its container started anew, journaled).
// Every write is a compare-and-set on the revision read, as fleetctl's are.
import * as t from "io-ts";
import { struct } from "../contracts/decode.js";
import { DeploymentName, DeviceId, ServiceName } from "../contracts/names.js";
import { deploymentKey } from "../contracts/wire-names.js";
import type { Fleet } from "../fleet/fleet.client.js";
import { CommandHttpError, restartOf } from "./device-commands.js";

export const ActionRequest = struct("ActionRequest", { device: DeviceId, deployment: DeploymentName, confirm: t.string }, { service: ServiceName });
export type ActionRequest = t.TypeOf<typeof ActionRequest>;

export class ActionError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** What the page must send as `confirm`: the target as the dialog names it. */
export const confirmationOf = (r: Pick<ActionRequest, "device" | "deployment" | "service">) =>
  r.service ? `${r.device}/${r.deployment}/${r.service}` : `${r.device}/${r.deployment}`;

function checkConfirmation(r: ActionRequest) {
  const want = confirmationOf(r);
  if (r.confirm !== want) throw new ActionError(400, `confirm: expected ${JSON.stringify(want)}, got ${JSON.stringify(r.confirm.slice(0, 80))}`);
}

export async function retry(fleet: Fleet, r: ActionRequest): Promise<{ revision: number; previous_revision: number }> {
  checkConfirmation(r);
  const key = deploymentKey(r.device, r.deployment);
  const [entry, state] = await Promise.all([fleet.desired.get(key), fleet.deploymentState(r.device, r.deployment)]);
  if (!entry || entry.operation !== "PUT") throw new ActionError(404, `no desired state for ${r.device}/${r.deployment}: nothing to retry`);
  if (!state || state.phase !== "Failed") {
    throw new ActionError(409, `${r.device}/${r.deployment} is ${state ? state.phase : "not reported"}, not Failed: nothing to retry`);
  }
  const desired = await fleet.desiredEntry(r.device, r.deployment);
  if (desired && desired.errors.length) {
    throw new ActionError(409, `the desired value of ${r.device}/${r.deployment} does not decode (${desired.errors[0]}): writing it again changes nothing; deploy a fixed one`);
  }
  try {
    const revision = await fleet.desired.update(key, entry.value, entry.revision);
    return { revision, previous_revision: entry.revision };
  } catch (e) {
    throw new ActionError(409, `refused: ${key} changed since it was read (revision ${entry.revision}): ${(e as Error).message}`);
  }
}

export async function remove(fleet: Fleet, r: ActionRequest): Promise<{ deleted_revision: number }> {
  checkConfirmation(r);
  const key = deploymentKey(r.device, r.deployment);
  const entry = await fleet.desired.get(key);
  if (!entry || entry.operation !== "PUT") throw new ActionError(404, `no desired state for ${r.device}/${r.deployment}: nothing to delete`);
  try {
    await fleet.desired.delete(key, { previousSeq: entry.revision });
  } catch (e) {
    throw new ActionError(409, `refused: ${key} changed since it was read (revision ${entry.revision}): ${(e as Error).message}`);
  }
  return { deleted_revision: entry.revision };
}

export async function restartService(fleet: Fleet, r: ActionRequest): Promise<{ id: string }> {
  if (!r.service) throw new ActionError(400, "service: expected a service name, got nothing");
  checkConfirmation(r);
  try {
    return await restartOf(fleet.nc, r.device, r.deployment, r.service);
  } catch (e) {
    throw e instanceof CommandHttpError ? new ActionError(e.status, e.message) : e;
  }
}
