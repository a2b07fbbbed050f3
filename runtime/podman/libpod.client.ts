// A typed client for the parts of Podman's libpod REST API that fleet-agent uses: HTTP/1.1 over
// Podman's unix socket with node:http, every response body decoded with a codec, every failure one
// LibpodError. Facts about Podman 4.3.1's real behaviour: docs/podman-libpod.md.
import * as http from "node:http";
import type * as t from "io-ts";
import { decode, decodeJson } from "../../contracts/decode.js";
import {
  ContainerInspect,
  CreateResponse,
  HealthCheckResult,
  HealthInspect,
  LibpodErrorBody,
  LibpodEvent,
  ListResponse,
  PullLine,
  RemoveResponse,
  VersionResponse,
  type ListedContainer,
  type RemoveReport,
} from "./libpod.codecs.js";

export type {
  ContainerInspect,
  CreateResponse,
  HealthCheckResult,
  HealthInspect,
  LibpodEvent,
  ListedContainer,
  RemoveReport,
  VersionResponse,
} from "./libpod.codecs.js";

/** The one error this client raises: a failed request, a refused one, or a body that did not decode. */
export class LibpodError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    /** HTTP status, or null when no response arrived (socket refused, timed out, aborted). */
    readonly status: number | null,
    /** Podman's `cause` (e.g. "no such container"), or what went wrong on our side. */
    override readonly cause: string,
    message: string,
  ) {
    super(`${method} ${path}: ${status === null ? "no response" : status}: ${message}`);
    this.name = "LibpodError";
  }
}

/** The request got no answer within its time-out (the client gave up; Podman may still be at it). */
export const isTimedOut = (e: unknown): e is LibpodError => e instanceof LibpodError && e.status === null && e.cause.startsWith("timed out");

/** The container (or image) does not exist. 4.3.1 answers 404 with cause "no such container". */
export const isNotFound = (e: unknown): e is LibpodError =>
  e instanceof LibpodError && (e.status === 404 || /no such (container|image)/.test(e.cause));
/** Create refused a name that is taken (4.3.1: 500 with this cause; 5.x: 409). */
export const isNameInUse = (e: unknown): e is LibpodError =>
  e instanceof LibpodError && (e.status === 409 || e.cause.includes("that name is already in use"));
/** Create refused an image that is not in the local store. */
export const isImageNotKnown = (e: unknown): e is LibpodError =>
  e instanceof LibpodError && e.cause.includes("image not known");

/**
 * Where the Podman socket is: `CONTAINER_HOST` (`unix://PATH`), else `/run/podman/podman.sock` for
 * root, else `$XDG_RUNTIME_DIR/podman/podman.sock`.
 */
export function resolveSocketPath(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): string {
  const host = env.CONTAINER_HOST;
  if (host) {
    if (!host.startsWith("unix://")) throw new Error(`CONTAINER_HOST must be unix://PATH, got ${JSON.stringify(host)}`);
    const path = host.slice("unix://".length);
    if (!path.startsWith("/")) throw new Error(`CONTAINER_HOST must name an absolute socket path, got ${JSON.stringify(host)}`);
    return path;
  }
  if (uid === 0) return "/run/podman/podman.sock";
  const xdg = env.XDG_RUNTIME_DIR;
  if (!xdg) throw new Error("cannot find the Podman socket: CONTAINER_HOST and XDG_RUNTIME_DIR are both unset");
  return `${xdg}/podman/podman.sock`;
}

/** The subset of Podman's SpecGenerator that fleet-agent sends to `containers/create`. */
export interface CreateSpec {
  name: string;
  image: string;
  command?: string[];
  entrypoint?: string[];
  env?: Record<string, string>;
  labels?: Record<string, string>;
  /** Signal number: the string "SIGTERM" is a 500 decode error on 4.3.1. */
  stop_signal?: number;
  /** Seconds between the stop signal and SIGKILL; 0 kills at once. */
  stop_timeout?: number;
  portmappings?: PortMapping[];
  mounts?: OciMount[];
  healthconfig?: HealthConfig;
  r_limits?: RLimit[];
}
export interface PortMapping {
  container_port: number;
  host_port: number;
  protocol?: "tcp" | "udp" | "sctp";
  host_ip?: string;
}
/** An OCI runtime-spec mount: `{destination, type: "bind", source, options: ["rbind", "ro"]}`. */
export interface OciMount {
  destination: string;
  type: "bind";
  source: string;
  options: string[];
}
/** Durations are integer nanoseconds. */
export interface HealthConfig {
  Test: string[];
  Interval: number;
  Timeout: number;
  StartPeriod: number;
  Retries: number;
}
export interface RLimit {
  type: string;
  soft: number;
  hard: number;
}

