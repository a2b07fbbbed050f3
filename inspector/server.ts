// The dashboard's server: node:http, JSON endpoints for each page, three actions behind a
// confirmation, server-sent events, and the page's own static files. Listens on 127.0.0.1 only and
// needs no network beyond NATS.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { DeliverPolicy } from "@nats-io/jetstream";
import { KvWatchInclude } from "@nats-io/kv";
import { decodeJson } from "../contracts/decode.js";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { STREAM_FLEET_EVENTS } from "../contracts/wire-names.js";
import { deploymentMachine } from "../machines/deployment.machine.js";
import { buildTimeline } from "../machines/timeline.js";
import { Fleet, STALE_TICKS, scoreWithoutEnvValues, signatureSummary } from "../fleet/fleet.client.js";
import { ActionError, ActionRequest, remove, restartService, retry } from "./actions.js";
import { answerCommandRoute } from "./device-commands.js";
import { MAX_PAGE_SIZE } from "./journal.pages.js";
import { renderChartSvg } from "./statechart.svg.js";
import { deploymentView, deviceRows, summarise } from "./views.js";

export interface InspectorOptions {
  fleet: Fleet;
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** The agents' tick, for stale marks of devices whose heartbeat does not say its own (default 30). */
  tickSecs?: number;
}

export interface Inspector {
  url: string;
  close(): Promise<void>;
}

const STATIC_FILES: Record<string, string> = {
  "/": "index.html",
  "/app.js": "app.js",
  "/app.css": "app.css",
  "/commands.js": "commands.js",
  "/commands.css": "commands.css",
  "/favicon.svg": "favicon.svg",
  "/favicon.ico": "favicon.svg",
};
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};
/** An action's body is a few names; anything larger is not one. */
const MAX_BODY = 16 * 1024;

/** The static folder beside this module (source) or in the package (when run from dist/). */
function staticDir(): string {
  for (const rel of ["./static/", "../../inspector/static/"]) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error("inspector/static not found");
}

