/**
 * The data reads on a series: raw points in a window, aggregates per processing interval, first and latest, with
 * the API's limit and continuation-token paging. Answers are neutral (rows of columns); render.ts turns them into
 * JSON or protobuf.
 *
 * Readings the notes leave open, and what is chosen (each is a setting or both are accepted):
 * - the window is start inclusive, end exclusive (`endInclusive` setting for the other reading);
 * - aggregate buckets start at `startTime` (or at the first point without one); `alignToCache=true` aligns them to
 *   multiples of the interval since the epoch;
 * - `stddev` is the sample standard deviation (n − 1), 0 for a single point;
 * - `fill`: `none`/absent leaves empty buckets out, `null` answers them with count 0 and nulls, `previous` repeats
 *   the last bucket's values.
 */
import { badRequest } from "./errors.js";
import type { Datapoint, Series } from "./store.js";

export const AGGREGATE_FUNCTIONS = ["avg", "min", "max", "sum", "stddev", "count", "first", "last", "median"] as const;
export type AggregateFunction = (typeof AGGREGATE_FUNCTIONS)[number];
export const FILLS = ["none", "null", "previous"] as const;
export type Fill = (typeof FILLS)[number];

export interface Limits {
  defaultLimit: number;
  maxLimit: number;
  /** Buckets one aggregate request may span when empty buckets are answered (fill null/previous). */
  maxBuckets: number;
  endInclusive: boolean;
}

export interface RawQuery {
  start?: bigint;
  end?: bigint;
  status?: number[];
  includeOutsidePoints?: boolean;
  limit?: number;
  continuationToken?: string;
}

export interface AggregateQuery {
  start?: bigint;
  end?: bigint;
  status?: number[];
  functions: AggregateFunction[];
  interval?: bigint;
  fill?: Fill;
  alignToCache?: boolean;
  limit?: number;
  continuationToken?: string;
}

export interface AggregateRow {
  t: bigint;
  values: Partial<Record<AggregateFunction, number | null>>;
}

export type ItemResult =
  | { kind: "raw"; id: string; rows: Datapoint[]; totalCount: number; continuationToken: string | null; extra?: Record<string, unknown> }
  | {
      kind: "aggregate";
      id: string;
      functions: AggregateFunction[];
      rows: AggregateRow[];
      totalCount: number;
      continuationToken: string | null;
      extra?: Record<string, unknown>;
    };

/** Opaque to clients: base64url JSON naming the series and where the next page starts. */
interface Token {
  k: "raw" | "agg";
  id: string;
  /** Next page starts at this time (ns, decimal). */
  at: string;
}

function encodeToken(t: Token): string {
  return Buffer.from(JSON.stringify(t)).toString("base64url");
}

function decodeToken(text: string, kind: Token["k"], id: string): bigint {
  try {
    const t = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as Token;
    if (t.k === kind && t.id.toLowerCase() === id.toLowerCase() && /^-?\d+$/.test(t.at)) return BigInt(t.at);
  } catch {
    // falls through to the refusal
  }
  throw badRequest("Invalid continuationToken.");
}

export function checkLimit(limit: number | undefined, limits: Limits, what = "limit"): number {
  if (limit === undefined) return limits.defaultLimit;
  if (!Number.isInteger(limit) || limit < 1 || limit > limits.maxLimit)
    throw badRequest(`The field ${what} must be between 1 and ${limits.maxLimit}.`);
  return limit;
}

function checkWindow(start: bigint | undefined, end: bigint | undefined): void {
  if (start !== undefined && end !== undefined && end < start) throw badRequest("endTime must be later than startTime.");
}

/** [a, b) index range of the series' points in the window. */
function windowRange(s: Series, start: bigint | undefined, end: bigint | undefined, limits: Limits): [number, number] {
  const a = start === undefined ? 0 : s.lowerBound(start);
  const b = end === undefined ? s.points.length : s.lowerBound(limits.endInclusive ? end + 1n : end);
  return [a, Math.max(a, b)];
}

const statusFilter = (status: number[] | undefined) =>
  status && status.length > 0 ? (p: Datapoint) => status.includes(p.status) : (_p: Datapoint) => true;

