import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { until } from "@meridian/testing";
import { afterEach, describe, expect, it } from "vitest";
import { type BatcherSettings, runBatches } from "./batcher.js";

/** Items pushed by the test, pulled by the batcher as a consumer's deliveries would be. */
class Feed implements AsyncIterator<number> {
  private readonly queued: number[] = [];
  private waiting: ((r: IteratorResult<number>) => void) | undefined;
  private ended = false;

  push(...items: number[]): void {
    for (const item of items) {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w({ value: item, done: false });
      else this.queued.push(item);
    }
  }

  end(): void {
    this.ended = true;
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
  }

  next(): Promise<IteratorResult<number>> {
    const item = this.queued.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }
}

/** A sink whose sends return only when the test lets them. */
class SlowSink {
  readonly batches: number[][] = [];
  private readonly pending: Array<() => void> = [];
  private readonly unanswered: Array<() => void> = [];

  send = (batch: number[], answered: () => void): Promise<void> => {
    this.batches.push(batch);
    this.unanswered.push(answered);
    return new Promise<void>((resolve) => this.pending.push(resolve));
  };

  /** The oldest send's endpoint answers; the send itself goes on (recording, acking) until `answer()`. */
  endpointAnswers(): void {
    this.unanswered.shift()?.();
  }

  /** Lets the oldest send still waiting return. */
  answer(): void {
    this.pending.shift()?.();
  }

  answerAll(): void {
    while (this.pending.length > 0) this.answer();
  }
}

/** Lets the event loop run a few turns (the batcher's own setImmediate included). */
const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

const SETTINGS: BatcherSettings = { maxBatchEvents: 1000, maxBatchBytes: 1 << 20, lingerMs: 60_000, maxInflightBatches: 4 };

function start(settings: Partial<BatcherSettings> = {}) {
  const feed = new Feed();
  const sink = new SlowSink();
  const ac = new AbortController();
  const released: number[] = [];
  const done = runBatches({
    items: feed,
    settings: { ...SETTINGS, ...settings },
    signal: ac.signal,
    admit: () => ({ events: 10, bytes: 100 }),
    send: sink.send,
    release: async (unsent) => {
      released.push(...unsent);
    },
  });
  const stop = async () => {
    ac.abort();
    feed.end();
    sink.answerAll();
    await done;
  };
  running.push(stop);
  return { feed, sink, released, stop };
}

const running: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of running.splice(0)) await stop();
});

