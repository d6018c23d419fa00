import type { DescService } from "@bufbuild/protobuf";
import { type ConnectRouter, createClient, createRouterTransport, type Transport } from "@connectrpc/connect";
import { Command, CommanderError } from "commander";
import type { CliContext } from "../../kit/context.js";
import { exitCodeOf } from "../../kit/exit.js";
import { createOutput } from "../../kit/output.js";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The error the verb threw, its message (what the CLI prints after "error: "). */
  error?: string;
}

/**
 * Runs one verb of an area through commander against in-memory Connect services (the real client and protocol, no
 * network): what a verb prints on stdout and stderr and the exit code main.ts would give.
 */
export async function runVerb(
  register: (program: Command, ctx: () => CliContext) => void,
  /** In-memory services, or a transport to real ones. */
  routes: ((router: ConnectRouter) => void) | Transport,
  args: readonly string[],
  options: { format?: "table" | "json" | "yaml"; signal?: AbortSignal; onStdout?: (all: string) => void } = {},
): Promise<RunResult> {
  let stdout = "";
  let stderr = "";
  const out = createOutput({
    format: options.format ?? "table",
    stdout: {
      write: (s: string) => {
        stdout += s;
        options.onStdout?.(stdout);
      },
    },
    stderr: { write: (s: string) => (stderr += s) },
    colour: false,
  });
  const transport = typeof routes === "function" ? createRouterTransport(routes) : routes;
  const ctx: CliContext = {
    client: <S extends DescService>(service: S) => createClient(service, transport),
    out,
    signal: options.signal ?? new AbortController().signal,
    progress: () => ({ total() {}, tick() {}, done() {} }),
  };
  const program = new Command("meridian")
    .exitOverride()
    .configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s) });
  register(program, () => ctx);
  try {
    await program.parseAsync(["node", "meridian", ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    if (err instanceof CommanderError) return { code: err.exitCode === 0 ? 0 : 2, stdout, stderr, error: err.message };
    return { code: exitCodeOf(err), stdout, stderr, error: (err as Error).message };
  }
}
