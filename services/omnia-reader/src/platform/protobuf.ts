import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { OmniaProtocolError } from "./errors.js";
import { formatTimeNs } from "./time.js";
import type { AggregatePoint, Datapoint } from "./types.js";

/**
 * `CompactDatapointsDto` (timeseries.proto, proto3, no package):
 *   CompactDatapointsDto  { repeated CompactDatapointsItem data = 1; string continuationToken = 2; }
 *   CompactDatapointsItem { string id = 1; uint64 totalCount = 2; repeated string fields = 3; repeated CompactDataPointValue values = 4; }
 *   CompactDataPointValue { oneof value { int64 int64 = 1; double double = 2; uint32 uint32 = 3; uint64 uint64 = 4; } }
 * Read by hand with @bufbuild/protobuf's wire reader: four small messages, and 64-bit integers stay bigint.
 */
export type CompactValue =
  | { case: "int64"; value: bigint }
  | { case: "double"; value: number }
  | { case: "uint32"; value: number }
  | { case: "uint64"; value: bigint };

export interface CompactDatapointsItem {
  id: string;
  totalCount: bigint;
  fields: string[];
  /** Row-major: every `fields.length` values are one point. */
  values: (CompactValue | undefined)[];
}

export interface CompactDatapointsDto {
  data: CompactDatapointsItem[];
  /** Empty string (proto3's default) ⇒ absent. */
  continuationToken: string;
}

const big = (v: bigint | string): bigint => (typeof v === "bigint" ? v : BigInt(v));

/** Reads one length-delimited sub-message in place (no copy, no second reader: a 100 000-point answer has 300 000). */
function decodeValue(r: BinaryReader): CompactValue | undefined {
  const end = r.uint32() + r.pos;
  if (end > r.len) throw new RangeError("premature EOF");
  let out: CompactValue | undefined;
  while (r.pos < end) {
    const [no, wt] = r.tag();
    if (no === 1 && wt === WireType.Varint) out = { case: "int64", value: big(r.int64()) };
    else if (no === 2 && wt === WireType.Bit64) out = { case: "double", value: r.double() };
    else if (no === 3 && wt === WireType.Varint) out = { case: "uint32", value: r.uint32() };
    else if (no === 4 && wt === WireType.Varint) out = { case: "uint64", value: big(r.uint64()) };
    else r.skip(wt, no);
  }
  if (r.pos !== end) throw new RangeError("value overruns its length");
  return out;
}

function decodeItem(r: BinaryReader): CompactDatapointsItem {
  const end = r.uint32() + r.pos;
  if (end > r.len) throw new RangeError("premature EOF");
  const item: CompactDatapointsItem = { id: "", totalCount: 0n, fields: [], values: [] };
  while (r.pos < end) {
    const [no, wt] = r.tag();
    if (no === 1 && wt === WireType.LengthDelimited) item.id = r.string();
    else if (no === 2 && wt === WireType.Varint) item.totalCount = big(r.uint64());
    else if (no === 3 && wt === WireType.LengthDelimited) item.fields.push(r.string());
    else if (no === 4 && wt === WireType.LengthDelimited) item.values.push(decodeValue(r));
    else r.skip(wt, no);
  }
  if (r.pos !== end) throw new RangeError("item overruns its length");
  return item;
}