/** Filters of `containers/json`: labels `k=v` (ANDed), names as regular expressions. */
export interface ListFilters {
  label?: string[];
  name?: string[];
  id?: string[];
}
export interface EventFilters {
  type?: string[];
  label?: string[];
  container?: string[];
  event?: string[];
}

/**
 * Podman 4.3.1 streams its events file again from the top after rotating it (at 1 MB by default):
 * what the rotation kept arrives twice, and with it events from before the subscription
 * (containers/podman#17665, fixed upstream in 2023). The stream drops both: an event older than the
 * subscription, and one already delivered (its time to the nanosecond, type, action and actor) within a
 * window larger than half a rotated file.
 */
const EVENT_REPLAY_WINDOW = 8192;
const eventKey = (e: LibpodEvent) => `${e.timeNano ?? e.time}|${e.Type}|${e.Action}|${e.Actor.ID}`;

/** A set that remembers only its last `size` keys. */
class RecentKeys {
  private readonly keys = new Set<string>();
  constructor(private readonly size: number) {}
  addIfNew(key: string): boolean {
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    if (this.keys.size > this.size) this.keys.delete(this.keys.values().next().value!);
    return true;
  }
}

/** A live `events` subscription: iterate it; `close()` (or the abort signal) ends it. */
export interface EventStream extends AsyncIterable<LibpodEvent> {
  close(): void;
}

export interface LibpodClientOptions {
  /** The socket's path. Defaults to `containerHost`, else resolveSocketPath(). */
  socketPath?: string;
  /** `unix://PATH`, as in CONTAINER_HOST. */
  containerHost?: string;
  /** The version prefix of libpod paths; any version string is accepted by Podman. */
  apiVersion?: string;
  /** Time-out of a request that is not expected to block, in ms. Default 60 s. */
  requestTimeoutMs?: number;
}

interface RawResponse {
  status: number;
  body: string;
  raw: Buffer;
}

type Query = Record<string, string | number | boolean | undefined>;

const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** An error answer is a short JSON object; more than this is not read. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

export class LibpodClient {
  readonly socketPath: string;
  /** Requests this client has sent (each HTTP request counts once, streams included). */
  requestCount = 0;
  /**
   * The same count per route, `METHOD /path` with ids as `{id}` (e.g. `DELETE /containers/{id}`),
   * so a bench can say which requests an operation made.
   */
  readonly requestsByRoute = new Map<string, number>();
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly agent: http.Agent;

