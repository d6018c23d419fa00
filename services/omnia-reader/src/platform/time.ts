import { OmniaValidationError } from "./errors.js";
import type { TimeInput } from "./types.js";

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;
/** 0001-01-01 and 9999-12-31T23:59:59.9999999Z, .NET DateTime's range (what Omnia parses into). */
const MIN_NS = -62_135_596_800_000n * NS_PER_MS;
const MAX_NS = 253_402_300_800_000n * NS_PER_MS - 1n;

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2}))?$/;

function fail(field: string, problem: string): never {
  throw new OmniaValidationError(field, problem);
}

/**
 * An RFC 3339 time (0–9 fractional digits, `Z` or an offset) or a date-only `YYYY-MM-DD` (UTC midnight) as exact
 * nanoseconds since the epoch. A time of day without zone is refused: Omnia would read it in a zone we cannot know.
 */
export function parseTimeNs(text: string, field = "time"): bigint {
  const m = RFC3339.exec(text.trim());
  if (m === null) fail(field, `not an RFC 3339 time with Z or an offset (or YYYY-MM-DD): ${JSON.stringify(text.slice(0, 64))}`);
  const [, y, mo, d, h = "00", mi = "00", s = "00", frac = "", zone = "Z"] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day)
    fail(field, `no such date: ${JSON.stringify(text)}`);
  if (hour > 23 || minute > 59 || second > 59) fail(field, `no such time of day: ${JSON.stringify(text)}`);
  let offsetMin = 0;
  if (zone !== "Z" && zone !== "z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) fail(field, `bad offset ${zone}`);
    offsetMin = sign * (oh * 60 + om);
  }
  date.setUTCHours(hour, minute, second, 0);
  const ns = BigInt(date.getTime()) * NS_PER_MS + BigInt(frac.padEnd(9, "0") || "0") - BigInt(offsetMin) * 60n * NS_PER_S;
  if (ns < MIN_NS || ns > MAX_NS) fail(field, `out of range (years 0001–9999): ${JSON.stringify(text)}`);
  return ns;
}

/** Any accepted time input as exact nanoseconds; `field` names it in the error. */
export function toTimeNs(value: TimeInput, field: string): bigint {
  if (typeof value === "bigint") {
    if (value < MIN_NS || value > MAX_NS) fail(field, `out of range (years 0001–9999): ${value} ns`);
    return value;
  }
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) fail(field, "invalid Date");
    return toTimeNs(BigInt(ms) * NS_PER_MS, field);
  }
  if (typeof value === "string") return parseTimeNs(value, field);
  return fail(field, `must be an RFC 3339 string, a Date or bigint nanoseconds, got ${typeof value}`);
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b < 0n ? q - 1n : q;
}

/** The last second formatted: consecutive points mostly share or follow it, and Date formatting is the slow part. */
let lastSecond = 0n;
let lastPrefix = "1970-01-01T00:00:00";

/**
 * Nanoseconds as `YYYY-MM-DDTHH:mm:ss.fffffffZ` (Omnia's own 7 digits); 9 digits when the value is finer than 100 ns,
 * so that formatting never loses what a protobuf answer said.
 */
export function formatTimeNs(ns: bigint): string {
  const seconds = floorDiv(ns, NS_PER_S);
  const frac = ns - seconds * NS_PER_S;
  if (seconds !== lastSecond) {
    lastPrefix = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
    lastSecond = seconds;
  }
  const digits = frac.toString().padStart(9, "0");
  return `${lastPrefix}.${frac % 100n === 0n ? digits.slice(0, 7) : digits}Z`;
}

/** What a query sends: 7 fractional digits, UTC (.NET's DateTime holds 100 ns ticks; finer is cut). */
export function queryTime(value: TimeInput, field: string): string {
  const ns = toTimeNs(value, field);
  return formatTimeNs(ns - (((ns % 100n) + 100n) % 100n));
}
