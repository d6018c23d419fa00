import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Api, decodeCompact, type Env, startEnv } from "./harness.js";

let env: Env;
let api: Api;
let pressure: string; // JSV.20PT1234.PV: sine, status mix 192 / 0 / 64
let ramp: string;
let hires: string;
const START = "2025-12-30T00:00:00Z"; // first seeded point (2880 points, 60 s apart, ending 2026-01-01)

beforeAll(async () => {
  env = await startEnv();
  api = env.api;
  pressure = env.emu.seededIds()[0]!;
  ramp = env.emu.seededIds()[1]!;
  hires = env.emu.seededIds()[5]!;
});
afterAll(() => env.stop());

describe("GET /{id}/data", () => {
  it("answers the window's points with 7-digit times, default limit 1000 and an opaque token", async () => {
    const r = await api.get(`/${pressure}/data`, { query: { startTime: START, endTime: "2026-01-01T00:00:00Z" } });
    expect(r.status).toBe(200);
    const item = r.json.data.items[0];
    expect(item.id).toBe(pressure);
    expect(item.datapoints).toHaveLength(1000);
    expect(item.datapoints[0]).toEqual({ time: "2025-12-30T00:00:00.0000000Z", value: 50, status: 192 });
    expect(item.totalCount).toBe(2880);
    expect(typeof r.json.continuationToken).toBe("string");
  });

  it("pages with continuationToken until null; the pages hold every point once", async () => {
    const times: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await api.get(`/${pressure}/data/`, {
        query: { startTime: START, endTime: "2026-01-01T00:00:00Z", limit: 700, continuationToken: token },
      });
      expect(r.status).toBe(200);
      times.push(...r.json.data.items[0].datapoints.map((p: { time: string }) => p.time));
      token = r.json.continuationToken ?? undefined;
      pages++;
    } while (token);
    expect(pages).toBe(5);
    expect(times).toHaveLength(2880);
    expect(new Set(times).size).toBe(2880);
  });

  it("start is inclusive and end exclusive (unverified in the notes [inf]; endInclusive is the other reading, unit-tested)", async () => {
    const r = await api.get(`/${ramp}/data`, { query: { startTime: "2025-12-30T00:01:00Z", endTime: "2025-12-30T00:03:00Z" } });
    expect(r.json.data.items[0].datapoints.map((p: { time: string }) => p.time)).toEqual([
      "2025-12-30T00:01:00.0000000Z",
      "2025-12-30T00:02:00.0000000Z",
    ]);
  });

  it("filters by repeated status keys and adds the outside points when asked (bools in any case)", async () => {
    const q = { startTime: START, endTime: "2025-12-30T01:00:00Z" };
    const bad = await api.get(`/${pressure}/data`, { query: { ...q, status: [0, 64] } });
    const statuses = bad.json.data.items[0].datapoints.map((p: { status: number }) => p.status);
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s: number) => s === 0 || s === 64)).toBe(true);
    const inner = await api.get(`/${ramp}/data`, {
      query: { startTime: "2025-12-30T00:10:00Z", endTime: "2025-12-30T00:12:00Z", includeOutsidePoints: "True" },
    });
    expect(inner.json.data.items[0].datapoints.map((p: { time: string }) => p.time)).toEqual([
      "2025-12-30T00:09:00.0000000Z",
      "2025-12-30T00:10:00.0000000Z",
      "2025-12-30T00:11:00.0000000Z",
      "2025-12-30T00:12:00.0000000Z",
    ]);
  });

  it("takes RFC 3339 with offsets, any fractional digits and date-only times", async () => {
    for (const startTime of ["2025-12-30T01:00:00+01:00", "2025-12-30T00:00:00.0000000Z", "2025-12-30"]) {
      const r = await api.get(`/${ramp}/data`, { query: { startTime, limit: 1 } });
      expect(r.json.data.items[0].datapoints[0].time).toBe("2025-12-30T00:00:00.0000000Z");
    }
  });

  it("refuses a limit outside 1..100000, a malformed time and a bad bool with the API's 400 MessageModel", async () => {
    for (const query of [
      { limit: 0 },
      { limit: 100001 },
      { startTime: "yesterday" },
      { includeOutsidePoints: "maybe" },
      { federationSource: "Oracle" },
    ]) {
      const r = await api.get(`/${pressure}/data`, { query });
      expect(r.status, JSON.stringify(query)).toBe(400);
      expect(r.json).toEqual({ statusCode: 400, message: expect.any(String), traceId: expect.stringMatching(/^[\da-f]{32}$/) });
    }
    const time = await api.get(`/${pressure}/data`, { query: { startTime: "2024-02-30T00:00:00Z" } });
    expect(time.json.message).toBe("The value '2024-02-30T00:00:00Z' is not valid for startTime.");
    expect((await api.get(`/${pressure}/data`, { query: { limit: 100000 } })).status).toBe(200);
  });

  it("answers 404 MessageModel for an unknown id and an unknown path; v1.6 is served too", async () => {
    const r = await api.get("/00000000-0000-0000-0000-00000000abcd/data");
    expect(r.status).toBe(404);
    expect(r.json.statusCode).toBe(404);
    expect((await api.get(`/${pressure}/nothing/here`)).status).toBe(404);
    const v16 = await env.api.call("GET", `/${pressure}/data`, { query: { limit: 1 } });
    expect(v16.status).toBe(200);
    const old = await new (env.api.constructor as typeof Api)(env.emu, env.token, "v1.6").get(`/${pressure}/data`, { query: { limit: 1 } });
    expect(old.status).toBe(200);
    expect((await new (env.api.constructor as typeof Api)(env.emu, env.token, "v1.5").get(`/${pressure}/data`)).status).toBe(404);
  });

  it("echoes federated when a federationSource is named; traceparent's trace id is the error's traceId", async () => {
    const r = await api.get(`/${pressure}/data`, { query: { limit: 1, federationSource: "IMS", debug: "true" } });
    expect(r.json.federated).toBe(true);
    const e = await api.get(`/${pressure}/data`, {
      query: { limit: -1 },
      headers: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
    });
    expect(e.json.traceId).toBe("0af7651916cd43dd8448eb211c80319c");
  });
});

