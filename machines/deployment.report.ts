// What a deployment's snapshot says to operators: its DeploymentState in `device-state`.
import { phaseOf, type DeploymentState, type MachineState } from "../contracts/deployment-state.codec.js";
import type { DeploymentSnapshot } from "./deployment.machine.js";

export const machineStateOf = (s: DeploymentSnapshot): MachineState => s.value as MachineState;

export function deploymentState(s: DeploymentSnapshot, journal: { seq: number; at: string | null }): DeploymentState {
  const state = machineStateOf(s);
  return {
    device: s.context.device,
    deployment: s.context.deployment,
    phase: phaseOf(state),
    state,
    score_hash: s.context.target?.hash ?? null,
    desired_revision: s.context.revision,
    container_ids: { ...s.context.containerIds },
    last_error: s.context.lastError,
    last_event_seq: journal.seq,
    last_event_at: journal.at,
  };
}
