import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Api, admin, decodeCompact, type Env, startEnv } from "./harness.js";

let env: Env;
let api: Api;
let id: string;
beforeAll(async () => {
  env = await startEnv();
  api = env.api;
  id = env.emu.seededIds()[0]!;
});
afterAll(() => env.stop());
beforeEach(async () => {
  await admin(env.emu, "DELETE", "faults");
});

describe("fault switch (/_emulator/faults)", () => {
  it("429 with Retry-After, then 429 without it, as MessageModel; the count disarms it", async () => {
    await admin(env.emu, "POST", "faults", { status: 429, count: 1, retryAfterSeconds: 2 });
    const a = await api.get(`/${id}/data`);
    expect(a.status).toBe(429);
    expect(a.headers["retry-after"]).toBe("2");
    expect(a.json).toMatchObject({ statusCode: 429, message: expect.any(String), traceId: expect.any(String) });
    await admin(env.emu, "POST", "faults", { status: 429, count: 1 });
    const b = await api.get(`/${id}/data`);
    expect(b.status).toBe(429);
    expect(b.headers["retry-after"]).toBeUndefined();
    expect((await api.get(`/${id}/data`)).status).toBe(200);
  });

  it("502 with an empty body (the gateway's answer on a backend timeout)", async () => {
    await admin(env.emu, "POST", "faults", { status: 502, count: 1, emptyBody: true });
    const r = await api.get(`/${id}/data`);
    expect(r.status).toBe(502);
    expect(r.bytes.length).toBe(0);
    expect(r.headers["content-length"]).toBe("0");
    expect((await api.get(`/${id}/data`)).status).toBe(200);
  });

  it("503 until cleared, only on the path it names", async () => {
    await admin(env.emu, "POST", "faults", { status: 503, path: "/plant/timeseries/v1.7/query" });
    expect((await api.post("/query/data", [{ id }])).status).toBe(503);
    expect((await api.post("/query/data", [{ id }])).status).toBe(503);
    expect((await api.get(`/${id}/data`)).status).toBe(200);
    await admin(env.emu, "DELETE", "faults");
    expect((await api.post("/query/data", [{ id }])).status).toBe(200);
  });

  it("latency delays the answer", async () => {
    await admin(env.emu, "POST", "faults", { latencyMs: 300, latencyCount: 1 });
    const t0 = performance.now();
    expect((await api.get(`/${id}/data/latest`)).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
  });

  it("refuses a bad fault setting naming the field", async () => {
    const r = await admin(env.emu, "POST", "faults", { status: 200 });
    expect(r.status).toBe(400);
    expect(r.json.field).toBe("status");
  });
});

describe("fault scripts (next N calls of a path)", () => {
  it("answers each step in turn, pass lets a call through, then the script is gone", async () => {
    const s = await admin(env.emu, "POST", "faults/scripts", {
      path: "/query/data",
      method: "POST",
      steps: [{ pass: true }, { status: 429, retryAfterSeconds: 1 }, { status: 502, emptyBody: true }, { status: 503 }],
    });
    expect(s.status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await api.post("/query/data", [{ id, limit: 1 }])).status);
    expect(statuses).toEqual([200, 429, 502, 503, 200]);
    expect((await admin(env.emu, "GET", "faults")).json.scripts).toEqual([]);
  });

  it("counts every call per operation and per path, faulted or not", async () => {
    await admin(env.emu, "POST", "counters/reset");
    await admin(env.emu, "POST", "faults/scripts", { path: `/${id}/data/first`, steps: [{ status: 503 }, { status: 503 }] });
    for (let i = 0; i < 3; i++) await api.get(`/${id}/data/first`);
    const c = (await admin(env.emu, "GET", "counters")).json;
    expect(c.byOperation["GET /{id}/data/first"]).toBe(3);
    expect(c.byPath[`/${id}/data/first`]).toBe(3);
    expect(c.byStatus).toMatchObject({ 503: 2, 200: 1 });
  });
});

