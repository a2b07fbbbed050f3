// e2e: the crash matrix. The agent process is SIGKILLed while a deployment rests in each non-final
// state of the machine, a newer desired score is written while it is down, and the restarted agent
// must resume from its journal (re-running the interrupted step idempotently) and converge to the
// newest score with every invariant intact. The histories are in support/crash.histories.ts.
import { CRASH_HISTORIES } from "./support/crash.histories.js";
import { useScenario } from "./support/scenario.js";

describe("e2e: crash matrix (SIGKILL in each non-final state)", function () {
  const sc = useScenario();

  for (const h of CRASH_HISTORIES) {
    it(`${h.id}. ${h.title}`, async () => {
      const s = sc.current;
      await h.run(s);
      await s.verify(["app"]);
    });
  }
});