describe("GET /query/data (by name)", () => {
  it("finds the series by name and facility (alias and any case)", async () => {
    const r = await api.get("/query/data", { query: { name: "ASGB.17IIC1030/A/PRIM", facility: "1191", terminal: "T1", limit: 2 } });
    expect(r.status).toBe(200);
    expect(r.json.data.items[0]).toMatchObject({ name: "ASGB.17IIC1030/A/PRIM", facility: "ASGB", terminal: "T1" });
    expect(r.json.data.items[0].datapoints).toHaveLength(2);
    expect((await api.get("/query/data", { query: { name: "nope", facility: "JSV" } })).status).toBe(404);
    expect((await api.get("/query/data", { query: { facility: "JSV" } })).status).toBe(400);
  });
});

describe("POST /query/data (multi)", () => {
  it("answers raw and aggregate items in one call, with per-item and overall tokens", async () => {
    const body = [
      { id: pressure, startTime: START, endTime: "2025-12-30T00:10:00Z", limit: 4, statusFilter: [192] },
      { id: ramp, startTime: START, endTime: "2025-12-30T02:00:00Z", aggregateFunctions: ["avg", "count"], processingInterval: "1h" },
    ];
    const r = await api.post("/query/data", body);
    expect(r.status).toBe(200);
    const [a, b] = r.json.data.items;
    expect(a.datapoints).toHaveLength(4);
    expect(typeof a.continuationToken).toBe("string");
    expect(b.datapoints).toHaveLength(2);
    expect(b.datapoints[0]).toMatchObject({ time: "2025-12-30T00:00:00.0000000Z", count: 60 });
    expect(b.continuationToken).toBeNull();
    // The overall token goes on with the unfinished item only.
    const next = await api.post("/query/data", body, { query: { continuationToken: r.json.continuationToken } });
    expect(next.json.data.items[0].datapoints[0].time).toBe("2025-12-30T00:04:00.0000000Z");
    expect(next.json.data.items[1].datapoints).toHaveLength(0);
  });

  it("takes at most 100 items", async () => {
    const items = (n: number) => Array.from({ length: n }, () => ({ id: pressure, limit: 1 }));
    expect((await api.post("/query/data", items(100))).status).toBe(200);
    const r = await api.post("/query/data", items(101));
    expect(r.status).toBe(400);
    expect(r.json.message).toMatch(/100/);
  });

  it("refuses a non-array body and a missing id naming the item", async () => {
    expect((await api.post("/query/data", { id: pressure })).status).toBe(400);
    const r = await api.post("/query/data", [{ id: pressure }, { limit: 5 }]);
    expect(r.json.message).toBe("items[1].id is required.");
  });
});

