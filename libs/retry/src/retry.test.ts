import { describe, expect, it } from "vitest";
import { backoffDelay, parseRetryAfter, RetryableError, retry } from "./index.js";

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
});
