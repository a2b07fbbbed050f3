// contracts/ and machines/ do no I/O: the machine reaches the world only through the actors it is
// given, so it runs the same against Podman, FakeRuntime and the model tests. (nkeys is ed25519
// arithmetic on bytes: it signs and verifies, it does no I/O.)
import { expect } from "chai";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ALLOWED = [/^\.\.?\//, /^io-ts/, /^fp-ts/, /^xstate$/, /^node:crypto$/, /^@nats-io\/nkeys$/];

function importsOf(dir: string): Array<{ file: string; from: string }> {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".main.ts"))
    .flatMap((f) => [...readFileSync(join(dir, f), "utf8").matchAll(/^import\s[^;]*?from\s+"([^"]+)"/gms)].map((m) => ({ file: `${dir}/${f}`, from: m[1]! })));
}

describe("layering", () => {
  for (const dir of ["contracts", "machines"]) {
    it(`${dir}/ imports no I/O (no fs, net, http, NATS, Podman)`, () => {
      const found = importsOf(dir);
      expect(found.length).to.be.greaterThan(3);
      const bad = found.filter((i) => !ALLOWED.some((re) => re.test(i.from)) || /\/(agent|runtime|cli|inspector)\//.test(i.from));
      expect(bad).to.deep.equal([]);
    });
  }
});
