/**
 * ORDS AutoREST's `q` filter object over the emulator's data rows, and the microsecond ISO times those rows carry.
 * Times compare as bigint microseconds: JavaScript Dates keep milliseconds only and would merge rows the platform
 * keeps apart.
 */

import { utcMicros } from "./expressions.js";

export class OrdsQueryError extends Error {
  override readonly name = "OrdsQueryError";
}

type Row = Record<string, unknown>;
type Predicate = (row: Row) => boolean;
export type OrderBy = Array<[string, "asc" | "desc"]>;

const MAX_QUERY_LENGTH = 16_384;
const MAX_DEPTH = 32;

export function parseOrdsQuery(q: string | undefined): { matches(row: Row): boolean; orderBy: OrderBy } {
  if (q === undefined || q.trim() === "") return { matches: () => true, orderBy: [] };
  if (q.length > MAX_QUERY_LENGTH) throw new OrdsQueryError(`q: longer than ${MAX_QUERY_LENGTH} characters`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(q);
  } catch (e) {
    throw new OrdsQueryError(`q: not JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw new OrdsQueryError("q: must be a JSON object");
  const { $orderby, ...filter } = parsed;
  const orderBy = $orderby === undefined ? [] : parseOrderBy($orderby);
  const matches = filterObject(filter, "q", 0);
  return { matches, orderBy };
}

/** Sorts rows by an `$orderby`; values compare as microsecond times when both are ISO strings, nulls last. */
export function sortRows<T extends Row>(rows: T[], orderBy: OrderBy): T[] {
  if (orderBy.length === 0) return rows;
  return [...rows].sort((a, b) => {
    for (const [field, dir] of orderBy) {
      const x = a[field];
      const y = b[field];
      const xNull = x === null || x === undefined;
      const yNull = y === null || y === undefined;
      if (xNull || yNull) {
        if (xNull !== yNull) return xNull ? 1 : -1;
        continue;
      }
      const c = compareValues(x, y);
      if (c !== undefined && c !== 0) return dir === "asc" ? c : -c;
    }
    return 0;
  });
}

function parseOrderBy(v: unknown): OrderBy {
  if (!isPlainObject(v)) throw new OrdsQueryError('$orderby: must be an object like {"id": "desc"}');
  return Object.entries(v).map(([field, dir]) => {
    const d = typeof dir === "string" ? dir.toLowerCase() : dir;
    if (d !== "asc" && d !== "desc") throw new OrdsQueryError(`$orderby.${field}: must be "asc" or "desc", got ${JSON.stringify(dir)}`);
    return [field, d];
  });
}

function filterObject(v: unknown, where: string, depth: number): Predicate {
  if (depth > MAX_DEPTH) throw new OrdsQueryError(`${where}: nested deeper than ${MAX_DEPTH}`);
  if (!isPlainObject(v)) throw new OrdsQueryError(`${where}: must be a filter object`);
  const parts = Object.entries(v).map(([key, value]): Predicate => {
    if (key === "$and" || key === "$or") {
      if (!Array.isArray(value) || value.length === 0) throw new OrdsQueryError(`${where}.${key}: must be a non-empty array`);
      const items = value.map((x, i) => filterObject(x, `${where}.${key}[${i}]`, depth + 1));
      return key === "$and" ? (row) => items.every((p) => p(row)) : (row) => items.some((p) => p(row));
    }
    if (key.startsWith("$")) throw new OrdsQueryError(`${where}: unknown operator ${key}`);
    return fieldFilter(key, value, `${where}.${key}`);
  });
  return (row) => parts.every((p) => p(row));
}

function fieldFilter(field: string, v: unknown, where: string): Predicate {
  if (!isPlainObject(v) || isDate(v)) {
    const lit = literal(v, where);
    return (row) => compare(row[field], lit) === 0;
  }
  const ops = Object.entries(v);
  if (ops.length === 0) throw new OrdsQueryError(`${where}: empty operator object`);
  const parts = ops.map(([op, arg]) => operator(field, op, arg, `${where}.${op}`));
  return (row) => parts.every((p) => p(row));
}

function operator(field: string, op: string, arg: unknown, where: string): Predicate {
  const cmp = (holds: (c: number) => boolean): Predicate => {
    const lit = literal(arg, where);
    return (row) => {
      const c = compare(row[field], lit);
      return c !== undefined && holds(c);
    };
  };
  switch (op) {
    case "$eq":
      return cmp((c) => c === 0);
    case "$ne":
      return cmp((c) => c !== 0);
    case "$lt":
      return cmp((c) => c < 0);
    case "$lte":
      return cmp((c) => c <= 0);
    case "$gt":
      return cmp((c) => c > 0);
    case "$gte":
      return cmp((c) => c >= 0);
    case "$null":
      return (row) => row[field] === null || row[field] === undefined;
    case "$notnull":
      return (row) => row[field] !== null && row[field] !== undefined;
    case "$like": {
      if (typeof arg !== "string") throw new OrdsQueryError(`${where}: must be a string pattern`);
      const re = new RegExp(
        `^${[...arg].map((c) => (c === "%" ? ".*" : c === "_" ? "." : c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"))).join("")}$`,
        "s",
      );
      return (row) => typeof row[field] === "string" && re.test(row[field] as string);
    }
    case "$instr": {
      if (typeof arg !== "string") throw new OrdsQueryError(`${where}: must be a string`);
      return (row) => typeof row[field] === "string" && (row[field] as string).includes(arg);
    }
    case "$in": {
      if (!Array.isArray(arg)) throw new OrdsQueryError(`${where}: must be an array`);
      const lits = arg.map((x, i) => literal(x, `${where}[${i}]`));
      return (row) => lits.some((l) => compare(row[field], l) === 0);
    }
    case "$between": {
      if (!Array.isArray(arg) || arg.length !== 2) throw new OrdsQueryError(`${where}: must be an array [low, high]`);
      // ORDS reads a null bound as open-ended.
      const [lo, hi] = arg.map((x, i) => (x === null ? null : literal(x, `${where}[${i}]`)));
      return (row) => {
        const a = lo === null ? 0 : compare(row[field], lo!);
        const b = hi === null ? 0 : compare(row[field], hi!);
        return row[field] !== null && row[field] !== undefined && a !== undefined && b !== undefined && a >= 0 && b <= 0;
      };
    }
    default:
      throw new OrdsQueryError(`${where}: unknown operator ${op}`);
  }
}

type Literal = { date: bigint } | { value: string | number | boolean };

function literal(v: unknown, where: string): Literal {
  if (isDate(v)) {
    try {
      return { date: parseIsoMicros(v.$date as string) };
    } catch (e) {
      throw new OrdsQueryError(`${where}.$date: ${(e as Error).message}`);
    }
  }
  if (typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) return { value: v };
  throw new OrdsQueryError(`${where}: expected a string, number, boolean or {"$date": "..."}, got ${JSON.stringify(v)}`);
}

/** SQL-like: undefined when the two cannot be compared (a null column or mismatched types), so no operator holds. */
function compare(rowValue: unknown, lit: Literal): number | undefined {
  if (rowValue === null || rowValue === undefined) return undefined;
  if ("date" in lit) {
    if (typeof rowValue !== "string") return undefined;
    let t: bigint;
    try {
      t = parseIsoMicros(rowValue);
    } catch {
      return undefined;
    }
    return t < lit.date ? -1 : t > lit.date ? 1 : 0;
  }
  return compareValues(rowValue, lit.value);
}

function compareValues(x: unknown, y: unknown): number | undefined {
  // Oracle converts a numeric string to a number when compared with one (ids are numbers, q may quote them).
  if (typeof x === "number" && typeof y === "string" && y.trim() !== "" && Number.isFinite(Number(y))) y = Number(y);
  if (typeof y === "number" && typeof x === "string" && x.trim() !== "" && Number.isFinite(Number(x))) x = Number(x);
  if (typeof x !== typeof y || (typeof x !== "number" && typeof x !== "string" && typeof x !== "boolean")) return undefined;
  if (typeof x === "string" && ISO.test(x) && ISO.test(y as string)) {
    const a = parseIsoMicros(x);
    const b = parseIsoMicros(y as string);
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return (x as never) < (y as never) ? -1 : (x as never) > (y as never) ? 1 : 0;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isDate = (v: unknown): v is { $date: unknown } =>
  isPlainObject(v) && Object.keys(v).length === 1 && "$date" in v && typeof v.$date === "string";

// ---------------------------------------------------------------------------------------------------------------
// Microsecond ISO-8601 times

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?([Zz]|[+-]\d{2}:?\d{2})?$/;

/** `2025-09-18T18:32:28.847244Z` from epoch microseconds. */
export function toIsoMicros(micros: bigint): string {
  const ms = micros >= 0n ? micros / 1000n : -((-micros + 999n) / 1000n);
  const sub = micros - ms * 1000n;
  const iso = new Date(Number(ms)).toISOString();
  return `${iso.slice(0, -1)}${sub.toString().padStart(3, "0")}Z`;
}

/** Epoch microseconds of an ISO-8601 time (date only → midnight UTC; no zone → UTC; fraction beyond 6 digits dropped). */
export function parseIsoMicros(s: string): bigint {
  const m = typeof s === "string" ? ISO.exec(s.trim()) : null;
  if (!m) throw new RangeError(`not an ISO-8601 time: ${JSON.stringify(s)}`);
  const [, y, mo, d, h = "0", mi = "0", sec = "0", frac = "", zone = "Z"] = m;
  const t = utcMicros({
    year: Number(y),
    month: Number(mo),
    day: Number(d),
    hour: Number(h),
    minute: Number(mi),
    second: Number(sec),
    micros: Number(frac.padEnd(6, "0").slice(0, 6)),
  });
  if (t === undefined) throw new RangeError(`not a valid time: ${JSON.stringify(s)}`);
  if (zone === "Z" || zone === "z") return t;
  const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
  const offset = BigInt((Number(z[2]) * 60 + Number(z[3])) * 60_000_000);
  return z[1] === "+" ? t - offset : t + offset;
}
