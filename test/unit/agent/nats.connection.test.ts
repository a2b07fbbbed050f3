import { expect } from "chai";
import { connectAgent } from "../../../fleet/connection.js";
import { silentLogger } from "../../../agent/logger.js";
import { freePort } from "../../support/nats.js";

describe("connectAgent", () => {
  it("keeps trying while no server answers, and gives up when the agent stops (so the process can exit)", async () => {
    const port = await freePort(); // nothing listens there
    const stop = new AbortController();
    const t0 = Date.now();
    const connecting = connectAgent({ servers: [`nats://127.0.0.1:${port}`], device: "offline", logger: silentLogger(), options: { reconnectTimeWait: 50 }, signal: stop.signal });
    setTimeout(() => stop.abort(), 400);
    const err = await connecting.then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).to.equal("stopped before connecting to NATS");
    expect(Date.now() - t0).to.be.at.least(350);
  });
});
