// The agent's NATS connection: every server of the list, reconnecting forever (and waiting for the
// first connection, so an agent boots offline).
import { connect, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { sleep } from "./sleep.js";

export type { NatsConnection };

export interface ConnectAgentOptions {
  servers: string[];
  device: string;
  logger: Logger;
  /** Extra client options (tests shorten `reconnectTimeWait`). */
  options?: Partial<ConnectionOptions>;
  /** Gives up trying to make the first connection (the agent is stopping before it ever connected). */
  signal?: AbortSignal;
}

/**
 * Connects, resolving on the first successful connection (it keeps trying until then, or until
 * `signal` aborts); afterwards the client reconnects forever. Status changes are logged until the
 * connection closes. The first connection is retried here rather than by nats.js's
 * `waitOnFirstConnect`, which can't be called off: an agent stopped while offline must exit.
 */
export async function connectAgent(o: ConnectAgentOptions): Promise<NatsConnection> {
  const wait = o.options?.reconnectTimeWait ?? 2_000;
  for (let attempt = 1; ; attempt++) {
    if (o.signal?.aborted) throw new Error("stopped before connecting to NATS");
    try {
      const nc = await connect({
        servers: o.servers,
        name: `fleet-agent/${o.device}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: wait,
        pingInterval: 20_000,
        ...o.options,
        waitOnFirstConnect: false,
      });
      o.logger.info({ server: nc.getServer() }, "connected to NATS");
      void logStatus(nc, o.logger);
      return nc;
    } catch (e) {
      if (attempt === 1 || attempt % 30 === 0) o.logger.warn({ attempt, err: (e as Error).message }, "NATS not reachable yet; retrying");
      await sleep(wait, o.signal);
    }
  }
}

async function logStatus(nc: NatsConnection, logger: Logger) {
  for await (const s of nc.status()) {
    switch (s.type) {
      case "disconnect":
        logger.warn({ server: s.server }, "NATS disconnected");
        break;
      case "reconnect":
        logger.info({ server: s.server }, "NATS reconnected");
        break;
      case "reconnecting":
        logger.debug("NATS reconnecting");
        break;
      case "error":
        logger.error({ err: s.error.message }, "NATS error");
        break;
      case "staleConnection":
        logger.warn("NATS connection stale");
        break;
      case "ldm":
        logger.warn({ server: s.server }, "NATS server entering lame duck mode");
        break;
      case "close":
        logger.info("NATS connection closed");
        break;
      default:
        break;
    }
  }
}
