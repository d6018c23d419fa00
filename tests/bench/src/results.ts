import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/**
 * Where results go: `tests/bench/results` (committed), unless BENCH_RESULTS_DIR names another directory (a smoke run,
 * a test) so that a trial never lands among the figures the lead commits.
 */
export function resultsDir(): string {
  return process.env.BENCH_RESULTS_DIR ?? join(REPO_ROOT, "tests", "bench", "results");
}

/** The hardware and load a result came from: figures from different machines, or a busy one, do not compare. */
export function benchMachine() {
  return {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    loadavg: loadavg().map((l) => Number(l.toFixed(2))),
  };
}

/** The code a result measured; "unknown" outside a git checkout (an image, an unpacked tarball). */
export function benchCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "unknown";
  }
}

/**
 * Adds `bench`, `at`, `commit` and `machine` to a benchmark's figures, prints the whole as one JSON object and appends
 * it as one line to `<results dir>/<bench>.jsonl`. Returns the file's path.
 */
export function appendResult(bench: string, result: Record<string, unknown>): string {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(bench)) throw new Error(`bench name "${bench}": lower-case letters, digits and dashes only`);
  const line = { bench, at: new Date().toISOString(), commit: benchCommit(), machine: benchMachine(), ...result };
  const dir = resultsDir();
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${bench}.jsonl`);
  appendFileSync(path, `${JSON.stringify(line)}\n`);
  console.log(JSON.stringify(line, null, 2));
  return path;
}
