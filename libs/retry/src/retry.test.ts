import { afterEach, describe, expect, it, vi } from "vitest";
import {
  backoffDelay,
  isRetryable,
  MAX_RETRY_AFTER_MS,
  MAX_TIMER_MS,
  PollLoop,
  parseRetryAfter,
  RetryableError,
  readRetryAfter,
  retry,
  retryAfterOf,
  retryHintOf,
  sleep,
} from "./index.js";

describe("backoffDelay", () => {
  const policy = { initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0 };
  it("grows exponentially and is capped", () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, policy))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
  it("full jitter stays within [0, computed]", () => {
    const p = { ...policy, jitter: 1 };
    expect(backoffDelay(3, p, () => 0)).toBe(0);
    expect(backoffDelay(3, p, () => 0.999999)).toBe(400);
  });
  it("never exceeds what setTimeout can wait, whatever the policy's maxMs", () => {
    const huge = { initialMs: 1000, maxMs: Number.MAX_SAFE_INTEGER, multiplier: 10, jitter: 0 };
    expect(backoffDelay(40, huge)).toBe(MAX_TIMER_MS);
    expect(backoffDelay(Number.NaN, policy)).toBe(100);
  });
});

describe("parseRetryAfter", () => {
  it("reads delta-seconds and HTTP dates", () => {
    expect(parseRetryAfter("7")).toBe(7000);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now)).toBe(5000);
  });
  it("ignores absent or garbage values", () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
  });
  it("cuts an absurd delta-seconds to the cap and says what was asked", () => {
    expect(parseRetryAfter("999999999")).toBe(MAX_RETRY_AFTER_MS);
    expect(readRetryAfter("999999999")).toEqual({ ms: MAX_RETRY_AFTER_MS, requestedMs: 999_999_999_000, clamped: true });
    // More digits than a double holds: still the cap, never NaN or a negative delay.
    expect(readRetryAfter("9".repeat(400))).toEqual({ ms: MAX_RETRY_AFTER_MS, requestedMs: Number.POSITIVE_INFINITY, clamped: true });
  });
  it("cuts an HTTP-date far in the future to the cap", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now)).toBe(MAX_RETRY_AFTER_MS);
    const read = readRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now);
    expect(read?.clamped).toBe(true);
    expect(read?.requestedMs).toBe(Date.parse("9999-12-31T23:59:59Z") - now);
  });
  it("leaves a wait within the cap alone, the cap included", () => {
    expect(readRetryAfter("300")).toEqual({ ms: 300_000, requestedMs: 300_000, clamped: false });
    expect(readRetryAfter("301")).toEqual({ ms: 300_000, requestedMs: 301_000, clamped: true });
  });
  it("takes a caller's own cap within setTimeout's range, and refuses one outside it", () => {
    expect(parseRetryAfter("60", Date.now(), 2000)).toBe(2000);
    expect(parseRetryAfter("1", Date.now(), MAX_TIMER_MS)).toBe(1000);
    expect(() => parseRetryAfter("1", Date.now(), MAX_TIMER_MS + 1)).toThrow(RangeError);
    expect(() => parseRetryAfter("1", Date.now(), -1)).toThrow(RangeError);
    expect(() => parseRetryAfter("1", Date.now(), Number.NaN)).toThrow(RangeError);
  });
});

describe("sleep", () => {
  afterEach(() => vi.useRealTimers());
  it("hands setTimeout at most MAX_TIMER_MS, so a huge wait does not fire after 1 ms", async () => {
    vi.useFakeTimers();
    const spy = vi.spyOn(globalThis, "setTimeout");
    const ac = new AbortController();
    const slept = sleep(999_999_999_000, ac.signal).catch(() => "aborted");
    expect(spy.mock.calls.at(-1)?.[1]).toBe(MAX_TIMER_MS);
    // With the delay overflowed, the timer would have fired by now.
    vi.advanceTimersByTime(10);
    ac.abort();
    expect(await slept).toBe("aborted");
  });
});