  constructor(opts: LibpodClientOptions = {}) {
    this.socketPath =
      opts.socketPath ?? (opts.containerHost !== undefined ? resolveSocketPath({ CONTAINER_HOST: opts.containerHost }) : resolveSocketPath());
    this.prefix = `/${opts.apiVersion ?? "v4.0.0"}/libpod`;
    this.timeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 8 });
  }

  /** Closes idle keep-alive sockets; the client stays usable. */
  close(): void {
    this.agent.destroy();
  }

  async ping(): Promise<string> {
    const r = await this.send("GET", "/_ping", {}, undefined, [200]);
    return r.body;
  }

  async version(): Promise<VersionResponse> {
    return this.json("GET", "/version", {}, undefined, [200], VersionResponse);
  }

  async create(spec: CreateSpec): Promise<CreateResponse> {
    return this.json("POST", "/containers/create", {}, spec, [201], CreateResponse);
  }

  /** 204 started; 304 already running. */
  async start(id: string): Promise<"started" | "already-running"> {
    const r = await this.send("POST", `/containers/${enc(id)}/start`, {}, undefined, [204, 304]);
    return r.status === 304 ? "already-running" : "started";
  }

  /**
   * Sends the container's stop signal, waits `timeout` s (default: the container's StopTimeout),
   * then SIGKILL. Blocks until the container has stopped. 304 = already stopped.
   */
  async stop(id: string, timeout?: number): Promise<"stopped" | "already-stopped"> {
    const blockMs = timeout === undefined ? undefined : (timeout + 30) * 1000;
    const r = await this.send("POST", `/containers/${enc(id)}/stop`, { timeout }, undefined, [204, 304], blockMs);
    return r.status === 304 ? "already-stopped" : "stopped";
  }

  /** Sends a signal without waiting (not running → 500 "container state improper"). */
  async kill(id: string, signal: string | number = "KILL"): Promise<void> {
    await this.send("POST", `/containers/${enc(id)}/kill`, { signal }, undefined, [204]);
  }

  async inspect(id: string): Promise<ContainerInspect> {
    return this.json("GET", `/containers/${enc(id)}/json`, {}, undefined, [200], ContainerInspect);
  }

  /** `containers/json`; `all` includes stopped containers. */
  async list(opts: { all?: boolean; filters?: ListFilters } = {}): Promise<ListedContainer[]> {
    const filters = opts.filters && Object.keys(opts.filters).length ? JSON.stringify(opts.filters) : undefined;
    const r = await this.json("GET", "/containers/json", { all: opts.all ?? false, filters }, undefined, [200], ListResponse);
    return r ?? [];
  }

  /** Removes a container; `force` stops a running one first, waiting up to `timeout` s. */
  async remove(id: string, opts: { force?: boolean; timeout?: number } = {}): Promise<RemoveReport[]> {
    const path = `/containers/${enc(id)}`;
    const blockMs = opts.timeout === undefined ? undefined : (opts.timeout + 30) * 1000;
    const reports = (await this.json("DELETE", path, { force: opts.force, timeout: opts.timeout }, undefined, [200], RemoveResponse, blockMs)) ?? [];
    const failed = reports.find((r) => r.Err);
    if (failed?.Err) throw new LibpodError("DELETE", this.prefix + path, 200, failed.Err, failed.Err);
    return reports;
  }

  /** Waits for the container to reach `condition` (default exited) and returns its exit code. */
  async wait(id: string, condition = "exited", timeoutMs = 0): Promise<number> {
    const path = `/containers/${enc(id)}/wait`;
    const r = await this.send("POST", path, { condition }, undefined, [200], timeoutMs);
    const code = Number.parseInt(r.body.trim(), 10);
    if (!Number.isInteger(code)) throw new LibpodError("POST", this.prefix + path, r.status, "malformed exit code", `wait answered ${JSON.stringify(r.body.slice(0, 40))}`);
    return code;
  }

  /**
   * A new start of the container: a running one is stopped first (its stop signal, `timeout` s, then
   * SIGKILL), a stopped or created one just started. 4.3.1's libpod route reads `timeout`, not the
   * documented `t` (ignored), and without it kills at once: the timeout is always sent.
   */
  async restart(id: string, timeout: number): Promise<void> {
    await this.send("POST", `/containers/${enc(id)}/restart`, { timeout }, undefined, [204], (timeout + 30) * 1000);
  }

  /**
   * Runs the container's health check now (4.3.1 has no timer without systemd). Podman does not bound
   * the run by the check's timeout: it waits for the command, then counts an overlong run as a
   * failure and answers 500 "healthcheck command exceeded timeout". `timeoutMs` bounds the wait here.
   */
  async healthcheck(id: string, timeoutMs?: number): Promise<HealthCheckResult> {
    return this.json("GET", `/containers/${enc(id)}/healthcheck`, {}, undefined, [200], HealthCheckResult, timeoutMs);
  }

  /** Inspect, decoded for a health report: Podman's health bookkeeping and the check's config. */
  async inspectHealth(id: string): Promise<HealthInspect> {
    return this.json("GET", `/containers/${enc(id)}/json`, {}, undefined, [200], HealthInspect);
  }

  /** The container's stdout and stderr so far, as text. */
  async logs(id: string): Promise<string> {
    const r = await this.send("GET", `/containers/${enc(id)}/logs`, { stdout: true, stderr: true }, undefined, [200]);
    return demuxLogs(r.raw);
  }

  /**
   * Streams the container's log, both streams, to `onFrame` as frames arrive, holding no more than
   * one frame. With `timestamps`, every frame starts with its RFC 3339 time and a space (4.3.1: to
   * the second). A frame is one line, or one piece of a long line, of Podman's log file: a piece
   * without its newline is continued by the stream's next frame. `tail` and `since` filter on
   * Podman's side (`since` to the nanosecond). A throw from `onFrame` ends the request with it.
   */
  async logFrames(id: string, opts: { tail?: number; since?: string; timestamps?: boolean }, onFrame: (f: LogFrame) => void): Promise<void> {
    const path = `/containers/${enc(id)}/logs`;
    const full = this.prefix + path;
    const query: Query = { stdout: true, stderr: true, follow: false, timestamps: opts.timestamps, tail: opts.tail, since: opts.since };
    this.count("GET", path);
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(e);
      };
      const req = http.request({ socketPath: this.socketPath, agent: this.agent, method: "GET", path: full + queryString(query), headers: { "content-length": 0 } }, (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          readBody(res, MAX_ERROR_BODY_BYTES).then(
            (buf) => fail(this.statusError("GET", full, status, buf.toString("utf8"))),
            (e: Error) => fail(this.transportError("GET", full, e)),
          );
          return;
        }
        const demux = new LogDemuxer();
        res.on("data", (chunk: Buffer) => {
          if (settled) return;
          try {
            for (const f of demux.push(chunk)) onFrame(f);
          } catch (e) {
            fail(e instanceof LogFrameError ? this.bodyError("GET", path, status, [e.message]) : toError(e));
          }
        });
        res.on("end", () => {
          if (settled) return;
          try {
            demux.end();
          } catch (e) {
            fail(this.bodyError("GET", path, status, [toError(e).message]));
            return;
          }
          settled = true;
          resolve();
        });
        res.on("error", (e) => fail(this.transportError("GET", full, e)));
        res.on("aborted", () => fail(this.transportError("GET", full, new Error("response aborted"))));
      });
      // An idle-time bound: a long log keeps the request busy, which is not a hang.
      req.setTimeout(this.timeoutMs, () => req.destroy(new RequestTimedOut(`no data within ${this.timeoutMs} ms`)));
      req.on("error", (e) => fail(this.transportError("GET", full, e)));
      req.end();
    });
  }

  async imageExists(name: string): Promise<boolean> {
    const r = await this.send("GET", `/images/${encImage(name)}/exists`, {}, undefined, [204, 404]);
    return r.status === 204;
  }

  /**
   * Pulls an image. Podman answers 200 at once and streams JSON lines; a failure is the last line,
   * `{"error": ...}`, still under status 200: that is turned into a LibpodError.
   */
  async pull(reference: string, policy: "missing" | "always" | "newer" = "missing", timeoutMs = 30 * 60_000): Promise<{ id: string; images: string[] }> {
    const path = "/images/pull";
    const r = await this.send("POST", path, { reference, policy }, undefined, [200], timeoutMs);
    const lines = r.body.split("\n").filter((l) => l.trim() !== "");
    let result: { id: string; images: string[] } | null = null;
    for (const line of lines) {
      const d = decodeJson(PullLine, line);
      if (!d.ok) throw this.bodyError("POST", path, r.status, d.errors);
      if (d.value.error !== undefined) throw new LibpodError("POST", this.prefix + path, r.status, d.value.error, `pull ${reference}: ${d.value.error}`);
      if (d.value.id !== undefined) result = { id: d.value.id, images: d.value.images ?? [] };
    }
    if (!result) throw new LibpodError("POST", this.prefix + path, r.status, "pull ended without a result", `pull ${reference}: the stream ended without an image id`);
    return result;
  }

  /**
   * Subscribes to Podman's event stream. Resolves once Podman has answered (so the subscription is
   * live: later events are delivered); iterate the result; `close()` or `signal` ends it.
   */
  async events(filters: EventFilters = {}, signal?: AbortSignal): Promise<EventStream> {
    const path = this.prefix + "/events";
    const query = { stream: true, filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined };
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    if (signal) {
      if (signal.aborted) controller.abort();
      else signal.addEventListener("abort", onAbort, { once: true });
    }
    this.count("GET", "/events");
    const subscribedNs = Date.now() * 1e6;
    let res: http.IncomingMessage;
    try {
      res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        // A dedicated connection: a stream must not hold one of the keep-alive pool's sockets.
        const req = http.request(
          { socketPath: this.socketPath, method: "GET", path: path + queryString(query), agent: false, signal: controller.signal },
          (r) => {
            clearTimeout(answerTimer);
            resolve(r);
          },
        );
        // Only the answer is timed: a live stream may rightly be quiet for hours.
        const answerTimer = setTimeout(() => req.destroy(new RequestTimedOut(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        req.on("error", (e) => {
          clearTimeout(answerTimer);
          reject(this.transportError("GET", path, e));
        });
        req.end();
      });
    } catch (e) {
      signal?.removeEventListener("abort", onAbort);
      throw e;
    }
    if (res.statusCode !== 200) {
      const body = await readBody(res, MAX_ERROR_BODY_BYTES).catch(() => Buffer.alloc(0));
      signal?.removeEventListener("abort", onAbort);
      controller.abort();
      throw this.statusError("GET", path, res.statusCode ?? 0, body.toString("utf8"));
    }
    const close = () => {
      signal?.removeEventListener("abort", onAbort);
      controller.abort();
      res.destroy();
    };
    const decodeError = (errors: string[]) => this.bodyError("GET", "/events", 200, errors);
    async function* iterate(): AsyncGenerator<LibpodEvent> {
      let buffered = "";
      const seen = new RecentKeys(EVENT_REPLAY_WINDOW);
      try {
        for await (const chunk of res) {
          buffered += (chunk as Buffer).toString("utf8");
          let nl: number;
          while ((nl = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (line === "") continue;
            const d = decodeJson(LibpodEvent, line);
            if (!d.ok) throw decodeError(d.errors);
            const e = d.value;
            if ((e.timeNano ?? (e.time + 1) * 1e9) < subscribedNs || !seen.addIfNew(eventKey(e))) continue;
            yield e;
          }
        }
      } catch (e) {
        if (controller.signal.aborted) return; // closed by us: the iteration simply ends
        throw e;
      } finally {
        close();
      }
    }
    const it = iterate();
    return { [Symbol.asyncIterator]: () => it, close };
  }

  // ---- plumbing ----

  private async json<A, O>(
    method: string,
    path: string,
    query: Query,
    body: unknown,
    ok: number[],
    codec: t.Type<A, O, unknown>,
    timeoutMs?: number,
  ): Promise<A> {
    const r = await this.send(method, path, query, body, ok, timeoutMs);
    let u: unknown;
    try {
      u = JSON.parse(r.body);
    } catch (e) {
      throw this.bodyError(method, path, r.status, [`malformed JSON: ${(e as Error).message}`]);
    }
    const d = decode(codec, u);
    if (!d.ok) throw this.bodyError(method, path, r.status, d.errors);
    return d.value;
  }

  private send(method: string, path: string, query: Query, body: unknown, ok: number[], timeoutMs?: number): Promise<RawResponse> {
    const full = this.prefix + path;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const timeout = timeoutMs ?? this.timeoutMs;
    this.count(method, path);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          agent: this.agent,
          method,
          path: full + queryString(query),
          headers: payload ? { "content-type": "application/json", "content-length": payload.length } : { "content-length": 0 },
        },
        (res) => {
          readBody(res).then(
            (buf) => {
              const status = res.statusCode ?? 0;
              const text = buf.toString("utf8");
              if (ok.includes(status)) resolve({ status, body: text, raw: buf });
              else reject(this.statusError(method, full, status, text));
            },
            (e: Error) => reject(this.transportError(method, full, e)),
          );
        },
      );
      if (timeout > 0) {
        req.setTimeout(timeout, () => req.destroy(new RequestTimedOut(`no answer within ${timeout} ms`)));
      }
      req.on("error", (e) => reject(this.transportError(method, full, e)));
      req.end(payload);
    });
  }

  private count(method: string, path: string): void {
    this.requestCount++;
    const route = `${method} ${routeOf(path)}`;
    this.requestsByRoute.set(route, (this.requestsByRoute.get(route) ?? 0) + 1);
  }

  private statusError(method: string, fullPath: string, status: number, text: string): LibpodError {
    let cause = text.trim() || http.STATUS_CODES[status] || "error";
    let message = cause;
    try {
      const d = decode(LibpodErrorBody, JSON.parse(text));
      if (d.ok) {
        cause = d.value.cause ?? cause;
        message = d.value.message ?? cause;
      }
    } catch {
      // not JSON (e.g. the plain-text 404 of an unknown route): the text is the cause
    }
    return new LibpodError(method, fullPath, status, cause, message);
  }

  private transportError(method: string, fullPath: string, e: Error): LibpodError {
    const code = (e as NodeJS.ErrnoException).code;
    const cause = e instanceof RequestTimedOut ? `timed out: ${e.message}` : code ? `${code}: ${e.message}` : e.message;
    return new LibpodError(method, fullPath, null, cause, `${cause} (socket ${this.socketPath})`);
  }

  private bodyError(method: string, path: string, status: number, errors: string[]): LibpodError {
    const cause = `unexpected response body: ${errors.join("; ")}`;
    return new LibpodError(method, this.prefix + path, status, cause, cause);
  }
}

