import { describe, expect, it } from "vitest";
import { OrdsQueryError, parseIsoMicros, parseOrdsQuery, sortRows, toIsoMicros } from "./ords-filter.js";

const twin = "ocid1.iotdigitaltwininstance.oc1.iad.aaa";
const rows = [
  { id: 1, digital_twin_instance_id: twin, time_received: "2025-09-18T18:32:28.847243Z", endpoint: "iot/v1/telemetry", reason_code: null },
  { id: 2, digital_twin_instance_id: twin, time_received: "2025-09-18T18:32:28.847244Z", endpoint: "iot/pvhd", reason_code: 500 },
  {
    id: 3,
    digital_twin_instance_id: "other",
    time_received: "2025-09-18T18:40:00.000000Z",
    endpoint: "iot/v1/telemetry",
    reason_code: 500,
  },
  { id: 4, digital_twin_instance_id: twin, time_received: "2025-09-18T18:45:00.000001Z", endpoint: "dev/x_y", reason_code: null },
];
const ids = (q: string | undefined) => {
  const { matches, orderBy } = parseOrdsQuery(q);
  return sortRows(rows.filter(matches), orderBy).map((r) => r.id);
};

describe("ORDS q", () => {
  it("runs manage-dt's query: $and of equality and $gte $date, $orderby id desc", () => {
    const q = JSON.stringify({
      $and: [{ digital_twin_instance_id: twin }, { time_received: { $gte: { $date: "2025-09-18T18:32:28.847244Z" } } }],
      $orderby: { id: "desc" },
    });
    expect(parseOrdsQuery(q).orderBy).toEqual([["id", "desc"]]);
    // Row 1 is one microsecond earlier: a millisecond comparison would keep it.
    expect(ids(q)).toEqual([4, 2]);
  });

  it("matches every row without q and keeps their order", () => {
    expect(ids(undefined)).toEqual([1, 2, 3, 4]);
    expect(ids("")).toEqual([1, 2, 3, 4]);
  });

  it("compares $date with offsets and fewer fraction digits as the same instant", () => {
    expect(ids(JSON.stringify({ time_received: { $lt: { $date: "2025-09-18T20:40:00+02:00" } } }))).toEqual([1, 2]);
    expect(ids(JSON.stringify({ time_received: { $date: "2025-09-18T18:40:00Z" } }))).toEqual([3]);
  });

  it("supports the comparison operators, $in, $between, $null and $notnull", () => {
    expect(ids('{"id": {"$eq": 2}}')).toEqual([2]);
    expect(ids('{"id": {"$ne": 2}}')).toEqual([1, 3, 4]);
    expect(ids('{"id": {"$gt": 1, "$lte": 3}}')).toEqual([2, 3]);
    expect(ids('{"id": {"$lt": 2}}')).toEqual([1]);
    expect(ids('{"id": {"$in": [1, 4, 9]}}')).toEqual([1, 4]);
    expect(ids('{"id": {"$between": [2, 3]}}')).toEqual([2, 3]);
    expect(ids('{"id": {"$between": [3, null]}}')).toEqual([3, 4]);
    expect(ids('{"reason_code": {"$null": null}}')).toEqual([1, 4]);
    expect(ids('{"reason_code": {"$notnull": null}}')).toEqual([2, 3]);
    // A null column satisfies no comparison, not even $ne (SQL semantics).
    expect(ids('{"reason_code": {"$ne": 500}}')).toEqual([]);
    expect(ids('{"id": "2"}')).toEqual([2]);
  });

  it("supports $like with % and _ (anchored, other characters literal) and $instr", () => {
    expect(ids('{"endpoint": {"$like": "iot/%"}}')).toEqual([1, 2, 3]);
    expect(ids('{"endpoint": {"$like": "iot/v_/telemetry"}}')).toEqual([1, 3]);
    expect(ids('{"endpoint": {"$like": "dev/x.y"}}')).toEqual([]);
    expect(ids('{"endpoint": {"$like": "telemetry"}}')).toEqual([]);
    expect(ids('{"endpoint": {"$instr": "pvhd"}}')).toEqual([2]);
  });

  it("nests $and and $or", () => {
    expect(ids(JSON.stringify({ $or: [{ id: 1 }, { $and: [{ reason_code: 500 }, { endpoint: "iot/v1/telemetry" }] }] }))).toEqual([1, 3]);
  });

  it("orders by several keys in order, ISO times as instants", () => {
    expect(ids(JSON.stringify({ $orderby: { endpoint: "asc", id: "desc" } }))).toEqual([4, 2, 3, 1]);
    expect(ids(JSON.stringify({ $orderby: { time_received: "DESC" } }))).toEqual([4, 3, 2, 1]);
  });

  it("refuses malformed JSON, unknown operators and bad operands, naming the part", () => {
    expect(() => parseOrdsQuery("{")).toThrow(OrdsQueryError);
    expect(() => parseOrdsQuery("[1]")).toThrow(/must be a JSON object/);
    expect(() => parseOrdsQuery('{"id": {"$regex": "x"}}')).toThrow(/q\.id\.\$regex: unknown operator \$regex/);
    expect(() => parseOrdsQuery('{"$not": {"id": 1}}')).toThrow(/unknown operator \$not/);
    expect(() => parseOrdsQuery('{"$and": {"id": 1}}')).toThrow(/q\.\$and: must be a non-empty array/);
    expect(() => parseOrdsQuery('{"t": {"$gte": {"$date": "yesterday"}}}')).toThrow(/q\.t\.\$gte\.\$date: not an ISO-8601 time/);
    expect(() => parseOrdsQuery('{"$orderby": {"id": "up"}}')).toThrow(/\$orderby\.id/);
    expect(() => parseOrdsQuery('{"id": {"$between": [1]}}')).toThrow(/\[low, high\]/);
    expect(() => parseOrdsQuery('{"id": {"$in": 1}}')).toThrow(OrdsQueryError);
    expect(() => parseOrdsQuery('{"id": {"$eq": [1]}}')).toThrow(OrdsQueryError);
    expect(() => parseOrdsQuery(`{"a": "${"x".repeat(20_000)}"}`)).toThrow(/longer than/);
  });
});

