// (4) Replay: rebuilding a deployment's snapshot from 1,000 / 10,000 / 100,000 journal events,
// by the pure fold (machines/journal.fold.ts) and from the FLEET_EVENTS stream (read with
// agent/journal.stream.ts, then folded). The events are real: one deployment's journal recorded
// by the supervisor on FakeRuntime over two upgrades, repeated (desired.updated, pull.done,
// stop.done, start.done).
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { DeploymentSupervisor } from "../agent/deployments/supervisor.js";
import { EventJournal } from "../agent/journal/journal.js";
import { CheckpointStore } from "../agent/journal/checkpoint.js";
import { readStreamEvents } from "../fleet/stream.reader.js";
import { silentLogger } from "../agent/logger.js";
import { ensureFleetResources } from "../fleet/resources.js";
import { ScoreStore } from "../agent/deployments/score.store.js";
import type { JournalEvent, JournalEventV2 } from "../contracts/journal-event.codec.js";
import { ReconcileScore } from "../contracts/score.codec.js";
import { decodeJson } from "../contracts/decode.js";
import { eventSubject } from "../contracts/wire-names.js";
import { foldJournal } from "../machines/journal.fold.js";
import { FakeRuntime } from "../runtime/fake.runtime.js";
import { fmt, Report, stats } from "./lib.js";
import { profileDuring, summariseProfile, writeProfileSummary } from "./profile.js";
import { PrivateNats } from "./private-nats.js";
import { connectBench, scoreHashOf, scoreJson } from "./support.js";

const SIZES = [1_000, 10_000, 100_000];
const report = new Report("replay", "Replay");
const device = `replay-${randomBytes(3).toString("hex")}`;
const deployment = "app";
const input = { device, deployment };

// 1. Record a real journal: initial deploy, then A → B → A.
const dir = mkdtempSync(join(tmpdir(), "bench-replay-"));
const journal = EventJournal.open(dir, device);
const sup = new DeploymentSupervisor({ device, runtime: new FakeRuntime({ device }), journal, scores: await ScoreStore.open(dir), sink: { deploymentState: () => undefined }, logger: silentLogger() });
const scores = ["img/app:1", "img/app:2"].map((image) => scoreJson([{ name: "web", image }, { name: "db", image: "img/db:1" }], 5));
let revision = 0;
for (const s of [scores[0]!, scores[1]!, scores[0]!]) {
  const r = decodeJson(ReconcileScore, s);
  if (!r.ok) throw new Error(r.errors.join("; "));
  await sup.apply({ kind: "update", deployment, score: r.value, hash: scoreHashOf(s), revision: ++revision });
  await sup.idle();
}
await journal.settled();
const recorded = journal.read(deployment).filter((e): e is JournalEventV2 => e.v === 2);
await sup.shutdown(1000);
rmSync(dir, { recursive: true, force: true });
// recorded: [initial deploy ..., upgrade to B ..., upgrade to A ...]; the cycle is the last two upgrades.
const firstUpdate = recorded.findIndex((e, i) => i > 0 && e.event.type === "desired.updated");
const head = recorded.slice(0, firstUpdate);
const cycle = recorded.slice(firstUpdate);
// The journal keeps env redacted; these scores have none, so its events fold as they are.
function journalOf(n: number): JournalEventV2[] {
  const out: JournalEventV2[] = [...head];
  let k = 0;
  while (out.length < n) {
    const e = cycle[k % cycle.length]!;
    const ev = e.event.type === "desired.updated" ? { ...e.event, revision: out.length + 1 } : e.event;
    out.push({ ...e, n: out.length + 1, event: ev });
    k++;
  }
  return out.slice(0, n);
}
console.log(`replay: recorded ${recorded.length} events (${recorded.map((e) => e.to).join(" → ")}); cycle of ${cycle.length}`);

// 2. Pure fold.
const foldMs: Record<number, number> = {};
for (const n of SIZES) {
  const events = journalOf(n).map((e) => e.event);
  // 100,000 events take tens of seconds here: two runs, warmed up by the smaller sizes.
  const reps = n >= 100_000 ? 2 : n >= 10_000 ? 5 : 9;
  const warm = n >= 100_000 ? 0 : 1;
  const xs: number[] = [];
  for (let r = 0; r < reps + warm; r++) {
    const t0 = performance.now();
    const snap = foldJournal(input, events);
    const ms = performance.now() - t0;
    if (snap.value !== "running") throw new Error(`fold ended in ${String(snap.value)}`);
    if (r >= warm) xs.push(ms);
  }
  const s = report.samples(`replay.fold.${n}`, `pure fold of ${n} events`, "ms", xs);
  report.value(`replay.fold.${n}.rate`, `pure fold of ${n} events, rate`, "events/s", n / (s.median / 1000));
  foldMs[n] = s.median;
}
const met = foldMs[100_000]! < 1000;
report.target("replay", "replay of 100,000 events < 1 s (pure fold)", `${fmt(foldMs[100_000]!)} ms`, met, ["replay.fold.100000"]);
if (!met || process.argv.includes("--profile")) {
  // The cost per event is flat (see the rates), so 10,000 events profile the same work in less time.
  const events = journalOf(10_000).map((e) => e.event);
  const { profile, file } = await profileDuring("replay-fold", async () => foldJournal(input, events));
  writeProfileSummary("replay", `CPU profile of one pure fold of 10,000 events (${file.slice(file.indexOf("bench/"))}); the cost per event is the same at 100,000 (see the rates).\n\n` + summariseProfile(profile));
}

