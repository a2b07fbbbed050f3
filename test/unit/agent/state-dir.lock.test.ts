import { expect } from "chai";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lockStateDir, StateDirBusyError } from "../../../agent/state-dir.lock.js";

const refusal = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);

describe("state dir lock", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "fleet-lock-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses a second agent on the same state dir, and frees it on release", async () => {
    const release = await lockStateDir(dir);
    const e = await refusal(lockStateDir(dir));
    expect(e).to.be.instanceOf(StateDirBusyError);
    expect(String(e)).to.match(/in use by another fleet-agent/);
    release();
    expect(existsSync(join(dir, "agent.lock"))).to.equal(false);
    (await lockStateDir(dir))();
  });

  it("refuses while another live process holds it", async () => {
    const other = spawn("sleep", ["30"]);
    try {
      writeFileSync(join(dir, "agent.lock"), `${other.pid}\n`);
      const e = await refusal(lockStateDir(dir));
      expect(e).to.be.instanceOf(StateDirBusyError);
      expect(String(e)).to.match(new RegExp(`pid ${other.pid}`));
    } finally {
      other.kill();
    }
  });

  it("takes over the lock of an agent that died without releasing it", async () => {
    const dead = spawn("true");
    await new Promise((r) => dead.once("exit", r));
    writeFileSync(join(dir, "agent.lock"), `${dead.pid}\n`);
    const release = await lockStateDir(dir);
    release();
  });
});