describe("state, live growth, late points, reset", () => {
  it("live tick adds a point stamped now to every live series; a late point lands in the past", async () => {
    const before = Date.now();
    const tick = await admin(env.emu, "POST", "live/tick");
    expect(tick.status).toBe(200);
    const latest = await api.get(`/${id}/data/latest`);
    const t = Date.parse(latest.json.data.items[0].datapoints[0].time);
    expect(t).toBeGreaterThanOrEqual(before - 1);
    expect(t).toBeLessThanOrEqual(Date.now());

    // A reader that already read up to "now - 1 min" misses this unless it re-reads a lag window.
    const late = new Date(before - 10 * 60_000).toISOString();
    const r = await admin(env.emu, "POST", "datapoints", { items: [{ id, datapoints: [{ time: late, value: 42, status: 192 }] }] });
    expect(r.json).toEqual({ inserted: 1 });
    const window = await api.get(`/${id}/data`, {
      query: { startTime: new Date(before - 11 * 60_000).toISOString(), endTime: new Date().toISOString() },
    });
    expect(window.json.data.items[0].datapoints.map((p: { value: number }) => p.value)).toContain(42);
    const st = await admin(env.emu, "GET", `state?id=${id}&points=true&maxPoints=3`);
    expect(st.json.series[0]).toMatchObject({ id, live: true, pointCount: 2882 });
    expect(st.json.series[0].points).toHaveLength(3);
    expect(st.json.counters.latePoints).toBe(1);
  });

  it("late points keep int64 ns exactly (timeNs) and protobuf returns them unchanged", async () => {
    const ns = "1767225600123456789"; // 2026-01-01T00:00:00.123456789Z
    await admin(env.emu, "POST", "datapoints", { items: [{ id, datapoints: [{ timeNs: ns, value: 1 }] }] });
    const r = await api.get(`/${id}/data`, {
      accept: "application/protobuf",
      query: { startTime: "2026-01-01T00:00:00.1234567Z", endTime: "2026-01-01T00:00:01Z" },
    });
    expect(decodeCompact(r.bytes).data[0]!.values[0]).toEqual({ int64: BigInt(ns) });
  });

  it("reset re-seeds the same ids and data and clears counters", async () => {
    await api.post("/", { name: "Temp", facility: "JSV" });
    const r = await admin(env.emu, "POST", "reset");
    expect(r.json).toEqual({ ok: true, series: 6 });
    expect(env.emu.seededIds()[0]).toBe(id);
    const st = (await admin(env.emu, "GET", "state")).json;
    expect(st.series).toHaveLength(6);
    expect(st.series.find((s: { id: string }) => s.id === id).pointCount).toBe(2880);
    expect(st.counters.requests).toBe(0);
  });

  it("health and the CA are served; an unknown admin route is 404", async () => {
    expect((await admin(env.emu, "GET", "health")).json).toEqual({ ok: true });
    expect((await admin(env.emu, "GET", "ca.pem")).text).toBe(env.emu.caPem);
    expect((await admin(env.emu, "GET", "nothing")).status).toBe(404);
  });
});

describe("rate limit (the gateway's, v1.7.5)", () => {
  it("past N calls in the window: 429 MessageModel with Retry-After; off again when deleted", async () => {
    expect((await admin(env.emu, "PUT", "rate-limit", { requests: 2, perSeconds: 60 })).status).toBe(200);
    try {
      const statuses: number[] = [];
      let last: Awaited<ReturnType<Api["get"]>> | undefined;
      for (let i = 0; i < 3; i++) {
        last = await api.get(`/${id}/data/latest`);
        statuses.push(last.status);
      }
      expect(statuses).toEqual([200, 200, 429]);
      expect(Number(last!.headers["retry-after"])).toBeGreaterThanOrEqual(59);
      expect(last!.json.statusCode).toBe(429);
      expect((await admin(env.emu, "PUT", "rate-limit", { requests: 0, perSeconds: 60 })).status).toBe(400);
    } finally {
      await admin(env.emu, "DELETE", "rate-limit");
    }
    expect((await api.get(`/${id}/data/latest`)).status).toBe(200);
  });
});

describe("seed", () => {
  it("POST /_emulator/seed rebuilds the store from another seed: other ids, the same ids again for the same seed", async () => {
    const before = env.emu.seededIds();
    const other = await admin(env.emu, "POST", "seed", { seed: "other", points: 10 });
    expect(other.status).toBe(200);
    expect(other.json.ids).toHaveLength(6);
    expect(other.json.ids).not.toEqual(before);
    const r = await api.get(`/${other.json.ids[0]}/data`);
    expect(r.json.data.items[0].datapoints).toHaveLength(10);
    expect((await admin(env.emu, "POST", "seed", { points: -1 })).json.field).toBe("points");
    const back = await admin(env.emu, "POST", "seed", { seed: "meridian", points: 2880 });
    expect(back.json.ids).toEqual(before);
  });
});
