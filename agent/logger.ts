// The agent's JSON logger. Scores are never logged by any agent helper: only their hashes and names
// (env values are secrets).
import { pino, type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "./config.js";

export type { Logger };

export interface LoggerOptions {
  level: LogLevel;
  device?: string;
  /** Where the JSON lines go; stdout when absent. Tests pass a collecting stream. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const base = opts.device ? { device: opts.device } : {};
  const o = { level: opts.level, base, timestamp: pino.stdTimeFunctions.isoTime };
  return opts.destination ? pino(o, opts.destination) : pino(o);
}

/** A logger that writes nowhere, for callers that don't care. */
export const silentLogger = (): Logger => pino({ level: "silent" });

/** A logger that keeps its records in memory (tests assert on them). */
export function memoryLogger(level: LogLevel = "debug"): { logger: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const destination: DestinationStream = {
    write(line: string) {
      try {
        records.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        records.push({ msg: line });
      }
    },
  };
  return { logger: pino({ level }, destination), records };
}
