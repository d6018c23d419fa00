/** A throwaway nats-server for integration tests. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface NatsServerHandle {
  url: string;
  port: number;
  storeDir: string;
  /** Kills the server; `keepStore` keeps the JetStream directory for a restart. */
  stop(keepStore?: boolean): Promise<void>;
  /** Stops and starts the server on the same port and store: gracefully (SIGTERM) or as a crash (SIGKILL). */
  restart(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** What the server has logged since it (last) started, e.g. to find its permission violations. */
  output(): string;
  /** The server's process id now (a restart changes it), e.g. to read its CPU and RSS from /proc in a benchmark. */
  pid(): number | undefined;
}

export interface NatsServerOptions {
  /**
   * nats-server configuration text (e.g. a deployment's `authorization { users ... }` block), written to a file in
   * the store directory and passed with `-c`. Port, address and store directory stay the test's own: the command
   * line overrides the file.
   */
  config?: string;
  /** Environment of the server process on top of this one's: the variables the config refers to (`$NAME`). */
  env?: Record<string, string>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * Starts a throwaway JetStream-enabled nats-server (the binary from Debian's nats-server package,
 * or NATS_SERVER_BIN) on a free loopback port with its own store directory.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), "meridian-nats-"));
  const args = ["-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", String(port)];
  if (options.config !== undefined) {
    const file = join(storeDir, "test.conf");
    writeFileSync(file, options.config);
    args.unshift("-c", file);
  }
  let proc: ChildProcess | undefined;
  let output = "";

  const launch = async () => {
    output = "";
    const child = spawn(process.env.NATS_SERVER_BIN ?? "nats-server", args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...options.env },
    });
    proc = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${output}`)), 15_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}:\n${output}`));
      });
    });
  };

  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    const child = proc;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill(signal);
    });
  };

  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    async stop(keepStore = false) {
      await kill();
      if (!keepStore) rmSync(storeDir, { recursive: true, force: true });
    },
    async restart(signal = "SIGTERM") {
      await kill(signal);
      await launch();
    },
    output: () => output,
    pid: () => proc?.pid,
  };
}
