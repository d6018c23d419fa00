/**
 * Times as the Timeseries API takes and gives them. Kept as bigint nanoseconds since the Unix epoch, because the
 * protobuf answer carries int64 nanoseconds and a double loses them past 2^53 (a 2024 time in ns is ~1.7e18).
 * JSON answers carry 7 fractional digits (.NET round-trip format, 100 ns), so a time written through JSON is rounded
 * down to 100 ns.
 */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?)?$/;

export const NS_PER_MS = 1_000_000n;

/** RFC 3339 with 0–9 fractional digits, `Z` or an offset (none means UTC), or a date alone → ns; undefined if not a time. */
export function parseTime(text: string): bigint | undefined {
  const m = RFC3339.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 31 February into March: a day past the month's end is not a date.
  if (new Date(ms).getUTCDate() !== day) return undefined;
  let offsetMinutes = 0;
  if (zone && zone !== "Z" && zone !== "z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = sign * (oh * 60 + om);
  }
  const fracNs = BigInt(frac.padEnd(9, "0") || "0");
  return (BigInt(ms) - BigInt(offsetMinutes) * 60_000n) * NS_PER_MS + fracNs;
}

/** ns → `YYYY-MM-DDTHH:mm:ss.fffffffZ` (7 digits, the way the API emits times). */
export function formatTime(ns: bigint): string {
  let ms = ns / NS_PER_MS;
  let rest = ns % NS_PER_MS;
  if (rest < 0n) {
    rest += NS_PER_MS;
    ms -= 1n;
  }
  const iso = new Date(Number(ms)).toISOString(); // 2024-09-25T11:30:34.898Z
  const sub = (rest / 100n).toString().padStart(4, "0");
  return `${iso.slice(0, 23)}${sub}Z`;
}

/** Milliseconds since the epoch, as the clock gives them, → ns. */
export function msToNs(ms: number): bigint {
  return BigInt(Math.trunc(ms)) * NS_PER_MS;
}

const INTERVAL = /^(\d{1,9})(ms|s|m|h|d)$/;
const UNIT_NS: Record<string, bigint> = {
  ms: NS_PER_MS,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
};

/** A `processingInterval` (`1s`, `5m`, `15m`, `1h`, `20d`) → ns; undefined when malformed or zero. */
export function parseInterval(text: string): bigint | undefined {
  const m = INTERVAL.exec(text.trim());
  if (!m) return undefined;
  const n = BigInt(m[1]!);
  if (n === 0n) return undefined;
  return n * UNIT_NS[m[2]!]!;
}