describe("microsecond ISO times", () => {
  it("round-trips the sample's timestamp", () => {
    const t = parseIsoMicros("2025-09-18T18:32:28.847244Z");
    expect(t).toBe(BigInt(Date.UTC(2025, 8, 18, 18, 32, 28, 847)) * 1000n + 244n);
    expect(toIsoMicros(t)).toBe("2025-09-18T18:32:28.847244Z");
  });

  it("pads and truncates fractions, applies offsets, and formats times before 1970", () => {
    expect(toIsoMicros(parseIsoMicros("2025-09-18T18:32:28Z"))).toBe("2025-09-18T18:32:28.000000Z");
    expect(toIsoMicros(parseIsoMicros("2025-09-18T18:32:28.123456789Z"))).toBe("2025-09-18T18:32:28.123456Z");
    expect(toIsoMicros(parseIsoMicros("2025-09-18T20:32:28.5+02:00"))).toBe("2025-09-18T18:32:28.500000Z");
    expect(toIsoMicros(-1n)).toBe("1969-12-31T23:59:59.999999Z");
    expect(toIsoMicros(0n)).toBe("1970-01-01T00:00:00.000000Z");
  });

  it("refuses what is not a valid time", () => {
    expect(() => parseIsoMicros("2025-02-30T00:00:00Z")).toThrow(RangeError);
    expect(() => parseIsoMicros("2025-09-18T24:00:00Z")).toThrow(RangeError);
    expect(() => parseIsoMicros("18/09/2025")).toThrow(RangeError);
  });
});
