// Device commands without a server: the codecs' exactness, the hiding of env values in log lines and
// the fitting of a reply under its byte budget, the handlers' refusals, the machine's record of a
// restart, and fleetctl's follow cursor and arguments.
import { expect } from "chai";
import { COMMANDS, LogsRequest, LOGS_MAX_TAIL, PingReply, type LogLine } from "../../../contracts/command.codec.js";
import { decode } from "../../../contracts/decode.js";
import { REDACTED, logSecrets, redactText, withoutSecretStart } from "../../../agent/journal/redact.js";
import { deviceCommandHandlers, fitRedacted, type CommandDeps } from "../../../agent/deployments/commands.js";
import { CommandRefused } from "../../../agent/nats/command.responder.js";
import type { ReconcileScore } from "../../../contracts/score.codec.js";
import { FakeRuntime } from "../../../runtime/fake.runtime.js";
import { DeploymentHarness } from "../../support/deployment.harness.js";
import { FollowCursor, sinceArg, tailArg } from "../../../cli/logs.command.js";
import { UsageError } from "../../../fleet/errors.js";
import { restartsOf, type DeploymentSnapshot } from "../../../machines/deployment.machine.js";

/** The snapshot with a context of its own, to change (a snapshot holds functions: no structuredClone). */
const withContext = (s: DeploymentSnapshot): DeploymentSnapshot => Object.assign(Object.create(Object.getPrototypeOf(s) as object) as DeploymentSnapshot, s, { context: structuredClone(s.context) });
const line = (text: string, at = "2026-12-01T10:00:00.000Z", stream: LogLine["stream"] = "stdout"): LogLine => ({ at, stream, text });

describe("device command codecs", () => {
  it("a logs request: deployment and service required, tail 1 to 10 000, since an ISO time, nothing else", () => {
    expect(decode(LogsRequest, { deployment: "app", service: "web", tail: 5, since: "2026-12-01T10:00:00Z" })).to.deep.equal({ ok: true, value: { deployment: "app", service: "web", tail: 5, since: "2026-12-01T10:00:00Z" } });
    const bad = decode(LogsRequest, { deployment: "a.b", service: "web", tail: LOGS_MAX_TAIL + 1, since: "1", follow: true });
    expect(bad.ok).to.equal(false);
    if (!bad.ok) {
      expect(bad.errors).to.have.length(4);
      expect(bad.errors.join("\n")).to.include("deployment: must be letters").and.include("tail: expected a whole number of lines from 1 to 10000, got 10001").and.include('since: expected an ISO-8601 time, got "1"').and.include("follow: unknown field");
    }
  });

  it("a reply is its verb's success or {ok: false, error}, each decoded exactly, with one error list for the branch it claims", () => {
    const ping = { ok: true, device: "pi-1", agent_version: "0.1.0", uptime_secs: 3, at: "2026-12-01T10:00:00.000Z", deployments: { app: "Running" } };
    expect(decode(COMMANDS.ping.reply, ping).ok).to.equal(true);
    expect(decode(COMMANDS.ping.reply, { ok: false, error: "no" })).to.deep.equal({ ok: true, value: { ok: false, error: "no" } });
    expect(decode(COMMANDS.ping.reply, { ok: false, error: "no", extra: 1 })).to.deep.equal({ ok: false, errors: ["extra: unknown field"] });
    expect(decode(COMMANDS.ping.reply, { ...ping, deployments: { app: "Sleeping" } })).to.deep.equal({ ok: false, errors: ['deployments.app: expected Phase, got "Sleeping"'] });
    expect(decode(COMMANDS.logs.reply, { ok: true, lines: [{ at: "2026-12-01T10:00:00Z", stream: "stdin", text: "x" }], truncated: false })).to.deep.equal({
      ok: false,
      errors: ['lines[0].stream: expected LogStream, got "stdin"'],
    });
    expect(PingReply.is({ ...ping, ok: false })).to.equal(false);
  });
});