describe("aggregates", () => {
  it("computes every function per interval, buckets stamped at their start", async () => {
    const fns = ["avg", "min", "max", "sum", "stddev", "count", "first", "last"];
    const r = await api.get(`/${ramp}/data/aggregates`, {
      query: { aggregateFunction: fns, startTime: START, endTime: "2025-12-30T00:10:00Z", processingInterval: "5m" },
    });
    expect(r.status).toBe(200);
    const [b0, b1] = r.json.data.items[0].datapoints;
    expect(b0.time).toBe("2025-12-30T00:00:00.0000000Z");
    expect(b1.time).toBe("2025-12-30T00:05:00.0000000Z");
    // ramp: 20 + 40 i / 2880
    const v = (i: number) => 20 + (40 * i) / 2880;
    expect(b0.count).toBe(5);
    expect(b0.first).toBeCloseTo(v(0));
    expect(b0.last).toBeCloseTo(v(4));
    expect(b0.min).toBeCloseTo(v(0));
    expect(b0.max).toBeCloseTo(v(4));
    expect(b0.avg).toBeCloseTo(v(2));
    expect(b0.sum).toBeCloseTo(5 * v(2));
    expect(b0.stddev).toBeCloseTo(Math.sqrt(((v(1) - v(0)) ** 2 * 10) / 4)); // sample stddev of an arithmetic row of 5
  });

  it("without an interval answers one aggregate over the window", async () => {
    const r = await api.get(`/${ramp}/data/aggregates`, {
      query: { aggregateFunction: "count", startTime: START, endTime: "2025-12-30T01:00:00Z" },
    });
    expect(r.json.data.items[0].datapoints).toEqual([{ time: "2025-12-30T00:00:00.0000000Z", count: 60 }]);
  });

  it("pages buckets with limit and continuationToken; fill null answers empty buckets", async () => {
    const q = { aggregateFunction: "avg", startTime: START, endTime: "2025-12-30T10:00:00Z", processingInterval: "1h", limit: 4 };
    const p1 = await api.get(`/${ramp}/data/aggregates`, { query: q });
    expect(p1.json.data.items[0].datapoints).toHaveLength(4);
    const p2 = await api.get(`/${ramp}/data/aggregates`, { query: { ...q, continuationToken: p1.json.continuationToken } });
    expect(p2.json.data.items[0].datapoints[0].time).toBe("2025-12-30T04:00:00.0000000Z");
    const gap = await api.get(`/${ramp}/data/aggregates`, {
      query: {
        aggregateFunction: ["avg", "count"],
        startTime: "2025-12-31T23:00:00Z",
        endTime: "2026-01-01T02:00:00Z",
        processingInterval: "1h",
        fill: "null",
      },
    });
    expect(gap.json.data.items[0].datapoints).toEqual([
      expect.objectContaining({ time: "2025-12-31T23:00:00.0000000Z", count: 60 }),
      { time: "2026-01-01T00:00:00.0000000Z", avg: null, count: 0 },
      { time: "2026-01-01T01:00:00.0000000Z", avg: null, count: 0 },
    ]);
  });

  it("refuses an unknown function, a bad interval and a bad fill", async () => {
    for (const query of [
      { aggregateFunction: "mode" },
      { aggregateFunction: "avg", processingInterval: "5 minutes" },
      { aggregateFunction: "avg", fill: "linear" },
      {},
    ]) {
      const r = await api.get(`/${ramp}/data/aggregates`, { query });
      expect(r.status, JSON.stringify(query)).toBe(400);
      expect(r.json.statusCode).toBe(400);
    }
  });
});

