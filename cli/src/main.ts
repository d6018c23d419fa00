/** Runs the CLI with `argv` (process.argv shape) and resolves to the exit code. Filled in by the CLI's kit. */
export async function main(_argv: string[]): Promise<number> {
  return 0;
}
