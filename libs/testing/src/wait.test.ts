import { describe, expect, it } from "vitest";
import { until } from "./wait.js";

describe("until", () => {
  it("returns once the check holds", async () => {
    let n = 0;
    await until(() => ++n >= 3, { intervalMs: 1 });
    expect(n).toBe(3);
  });

  it("fails naming what it waited for", async () => {
    await expect(until(() => false, { timeoutMs: 20, intervalMs: 5, what: "the PI values" })).rejects.toThrow(
      /the PI values not met in 20 ms/,
    );
  });

  it("fails at once on a check that throws, unless told to wait through errors (and then names the last one)", async () => {
    let calls = 0;
    const refusing = () => {
      calls++;
      throw new Error("ECONNREFUSED");
    };
    await expect(until(refusing, { timeoutMs: 1_000 })).rejects.toThrow("ECONNREFUSED");
    expect(calls).toBe(1);
    await expect(until(refusing, { timeoutMs: 30, intervalMs: 5, ignoreErrors: true, what: "gateway" })).rejects.toThrow(
      /gateway not met in 30 ms \(last error: ECONNREFUSED\)/,
    );
    expect(calls).toBeGreaterThan(2);
  });
});
