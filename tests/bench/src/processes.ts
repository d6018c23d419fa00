import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export interface RunningProcess {
  name: string;
  proc: ChildProcess;
  /** Resident set size now, in MiB (Linux /proc). */
  rssMiB(): number;
  stop(): Promise<void>;
}

/**
 * Starts a package's built entry point (`<folder>/dist/main.js`) as its own process, as a container would
 * run it, and waits until `readyUrl` answers 200.
 */
export async function startProcess(name: string, folder: string, env: Record<string, string>, readyUrl: string): Promise<RunningProcess> {
  const proc = spawn(process.execPath, [join(REPO_ROOT, folder, "dist", "main.js")], {
    env: { ...process.env, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "warn", ...env },
    stdio: ["ignore", process.env.BENCH_LOG_LEVEL ? "inherit" : "ignore", "inherit"],
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
    async stop() {
      if (proc.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        proc.once("exit", () => resolve());
        proc.kill("SIGTERM");
      });
    },
  };
}