export function readRaw(s: Series, q: RawQuery, limits: Limits): ItemResult {
  const limit = checkLimit(q.limit, limits);
  checkWindow(q.start, q.end);
  const keep = statusFilter(q.status);
  const [a, b] = windowRange(s, q.start, q.end, limits);
  let from = a;
  if (q.continuationToken) from = Math.max(a, s.lowerBound(decodeToken(q.continuationToken, "raw", s.meta.id)));
  let totalCount = 0;
  for (let i = a; i < b; i++) if (keep(s.points[i]!)) totalCount++;
  const rows: Datapoint[] = [];
  let i = from;
  for (; i < b && rows.length < limit; i++) if (keep(s.points[i]!)) rows.push(s.points[i]!);
  while (i < b && !keep(s.points[i]!)) i++;
  const more = i < b;
  if (q.includeOutsidePoints) {
    // The point before the window on the first page, the point after it on the last.
    if (!q.continuationToken)
      for (let j = a - 1; j >= 0; j--)
        if (keep(s.points[j]!)) {
          rows.unshift(s.points[j]!);
          break;
        }
    if (!more)
      for (let j = b; j < s.points.length; j++)
        if (keep(s.points[j]!)) {
          rows.push(s.points[j]!);
          break;
        }
  }
  return {
    kind: "raw",
    id: s.meta.id,
    rows,
    totalCount,
    continuationToken: more ? encodeToken({ k: "raw", id: s.meta.id, at: s.points[i]!.t.toString() }) : null,
  };
}

export interface FirstLatestQuery {
  after?: bigint;
  before?: bigint;
  status?: number[];
}

/** The first (or latest) point with after <= t < before that passes the status filter; 0 or 1 row. */
export function readEdge(s: Series, which: "first" | "latest", q: FirstLatestQuery): ItemResult {
  checkWindow(q.after, q.before);
  const keep = statusFilter(q.status);
  const a = q.after === undefined ? 0 : s.lowerBound(q.after);
  const b = q.before === undefined ? s.points.length : s.lowerBound(q.before);
  let found: Datapoint | undefined;
  if (which === "first") {
    for (let i = a; i < b && !found; i++) if (keep(s.points[i]!)) found = s.points[i];
  } else {
    for (let i = b - 1; i >= a && !found; i--) if (keep(s.points[i]!)) found = s.points[i];
  }
  return { kind: "raw", id: s.meta.id, rows: found ? [found] : [], totalCount: found ? 1 : 0, continuationToken: null };
}

