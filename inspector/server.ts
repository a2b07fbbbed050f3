// The dashboard's server: node:http, a few JSON endpoints, server-sent events, and the page's own
// static files. Listens on 127.0.0.1 only; needs no network beyond NATS.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { KvWatchInclude } from "@nats-io/kv";
import { deviceOrDeploymentNameProblem } from "../contracts/names.js";
import { DeliverPolicy } from "@nats-io/jetstream";
import { STREAM_FLEET_EVENTS } from "../contracts/wire-names.js";
import { deploymentMachine } from "../machines/deployment.machine.js";
import { edgeLabel, machineEdges } from "../machines/statechart.js";
import { Fleet, STALE_TICKS, scoreWithoutEnvValues, signatureSummary } from "../fleet/fleet.client.js";
import { renderChartSvg } from "./statechart.svg.js";
import { buildTimeline } from "../machines/timeline.js";

export interface InspectorOptions {
  fleet: Fleet;
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** The agents' tick, for stale marks (default 30). */
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
};
const TYPES: Record<string, string> = { html: "text/html; charset=utf-8", js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8" };

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
  const chart = {
    svg: renderChartSvg(deploymentMachine),
    edges: machineEdges(deploymentMachine).map((e) => ({ ...e, label: edgeLabel(e) })),
    stale_ticks: STALE_TICKS,
    tick_secs: tickSecs,
  };

  // ---- live feed: one set of NATS watchers, fanned out to every SSE client ----
  const clients = new Set<ServerResponse>();
  const broadcast = (type: string, data: unknown) => {
    const frame = `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of clients) c.write(frame);
  };
  const stops: Array<() => void> = [];
  const stateWatch = await fleet.states.watch({ key: ">", include: KvWatchInclude.UpdatesOnly });
  stops.push(() => stateWatch.stop());
  void (async () => {
    for await (const e of stateWatch) broadcast("state", { key: e.key, operation: e.operation, revision: e.revision });
  })().catch(() => undefined);
  const hbWatch = await fleet.heartbeats.watch({ key: ">", include: KvWatchInclude.UpdatesOnly });
  stops.push(() => hbWatch.stop());
  void (async () => {
    for await (const e of hbWatch) broadcast("heartbeat", { device: e.key });
  })().catch(() => undefined);
  // A consumer, not a core subscription: in a secured fleet devices publish into the journal's own
  // account, whose messages reach the operator's account through its JetStream imports only.
  const live = await (await fleet.js.consumers.getPushConsumer(STREAM_FLEET_EVENTS, { deliver_policy: DeliverPolicy.New })).consume();
  stops.push(() => live.stop());
  void (async () => {
    for await (const m of live) {
      const [, , device, deployment] = m.subject.split(".");
      let n: unknown = null;
      try {
        n = (m.json() as { n?: unknown }).n ?? null;
      } catch {
        /* not ours to judge here */
      }
      broadcast("journal", { device, deployment, n });
    }
  })().catch(() => undefined);
  const keepAlive = setInterval(() => {
    for (const c of clients) c.write(": keep-alive\n\n");
  }, 15_000);

  const pair = (u: URL): [string, string] => {
    const device = u.searchParams.get("device") ?? "";
    const deployment = u.searchParams.get("deployment") ?? "";
    for (const [what, v] of [["device", device], ["deployment", deployment]] as const) {
      const p = deviceOrDeploymentNameProblem(v);
      if (p) throw new HttpError(400, `${what}: ${p}`);
    }
    return [device, deployment];
  };

  const deploymentView = async (device: string, deployment: string) => {
    const [state, desired, checked] = await Promise.all([fleet.deploymentState(device, deployment), fleet.desiredEntry(device, deployment), fleet.checkedJournal(device, deployment)]);
    const events = checked.map((c) => c.event);
    if (!state && !desired && events.length === 0) throw new HttpError(404, `no deployment ${device}/${deployment}`);
    return {
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
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET") throw new HttpError(405, "GET only");
    const file = STATIC_FILES[u.pathname];
    if (file) {
      const body = await readFile(`${dir}${file}`);
      res.writeHead(200, { "content-type": TYPES[file.split(".").pop()!]!, "cache-control": "no-store" });
      res.end(body);
      return;
    }
    switch (u.pathname) {
      case "/api/chart":
        return json(res, chart);
      case "/api/fleet": {
        const summary = await fleet.summary({ tickSecs });
        return json(res, {
          now: new Date().toISOString(),
          tick_secs: tickSecs,
          devices: summary.map((d) => ({
            device: d.device,
            info: d.info,
            heartbeat: d.heartbeat,
            heartbeat_age_ms: d.heartbeatAgeMs,
            stale: d.stale,
            deployments: d.deployments,
            signing: d.signing,
            device_key: d.deviceKey,
            checks: d.checks,
          })),
        });
      }
      case "/api/deployment":
        return json(res, await deploymentView(...pair(u)));
      case "/api/export": {
        const [device, deployment] = pair(u);
        const v = await deploymentView(device, deployment);
        res.writeHead(200, {
          "content-type": "application/json; charset=utf-8",
          "content-disposition": `attachment; filename="timeline-${device}-${deployment}.json"`,
        });
        res.end(JSON.stringify({ exported_at: new Date().toISOString(), ...v }, null, 2));
        return;
      }
      case "/api/events": {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
        res.write(": connected\n\n");
        clients.add(res);
        req.on("close", () => clients.delete(res));
        return;
      }
      default:
        throw new HttpError(404, "not found");
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
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

function json(res: ServerResponse, body: unknown) {
  res.writeHead(200, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}
