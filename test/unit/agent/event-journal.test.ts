import { expect } from "chai";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EventJournal, JournalCorruptError } from "../../../agent/journal/journal.js";
import type { DomainEvent } from "../../../contracts/journal-event.codec.js";

/** Event i: a v2 event that says which one it is by its `at`. */
const t = (i: number) => ({ at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), event: { type: "desired.deleted" as const, at: i, revision: i }, from: "pending" as const, to: "pulling" as const });

describe("EventJournal", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "journal-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("numbers events contiguously from 1 per deployment, in call order, and keeps them across reopen", async () => {
    const j = EventJournal.open(dir, "dev-1");
    const all = await Promise.all([j.append("web", t(1)), j.append("web", t(2)), j.append("db", t(3)), j.append("web", t(4))]);
    expect(all.map((e) => [e.deployment, e.n])).to.deep.equal([["web", 1], ["web", 2], ["db", 1], ["web", 3]]);
    expect(all[0]).to.deep.include({ v: 2, device: "dev-1", deployment: "web", n: 1, from: "pending", to: "pulling" });
    const again = EventJournal.open(dir, "dev-1");
    expect(again.deployments()).to.deep.equal(["db", "web"]);
    expect(again.read("web").map((e) => e.event.at)).to.deep.equal([1, 2, 4]);
    expect((await again.append("web", t(5))).n).to.equal(4);
    const lines = readFileSync(join(dir, "journal", "web.jsonl"), "utf8").trim().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { n: number }).n)).to.deep.equal([1, 2, 3, 4]);
    expect(statSync(join(dir, "journal", "web.jsonl")).mode & 0o777).to.equal(0o600);
  });

  it("stores only redacted events", async () => {
    const j = EventJournal.open(dir, "dev-1");
    const score = { type: "PodmanV0", data: { services: [{ name: "web", image: "a:1", env: { SECRET: "s3cr3t" } }] } };
    const e = await j.append("web", { ...t(1), event: { type: "desired.updated", at: 1, hash: `sha256:${"ab".repeat(32)}`, revision: 1, score: score.data } });
    expect(JSON.stringify(e)).not.to.include("s3cr3t");
    expect(readFileSync(j.fileOf("web"), "utf8")).not.to.include("s3cr3t");
    expect(score.data.services[0]!.env.SECRET).to.equal("s3cr3t");
  });

  it("drops a torn last line and appends cleanly after it", async () => {
    const j = EventJournal.open(dir, "dev-1");
    await j.append("web", t(1));
    await j.append("web", t(2));
    appendFileSync(j.fileOf("web"), '{"v":1,"device":"dev-1","deployment":"web","n":3,"at":"2026-');
    const r = EventJournal.open(dir, "dev-1");
    expect(r.read("web").map((e) => e.n)).to.deep.equal([1, 2]);
    expect((await r.append("web", t(3))).n).to.equal(3);
    expect(EventJournal.open(dir, "dev-1").read("web").map((e) => e.n)).to.deep.equal([1, 2, 3]);
  });

  it("drops a complete but undecodable last line, and refuses damage in the middle", async () => {
    const j = EventJournal.open(dir, "dev-1");
    await j.append("web", t(1));
    appendFileSync(j.fileOf("web"), "{garbage\n");
    expect(EventJournal.open(dir, "dev-1").read("web").map((e) => e.n)).to.deep.equal([1]);
    const file = join(dir, "journal", "db.jsonl");
    const good = (n: number) => JSON.stringify({ v: 1, device: "dev-1", deployment: "db", n, at: "2026-01-01T00:00:00.000Z", event: { type: "X" }, from: "pending", to: "pulling" });
    writeFileSync(file, `${good(1)}\nnot json\n${good(2)}\n`);
    expect(() => EventJournal.open(dir, "dev-1").read("db")).to.throw(JournalCorruptError, /line 2/);
    writeFileSync(file, `${good(1)}\n${good(3)}\n${good(4)}\n`);
    expect(() => EventJournal.open(dir, "dev-1").read("db")).to.throw(JournalCorruptError, /expected n=2, got n=3/);
  });

  it("compacts through an event: the file and memory keep the rest, numbering goes on, a reopen reads the base", async () => {
    const j = EventJournal.open(dir, "dev-1");
    for (let i = 1; i <= 5; i++) await j.append("web", t(i));
    await j.compact("web", 3);
    expect(j.base("web")).to.equal(3);
    expect(j.read("web").map((e) => e.n)).to.deep.equal([4, 5]);
    expect(j.durableAt("web", 3)).to.equal(undefined);
    expect(j.durableAt("web", 4)?.n).to.equal(4);
    expect(j.durableN("web")).to.equal(5);
    expect((await j.append("web", t(6))).n).to.equal(6);
    const lines = readFileSync(j.fileOf("web"), "utf8").trim().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { n: number }).n)).to.deep.equal([4, 5, 6]);
    const again = EventJournal.open(dir, "dev-1");
    expect([again.base("web"), again.lastN("web")]).to.deep.equal([3, 6]);
    expect((await again.append("web", t(7))).n).to.equal(7);
  });

  it("compaction keeps the last event (the numbering's anchor) and never goes back", async () => {
    const j = EventJournal.open(dir, "dev-1");
    for (let i = 1; i <= 3; i++) await j.append("web", t(i));
    await j.compact("web", 10);
    expect(j.read("web").map((e) => e.n)).to.deep.equal([3]);
    await j.compact("web", 1);
    expect(j.base("web")).to.equal(2);
    expect(EventJournal.open(dir, "dev-1").lastN("web")).to.equal(3);
  });

  it("appends issued while a compaction runs land after it, in order", async () => {
    const j = EventJournal.open(dir, "dev-1");
    for (let i = 1; i <= 4; i++) await j.append("web", t(i));
    const all = await Promise.all([j.compact("web", 2), j.append("web", t(5)), j.append("web", t(6))]);
    expect(all.slice(1).map((e) => (e as { n: number }).n)).to.deep.equal([5, 6]);
    expect(EventJournal.open(dir, "dev-1").read("web").map((e) => e.n)).to.deep.equal([3, 4, 5, 6]);
  });

  it("refuses invalid names and events", async () => {
    const j = EventJournal.open(dir, "dev-1");
    let e1: unknown;
    await j.append("a.b", t(1)).catch((e: unknown) => (e1 = e));
    expect(String(e1)).to.match(/invalid deployment name/);
    let e2: unknown;
    await j.append("web", { ...t(1), at: "yesterday" }).catch((e: unknown) => (e2 = e));
    expect(String(e2)).to.match(/invalid journal event: at:/);
    // Only the vocabulary's events, exactly: no XState name, no unknown field.
    const refused = async (event: unknown) => String(await j.append("web", { ...t(1), event: event as DomainEvent }).catch((e: unknown) => e));
    expect(await refused({ type: "xstate.done.actor.pull", output: { at: 1 } })).to.match(/invalid journal event: event.type: unknown event type "xstate.done.actor.pull"/);
    expect(await refused({ type: "desired.deleted", at: 1, revision: 1, actorId: "x" })).to.match(/invalid journal event: event.actorId: unknown field/);
    expect(j.lastN("web")).to.equal(0);
    expect(() => EventJournal.open(dir, "bad.dev")).to.throw(/invalid device id/);
  });
});
