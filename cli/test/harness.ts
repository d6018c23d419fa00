import { main } from "../src/main.js";

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `meridian <args>` in this process through main(), with its own stdout, stderr and environment. */
export async function meridian(args: string[], env: Record<string, string> = {}, tty = false): Promise<Ran> {
  let stdout = "";
  let stderr = "";
  const code = await main(["node", "meridian", ...args], {
    stdout: { isTTY: tty, write: (s: string) => (stdout += s) },
    stderr: { isTTY: tty, write: (s: string) => (stderr += s) },
    // No profile file of the machine's user is ever read.
    env: { MERIDIAN_CONFIG: "/nonexistent/meridian-test-config.yaml", ...env },
  });
  return { code, stdout, stderr };
}