describe("PollLoop", () => {
  afterEach(() => vi.useRealTimers());
  it("polls, waits the interval asked each time, and again; wake() ends the wait; a failure is reported and the loop goes on", async () => {
    vi.useFakeTimers();
    const polls: number[] = [];
    const errors: unknown[] = [];
    let interval = 1000;
    const loop = new PollLoop({
      poll: async () => {
        polls.push(Date.now());
        if (polls.length === 2) throw new Error("down");
      },
      intervalMs: () => interval,
      onError: (err) => errors.push(err),
    });
    const t0 = Date.now();
    loop.wake();
    loop.start();
    loop.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(polls).toEqual([t0]);
    await vi.advanceTimersByTimeAsync(999);
    expect(polls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(polls).toEqual([t0, t0 + 1000]);
    expect(errors.map((e) => (e as Error).message)).toEqual(["down"]);
    interval = 60_000;
    await vi.advanceTimersByTimeAsync(1000);
    expect(polls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(10);
    loop.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(polls).toEqual([t0, t0 + 1000, t0 + 2000, t0 + 2010]);
    await loop.stop();
    expect(loop.signal.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stop() aborts the poll in flight through its signal and does not report its failure", async () => {
    const errors: unknown[] = [];
    let started!: () => void;
    const inFlight = new Promise<void>((r) => (started = r));
    const loop = new PollLoop({
      poll: (signal) =>
        new Promise<void>((_, reject) => {
          started();
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        }),
      intervalMs: () => 60_000,
      onError: (err) => errors.push(err),
    });
    loop.start();
    await inFlight;
    const t0 = Date.now();
    await loop.stop(new Error("source stopped"));
    expect(Date.now() - t0).toBeLessThan(3000); // the poll never ends by itself; 3 s leaves room for a loaded machine
    expect(errors).toEqual([]);
    expect(loop.signal.reason).toEqual(new Error("source stopped"));
  });
});

describe("retry", () => {
  const fast = { initialMs: 1, maxMs: 2, multiplier: 2, jitter: 0 };
  it("retries retryable errors until success", async () => {
    let calls = 0;
    const result = await retry(
      async () => {
        calls++;
        if (calls < 3) throw new RetryableError("busy");
        return "ok";
      },
      { policy: fast },
    );
    expect(result).toBe("ok");
    expect(calls).toBe(3);
  });
  it("does not retry other errors", async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new Error("bad request");
        },
        { policy: fast },
      ),
    ).rejects.toThrow("bad request");
    expect(calls).toBe(1);
  });
  it("honours the error's retry-after hint", async () => {
    const delays: number[] = [];
    let calls = 0;
    await retry(
      async () => {
        if (++calls === 1) throw new RetryableError("429", 5);
        return 1;
      },
      { policy: fast, onRetry: (_e, _a, d) => delays.push(d) },
    );
    expect(delays).toEqual([5]);
  });
  it("waits at most the cap however long the error's hint", async () => {
    const delays: number[] = [];
    const ac = new AbortController();
    const stopped = new Error("stopped after the first wait was chosen");
    await expect(
      retry(async () => Promise.reject(new RetryableError("429", 999_999_999_000)), {
        policy: fast,
        signal: ac.signal,
        onRetry: (_e, _a, d) => {
          delays.push(d);
          ac.abort(stopped);
        },
      }),
    ).rejects.toBe(stopped);
    expect(delays).toEqual([MAX_RETRY_AFTER_MS]);
  });
  it("stops when attempts run out", async () => {
    await expect(retry(async () => Promise.reject(new RetryableError("down")), { policy: fast, maxAttempts: 2 })).rejects.toThrow("down");
  });
  it("retries an error of any class that says retryable: true, after its retryAfterMs", async () => {
    class PlatformDown extends Error {
      readonly retryable = true;
      constructor(readonly retryAfterMs?: number) {
        super("platform down");
      }
    }
    const delays: number[] = [];
    let calls = 0;
    const result = await retry(
      async () => {
        calls++;
        if (calls === 1) throw new PlatformDown(7);
        if (calls === 2) throw Object.assign(new Error("plain object hint"), { retryable: true, retryAfterMs: 3 });
        if (calls === 3) throw new PlatformDown();
        return "ok";
      },
      { policy: fast, onRetry: (_e, _a, d) => delays.push(d) },
    );
    expect(result).toBe("ok");
    // The third failure has no hint: backoff for attempt 3 of the fast policy (capped at 2 ms).
    expect(delays).toEqual([7, 3, 2]);
  });
  it("does not retry an error that says retryable: false, even a RetryableError-shaped one", async () => {
    let calls = 0;
    const final = Object.assign(new Error("credentials rejected"), { retryable: false, retryAfterMs: 1 });
    await expect(
      retry(
        async () => {
          calls++;
          throw final;
        },
        { policy: fast },
      ),
    ).rejects.toBe(final);
    expect(calls).toBe(1);
  });
  it("takes the hint from the error even when the caller decides what is retryable", async () => {
    const delays: number[] = [];
    let calls = 0;
    await retry(
      async () => {
        if (++calls === 1) throw Object.assign(new Error("busy"), { retryAfterMs: 4 });
        return 1;
      },
      { policy: fast, isRetryable: () => true, onRetry: (_e, _a, d) => delays.push(d) },
    );
    expect(delays).toEqual([4]);
  });
});

describe("isRetryable / retryAfterOf", () => {
  it("read the properties, whatever the class", () => {
    expect(isRetryable(new RetryableError("x"))).toBe(true);
    expect(isRetryable({ retryable: true })).toBe(true);
    expect(isRetryable({ retryable: "yes" })).toBe(false);
    expect(isRetryable(new Error("x"))).toBe(false);
    expect(isRetryable(undefined)).toBe(false);
    expect(retryAfterOf(new RetryableError("x", 250))).toBe(250);
    expect(retryAfterOf({ retryAfterMs: 0 })).toBe(0);
  });
  it("never hand out more than the cap, and say when they cut", () => {
    expect(retryAfterOf({ retryAfterMs: 999_999_999_000 })).toBe(MAX_RETRY_AFTER_MS);
    expect(retryAfterOf({ retryAfterMs: Number.POSITIVE_INFINITY })).toBe(MAX_RETRY_AFTER_MS);
    expect(retryAfterOf({ retryAfterMs: 10_000 }, 2000)).toBe(2000);
    // A client that already cut the hint keeps what was asked in retryAfterRequestedMs.
    expect(retryHintOf({ retryAfterMs: MAX_RETRY_AFTER_MS, retryAfterRequestedMs: 999_999_999_000 })).toEqual({
      ms: MAX_RETRY_AFTER_MS,
      requestedMs: 999_999_999_000,
      clamped: true,
    });
    expect(retryHintOf({ retryAfterMs: 5000 })).toEqual({ ms: 5000, requestedMs: 5000, clamped: false });
    expect(retryHintOf({ retryAfterMs: 5000 }, 1000)).toEqual({ ms: 1000, requestedMs: 5000, clamped: true });
  });
  it("ignore a hint that is not a usable delay", () => {
    expect(retryAfterOf({ retryAfterMs: -1 })).toBeUndefined();
    expect(retryAfterOf({ retryAfterMs: Number.NaN })).toBeUndefined();
    expect(retryAfterOf({ retryAfterMs: "5" })).toBeUndefined();
    expect(retryAfterOf(new RetryableError("x"))).toBeUndefined();
    expect(retryAfterOf(null)).toBeUndefined();
  });
});
