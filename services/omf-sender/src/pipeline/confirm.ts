import { RetryableError } from "@meridian/retry";
import { type OmfClient, readValues } from "../platform/index.js";

/**
 * AVEVA Data Hub (and EDS, the same SDS engine) answer OMF data with 202 and an Operation-Id: the values are queued,
 * not stored, and a failure in processing surfaces later, never in that reply (notes 2.2, 6.9; the notes give no
 * operation-status path). So such a 202 is confirmed by reading the values back through SDS before the message is
 * acknowledged.
 */
export class UnconfirmedWriteError extends RetryableError {
  constructor(
    message: string,
    readonly operationIds: readonly string[],
  ) {
    super(message);
    this.name = "UnconfirmedWriteError";
  }
}

/** The values of one container a 202 accepted: their index (timestamp) values. */
export interface AcceptedValues {
  containerId: string;
  indexes: string[];
  operationId?: string | undefined;
}

/** A timestamp to the 100 ns tick the receiver keeps (7 fractional digits), so the sent and the stored one compare. */
export function tickOf(ts: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?:Z|\+00:00)$/.exec(ts);
  if (!m) return ts;
  return `${m[1]}.${(m[2] ?? "").padEnd(7, "0").slice(0, 7)}Z`;
}

/** Containers read back at once. */
const READ_CONCURRENCY = 8;

/** Runs `fn` over `items`, at most `limit` at a time; rejects with the first failure once the others settled. */
export async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/**
 * Reads each container's values in the window of what was sent (the platform's `readValues`: SDS
 * `Streams/{id}/Data?startIndex&endIndex`) until every sent index is there, polling (100 ms, doubling, at most 1 s
 * apart) for up to `timeoutMs`. Rejects with UnconfirmedWriteError naming the containers, the values missing and the
 * Operation-Ids when some are still missing; a read that fails rejects with its own error (retried).
 */
export async function confirmStored(
  client: OmfClient,
  accepted: readonly AcceptedValues[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  let waiting = accepted.filter((a) => a.indexes.length > 0);
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  for (;;) {
    const still: AcceptedValues[] = [];
    await eachLimited(waiting, READ_CONCURRENCY, async (a) => {
      const ticks = a.indexes.map(tickOf).sort();
      const read = await readValues(client, a.containerId, {
        start: ticks[0],
        end: ticks[ticks.length - 1],
        maxCount: Math.min(250_000, ticks.length * 4 + 16),
        signal,
      });
      const stored = new Set(read.values.map((v) => tickOf(v.timestamp)));
      const missing = a.indexes.filter((ix) => !stored.has(tickOf(ix)));
      if (missing.length > 0) still.push({ ...a, indexes: missing });
    });
    if (still.length === 0) return;
    waiting = still;
    if (Date.now() + delay > deadline) break;
    await sleep(delay, signal);
    delay = Math.min(1000, delay * 2);
  }
  const values = waiting.reduce((n, a) => n + a.indexes.length, 0);
  const ids = [...new Set(waiting.map((a) => a.operationId).filter((x): x is string => x !== undefined))];
  throw new UnconfirmedWriteError(
    `${client.kind === "eds" ? "Edge Data Store" : "Data Hub"} accepted the data (202${ids.length > 0 ? `, Operation-Id ${ids.join(", ")}` : ""}) but ${values} value(s) of ` +
      `${waiting.length} container(s) (${waiting
        .slice(0, 3)
        .map((a) => a.containerId)
        .join(", ")}${waiting.length > 3 ? ", …" : ""}) were not readable after ${timeoutMs} ms`,
    ids,
  );
}
