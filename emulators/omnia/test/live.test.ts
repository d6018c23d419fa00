import { until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Env, startEnv } from "./harness.js";

let env: Env;
beforeAll(async () => {
  env = await startEnv({ liveIntervalMs: 50, liveSeries: 2, seedPoints: 100, maxPointsPerSeries: 110 });
});
afterAll(() => env.stop());

describe("live growth", () => {
  it("the first live series get points stamped now on every interval; the others do not; the oldest go past the cap", async () => {
    const [a, b, c] = env.emu.seededIds();
    const started = Date.now();
    await until(async () => {
      const r = await env.api.get(`/${a}/data/latest`);
      return Date.parse(r.json.data.items[0].datapoints[0].time) >= started;
    });
    const rb = await env.api.get(`/${b}/data/latest`);
    expect(Date.parse(rb.json.data.items[0].datapoints[0].time)).toBeGreaterThan(started - 1000);
    const rc = await env.api.get(`/${c}/data/latest`);
    expect(rc.json.data.items[0].datapoints[0].time).toBe("2025-12-31T23:59:00.0000000Z");
    await until(() => env.emu.state({ id: a }).series[0]!.pointCount === 110);
    await new Promise((r) => setTimeout(r, 200));
    expect(env.emu.state({ id: a }).series[0]!.pointCount).toBe(110);
  });
});
