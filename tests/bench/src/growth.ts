import { median } from "./common.js";

/** Least-squares slope of y over x; 0 for fewer than two points or one x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** When a memory curve (MiB over seconds) counts as growing; see judgeGrowth. */
export interface GrowthBounds {
  /** The median of the last 5 samples above this × the median of all of them. */
  maxGrowth: number;
  /** A second-half slope above this, in MiB per minute… */
  maxSlopeMiBPerMin: number;
  /** …that adds more than this over the second half (a saw-tooth on a flat curve is steep for a few seconds only). */
  minRiseMiB: number;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/**
 * The verdict on one memory curve after a warm-up (samples of MiB at t seconds): "last samples above the bound" when its
 * end sits above `maxGrowth` × its median, "still climbing" when the slope of its second half exceeds the bound and
 * adds more than `minRiseMiB`, else "flat". Fewer than 10 samples are too few to say, which is not ok.
 */
export function judgeGrowth(samples: ReadonlyArray<{ t: number; mib: number }>, bounds: GrowthBounds) {
  if (samples.length < 10) return { verdict: "too few samples after the warm-up" as const, ok: false };
  const all = samples.map((s) => s.mib);
  const postWarmupMedian = median(all);
  const lastMedian = median(all.slice(-5));
  const half = samples.slice(Math.floor(samples.length / 2));
  const perSecond = slope(
    half.map((s) => s.t),
    half.map((s) => s.mib),
  );
  const rise = perSecond * (half.at(-1)!.t - half[0]!.t);
  const grew = lastMedian > bounds.maxGrowth * postWarmupMedian;
  const climbing = perSecond * 60 > bounds.maxSlopeMiBPerMin && rise > bounds.minRiseMiB;
  return {
    ok: !grew && !climbing,
    verdict: grew ? ("last samples above the bound" as const) : climbing ? ("still climbing" as const) : ("flat" as const),
    postWarmupMedianMiB: round1(postWarmupMedian),
    lastMedianMiB: round1(lastMedian),
    secondHalfSlopeMiBPerMin: round1(perSecond * 60),
    secondHalfRiseMiB: round1(rise),
  };
}