/** Decodes the bytes; OmniaProtocolError when they are not a `CompactDatapointsDto`. */
export function decodeCompactDatapoints(bytes: Uint8Array): CompactDatapointsDto {
  try {
    const r = new BinaryReader(bytes);
    const dto: CompactDatapointsDto = { data: [], continuationToken: "" };
    while (r.pos < r.len) {
      const [no, wt] = r.tag();
      if (no === 1 && wt === WireType.LengthDelimited) dto.data.push(decodeItem(r));
      else if (no === 2 && wt === WireType.LengthDelimited) dto.continuationToken = r.string();
      else r.skip(wt, no);
    }
    return dto;
  } catch (err) {
    if (err instanceof OmniaProtocolError) throw err;
    throw new OmniaProtocolError(`not a CompactDatapointsDto: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The inverse, for tests and tools (the client never sends protobuf). */
export function encodeCompactDatapoints(dto: CompactDatapointsDto): Uint8Array {
  const w = new BinaryWriter();
  for (const item of dto.data) {
    w.tag(1, WireType.LengthDelimited).fork();
    if (item.id !== "") w.tag(1, WireType.LengthDelimited).string(item.id);
    if (item.totalCount !== 0n) w.tag(2, WireType.Varint).uint64(item.totalCount);
    for (const f of item.fields) w.tag(3, WireType.LengthDelimited).string(f);
    for (const v of item.values) {
      w.tag(4, WireType.LengthDelimited).fork();
      if (v?.case === "int64") w.tag(1, WireType.Varint).int64(v.value);
      else if (v?.case === "double") w.tag(2, WireType.Bit64).double(v.value);
      else if (v?.case === "uint32") w.tag(3, WireType.Varint).uint32(v.value);
      else if (v?.case === "uint64") w.tag(4, WireType.Varint).uint64(v.value);
      w.join();
    }
    w.join();
  }
  if (dto.continuationToken !== "") w.tag(2, WireType.LengthDelimited).string(dto.continuationToken);
  return w.finish();
}

/** The number of rows; OmniaProtocolError when the values are not whole rows. */
function rowCount(item: CompactDatapointsItem): number {
  const width = item.fields.length;
  if (width === 0) {
    if (item.values.length > 0) throw new OmniaProtocolError(`item ${item.id}: ${item.values.length} values but no fields`);
    return 0;
  }
  if (item.values.length % width !== 0)
    throw new OmniaProtocolError(`item ${item.id}: ${item.values.length} values is not a whole number of ${width}-field rows`);
  return item.values.length / width;
}

function asNumber(v: CompactValue | undefined): number | undefined {
  if (v === undefined) return undefined;
  return typeof v.value === "bigint" ? Number(v.value) : v.value;
}

function timeAt(item: CompactDatapointsItem, at: number): bigint {
  const v = at < 0 ? undefined : item.values[at];
  if (v === undefined) throw new OmniaProtocolError(`item ${item.id}: a point without time`);
  // A uint64 or a double time is not what the schema says; take it as nanoseconds rather than lose the point.
  const ns = v.case === "int64" || v.case === "uint64" ? v.value : Number.isFinite(v.value) ? BigInt(Math.trunc(v.value)) : undefined;
  // Beyond ±8.64e21 ns a Date cannot show it: the value is garbage, not a time.
  if (ns === undefined || ns > 8_640_000_000_000_000_000_000n || ns < -8_640_000_000_000_000_000_000n)
    throw new OmniaProtocolError(`item ${item.id}: time ${String(v.value)} is not a time`);
  return ns;
}

/** Raw points by field name (never by position: the column order is the answer's). */
export function compactToDatapoints(item: CompactDatapointsItem): Datapoint[] {
  const n = rowCount(item);
  const width = item.fields.length;
  const timeAtCol = item.fields.indexOf("time");
  const valueAt = item.fields.indexOf("value");
  const statusAt = item.fields.indexOf("status");
  const out: Datapoint[] = new Array(n);
  for (let r = 0; r < n; r++) {
    const base = r * width;
    const timeNs = timeAt(item, timeAtCol < 0 ? -1 : base + timeAtCol);
    out[r] = {
      time: formatTimeNs(timeNs),
      timeNs,
      value: asNumber(valueAt < 0 ? undefined : item.values[base + valueAt]) ?? Number.NaN,
      status: asNumber(statusAt < 0 ? undefined : item.values[base + statusAt]) ?? 0,
    };
  }
  return out;
}

/** Aggregate buckets: `time` plus whichever functions the answer's `fields` name. */
export function compactToAggregates(item: CompactDatapointsItem): AggregatePoint[] {
  const n = rowCount(item);
  const width = item.fields.length;
  const timeAtCol = item.fields.indexOf("time");
  const out: AggregatePoint[] = new Array(n);
  for (let r = 0; r < n; r++) {
    const base = r * width;
    const timeNs = timeAt(item, timeAtCol < 0 ? -1 : base + timeAtCol);
    const point: AggregatePoint = { time: formatTimeNs(timeNs), timeNs };
    for (let c = 0; c < width; c++) {
      const name = item.fields[c]!;
      if (name === "time") continue;
      const v = asNumber(item.values[base + c]);
      if (v !== undefined) (point as unknown as Record<string, number>)[name] = v;
    }
    out[r] = point;
  }
  return out;
}