describe("first and latest", () => {
  it("honour afterTime, beforeTime and status; 0 or 1 point", async () => {
    const first = await api.get(`/${pressure}/data/first`);
    expect(first.json.data.items[0].datapoints).toEqual([{ time: "2025-12-30T00:00:00.0000000Z", value: 50, status: 192 }]);
    const latest = await api.get(`/${ramp}/data/latest`, { query: { beforeTime: "2025-12-30T00:05:00Z" } });
    expect(latest.json.data.items[0].datapoints[0].time).toBe("2025-12-30T00:04:00.0000000Z");
    const bad = await api.get(`/${pressure}/data/first`, { query: { status: 0 } });
    expect(bad.json.data.items[0].datapoints[0].status).toBe(0);
    const none = await api.get(`/${pressure}/data/latest`, { query: { afterTime: "2030-01-01T00:00:00Z" } });
    expect(none.json.data.items[0].datapoints).toEqual([]);
  });

  it("multi first/latest take an array of items", async () => {
    const r = await api.post("/query/data/latest", [{ id: pressure }, { id: ramp, endTime: "2025-12-30T00:05:00Z" }]);
    expect(r.status).toBe(200);
    expect(r.json.data.items.map((i: { datapoints: { time: string }[] }) => i.datapoints[0]!.time)).toEqual([
      "2025-12-31T23:59:00.0000000Z",
      "2025-12-30T00:04:00.0000000Z",
    ]);
    const f = await api.post("/query/data/first", [{ id: ramp, startTime: "2025-12-30T00:05:00Z" }]);
    expect(f.json.data.items[0].datapoints[0].time).toBe("2025-12-30T00:05:00.0000000Z");
  });
});

describe("protobuf", () => {
  it("answers CompactDatapointsDto for each protobuf media type, int64 ns exact at 100 ns resolution", async () => {
    for (const accept of ["application/protobuf", "application/x-protobuf", "application/x-google-protobuf"]) {
      const r = await api.get(`/${hires}/data`, { accept, query: { limit: 3 } });
      expect(r.status).toBe(200);
      expect(r.headers["content-type"]).toBe("application/protobuf");
      const dto = decodeCompact(r.bytes);
      const item = dto.data[0]!;
      expect(item.fields).toEqual(["time", "value", "status"]);
      expect(item.values).toHaveLength(9);
      expect(item.totalCount).toBe(2880n);
      expect(dto.continuationToken.length).toBeGreaterThan(0);
      const t0 = (item.values[0] as { int64: bigint }).int64;
      const t1 = (item.values[3] as { int64: bigint }).int64;
      expect(t1 - t0).toBe(60_000_000_100n); // 60 s + 100 ns: beyond a double's precision at this magnitude
      // The JSON answer names the same instants.
      const j = await api.get(`/${hires}/data`, { query: { limit: 3 } });
      expect(j.json.data.items[0].datapoints[1].time.slice(-8)).toBe(`${(t1 % 1_000_000_000n).toString().padStart(9, "0").slice(0, 7)}Z`);
    }
  });

  it("a written point reads back as the notes' golden bytes (id swapped in)", async () => {
    const created = await api.post("/", { name: "Golden", facility: "JSV" });
    const id = created.json.data.items[0].id as string;
    await api.post(`/${id}/data`, { datapoints: [{ time: "2024-09-25T11:30:34.898Z", value: 246.56092834472656, status: 192 }] });
    const r = await api.get(`/${id}/data`, { accept: "application/protobuf" });
    const golden =
      "0a590a2430303030303030302d303030302d303030302d303030302d30303030303030303030303110011a0474696d651a0576616c75651a06737461747573220a0880d1e583e7a99efc1722091100000020f3d16e40220318c001";
    const expected = golden.replace(Buffer.from("00000000-0000-0000-0000-000000000001").toString("hex"), Buffer.from(id).toString("hex"));
    expect(r.bytes.toString("hex")).toBe(expected);
  });

  it("multi-queries and aggregates in protobuf: fields per item, count as uint64, one overall token", async () => {
    const r = await api.post(
      "/query/data",
      [
        { id: pressure, limit: 2 },
        { id: ramp, startTime: START, endTime: "2025-12-30T01:00:00Z", aggregateFunctions: ["avg", "count"] },
      ],
      { accept: "application/protobuf" },
    );
    const dto = decodeCompact(r.bytes);
    expect(dto.data.map((d) => d.fields)).toEqual([
      ["time", "value", "status"],
      ["time", "avg", "count"],
    ]);
    expect(dto.data[1]!.values[2]).toEqual({ uint64: 60n });
    expect(dto.continuationToken.length).toBeGreaterThan(0);
    const first = decodeCompact((await api.get(`/${pressure}/data/first`, { accept: "application/protobuf" })).bytes);
    expect(first.data[0]!.values).toHaveLength(3);
  });

  it("errors stay JSON MessageModel under a protobuf Accept", async () => {
    const r = await api.get(`/${pressure}/data`, { accept: "application/protobuf", query: { limit: 0 } });
    expect(r.status).toBe(400);
    expect(r.json.statusCode).toBe(400);
  });
});

