import { describe, expect, it } from "vitest";
import { judgeGrowth, slope } from "./growth.js";

const BOUNDS = { maxGrowth: 1.2, maxSlopeMiBPerMin: 6, minRiseMiB: 8 };
const curve = (n: number, mib: (t: number) => number) => Array.from({ length: n }, (_, i) => ({ t: i * 10, mib: mib(i * 10) }));

describe("slope", () => {
  it("is the least-squares slope, 0 when it cannot be told", () => {
    expect(slope([0, 1, 2, 3], [1, 3, 5, 7])).toBeCloseTo(2);
    expect(slope([0, 1, 2], [5, 5, 5])).toBe(0);
    expect(slope([1], [4])).toBe(0);
    expect(slope([2, 2], [1, 9])).toBe(0);
  });
});

describe("judgeGrowth", () => {
  it("calls a flat curve with a collector's saw-tooth flat", () => {
    const r = judgeGrowth(
      curve(60, (t) => 100 + (t % 30 === 0 ? 6 : 0)),
      BOUNDS,
    );
    expect(r).toMatchObject({ ok: true, verdict: "flat" });
  });

  it("calls a steady climb that adds more than the rise bound still climbing", () => {
    // 12 MiB a minute: +59 MiB over the second half of 10 minutes, the end well under 1.2 × the median.
    const r = judgeGrowth(
      curve(60, (t) => 1000 + (t / 60) * 12),
      BOUNDS,
    );
    expect(r).toMatchObject({ ok: false, verdict: "still climbing", secondHalfSlopeMiBPerMin: 12 });
  });

  it("calls a curve that ends above maxGrowth × its median grown", () => {
    const r = judgeGrowth(
      curve(20, (t) => (t >= 150 ? 200 : 100)),
      BOUNDS,
    );
    expect(r).toMatchObject({ ok: false, verdict: "last samples above the bound", lastMedianMiB: 200, postWarmupMedianMiB: 100 });
  });

  it("does not judge fewer than 10 samples", () => {
    expect(
      judgeGrowth(
        curve(9, () => 100),
        BOUNDS,
      ),
    ).toEqual({ ok: false, verdict: "too few samples after the warm-up" });
  });
});
