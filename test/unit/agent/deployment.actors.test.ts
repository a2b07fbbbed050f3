import { expect } from "chai";
import { createActor, toPromise } from "xstate";
import { deploymentActors } from "../../../agent/deployments/executor.js";
import { DEFAULT_LIFECYCLE } from "../../../contracts/score.codec.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";

const IMAGES = ["img/db:1", "img/web:1", "img/cache:1"];
const fake = (startSettleMs?: number | null) => new FakeRuntime({ device: "d1", images: IMAGES, ...(startSettleMs === undefined ? {} : { startSettleMs }) });
const service = (name: string) => ({ service: { name, image: `img/${name}:1` }, lifecycle: DEFAULT_LIFECYCLE, scoreHash: "sha256:s" });

async function startStep(rt: FakeRuntime, names: string[]) {
  const actor = createActor(deploymentActors(rt).startNew, { input: { deployment: "app", services: names.map(service) } });
  const out = toPromise(actor);
  actor.start();
  return out;
}

describe("the start step's settle check", () => {
  let rt: FakeRuntime;
  beforeEach(() => {
    rt = fake();
  });

  it("starts every service, then checks them all with one list", async () => {
    const out = await startStep(rt, ["db", "web", "cache"]);
    expect(rt.calls.map((c) => c.op)).to.deep.equal(["startService", "startService", "startService", "list"]);
    expect(Object.keys(out.started)).to.deep.equal(["db", "web", "cache"]);
    expect(out.failure).to.equal(undefined);
  });

  it("fails the first service that exited, with its id and exit code; the services started after it keep running and stay recorded", async () => {
    rt.exitAtStart("db", 3);
    const out = await startStep(rt, ["db", "web"]);
    expect(out.failure).to.deep.include({ service: "db", message: "service db exited at start with code 3" });
    expect(rt.peek(out.failure!.id!)).to.deep.include({ service: "db", state: "exited" });
    expect(Object.keys(out.started)).to.deep.equal(["web"]);
    expect(rt.peek(out.started["web"]!)!.state).to.equal("running");
  });

  it("a container gone by the check fails its service", async () => {
    const rtGone = fake();
    const list = rtGone.list.bind(rtGone);
    rtGone.list = async () => {
      rtGone.vanish("app.web");
      return list();
    };
    const out = await startStep(rtGone, ["web"]);
    expect(out.failure).to.deep.equal({ service: "web", message: "service web: its container vanished at start" });
    expect(out.started).to.deep.equal({});
  });

  it("a runtime without a settle (null) makes no check", async () => {
    const unchecked = fake(null);
    unchecked.exitAtStart("web", 1);
    const out = await startStep(unchecked, ["web"]);
    expect(unchecked.calls.map((c) => c.op)).to.deep.equal(["startService"]);
    expect(out.failure).to.equal(undefined);
  });
});