describe("env values hidden in log lines", () => {
  const secrets = logSecrets([{ TOKEN: "tok-1234", PASS: "hunter2", FLAG: "on", EMPTY: "", KEY: "-----BEGIN-----\nMIIBOgIBAAJBAK\n-----END-----", SHOWN: REDACTED }]);

  it("values of 4 characters or more anywhere, longest first; each line of a multi-line value; shorter ones only as a whole line", () => {
    expect(secrets.anywhere).to.deep.equal(["-----BEGIN-----\nMIIBOgIBAAJBAK\n-----END-----", "-----BEGIN-----", "MIIBOgIBAAJBAK", "-----END-----", "tok-1234", "hunter2"]);
    expect([...secrets.whole]).to.deep.equal(["on"]);
    expect(redactText("login hunter2 with tok-1234", secrets)).to.equal(`login ${REDACTED} with ${REDACTED}`);
    expect(redactText("on", secrets)).to.equal(REDACTED);
    expect(redactText("turned on", secrets)).to.equal("turned on");
    expect(redactText("MIIBOgIBAAJBAK", secrets)).to.equal(REDACTED);
    expect(redactText("nothing here", secrets)).to.equal("nothing here");
  });

  it("values that overlap or touch become one <redacted>, so no part of either shows", () => {
    const s = logSecrets([{ A: "abcdef", B: "defghi" }]);
    expect(redactText("xabcdefghiy", s)).to.equal(`x${REDACTED}y`);
    expect(redactText("abcdefdefghi abcdef", s)).to.equal(`${REDACTED} ${REDACTED}`);
  });

  it("a cut line loses a trailing start of a value", () => {
    expect(withoutSecretStart("token is tok-12", secrets)).to.equal("token is ");
    expect(withoutSecretStart("token is t", secrets)).to.equal("token is ");
    expect(withoutSecretStart("all done", secrets)).to.equal("all done");
  });

  it("fitRedacted keeps the newest lines within the budget after hiding (<redacted> may be longer than the value)", () => {
    const s = logSecrets([{ P: "abcd" }]);
    const raw = Array.from({ length: 10 }, (_, i) => line(`${i} abcd abcd abcd`));
    const budget = Buffer.byteLength(JSON.stringify(raw));
    const r = fitRedacted(raw, false, s, budget);
    expect(r.truncated).to.equal(true);
    expect(Buffer.byteLength(JSON.stringify(r.lines))).to.be.at.most(budget);
    expect(r.lines.at(-1)!.text).to.equal(`9 ${REDACTED} ${REDACTED} ${REDACTED}`);
    expect(r.lines.map((l) => Number.parseInt(l.text, 10))).to.deep.equal(Array.from({ length: r.lines.length }, (_, i) => 10 - r.lines.length + i));
    const one = fitRedacted([line("x".repeat(500))], false, s, 200);
    expect(one.truncated).to.equal(true);
    expect(Buffer.byteLength(JSON.stringify(one.lines))).to.be.within(190, 200);
    expect(fitRedacted([line("ab")], false, s, 10_000)).to.deep.equal({ lines: [line("ab")], truncated: false });
    // The runtime cut the oldest line inside a value: its start does not show.
    expect(fitRedacted([line("then ab"), line("next")], true, s, 10_000).lines[0]!.text).to.equal("then ");
  });
});

describe("device command handlers", () => {
  const full: ReconcileScore = { type: "PodmanV0", data: { services: [{ name: "web", image: "img/web:1", env: { TOKEN: "tok-9876" } }, { name: "db", image: "img/db:1" }] } };
  let fake: FakeRuntime;
  let h: DeploymentHarness;
  let stored: Map<string, ReconcileScore>;
  const deps = (): CommandDeps => ({
    device: "d1",
    agentVersion: "9.9.9",
    startedAt: Date.parse("2026-12-01T10:00:00Z"),
    now: () => Date.parse("2026-12-01T10:01:30Z"),
    runtime: fake,
    scores: { get: async (hash: string) => stored.get(hash) ?? null },
    supervisor: {
      deployments: () => ["app"],
      snapshot: (d: string) => (d === "app" ? h.snapshot : undefined),
      phases: () => ({ app: "Running" }),
      serviceRestarted: async () => 1,
    },
  });
  beforeEach(async () => {
    fake = new FakeRuntime({ device: "d1" });
    h = new DeploymentHarness(fake, { device: "d1", deployment: "app" });
    const hash = h.update(full);
    stored = new Map([[hash, full]]);
    await h.settled();
  });
  afterEach(() => h.stop());
  const ctx = { maxBytes: 100_000 };
  const refusal = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => (e instanceof CommandRefused ? e.message : `not a refusal: ${String(e)}`));

  it("ping answers from memory: version, uptime in seconds, the time, the phases", async () => {
    expect(await deviceCommandHandlers(deps()).ping({}, ctx)).to.deep.equal({ device: "d1", agent_version: "9.9.9", uptime_secs: 90, at: "2026-12-01T10:01:30.000Z", deployments: { app: "Running" } });
  });

  it("logs of the recorded container, with the deployment's env values hidden; refusals name what is missing", async () => {
    fake.writeLog(h.snapshot.context.containerIds["web"]!, "token=tok-9876\nready");
    const handlers = deviceCommandHandlers(deps());
    expect((await handlers.logs({ deployment: "app", service: "web" }, ctx)).lines.map((l) => l.text)).to.deep.equal([`token=${REDACTED}`, "ready"]);
    expect(await refusal(handlers.logs({ deployment: "shop", service: "web" }, ctx))).to.equal('no deployment "shop" on d1 (it runs app)');
    expect(await refusal(handlers.logs({ deployment: "app", service: "cache" }, ctx))).to.equal('no service "cache" in deployment app (its services: db, web)');
  });

  it("logs are refused when the env values to hide are known only as <redacted> (the store lost the score)", async () => {
    stored.clear();
    // The machine's own context has the full score of a live deployment: that is enough.
    expect((await deviceCommandHandlers(deps()).logs({ deployment: "app", service: "web" }, ctx)).lines).to.deep.equal([]);
    const redacted = withContext(h.snapshot);
    redacted.context.target!.score.services[0]!.env = { TOKEN: REDACTED };
    redacted.context.applied["web"]!.service.env = { TOKEN: REDACTED };
    const d = { ...deps(), supervisor: { ...deps().supervisor, snapshot: () => redacted } };
    expect(await refusal(deviceCommandHandlers(d).logs({ deployment: "app", service: "web" }, ctx))).to.equal("the logs of app can't be shown: the env values of web are not known on d1 to hide them");
  });

  it("restart: the recorded container; a container not the agent's is refused by the runtime", async () => {
    const id = h.snapshot.context.containerIds["web"]!;
    expect(await deviceCommandHandlers(deps()).restart({ deployment: "app", service: "web" }, ctx)).to.deep.equal({ id });
    const foreign = fake.addForeign("app.web-imposter");
    const s = withContext(h.snapshot);
    s.context.containerIds["web"] = foreign;
    const d = { ...deps(), supervisor: { ...deps().supervisor, snapshot: () => s } };
    const e = await deviceCommandHandlers(d).restart({ deployment: "app", service: "web" }, ctx).then(() => null, (x: Error) => x);
    expect(e?.message).to.match(/not managed|not ours|not the agent's/i);
    expect(fake.peek(foreign)!.state).to.equal("running");
  });
});