const enc = (id: string) => encodeURIComponent(id);
// Image names keep their `/`: Podman routes `/images/{name:.*}/exists`.
const encImage = (name: string) => name.split("/").map(encodeURIComponent).join("/");

function queryString(q: Query): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

/** `/containers/abc/stop` → `/containers/{id}/stop`; `/images/x/y:1/exists` → `/images/{name}/exists`. */
export function routeOf(path: string): string {
  const containers = /^\/containers\/([^/]+)(\/.*)?$/.exec(path);
  if (containers && containers[1] !== "json" && containers[1] !== "create") return `/containers/{id}${containers[2] ?? ""}`;
  if (/^\/images\/.+\/exists$/.test(path)) return "/images/{name}/exists";
  return path;
}

class RequestTimedOut extends Error {}

const toError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

function readBody(res: http.IncomingMessage, max = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on("data", (c: Buffer) => {
      size += c.length;
      if (size > max) res.destroy(new Error(`response body over ${max} bytes`));
      else chunks.push(c);
    });
    res.on("end", () => resolve(Buffer.concat(chunks)));
    res.on("error", reject);
    res.on("aborted", () => reject(new Error("response aborted")));
  });
}

/**
 * Podman's log stream for a container without a TTY is multiplexed: frames of an 8-byte header
 * (stream 1 or 2, three zero bytes, big-endian length) then the payload. Anything else is raw text.
 */