describe("adaptive linger", () => {
  it("an idle route sends a single event at once, not after lingerMs (60 s here)", async () => {
    const { feed, sink } = start();
    feed.push(1);
    await until(() => sink.batches.length === 1, { timeoutMs: 2000, intervalMs: 5, what: "the send" });
    expect(sink.batches).toEqual([[1]]);
  });

  it("an idle route sends what the consumer already holds as one batch", async () => {
    const { feed, sink } = start();
    feed.push(1, 2, 3);
    await until(() => sink.batches.length === 1, { timeoutMs: 2000, intervalMs: 5, what: "the send" });
    expect(sink.batches).toEqual([[1, 2, 3]]);
  });

  it("while a send is in flight events gather into one batch, sent when it returns", async () => {
    const { feed, sink } = start();
    feed.push(1);
    await until(() => sink.batches.length === 1, { timeoutMs: 2000, intervalMs: 5, what: "the first send" });
    for (const item of [2, 3, 4, 5]) {
      feed.push(item);
      await turns();
    }
    expect(sink.batches).toEqual([[1]]);
    sink.answer();
    await until(() => sink.batches.length === 2, { timeoutMs: 2000, intervalMs: 5, what: "the second send" });
    expect(sink.batches).toEqual([[1], [2, 3, 4, 5]]);
  });

  it("once the endpoint has answered a send, the next batch goes while that send still records and acks", async () => {
    const { feed, sink } = start({ maxInflightBatches: 2 });
    feed.push(1);
    await until(() => sink.batches.length === 1, { timeoutMs: 2000, intervalMs: 5, what: "the first send" });
    feed.push(2, 3);
    await turns();
    expect(sink.batches).toEqual([[1]]);
    sink.endpointAnswers();
    await until(() => sink.batches.length === 2, { timeoutMs: 2000, intervalMs: 5, what: "the second send" });
    expect(sink.batches).toEqual([[1], [2, 3]]);
    // Both still in flight (the first records, the second waits for its endpoint): maxInflightBatches 2 holds the
    // next batch even after the second's endpoint answers, until one returns.
    feed.push(4);
    sink.endpointAnswers();
    await turns(20);
    expect(sink.batches).toHaveLength(2);
    sink.answer();
    await until(() => sink.batches.length === 3, { timeoutMs: 2000, intervalMs: 5, what: "the third send" });
    expect(sink.batches[2]).toEqual([4]);
  });

  it("a full batch goes without waiting for the send in flight, up to maxInflightBatches", async () => {
    // 10 events an item: 3 items fill a batch of 30.
    const { feed, sink } = start({ maxBatchEvents: 30, maxInflightBatches: 2 });
    feed.push(1);
    await until(() => sink.batches.length === 1, { timeoutMs: 2000, intervalMs: 5, what: "the first send" });
    feed.push(2, 3, 4, 5, 6, 7, 8);
    await turns();
    // [2,3,4] is full and goes beside [1]; then two sends are in flight, so [5,6,7] waits, full, for one to return.
    expect(sink.batches).toEqual([[1], [2, 3, 4]]);
    sink.answer();
    await until(() => sink.batches.length === 3, { timeoutMs: 2000, intervalMs: 5, what: "the third send" });
    expect(sink.batches[2]).toEqual([5, 6, 7]);
  });

  it("lingerMs caps the wait: a batch goes while a slow send is still in flight", async () => {
    const { feed, sink } = start({ lingerMs: 50 });
    feed.push(1);
    await until(() => sink.batches.length === 1, { timeoutMs: 2000, intervalMs: 5, what: "the first send" });
    feed.push(2, 3);
    // The first send never returns here: only the linger bound can send [2, 3].
    await until(() => sink.batches.length === 2, { timeoutMs: 5000, intervalMs: 10, what: "the lingered send" });
    expect(sink.batches).toEqual([[1], [2, 3]]);
  });

  it("lingerMs 0 sends every item on its own", async () => {
    const { feed, sink } = start({ lingerMs: 0, maxInflightBatches: 8 });
    feed.push(1);
    await until(() => sink.batches.length === 1, { timeoutMs: 2000, intervalMs: 5, what: "the first send" });
    feed.push(2, 3);
    await until(() => sink.batches.length === 3, { timeoutMs: 2000, intervalMs: 5, what: "three sends" });
    expect(sink.batches).toEqual([[1], [2], [3]]);
  });

  it("at the end, the sends in flight return first and the batch being gathered is released unsent", async () => {
    const { feed, sink, released, stop } = start();
    feed.push(1);
    await until(() => sink.batches.length === 1, { timeoutMs: 2000, intervalMs: 5, what: "the first send" });
    feed.push(2, 3);
    await turns();
    await stop();
    expect(sink.batches).toEqual([[1]]);
    expect(released).toEqual([2, 3]);
  });
});

describe("memory under sustained load", () => {
  // A send stays in flight (a slow request) while others come and go, so the route is never idle. Racing a promise
  // that lived as long as that kept a reaction per wait, each holding the delivery it returned: omf-sender's heap held
  // 230 MB of sent deliveries after 10 s of a benchmark. Every item sent must be collectable while the pipeline runs on.
  it("keeps no item after its send while a send stays in flight", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const refs: Array<WeakRef<object>> = [];
    const stop = new AbortController();
    let produced = 0;
    async function* source(): AsyncGenerator<object> {
      while (!stop.signal.aborted) {
        await new Promise((r) => setImmediate(r));
        const item = { n: produced++, payload: new Array(64).fill(produced) };
        // Not the first batch's: that send is the one held in flight.
        if (item.n >= 100 && refs.length < 200) refs.push(new WeakRef(item));
        yield item;
      }
    }
    let sent = 0;
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let first = true;
    const run = runBatches<object>({
      items: source(),
      settings: { maxBatchEvents: 10, maxBatchBytes: 1e9, lingerMs: 60_000, maxInflightBatches: 3 },
      signal: stop.signal,
      admit: () => ({ events: 1, bytes: 1 }),
      send: async (b) => {
        if (first) {
          first = false;
          await held;
          return;
        }
        await new Promise((r) => setTimeout(r, 1));
        sent += b.length;
      },
      release: async () => {},
    });
    await until(() => sent >= 3000, { timeoutMs: 20_000, what: "3000 items sent" });
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    stop.abort();
    release();
    await run;
    expect(refs).toHaveLength(200);
    expect(alive).toBe(0);
  });
});
