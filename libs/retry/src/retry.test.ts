import { describe, expect, it } from "vitest";
import { backoffDelay, isRetryable, parseRetryAfter, RetryableError, retry, retryAfterOf } from "./index.js";

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
  it("ignore a hint that is not a usable delay", () => {
    expect(retryAfterOf({ retryAfterMs: -1 })).toBeUndefined();
    expect(retryAfterOf({ retryAfterMs: Number.NaN })).toBeUndefined();
    expect(retryAfterOf({ retryAfterMs: "5" })).toBeUndefined();
    expect(retryAfterOf(new RetryableError("x"))).toBeUndefined();
    expect(retryAfterOf(null)).toBeUndefined();
  });
});