export function demuxLogs(buf: Buffer): string {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const kind = buf[i]!;
    if (kind > 2 || buf[i + 1] !== 0 || buf[i + 2] !== 0 || buf[i + 3] !== 0) return buf.toString("utf8");
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  if (i !== buf.length) return buf.toString("utf8");
  return Buffer.concat(out).toString("utf8");
}

/** One frame of a multiplexed log stream. */
export interface LogFrame {
  stream: "stdout" | "stderr";
  payload: Buffer;
}

/** A log stream that does not frame as Podman frames a container without a TTY. */
export class LogFrameError extends Error {
  override name = "LogFrameError";
}

/**
 * Conmon writes a log line in pieces of at most 8 KiB, and each piece is one frame: a frame
 * announcing more than this is not a log frame, and is refused before anything is buffered for it.
 */
export const MAX_LOG_FRAME_BYTES = 1024 * 1024;

/**
 * Splits a multiplexed log stream (an 8-byte header: stream 1 or 2, three zero bytes, big-endian
 * length; then the payload) into frames, whatever the chunking; holds at most one frame.
 */
export class LogDemuxer {
  private header = Buffer.alloc(0);
  private frame: { stream: LogFrame["stream"]; parts: Buffer[]; missing: number } | null = null;
  /** Bytes read so far: where a bad header is. */
  private offset = 0;

