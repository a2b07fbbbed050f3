// The client's event stream over a unix socket, served here by a stand-in that replays what Podman
// 4.3.1 sends after rotating its events file (containers/podman#17665): the file again from its top.
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LibpodClient } from "../../runtime/podman/libpod.client.js";

const line = (action: string, id: string, timeNano: number) =>
  JSON.stringify({ Type: "container", Action: action, Actor: { ID: id, Attributes: { name: `c-${id}` } }, time: Math.floor(timeNano / 1e9), timeNano }) + "\n";

describe("LibpodClient.events", () => {
  let dir: string;
  let server: Server;
  let client: LibpodClient;
  let body: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "fleet-events-"));
    server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      for (const chunk of body) res.write(chunk);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(join(dir, "podman.sock"), resolve));
    client = new LibpodClient({ socketPath: join(dir, "podman.sock") });
  });
  after(async () => {
    client.close();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const collect = async () => {
    const out: string[] = [];
    for await (const e of await client.events({ type: ["container"] })) out.push(`${e.Action} ${e.Actor.ID}`);
    return out;
  };

  it("delivers each event once when Podman replays the rotated half of its events file", async () => {
    const t = Date.now() * 1e6 + 1e9;
    const a = line("create", "a", t), b = line("start", "a", t + 1000), c = line("died", "a", t + 2000), d = line("remove", "a", t + 3000);
    body = [a, b, c, b, c, d]; // b and c again: the rotation's replay
    expect(await collect()).to.deep.equal(["create a", "start a", "died a", "remove a"]);
  });

  it("keeps events that differ only in time: a container started twice is two starts", async () => {
    const t = Date.now() * 1e6 + 1e9;
    body = [line("start", "a", t), line("died", "a", t + 5e6), line("start", "a", t + 9e6)];
    expect(await collect()).to.deep.equal(["start a", "died a", "start a"]);
  });

  it("drops events from before the subscription, which the replay brings along", async () => {
    const now = Date.now() * 1e6;
    body = [line("remove", "old", now - 60e9), line("create", "new", now + 1e9)];
    expect(await collect()).to.deep.equal(["create new"]);
  });

  it("reassembles a line split across chunks", async () => {
    const whole = line("create", "b", Date.now() * 1e6 + 1e9);
    body = [whole.slice(0, 17), whole.slice(17)];
    expect(await collect()).to.deep.equal(["create b"]);
  });
});
