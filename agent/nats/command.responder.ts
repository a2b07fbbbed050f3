// Answers the operator's device commands on `fleet.cmd.<device>.>` (docs/design.md, "Device
// commands"): every request is decoded exactly, dispatched to the handler the wiring gave for its
// verb, and always answered, with `{ok: false, error}` for a bad request, a busy verb, a handler
// that failed or took too long. A handler's work is bounded per verb (how many at once, how long),
// and nothing here waits on a deployment's machine: commands run beside it, never in its way.
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { CommandFailure, COMMANDS, COMMAND_VERBS, isCommandVerb, type CommandRequest, type CommandSuccess, type CommandVerb } from "../../contracts/command.codec.js";
import type * as t from "io-ts";
import { decode, decodeJson } from "../../contracts/decode.js";
import { commandVerbOf, deviceCommandSubjects } from "../../contracts/wire-names.js";

/** What a handler is given besides its request. */
export interface CommandContext {
  /**
   * Bytes the reply's variable part may take (the logs' `JSON.stringify(lines)`): the server's max
   * payload less REPLY_ENVELOPE_BYTES for the rest of the reply.
   */
  maxBytes: number;
}

/** A refusal a handler means the operator to read as it is (no such deployment, not running, …). */
export class CommandRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommandRefused";
  }
}

/** A verb's work: the reply's fields without `ok`, or a throw (its message becomes the error). */
export type CommandHandler<V extends CommandVerb> = (request: CommandRequest<V>, ctx: CommandContext) => Promise<Omit<CommandSuccess<V>, "ok">>;
export type CommandHandlers = { [V in CommandVerb]: CommandHandler<V> };

export interface VerbLimit {
  /** Requests of this verb handled at once; one more is answered "busy" at once. */
  concurrent: number;
  /** After this long the request is answered with a time-out (the handler is aborted). */
  timeoutMs: number;
}

/**
 * Ping answers from memory; logs hold up to a reply's worth of lines each, so few run at once, and
 * reading a long log (Podman sends all of it from the time asked) takes seconds on a small device;
 * a restart waits out the container's grace period (at most 3600 s by the score's codec), then Podman's kill.
 */
export const DEFAULT_LIMITS: Record<CommandVerb, VerbLimit> = {
  ping: { concurrent: 8, timeoutMs: 2_000 },
  logs: { concurrent: 2, timeoutMs: 20_000 },
  restart: { concurrent: 2, timeoutMs: 3_700_000 },
};

