export interface UntilOptions {
  /** Default 20 s. */
  timeoutMs?: number;
  /** Default 100 ms. */
  intervalMs?: number;
  /** Named in the error when the time runs out. */
  what?: string;
  /**
   * Treat a check that throws as "not yet" (a container still starting refuses connections); the last error is
   * named if the time runs out. Default false: a check that throws fails at once.
   */
  ignoreErrors?: boolean;
}

/** Polls `check` until it holds; fails naming `what` after `timeoutMs`. For conditions another process makes true. */
export async function until(check: () => boolean | Promise<boolean>, options: UntilOptions = {}): Promise<void> {
  const { timeoutMs = 20_000, intervalMs = 100, what = "condition", ignoreErrors = false } = options;
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      if (!ignoreErrors) throw err;
      last = err;
    }
    if (Date.now() > end) {
      throw new Error(`${what} not met in ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ""}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