// 2b. Recovery as the agent does it: read and decode the journal file, read the checkpoint the
// supervisor writes every 500 events, fold the tail. The worst tail is 499 events.
const recovery: Record<number, number> = {};
{
  const rows: string[] = [];
  for (const n of SIZES) {
    const cpDir = mkdtempSync(join(tmpdir(), "bench-recovery-"));
    try {
      const events = journalOf(n);
      const cpN = Math.max(0, n - 499);
      const store = CheckpointStore.open(cpDir);
      await store.put(deployment, cpN, foldJournal(input, events.slice(0, cpN).map((e) => e.event)));
      const j = EventJournal.open(cpDir, device);
      writeFileSync(j.fileOf(deployment), events.map((e) => `${JSON.stringify(e)}\n`).join(""));
      const xs: number[] = [];
      const reads: number[] = [];
      for (let r = 0; r < 5; r++) {
        const t0 = performance.now();
        const read = EventJournal.open(cpDir, device).read(deployment);
        const t1 = performance.now();
        const cp = CheckpointStore.open(cpDir).get(device, deployment)!;
        const snap = foldJournal(input, read.slice(cp.n).map((e) => e.event), cp.snapshot);
        xs.push(performance.now() - t0);
        reads.push(t1 - t0);
        if (snap.value !== "running") throw new Error(`recovery ended in ${String(snap.value)}`);
      }
      const s = report.samples(`replay.recovery.${n}`, `recovery from a ${n}-event journal: file read + checkpoint + fold of the last ${n - cpN}`, "ms", xs);
      const sr = report.samples(`replay.recovery.read.${n}`, `of which reading and decoding the ${n}-line journal file`, "ms", reads);
      rows.push(`| ${n} | ${n - cpN} | ${fmt(sr.median)} | ${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)}) |`);
      recovery[n] = s.median;
    } finally {
      rmSync(cpDir, { recursive: true, force: true });
    }
  }
  report.table(["| journal events | folded after the checkpoint | file read + decode ms | recovery ms, median (min–max) |", "|---:|---:|---:|---:|", ...rows].join("\n"));
  const rec = recovery[100_000]!;
  report.target("replay-recovery", "a deployment rebuilt from a 100,000-event journal < 1 s (agent recovery: checkpoint + tail)", `${fmt(rec)} ms`, rec < 1000, ["replay.recovery.100000"]);
}

// 3. From the stream, on a private nats-server (nothing left on the shared one).
const nats = await PrivateNats.start();
try {
  const nc = await connectBench(nats.url);
  await ensureFleetResources(nc);
  const js = jetstream(nc);
  const rows: string[] = [];
  for (const n of SIZES) {
    const dep = `${deployment}${n}`;
    const subject = eventSubject(device, dep);
    const events = journalOf(n);
    const t0 = performance.now();
    for (let i = 0; i < events.length; i += 1000) {
      await Promise.all(
        events.slice(i, i + 1000).map((e) => js.publish(subject, JSON.stringify({ ...e, deployment: dep }))),
      );
    }
    const pubMs = performance.now() - t0;
    const reads: number[] = [];
    let got: JournalEvent[] = [];
    for (let r = 0; r < 3; r++) {
      const t1 = performance.now();
      got = await readStreamEvents(js, device, dep, { timeoutMs: 120_000 });
      reads.push(performance.now() - t1);
      if (got.length !== n) throw new Error(`stream replay of ${n}: ${got.length} events`);
    }
    const sr = report.samples(`replay.stream.read.${n}`, `stream read + decode of ${n} events`, "ms", reads);
    // The fold of what was read is the pure fold above; run once to check it (skipped at 100,000,
    // where it takes the pure fold's tens of seconds again) and add the pure fold's median.
    if (n < 100_000) {
      const snap = foldJournal({ device, deployment: dep }, got.map((e) => e.event));
      if (snap.value !== "running") throw new Error(`stream replay of ${n} ended ${String(snap.value)}`);
    }
    const st = report.samples(`replay.stream.total.${n}`, `stream read + decode + fold of ${n} events (read + pure fold median)`, "ms", reads.map((r) => r + foldMs[n]!));
    report.value(`replay.stream.${n}.rate`, `stream replay of ${n} events, rate`, "events/s", n / (st.median / 1000));
    rows.push(`| ${n} | ${fmt(foldMs[n]!)} | ${fmt(n / (foldMs[n]! / 1000))} | ${fmt(sr.median)} (${fmt(sr.min)}–${fmt(sr.max)}) | ${fmt(st.median)} (${fmt(st.min)}–${fmt(st.max)}) | ${fmt(n / (st.median / 1000))} | ${fmt(pubMs)} |`);
  }
  report.table(
    ["| events | pure fold ms (median) | fold events/s | stream read+decode ms, median (min–max) | stream total ms, median (min–max) | stream events/s | publishing them took ms |", "|---:|---:|---:|---:|---:|---:|---:|", ...rows].join("\n"),
  );
  await nc.close();
} finally {
  await nats.destroy();
}
report.note(`Events per upgrade cycle: ${cycle.map((e) => e.event.type).join(", ")}. Stream replay uses one ordered consumer (readStreamEvents) on a private nats-server; each message is decoded with the JournalEvent codec.`);
console.log(`wrote ${report.write()}`);
process.exit(0);
