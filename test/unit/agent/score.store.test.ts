import { expect } from "chai";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalHash } from "../../../contracts/canonical-json.js";
import type { ReconcileScore } from "../../../contracts/score.codec.js";
import { ScoreStore } from "../../../agent/deployments/score.store.js";

const score = (tag: string): ReconcileScore => ({ type: "PodmanV0", data: { services: [{ name: "web", image: `localhost/app:${tag}`, env: { SECRET: "x" } }] } });

describe("ScoreStore", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "scores-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("puts, gets (with env intact), prunes unreferenced scores", async () => {
    const s = await ScoreStore.open(dir);
    const a = score("a");
    const b = score("b");
    const ha = canonicalHash(a);
    const hb = canonicalHash(b);
    await s.put(ha, a);
    await s.put(ha, a);
    await s.put(hb, b);
    const file = join(dir, "scores", `${ha.slice("sha256:".length)}.json`);
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    expect(await s.get(ha)).to.deep.equal(a);
    expect(await s.get(canonicalHash(score("c")))).to.equal(null);
    expect(await s.hashes()).to.deep.equal([ha, hb].sort());
    expect(await s.prune([hb])).to.deep.equal([ha]);
    expect(await s.get(ha)).to.equal(null);
    expect(await s.get(hb)).to.deep.equal(b);
  });

  it("refuses a hash that is not the score's, and ignores a damaged file", async () => {
    const s = await ScoreStore.open(dir);
    let e: unknown;
    await s.put(canonicalHash(score("b")), score("a")).catch((x: unknown) => (e = x));
    expect(String(e)).to.match(/score hash mismatch/);
    const h = canonicalHash(score("a"));
    writeFileSync(join(dir, "scores", `${h.slice(7)}.json`), "{");
    expect(await s.get(h)).to.equal(null);
  });
});
