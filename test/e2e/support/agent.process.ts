// The real, compiled `fleet-agent` (package.json `bin`, built by `npm run build`) as a child process: its JSON log
// lines are kept (and copied to a file for post-mortems), it can be SIGKILLed or stopped with SIGTERM.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import { REPO } from "./paths.js";

export interface AgentProcessOptions {
  device: string;
  stateDir: string;
  nats: string[];
  containerHost: string;
  tickSecs?: number;
  logLevel?: string;
  /** Where to copy its output. */
  logFile: string;
  extraArgs?: string[];
}

/**
 * What `npm run build` ships as the `fleet-agent` command (package.json `bin`): the compiled agent,
 * exactly as a device runs it.
 */
export const AGENT_ENTRY = join(REPO, (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { bin: Record<string, string> }).bin["fleet-agent"]!);

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export class AgentProcess {
  readonly lines: LogLine[] = [];
  readonly startedAt = Date.now();
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly out: WriteStream;
  stderr = "";

  private constructor(readonly proc: ChildProcess, logFile: string) {
    this.out = createWriteStream(logFile, { flags: "a" });
    this.out.write(`--- agent pid ${proc.pid} started ${new Date().toISOString()}\n`);
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      this.out.write(d);
      buf += d.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: line });
        }
      }
    });
    proc.stderr!.on("data", (d: Buffer) => {
      this.out.write(d);
      this.stderr += d.toString("utf8");
    });
    this.exited = new Promise((resolve) =>
      proc.once("exit", (code, signal) => {
        this.exit = { code, signal };
        this.out.write(`--- agent pid ${proc.pid} exited code=${code} signal=${signal}\n`);
        this.out.end();
        resolve(this.exit);
      }),
    );
  }

  static start(o: AgentProcessOptions): AgentProcess {
    const args = [
      AGENT_ENTRY,
      "--device-id", o.device,
      "--nats", o.nats.join(","),
      "--state-dir", o.stateDir,
      "--tick-secs", String(o.tickSecs ?? 1),
      "--log-level", o.logLevel ?? "debug",
      ...(o.extraArgs ?? []),
    ];
    const env: NodeJS.ProcessEnv = { ...process.env, CONTAINER_HOST: o.containerHost };
    delete env.FLEET_DEVICE_ID;
    delete env.FLEET_NATS_URL;
    const proc = spawn(process.execPath, args, { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    return new AgentProcess(proc, o.logFile);
  }

  static run(o: AgentProcessOptions, timeoutMs = 20_000): Promise<{ code: number | null; stderr: string; stdout: string }> {
    const a = AgentProcess.start(o);
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      a.exited.then((e) => ({ code: e.code, stderr: a.stderr, stdout: a.lines.map((l) => JSON.stringify(l)).join("\n") })),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          a.proc.kill("SIGKILL");
          reject(new Error(`agent did not exit within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  get pid() {
    return this.proc.pid;
  }

  get running() {
    return this.exit === null;
  }

  /** SIGKILL: no shutdown code runs (a crash or a power cut, as far as the agent can tell). */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.proc.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM and wait for the exit (SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 40_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.running) return this.exit!;
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.proc.kill("SIGKILL"), timeoutMs);
    const e = await this.exited;
    clearTimeout(t);
    return e;
  }

  /** Lines whose `msg` matches. */
  logs(msg: string | RegExp): LogLine[] {
    return this.lines.filter((l) => (typeof msg === "string" ? l.msg === msg : msg.test(String(l.msg ?? ""))));
  }

  async waitLog(what: string, pred: (l: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    const until = Date.now() + timeoutMs;
    for (let i = 0; ; ) {
      for (; i < this.lines.length; i++) if (pred(this.lines[i]!)) return this.lines[i]!;
      if (!this.running) throw new Error(`agent exited (${JSON.stringify(this.exit)}) while waiting for ${what}; stderr: ${this.stderr.slice(-500)}`);
      if (Date.now() > until) throw new Error(`timed out waiting for agent log: ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