describe("the machine's record of an operator's restart", () => {
  it("SERVICE_RESTARTED of the recorded container is counted and journaled; one of another id changes nothing; the replay matches", async () => {
    const fake = new FakeRuntime({ device: "d1" });
    const h = new DeploymentHarness(fake, { device: "d1", deployment: "app" });
    try {
      h.update({ services: [{ name: "web", image: "img/web:1" }] });
      const id = (await h.settled()).context.containerIds["web"]!;
      const before = h.journal.length;
      h.actor.send({ type: "SERVICE_RESTARTED", service: "web", id, restarts: 1, by: "operator", at: 1 });
      h.actor.send({ type: "SERVICE_RESTARTED", service: "web", id: "not-recorded", restarts: 1, by: "operator", at: 2 });
      h.actor.send({ type: "SERVICE_RESTARTED", service: "web", id, restarts: 2, by: "operator", at: 3 });
      expect(h.journal.length - before).to.equal(2);
      expect(h.path().slice(before)).to.deep.equal(["running→running", "running→running"]);
      expect(restartsOf(h.snapshot.context, id)).to.equal(2);
      expect(h.replayMatches()).to.equal(true);
      // A new container (an upgrade) starts its own count; the old one's is dropped at its next restart.
      h.update({ services: [{ name: "web", image: "img/web:2" }] });
      const next = (await h.settled()).context.containerIds["web"]!;
      expect(restartsOf(h.snapshot.context, next)).to.equal(0);
      h.actor.send({ type: "SERVICE_RESTARTED", service: "web", id: next, restarts: 1, by: "operator", at: 4 });
      expect(restartsOf(h.snapshot.context, next)).to.equal(1);
      expect(h.replayMatches()).to.equal(true);
    } finally {
      h.stop();
    }
  });
});

describe("fleetctl logs: arguments and the follow cursor", () => {
  it("--since takes an ISO time or an age; --tail 1 to 10 000", () => {
    const now = Date.parse("2026-12-01T10:00:00Z");
    expect(sinceArg("90s", now)).to.equal("2026-12-01T09:58:30.000Z");
    expect(sinceArg("2h", now)).to.equal("2026-12-01T08:00:00.000Z");
    expect(sinceArg("2026-11-30T10:00:00+01:00", now)).to.equal("2026-11-30T09:00:00.000Z");
    expect(() => sinceArg("yesterday", now)).to.throw(UsageError, /--since: expected an ISO time .* got "yesterday"/);
    expect(tailArg(undefined)).to.equal(200);
    expect(tailArg("10000")).to.equal(10_000);
    for (const bad of ["0", "10001", "1.5", "-3", "x"]) expect(() => tailArg(bad), bad).to.throw(UsageError, /--tail/);
  });

  it("asking again from the last line's second skips the lines of that second already printed", () => {
    const t1 = "2026-12-01T10:00:01.000Z";
    const t2 = "2026-12-01T10:00:02.000Z";
    const c = new FollowCursor([line("a", t1), line("b", t2), line("c", t2)]);
    expect(c.since).to.equal(t2);
    expect(c.fresh([line("b", t2), line("c", t2)])).to.deep.equal([]);
    expect(c.fresh([line("b", t2), line("c", t2), line("d", t2)]).map((l) => l.text)).to.deep.equal(["d"]);
    expect(c.fresh([line("b", t2), line("c", t2), line("d", t2), line("e", "2026-12-01T10:00:03.000Z")]).map((l) => l.text)).to.deep.equal(["e"]);
    expect(c.since).to.equal("2026-12-01T10:00:03.000Z");
    const empty = new FollowCursor([]);
    expect(empty.since).to.equal(null);
    expect(empty.fresh([line("x", t1)]).map((l) => l.text)).to.deep.equal(["x"]);
  });
});
