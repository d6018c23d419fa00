/** How a route gathers bus messages into sends (route options, bounds in route-pipeline.ts). */
export interface BatcherSettings {
  maxBatchEvents: number;
  maxBatchBytes: number;
  lingerMs: number;
  maxInflightBatches: number;
}

export interface BatcherOptions<T> {
  items: AsyncIterator<T>;
  settings: BatcherSettings;
  /** Ends the gathering; the sends in flight are awaited, the batch being gathered is released unsent. */
  signal: AbortSignal;
  /** Takes an item into the batch and says what it weighs; undefined when it was settled without a send. */
  admit(item: T): { events: number; bytes: number } | undefined;
  /**
   * Sends one batch. Never rejects: the caller settles every item of it. Calls `answered` once the endpoint has answered
   * (what is left, recording and acking, no longer holds the next batch back); returning counts as answered.
   */
  send(batch: T[], answered: () => void): Promise<void>;
  /**
   * Called once at the end, after the sends in flight returned: the batch never sent, and a next() still pending (it
   * may yet bring an item, which must be handed back too).
   */
  release(unsent: T[], pending: Promise<IteratorResult<T>> | undefined): Promise<void>;
}

/** The batch goes now: the route is idle, or lingerMs is up. */
const FLUSH = Symbol("flush");

/**
 * Adaptive linger. A route with no send waiting for its endpoint sends what it has at once (with whatever the consumer
 * already holds: a pull hands over many messages before the next turn of the event loop). While one waits, items gather
 * until the endpoint has answered it, the batch is full (maxBatchEvents, maxBatchBytes) or lingerMs has passed since the
 * batch's first item. So at low rates an event waits about one round trip, and under load batches grow by themselves
 * to what the endpoint's round trip lets gather. Up to maxInflightBatches sends run at once (full or lingered batches,
 * and sends answered but still recording and acking); beyond that, gathering waits for one to return.
 */
export async function runBatches<T>(options: BatcherOptions<T>): Promise<void> {
  const { items, settings, signal } = options;
  let next: Promise<IteratorResult<T>> | undefined;
  let batch: T[] = [];
  let events = 0;
  let bytes = 0;
  let firstAt = 0;
  const inflight = new Set<Promise<void>>();
  // Sends whose endpoint has not answered yet: while there is one, the next batch gathers.
  let waiting = 0;
  // Fires lingerMs after the batch's first item (set only when the batch has to wait).
  let linger: NodeJS.Timeout | undefined;
  // The linger fired (timers and Date.now() may disagree by a millisecond: the flag, not the clock, decides).
  let lingerDue = false;
  // The wait in progress for "a send returned" or "the linger is up". A fresh promise per wait: racing one promise that
  // lives as long as sends overlap (under load, for ever) added a reaction per wait to it, and each reaction held the
  // delivery that won its race — a pipeline under sustained load kept every delivery it had ever gathered.
  let wake: ((r: typeof FLUSH) => void) | undefined;
  const wakeUp = () => {
    const w = wake;
    wake = undefined;
    w?.(FLUSH);
  };
  const flush = async () => {
    const b = batch;
    batch = [];
    events = 0;
    bytes = 0;
    clearTimeout(linger);
    linger = undefined;
    lingerDue = false;
    waiting++;
    let answered = false;
    const answer = () => {
      if (answered) return;
      answered = true;
      waiting--;
      if (waiting === 0) wakeUp();
    };
    const p = options.send(b, answer);
    inflight.add(p);
    void p.finally(() => {
      inflight.delete(p);
      answer();
    });
    while (inflight.size >= settings.maxInflightBatches) await Promise.race(inflight);
  };
  try {
    while (!signal.aborted) {
      next ??= items.next();
      let r: IteratorResult<T> | typeof FLUSH;
      if (batch.length === 0) r = await next;
      else if (lingerDue || firstAt + settings.lingerMs <= Date.now()) r = FLUSH;
      else if (waiting === 0) r = await Promise.race([next, new Promise<typeof FLUSH>((res) => setImmediate(res, FLUSH))]);
      else {
        linger ??= setTimeout(
          () => {
            lingerDue = true;
            wakeUp();
          },
          firstAt + settings.lingerMs - Date.now(),
        );
        const pending = next;
        r = await new Promise<IteratorResult<T> | typeof FLUSH>((resolve, reject) => {
          wake = resolve;
          pending.then(resolve, reject);
        });
        wake = undefined;
      }
      if (r === FLUSH) {
        await flush();
        continue;
      }
      next = undefined;
      if (r.done) break;
      const weight = options.admit(r.value);
      if (weight === undefined) continue;
      if (batch.length === 0) firstAt = Date.now();
      batch.push(r.value);
      events += weight.events;
      bytes += weight.bytes;
      if (events >= settings.maxBatchEvents || bytes >= settings.maxBatchBytes) await flush();
    }
  } finally {
    clearTimeout(linger);
    await Promise.all(inflight);
    await options.release(batch, next);
  }
}
