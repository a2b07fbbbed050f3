// `npm run statechart`: prints the deployment machine as Mermaid.
import { deploymentMachine } from "./deployment.machine.js";
import { toMermaid } from "./statechart.js";

process.stdout.write(`${toMermaid(deploymentMachine)}\n`);