export function readAggregates(s: Series, q: AggregateQuery, limits: Limits): ItemResult {
  const limit = checkLimit(q.limit, limits);
  checkWindow(q.start, q.end);
  if (q.functions.length === 0) throw badRequest(`aggregateFunction is required: one or more of ${AGGREGATE_FUNCTIONS.join(", ")}.`);
  const keep = statusFilter(q.status);
  const [a, b] = windowRange(s, q.start, q.end, limits);
  const points: Datapoint[] = [];
  for (let i = a; i < b; i++) if (keep(s.points[i]!)) points.push(s.points[i]!);
  const fill = q.fill ?? "none";

  if (q.interval === undefined) {
    // One aggregate over the whole window, stamped at its start.
    if (points.length === 0 && fill === "none")
      return { kind: "aggregate", id: s.meta.id, functions: q.functions, rows: [], totalCount: 0, continuationToken: null };
    const t = q.start ?? points[0]?.t ?? 0n;
    return {
      kind: "aggregate",
      id: s.meta.id,
      functions: q.functions,
      rows: [{ t, values: aggregate(points, q.functions) }],
      totalCount: 1,
      continuationToken: null,
    };
  }

  const interval = q.interval;
  let origin = q.start ?? points[0]?.t ?? 0n;
  if (q.alignToCache) origin = floorDiv(origin, interval) * interval;
  const bucketOf = (t: bigint) => floorDiv(t - origin, interval);
  let from = 0n;
  if (q.continuationToken) from = bucketOf(decodeToken(q.continuationToken, "agg", s.meta.id));

  // Buckets with points, in order.
  const groups = new Map<bigint, Datapoint[]>();
  for (const p of points) {
    const k = bucketOf(p.t);
    const g = groups.get(k);
    if (g) g.push(p);
    else groups.set(k, [p]);
  }
  let keys: bigint[];
  if (fill === "none") keys = [...groups.keys()];
  else {
    const endNs = q.end ?? (points.length ? points[points.length - 1]!.t + 1n : origin);
    const count = endNs > origin ? (endNs - origin + interval - 1n) / interval : 0n;
    if (count > BigInt(limits.maxBuckets))
      throw badRequest(`The request spans ${count} intervals of ${q.interval} ns; at most ${limits.maxBuckets} are allowed.`);
    keys = [];
    for (let k = 0n; k < count; k++) keys.push(k);
  }
  const totalCount = keys.length;
  keys = keys.filter((k) => k >= from);
  const page = keys.slice(0, limit);
  const rows: AggregateRow[] = [];
  let previous: AggregateRow["values"] | undefined;
  if (fill === "previous" && page.length > 0) {
    // Carry into the page the last bucket before it that had points.
    for (const [k, g] of groups) if (k < page[0]!) previous = aggregate(g, q.functions);
  }
  for (const k of page) {
    const g = groups.get(k);
    let values: AggregateRow["values"];
    if (g) values = aggregate(g, q.functions);
    else if (fill === "previous" && previous) values = { ...previous };
    else values = emptyAggregate(q.functions);
    if (g) previous = values;
    rows.push({ t: origin + k * interval, values });
  }
  const next = keys[limit];
  return {
    kind: "aggregate",
    id: s.meta.id,
    functions: q.functions,
    rows,
    totalCount,
    continuationToken: next === undefined ? null : encodeToken({ k: "agg", id: s.meta.id, at: (origin + next * interval).toString() }),
  };
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function emptyAggregate(fns: AggregateFunction[]): AggregateRow["values"] {
  const out: AggregateRow["values"] = {};
  for (const f of fns) out[f] = f === "count" ? 0 : null;
  return out;
}

export function aggregate(points: Datapoint[], fns: AggregateFunction[]): AggregateRow["values"] {
  if (points.length === 0) return emptyAggregate(fns);
  const values = points.map((p) => p.value);
  const n = values.length;
  const sum = values.reduce((x, y) => x + y, 0);
  const avg = sum / n;
  const out: AggregateRow["values"] = {};
  for (const f of fns) {
    switch (f) {
      case "avg":
        out.avg = avg;
        break;
      case "min":
        out.min = Math.min(...values);
        break;
      case "max":
        out.max = Math.max(...values);
        break;
      case "sum":
        out.sum = sum;
        break;
      case "count":
        out.count = n;
        break;
      case "first":
        out.first = values[0]!;
        break;
      case "last":
        out.last = values[n - 1]!;
        break;
      case "stddev":
        out.stddev = n < 2 ? 0 : Math.sqrt(values.reduce((acc, v) => acc + (v - avg) ** 2, 0) / (n - 1));
        break;
      case "median": {
        const sorted = [...values].sort((x, y) => x - y);
        const mid = n >> 1;
        out.median = n % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
        break;
      }
    }
  }
  return out;
}

export function parseFunctions(values: unknown[], field: string): AggregateFunction[] {
  const out: AggregateFunction[] = [];
  for (const v of values) {
    const f = typeof v === "string" ? v.trim().toLowerCase() : "";
    if (!(AGGREGATE_FUNCTIONS as readonly string[]).includes(f))
      throw badRequest(`The value '${String(v)}' is not valid for ${field}: use ${AGGREGATE_FUNCTIONS.join(", ")}.`);
    if (!out.includes(f as AggregateFunction)) out.push(f as AggregateFunction);
  }
  return out;
}

export function parseFill(v: string | undefined | null): Fill | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  const f = v.trim().toLowerCase();
  if (!(FILLS as readonly string[]).includes(f)) throw badRequest(`The value '${v}' is not valid for fill: use ${FILLS.join(", ")}.`);
  return f as Fill;
}