export async function startInspector(o: InspectorOptions): Promise<Inspector> {
  const fleet = o.fleet;
  const tickSecs = o.tickSecs ?? 30;
  const dir = staticDir();
  const chart = { svg: renderChartSvg(deploymentMachine), stale_ticks: STALE_TICKS, tick_secs: tickSecs };

  // ---- live feed: one set of NATS watchers, fanned out to every SSE client ----
  const clients = new Set<ServerResponse>();
  const broadcast = (type: string, data: unknown) => {
    const frame = `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of clients) c.write(frame);
  };
  const stops: Array<() => void> = [];
  for (const [kv, type] of [[fleet.states, "state"], [fleet.desired, "desired"], [fleet.heartbeats, "heartbeat"], [fleet.infos, "info"]] as const) {
    const w = await kv.watch({ key: ">", include: KvWatchInclude.UpdatesOnly });
    stops.push(() => w.stop());
    void (async () => {
      for await (const e of w) broadcast(type, { key: e.key, operation: e.operation, revision: e.revision });
    })().catch(() => undefined);
  }
  // A consumer, not a core subscription: in a secured fleet devices publish into the journal's own
  // account, whose messages reach the operator's account through its JetStream imports only.
  const live = await (await fleet.js.consumers.getPushConsumer(STREAM_FLEET_EVENTS, { deliver_policy: DeliverPolicy.New })).consume();
  stops.push(() => void live.stop());
  void (async () => {
    for await (const m of live) {
      const [, , device, deployment] = m.subject.split(".");
      broadcast("journal", { device, deployment });
    }
  })().catch(() => undefined);
  const keepAlive = setInterval(() => {
    for (const c of clients) c.write(": keep-alive\n\n");
  }, 15_000);

  const name = (u: URL, what: "device" | "deployment") => {
    const v = u.searchParams.get(what) ?? "";
    const p = deviceOrDeploymentNameProblem(v);
    if (p) throw new HttpError(400, `${what}: ${p}`);
    return v;
  };
  const count = (u: URL, what: string, max: number): number | undefined => {
    const v = u.searchParams.get(what);
    if (v === null || v === "") return undefined;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || n > max) throw new HttpError(400, `${what}: expected an integer from 1 to ${max}, got ${JSON.stringify(v.slice(0, 20))}`);
    return n;
  };

  const get = async (u: URL, res: ServerResponse) => {
    switch (u.pathname) {
      case "/api/chart":
        return json(res, chart);
      case "/api/fleet": {
        const devices = await deviceRows(fleet, tickSecs);
        return json(res, { now: new Date().toISOString(), tick_secs: tickSecs, stale_ticks: STALE_TICKS, summary: summarise(devices), devices });
      }
      case "/api/device": {
        const device = name(u, "device");
        const [d] = await deviceRows(fleet, tickSecs, device);
        if (!d || (!d.info && !d.heartbeat && d.deployments.length === 0)) throw new HttpError(404, `no device ${device}`);
        return json(res, { now: new Date().toISOString(), stale_ticks: STALE_TICKS, device: d });
      }
      case "/api/deployment": {
        const [device, deployment] = [name(u, "device"), name(u, "deployment")];
        const before = count(u, "before", Number.MAX_SAFE_INTEGER);
        const size = count(u, "size", MAX_PAGE_SIZE);
        const v = await deploymentView(fleet, device, deployment, { ...(before ? { before } : {}), ...(size ? { size } : {}) });
        if (!v) throw new HttpError(404, `no deployment ${device}/${deployment}`);
        return json(res, v);
      }
      case "/api/export": {
        // The whole journal, folded through the machine, for a bug report: an explicit download, not a page view.
        const [device, deployment] = [name(u, "device"), name(u, "deployment")];
        const [state, desired, checked] = await Promise.all([fleet.deploymentState(device, deployment), fleet.desiredEntry(device, deployment), fleet.checkedJournal(device, deployment)]);
        const events = checked.map((c) => c.event);
        if (!state && !desired && events.length === 0) throw new HttpError(404, `no deployment ${device}/${deployment}`);
        res.writeHead(200, {
          "content-type": "application/json; charset=utf-8",
          "content-disposition": `attachment; filename="timeline-${device}-${deployment}.json"`,
        });
        res.end(
          JSON.stringify(
            {
              exported_at: new Date().toISOString(),
              device,
              deployment,
              state,
              desired: desired && {
                revision: desired.revision,
                hash: desired.hash,
                errors: desired.errors,
                score: desired.score ? scoreWithoutEnvValues(desired.score) : null,
                signed: desired.signed && { by: desired.signed.by, at: desired.signed.at },
              },
              timeline: buildTimeline(device, deployment, events),
              // Which events the device itself signed (docs/design.md, "Report signatures").
              signatures: signatureSummary(checked),
            },
            null,
            2,
          ),
        );
        return;
      }
      default:
        throw new HttpError(404, "not found");
    }
  };

  const post = async (req: IncomingMessage, u: URL, res: ServerResponse) => {
    // A page of another origin may post to 127.0.0.1 too: only this page's own requests act. A
    // JSON body cannot be sent across origins without a preflight, which this server never grants.
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host}`) throw new HttpError(403, `origin ${origin} may not act here`);
    if (!/^application\/json\b/.test(req.headers["content-type"] ?? "")) throw new HttpError(415, "content-type: expected application/json");
    const r = decodeJson(ActionRequest, await body(req));
    if (!r.ok) throw new HttpError(400, r.errors.join("; "));
    switch (u.pathname) {
      case "/api/actions/retry":
        return json(res, await retry(fleet, r.value));
      case "/api/actions/delete":
        return json(res, await remove(fleet, r.value));
      case "/api/actions/restart":
        return json(res, await restartService(fleet, r.value));
      default:
        throw new HttpError(404, "not found");
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? "/", "http://localhost");
    if (req.method === "POST") return post(req, u, res);
    if (req.method !== "GET") throw new HttpError(405, "GET or POST only");
    const file = STATIC_FILES[u.pathname];
    if (file) {
      const content = await readFile(`${dir}${file}`);
      res.writeHead(200, { "content-type": TYPES[file.split(".").pop()!]!, "cache-control": "no-store" });
      res.end(content);
      return;
    }
    if (u.pathname === "/api/events") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
      res.write(": connected\n\n");
      clients.add(res);
      req.on("close", () => clients.delete(res));
      return;
    }
    if (await answerCommandRoute(fleet.nc, u, res, req)) return;
    return get(u, res);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError || e instanceof ActionError ? e.status : 500;
      if (!res.headersSent) res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify({ error: (e as Error).message }));
    });
  });
  const host = o.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://${host}:${port}/`,
    async close() {
      clearInterval(keepAlive);
      for (const s of stops) s();
      for (const c of clients) c.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, `body: expected at most ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function json(res: ServerResponse, content: unknown) {
  res.writeHead(200, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(JSON.stringify(content));
}
