import { readFileSync } from "node:fs";
import type { Io } from "./kit/runtime.js";

/** The package's version, read from its package.json (beside dist/ and src/ alike). */
export function version(): string {
  return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

/**
 * Runs the CLI with `argv` (process.argv shape) and resolves to the exit code (cli/src/kit/exit.ts). `io` replaces
 * stdout, stderr and the environment (tests). `--version` answers before anything else is loaded: scripts call it to
 * probe for the tool, and start-up is most of its cost.
 */
export async function main(argv: string[], io: Partial<Io> = {}): Promise<number> {
  const resolved: Io = { stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr, env: io.env ?? process.env };
  if (!io.stdout) {
    // `meridian … | head`: the reader has what it wanted and closed the pipe; stop quietly, as Unix tools do.
    process.stdout.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(0);
      throw err;
    });
  }
  const args = argv.slice(2);
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
    resolved.stdout.write(`${version()}\n`);
    return 0;
  }
  const { run } = await import("./program.js");
  return run(argv, resolved, version());
}
