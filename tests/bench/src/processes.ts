import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { testIdentitiesFile } from "@meridian/testing";

/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SECOND = 100;

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export interface RunningProcess {
  name: string;
  proc: ChildProcess;
  /** Resident set size now, in MiB (Linux /proc). */
  rssMiB(): number;
  /** CPU time used so far (user + system), in seconds (Linux /proc). */
  cpuSeconds(): number;
  /** Its last RECENT_LOG_LINES lines of output (warnings and errors at the default log level), to explain a failure. */
  recentLog(): string[];
  stop(): Promise<void>;
}

const RECENT_LOG_LINES = 200;

/**
 * The Node options the images run Meridian's services with (the Dockerfile's NODE_OPTIONS, where the trade-off is
 * explained): a bench measures the services as deployed. Keep the two in step.
 */
export const SERVICE_NODE_OPTIONS = "--max-semi-space-size=2";

/**
 * Starts a package's built entry point (`<folder>/dist/main.js`) as its own process, as a container would
 * run it, and waits until `readyUrl` answers 200.
 */
export async function startProcess(name: string, folder: string, env: Record<string, string>, readyUrl: string): Promise<RunningProcess> {
  // Services authenticate every call, as deployed: they trust the test identities unless the bench says otherwise.
  const auth = folder.startsWith("services/") ? { AUTH_IDENTITIES_FILE: testIdentitiesFile() } : {};
  // Meridian's service processes (not the emulators, Node-RED or this process) run with the images' options and then
  // BENCH_SERVICE_NODE_OPTIONS, e.g. a heap bound; of two V8 flags of the same name the later wins, so it can also
  // undo one of the images'. A bench's own NODE_OPTIONS in `env` win over both.
  const serviceOptions = folder.startsWith("services/")
    ? `${SERVICE_NODE_OPTIONS} ${process.env.BENCH_SERVICE_NODE_OPTIONS ?? ""}`.trim()
    : "";
  const nodeOptions = serviceOptions ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} ${serviceOptions}`.trim() } : {};
  const proc = spawn(process.execPath, [join(REPO_ROOT, folder, "dist", "main.js")], {
    env: { ...process.env, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "warn", ...auth, ...nodeOptions, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  // Kept (and shown with BENCH_LOG_LEVEL) so that a bench that finds events missing can print what the service said.
  const recent: string[] = [];
  let partial = "";
  proc.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    if (process.env.BENCH_LOG_LEVEL) process.stdout.write(chunk);
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    recent.push(...lines);
    if (recent.length > RECENT_LOG_LINES) recent.splice(0, recent.length - RECENT_LOG_LINES);
  });
  const exited = new Promise<never>((_, reject) => proc.once("exit", (code) => reject(new Error(`${name} exited with ${code}`))));
  exited.catch(() => {});
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await Promise.race([fetch(readyUrl), exited])).ok) break;
    } catch (err) {
      if (proc.exitCode !== null) throw err;
    }
    if (Date.now() > deadline) throw new Error(`${name} not ready at ${readyUrl}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    name,
    proc,
    rssMiB() {
      const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return Math.round(kb / 1024);
    },
    cpuSeconds() {
      // Fields 14 and 15 of /proc/<pid>/stat, after the command name in parentheses: utime and stime in clock ticks.
      const stat = readFileSync(`/proc/${proc.pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
    },
    recentLog: () => [...recent],
    async stop() {
      if (proc.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        proc.once("exit", () => resolve());
        proc.kill("SIGTERM");
      });
    },
  };
}

/** The pid of a throwaway nats-server (its own process), for a ProcessSampler. */
export function natsPid(nats: { pid(): number | undefined }): number {
  const pid = nats.pid();
  if (pid === undefined) throw new Error("nats-server has no process id (not running)");
  return pid;
}

/** What the bench process's own CPU and RSS hold, said beside its figures (it is not a Meridian service). */
export const BENCH_PROCESS = "bench";

/**
 * A gateway RPC in Connect JSON by a bench before it measures (CreateRoute): tried again for up to 30 s while the
 * gateway answers `unavailable` (HTTP 503: JetStream not answering yet, e.g. a cluster electing leaders), and on any
 * other failure thrown with the gateway's last log lines, which say what went wrong.
 */
export async function callGateway(gateway: RunningProcess, url: string, apiKey: string, body: unknown): Promise<unknown> {
  const deadline = Date.now() + 30_000;
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.ok) return JSON.parse(text);
    if (res.status === 503 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** attempt)));
      continue;
    }
    const log = gateway.recentLog().slice(-20).join("\n");
    throw new Error(`${new URL(url).pathname}: ${res.status} ${text}\n${gateway.name}'s last log lines:\n${log}`);
  }
}