  push(chunk: Buffer): LogFrame[] {
    const out: LogFrame[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (!this.frame) {
        const take = Math.min(8 - this.header.length, chunk.length - i);
        this.header = Buffer.concat([this.header, chunk.subarray(i, i + take)]);
        i += take;
        if (this.header.length < 8) break;
        const h = this.header;
        const at = this.offset;
        this.offset += 8;
        this.header = Buffer.alloc(0);
        if ((h[0] !== 1 && h[0] !== 2) || h[1] !== 0 || h[2] !== 0 || h[3] !== 0) {
          throw new LogFrameError(`log frame header at byte ${at}: expected stream 1 or 2 and three zero bytes, got ${h.subarray(0, 4).toString("hex")}`);
        }
        const len = h.readUInt32BE(4);
        if (len > MAX_LOG_FRAME_BYTES) throw new LogFrameError(`log frame at byte ${at}: length ${len} is over ${MAX_LOG_FRAME_BYTES} bytes`);
        this.frame = { stream: h[0] === 1 ? "stdout" : "stderr", parts: [], missing: len };
      }
      const f = this.frame;
      const take = Math.min(f.missing, chunk.length - i);
      if (take > 0) f.parts.push(chunk.subarray(i, i + take));
      i += take;
      f.missing -= take;
      this.offset += take;
      if (f.missing === 0) {
        out.push({ stream: f.stream, payload: Buffer.concat(f.parts) });
        this.frame = null;
      }
    }
    return out;
  }

  /** The stream ended: it must not end inside a frame. */
  end(): void {
    if (this.header.length > 0 || this.frame) throw new LogFrameError(`log stream ends inside a frame at byte ${this.offset}`);
  }
}
