import { describe, expect, it } from "vitest";
import { pausesBetween, readMetrics } from "./pauses.js";

const metrics = (lagMax: number, lagP99: number, majorSum: number, majorCount: number, minorSum: number, minorCount: number) =>
  [
    "# HELP nodejs_eventloop_lag_max_seconds The maximum recorded event loop delay.",
    "# TYPE nodejs_eventloop_lag_max_seconds gauge",
    `nodejs_eventloop_lag_max_seconds ${lagMax}`,
    `nodejs_eventloop_lag_p99_seconds ${lagP99}`,
    `nodejs_eventloop_lag_p90_seconds 0.011`,
    'nodejs_gc_duration_seconds_bucket{le="0.01",kind="major"} 2',
    `nodejs_gc_duration_seconds_sum{kind="major"} ${majorSum}`,
    `nodejs_gc_duration_seconds_count{kind="major"} ${majorCount}`,
    `nodejs_gc_duration_seconds_sum{kind="minor"} ${minorSum}`,
    `nodejs_gc_duration_seconds_count{kind="minor"} ${minorCount}`,
    'rpc_server_duration_seconds_sum{procedure="/x",code="ok"} 77.8',
  ].join("\n");

describe("pauses over a phase, from two /metrics readings", () => {
  it("takes the event loop's figures from the end (prom-client reset them at the start) less the 10 ms timer", () => {
    const p = pausesBetween(readMetrics(metrics(0.3, 0.2, 0, 0, 0, 0)), readMetrics(metrics(0.0407, 0.0151, 0, 0, 0, 0)));
    expect(p.eventLoopDelayMaxMs).toBe(30.7);
    expect(p.eventLoopDelayP99Ms).toBe(5.1);
  });

  it("counts the collections of each kind and their time as the difference of the totals", () => {
    const p = pausesBetween(readMetrics(metrics(0, 0, 0.02, 2, 1.5, 900)), readMetrics(metrics(0.01, 0.01, 0.083, 6, 1.6, 930)));
    expect(p.gc.major).toEqual({ count: 4, ms: 63 });
    expect(p.gc.minor).toEqual({ count: 30, ms: 100 });
  });

  it("reads no delay below the sampling timer as a pause", () => {
    const p = pausesBetween(readMetrics(metrics(0, 0, 0, 0, 0, 0)), readMetrics(metrics(0.009, 0.0091, 0, 0, 0, 0)));
    expect(p.eventLoopDelayMaxMs).toBe(0);
    expect(p.eventLoopDelayP99Ms).toBe(0);
  });
});
