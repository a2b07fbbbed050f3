// The env a managed container was created with, read back from Podman: the last source of env
// values for a state dir that lost its scores while the containers kept running (docs/design.md,
// "Recovery"). Only a container that carries this device's labels for that deployment, service and
// score hash is read, so what comes back is the spec the agent created it from.
import { LABEL_DEPLOYMENT, LABEL_DEVICE, LABEL_MANAGED, LABEL_SCORE_HASH, LABEL_SERVICE } from "../contracts/wire-names.js";
import type { LibpodClient } from "../runtime/podman/libpod.client.js";

export function containerEnvReader(client: LibpodClient, device: string) {
  return async (deployment: string, service: string, id: string, scoreHash: string): Promise<Record<string, string> | null> => {
    const c = await client.inspect(id);
    const labels = c.Config.Labels ?? {};
    const ours =
      labels[LABEL_MANAGED] === "true" &&
      labels[LABEL_DEVICE] === device &&
      labels[LABEL_DEPLOYMENT] === deployment &&
      labels[LABEL_SERVICE] === service &&
      labels[LABEL_SCORE_HASH] === scoreHash;
    if (!ours) return null;
    const env: Record<string, string> = {};
    for (const entry of c.Config.Env ?? []) {
      const at = entry.indexOf("=");
      if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
    }
    return env;
  };
}