/** Room for everything in a reply but its lines (`{"ok":true,"lines":…,"truncated":false}`), with margin. */
export const REPLY_ENVELOPE_BYTES = 512;
/** nats-server's default max_payload, for a connection whose INFO is not known yet. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

export interface CommandResponderOptions {
  device: string;
  nc: NatsConnection;
  logger: Logger;
  handlers: CommandHandlers;
  limits?: Partial<Record<CommandVerb, VerbLimit>>;
}

export class CommandResponder {
  private readonly log: Logger;
  private readonly limits: Record<CommandVerb, VerbLimit>;
  private readonly running = new Map<CommandVerb, number>(COMMAND_VERBS.map((v) => [v, 0]));
  /** Handlers still working (answered or not). */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly stopping = new AbortController();
  private readonly sub: Subscription;

  private constructor(private readonly o: CommandResponderOptions) {
    this.log = o.logger.child({ component: "commands" });
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    const subject = deviceCommandSubjects(o.device);
    this.sub = o.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return; // reported once by `closed` below
        void this.answer(msg).catch((e: Error) => this.log.error({ subject: msg.subject, err: e.message }, "answering a command failed"));
      },
    });
    void this.sub.closed.then((e) => {
      if (!e) return;
      // An older server config without the subscribe permission: the agent runs on, without commands.
      this.log.error({ subject, err: e.message }, "device commands are off: subscribing to this device's command subjects was refused (give the device the permission `fleetctl device add` prints)");
    });
    this.log.info({ subject }, "answering device commands");
  }

  static start(o: CommandResponderOptions): CommandResponder {
    return new CommandResponder(o);
  }

  /**
   * No new requests; those in flight are answered as stopping. Resolves
   * once the handlers are done, or after `timeoutMs` (a restart in Podman's hands can't be called off;
   * it finishes without its journal event, and the next tick finds the container running).
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopping.abort();
    if (!this.sub.isClosed()) this.sub.unsubscribe();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    await Promise.race([Promise.allSettled([...this.inFlight]), late]);
    clearTimeout(timer);
  }

  private maxPayload(): number {
    const m = this.o.nc.info?.max_payload;
    return typeof m === "number" && m > 0 ? m : DEFAULT_MAX_PAYLOAD;
  }

  private async answer(msg: Msg): Promise<void> {
    if (!msg.reply) {
      // A publish, not a request: there is no one to answer.
      this.log.warn({ subject: msg.subject }, "a command without a reply subject was ignored");
      return;
    }
    const verb = commandVerbOf(this.o.device, msg.subject);
    if (verb === null || !isCommandVerb(verb)) {
      this.send(msg, fail(`unknown command ${JSON.stringify((verb ?? msg.subject).slice(0, 60))}: expected one of ${COMMAND_VERBS.join(", ")}`));
      return;
    }
    // One case per verb, so each request and reply keeps its own type.
    switch (verb) {
      case "ping":
        return this.serve(msg, verb, COMMANDS.ping, this.o.handlers.ping);
      case "logs":
        return this.serve(msg, verb, COMMANDS.logs, this.o.handlers.logs);
      case "restart":
        return this.serve(msg, verb, COMMANDS.restart, this.o.handlers.restart);
    }
  }

  private async serve<Req, ReqOut, Rep, RepOut>(
    msg: Msg,
    verb: CommandVerb,
    codecs: { request: t.Type<Req, ReqOut, unknown>; reply: t.Type<Rep, RepOut, unknown> },
    handler: (request: Req, ctx: CommandContext) => Promise<object>,
  ): Promise<void> {
    const decoded = decodeJson(codecs.request, msg.string());
    if (!decoded.ok) {
      this.send(msg, fail(`invalid ${verb} request: ${decoded.errors.join("; ")}`));
      return;
    }
    const limit = this.limits[verb];
    const busy = this.running.get(verb)!;
    if (busy >= limit.concurrent) {
      this.send(msg, fail(`busy: ${busy} ${verb} command${busy === 1 ? " is" : "s are"} already running on ${this.o.device}; try again`));
      return;
    }
    this.running.set(verb, busy + 1);
    // A handler's runtime call can't be cut short: past its time the request is answered, and the
    // handler's slot stays taken until the call returns.
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<unknown>((resolve) => {
      timer = setTimeout(() => resolve(fail(`${verb} did not finish within ${limit.timeoutMs / 1000} s on ${this.o.device}`)), limit.timeoutMs);
    });
    let onStop = () => {};
    const stopped = new Promise<unknown>((resolve) => {
      onStop = () => resolve(fail(`${this.o.device}'s agent is stopping`));
      if (this.stopping.signal.aborted) onStop();
      else this.stopping.signal.addEventListener("abort", onStop, { once: true });
    });
    const started = Date.now();
    const handled = handler(decoded.value, { maxBytes: this.maxPayload() - REPLY_ENVELOPE_BYTES }).then(
      (r): unknown => ({ ok: true, ...r }),
      (e: unknown): unknown => {
        if (!(e instanceof CommandRefused)) this.log.warn({ verb, err: (e as Error).message }, "a command failed");
        return fail(e instanceof Error ? e.message : String(e));
      },
    );
    this.inFlight.add(handled);
    try {
      const reply = await Promise.race([handled, timedOut, stopped]);
      // A success is checked against the verb's reply codec (so the operator's exact decode can't
      // fail on it) and encoded by it (no field the codec doesn't name goes out).
      const checked = recode(codecs.reply, reply);
      if (!checked.ok) this.log.error({ verb, errors: checked.errors.slice(0, 5) }, "a command handler made a reply that does not decode");
      const out = checked.ok ? checked.value : fail(`${this.o.device} made an invalid ${verb} reply: ${checked.errors.slice(0, 3).join("; ")}`);
      this.send(msg, out);
      this.log.info({ verb, ok: checked.ok && !CommandFailure.is(reply), ms: Date.now() - started }, "answered a command");
    } finally {
      clearTimeout(timer);
      this.stopping.signal.removeEventListener("abort", onStop);
      // The slot is held until the handler itself is done, not just answered: that is the bound.
      void handled.finally(() => {
        this.running.set(verb, this.running.get(verb)! - 1);
        this.inFlight.delete(handled);
      });
    }
  }

  /** Sends a reply; one too big for the server is replaced by a failure saying so. */
  private send(msg: Msg, reply: unknown): void {
    let data = JSON.stringify(reply);
    const size = Buffer.byteLength(data);
    if (size > this.maxPayload()) {
      this.log.error({ subject: msg.subject, bytes: size, max: this.maxPayload() }, "a command's reply is over the server's max payload");
      data = JSON.stringify(fail(`the reply (${size} bytes) is over the server's max payload (${this.maxPayload()} bytes)`));
    }
    try {
      msg.respond(data);
    } catch (e) {
      this.log.warn({ subject: msg.subject, err: (e as Error).message }, "a command's reply could not be sent");
    }
  }
}

/** `u` decoded by `codec`, then encoded by it: the wire form of a value checked to be valid. */
function recode<A, O>(codec: t.Type<A, O, unknown>, u: unknown): { ok: true; value: O } | { ok: false; errors: string[] } {
  const r = decode(codec, u);
  return r.ok ? { ok: true, value: codec.encode(r.value) } : r;
}

const fail = (error: string): CommandFailure => ({ ok: false, error });