describe("writes and deletes", () => {
  it("write single and multiple (async → 202), upsert by timestamp, delete a range [start, end)", async () => {
    const id = (await api.post("/", { name: "Writes", facility: "SNA" })).json.data.items[0].id as string;
    const w = await api.post(`/${id}/data`, {
      datapoints: [
        { time: "2026-02-01T00:00:00Z", value: 1, status: 192 },
        { time: "2026-02-01T00:00:01Z", value: 2, status: 192 },
      ],
    });
    expect(w.status).toBe(200);
    expect(w.json.statusCode).toBe(200);
    const m = await api.post(
      "/data",
      {
        items: [
          {
            id,
            datapoints: [
              { time: "2026-02-01T00:00:01.0000000Z", value: 20, status: 64 },
              { time: "2026-02-01T00:00:02Z", value: 3 },
            ],
          },
        ],
      },
      { query: { async: "True" } },
    );
    expect(m.status).toBe(202);
    const r = await api.get(`/${id}/data`);
    expect(r.json.data.items[0].datapoints).toEqual([
      { time: "2026-02-01T00:00:00.0000000Z", value: 1, status: 192 },
      { time: "2026-02-01T00:00:01.0000000Z", value: 20, status: 64 },
      { time: "2026-02-01T00:00:02.0000000Z", value: 3, status: 192 },
    ]);
    const d = await api.call("DELETE", `/${id}/data`, { query: { startTime: "2026-02-01T00:00:00Z", endTime: "2026-02-01T00:00:02Z" } });
    expect(d.status).toBe(200);
    expect((await api.get(`/${id}/data`)).json.data.items[0].datapoints.map((p: { value: number }) => p.value)).toEqual([3]);
  });

  it("refuses a bad point naming it, and writes nothing of a multi-write with an unknown id", async () => {
    const id = (await api.post("/", { name: "Refusals", facility: "SNA" })).json.data.items[0].id as string;
    const bad = await api.post(`/${id}/data`, { datapoints: [{ time: "x", value: 1 }] });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toBe("The value 'x' is not valid for datapoints[0].time.");
    const m = await api.post("/data", {
      items: [
        { id, datapoints: [{ time: "2026-02-01T00:00:00Z", value: 1 }] },
        { id: "00000000-0000-0000-0000-00000000dead", datapoints: [] },
      ],
    });
    expect(m.status).toBe(404);
    expect((await api.get(`/${id}/data`)).json.data.items[0].datapoints).toEqual([]);
  });
});
