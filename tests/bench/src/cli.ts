// bench:cli: start-up of the meridian CLI as a user meets it, a new process per run: `meridian --version` (no
// protobuf code, no connection) and `meridian status` (commander, the kit, the status contract, one Connect call to a
// gateway process on a real nats-server, a table printed). Median of 10 runs each after one warm-up run (the file
// cache), beside `node -e ""` on the same machine as the yardstick of what no CLI can go below. Prints JSON.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { freePort, startNatsServer, TEST_KEYS } from "@meridian/testing";
import { machine, percentile } from "./common.js";
import { REPO_ROOT, type RunningProcess, startProcess } from "./processes.js";

const RUNS = 10;
const BIN = join(REPO_ROOT, "cli", "bin", "meridian.js");

/** Wall time of one process from spawn to exit, in ms; a non-zero exit fails the bench (it would time an error path). */
function timeRun(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`bench:cli: ${args.slice(1).join(" ")} exited ${code}: ${stderr.trim()}`));
    });
  });
}

async function measure(args: string[], env: Record<string, string> = {}) {
  await timeRun(args, env);
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await timeRun(args, env));
  const sorted = [...times].sort((a, b) => a - b);
  const median = (sorted[RUNS / 2 - 1]! + sorted[RUNS / 2]!) / 2;
  const round = (n: number) => Math.round(n * 10) / 10;
  return { medianMs: round(median), minMs: round(sorted[0]!), p90Ms: round(percentile(sorted, 90)), maxMs: round(sorted.at(-1)!) };
}

async function main() {
  const nats = await startNatsServer();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let gateway: RunningProcess | undefined;
  try {
    gateway = await startProcess("gateway", "services/gateway", { PORT: String(port), NATS_URL: nats.url }, `${url}/readyz`);
    // No profile file of the user running the bench is read.
    const env = { MERIDIAN_GATEWAY_URL: url, MERIDIAN_API_KEY: TEST_KEYS["status:read"], MERIDIAN_CONFIG: "/nonexistent/meridian.yaml" };
    const nodeBaseline = await measure(["-e", ""]);
    const version = await measure([BIN, "--version"], env);
    const status = await measure([BIN, "status"], env);
    const statusJson = await measure([BIN, "status", "-o", "json"], env);
    const help = await measure([BIN, "--help"], env);
    console.log(
      JSON.stringify(
        {
          bench: "cli",
          runs: RUNS,
          "meridian --version": version,
          "meridian status": status,
          "meridian status -o json": statusJson,
          "meridian --help (every area loaded)": help,
          'node -e "" (yardstick)': nodeBaseline,
          gateway: "a process on a real nats-server, same machine",
          machine: machine(),
        },
        null,
        2,
      ),
    );
  } finally {
    await gateway?.stop();
    await nats.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
