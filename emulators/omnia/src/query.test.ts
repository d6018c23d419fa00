import { describe, expect, it } from "vitest";
import { readAggregates as aggregates, readEdge as edge, type ItemResult, type Limits, readRaw as raw } from "./query.js";
import { Series } from "./store.js";

const S = 1_000_000_000n;
type Raw = Extract<ItemResult, { kind: "raw" }>;
type Agg = Extract<ItemResult, { kind: "aggregate" }>;
const readRaw = (...a: Parameters<typeof raw>) => raw(...a) as Raw;
const readEdge = (...a: Parameters<typeof edge>) => edge(...a) as Raw;
const readAggregates = (...a: Parameters<typeof aggregates>) => aggregates(...a) as Agg;
const limits: Limits = { defaultLimit: 1000, maxLimit: 100_000, maxBuckets: 1000, endInclusive: false };

function series(values: number[], status: (i: number) => number = () => 192): Series {
  const s = new Series({
    id: "s1",
    name: "n",
    description: null,
    step: false,
    unit: null,
    standardUnit: null,
    assetId: null,
    facility: "JSV",
    externalId: null,
    source: "IMS",
    createdTime: "",
    changedTime: "",
    metadata: {},
  });
  values.forEach((value, i) => {
    s.upsert({ t: BigInt(i) * S, value, status: status(i) });
  });
  return s;
}

describe("raw window (unverified in the notes: end exclusive or inclusive — both readings)", () => {
  const s = series([0, 1, 2, 3, 4]);
  it("end exclusive (default reading)", () => {
    expect(readRaw(s, { start: 1n * S, end: 3n * S }, limits).rows.map((p) => p.value)).toEqual([1, 2]);
  });
  it("end inclusive (the other reading, setting endInclusive)", () => {
    expect(readRaw(s, { start: 1n * S, end: 3n * S }, { ...limits, endInclusive: true }).rows.map((p) => p.value)).toEqual([1, 2, 3]);
  });
  it("a token of another series is refused", () => {
    const other = series([1]);
    const tok = readRaw(s, { limit: 1 }, limits).continuationToken!;
    other.meta.id = "s2";
    expect(() => readRaw(other, { continuationToken: tok }, limits)).toThrow(/continuationToken/);
  });
});

describe("first/latest bounds (unverified in the notes: afterTime inclusive, beforeTime exclusive is the reading chosen)", () => {
  const s = series([0, 1, 2, 3]);
  it("afterTime is inclusive, beforeTime exclusive", () => {
    expect(readEdge(s, "first", { after: 1n * S }).rows[0]!.value).toBe(1);
    expect(readEdge(s, "latest", { before: 3n * S }).rows[0]!.value).toBe(2);
  });
});

describe("aggregates", () => {
  const s = series([1, 2, 3, 4, 10, 20], (i) => (i === 5 ? 0 : 192));
  it("median (listed by a third-party schema only, unverified) and the status filter", () => {
    const r = readAggregates(s, { functions: ["median", "count"], status: [192] }, limits);
    expect(r.rows[0]!.values).toEqual({ median: 3, count: 5 });
  });
  it("fill previous (unverified fill value) repeats the last bucket with points", () => {
    const gap = series([1, 1]);
    gap.upsert({ t: 5n * S, value: 9, status: 192 });
    const r = readAggregates(gap, { functions: ["avg"], interval: 2n * S, start: 0n, end: 6n * S, fill: "previous" }, limits);
    expect(r.rows.map((x) => [Number(x.t / S), x.values.avg])).toEqual([
      [0, 1],
      [2, 1],
      [4, 9],
    ]);
  });
  it("alignToCache aligns buckets to multiples of the interval since the epoch, else to startTime (unverified alignment)", () => {
    const r1 = readAggregates(s, { functions: ["count"], interval: 2n * S, start: 1n * S, end: 5n * S }, limits);
    expect(r1.rows.map((x) => Number(x.t / S))).toEqual([1, 3]);
    const r2 = readAggregates(s, { functions: ["count"], interval: 2n * S, start: 1n * S, end: 5n * S, alignToCache: true }, limits);
    expect(r2.rows.map((x) => [Number(x.t / S), x.values.count])).toEqual([
      [0, 1],
      [2, 2],
      [4, 1],
    ]);
  });
  it("refuses a request spanning more buckets than allowed when empty ones are answered", () => {
    expect(() => readAggregates(s, { functions: ["avg"], interval: 1n, start: 0n, end: 10_000n, fill: "null" }, limits)).toThrow(
      /at most 1000/,
    );
  });
});

describe("Series.upsert", () => {
  it("keeps one point per timestamp, in time order, whatever order they come in", () => {
    const s = series([]);
    for (const t of [5n, 1n, 3n, 3n, 9n]) s.upsert({ t, value: Number(t), status: 192 });
    expect(s.points.map((p) => p.t)).toEqual([1n, 3n, 5n, 9n]);
    expect(s.deleteRange(3n, 9n)).toBe(2);
    expect(s.points.map((p) => p.t)).toEqual([1n, 9n]);
  });
});
