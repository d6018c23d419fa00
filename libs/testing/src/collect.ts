import { until } from "./wait.js";

/** Items of a stream a test reads in the background: what a source published, seen by an independent reader. */
export interface Collected<T> {
  /** Everything read so far, in order. */
  readonly items: T[];
  /** Waits for `n` items, then `settleMs` longer so that a duplicate would show, stops reading and returns them all. */
  exactly(n: number, timeoutMs?: number): Promise<T[]>;
  stop(): void;
}

/** How long exactly() waits past the n-th item for one more. */
const SETTLE_MS = 700;

/**
 * Reads `open(signal)` in the background until stopped. The stream failing after the stop is expected (an aborted
 * subscription); failing before it fails exactly().
 */
export function collectInBackground<T>(open: (signal: AbortSignal) => AsyncIterable<T>): Collected<T> {
  const items: T[] = [];
  const ac = new AbortController();
  const done = (async () => {
    try {
      for await (const item of open(ac.signal)) items.push(item);
    } catch (err) {
      if (!ac.signal.aborted) throw err;
    }
  })();
  // Seen by exactly(); a test that only stops must not get an unhandled rejection.
  done.catch(() => {});
  return {
    items,
    async exactly(n, timeoutMs = 20_000) {
      // A stream that fails or ends first is not waited out; one that fails throws its own error.
      const outcome = await Promise.race([
        until(() => items.length >= n, { timeoutMs }).then(
          () => "enough" as const,
          () => "timeout" as const,
        ),
        done.then(() => "ended" as const),
      ]);
      if (outcome !== "enough" && items.length < n)
        throw new Error(
          `${n} items not read ${outcome === "timeout" ? `in ${timeoutMs} ms` : "before the stream ended"} (have ${items.length})`,
        );
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      ac.abort();
      await done;
      return items;
    },
    stop: () => ac.abort(),
  };
}

/** Fails unless `items` are `n` items with `n` different ids: none lost, none twice. */
export function expectExactlyOnce(items: ReadonlyArray<{ id: string }>, n: number): void {
  const ids = items.map((i) => i.id);
  const distinct = new Set(ids).size;
  if (distinct !== n || ids.length !== n)
    throw new Error(`expected ${n} items exactly once, got ${ids.length} items with ${distinct} different ids`);
}
