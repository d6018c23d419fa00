import { InvalidArgumentError } from "commander";

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const MAX_AGE_MS = 10 * 365 * 86_400_000;

/**
 * A point in time for --since / --until / --start: a duration back from `now` ("90s", "15m", "2h", "7d", "1h30m") or an
 * RFC 3339 time ("2026-01-31T12:00:00Z").
 */
export function parseTime(value: string, now: Date = new Date()): Date {
  const v = value.trim();
  if (/^(\d+(\.\d+)?[smhdw])+$/.test(v)) {
    let ms = 0;
    for (const [, n, unit] of v.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)) ms += Number(n) * UNITS[unit!]!;
    if (ms > MAX_AGE_MS) throw new InvalidArgumentError(`${value}: at most 10 years back`);
    return new Date(now.getTime() - ms);
  }
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(v)) {
    const d = new Date(v);
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw new InvalidArgumentError(`${JSON.stringify(value)} is neither a duration back from now (30s, 15m, 2h, 7d) nor an RFC 3339 time`);
}

/** An integer from `min` to `max` (a commander argParser). */
export function intIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** Repeatable options collect their values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `key=value` options into a map. */
export function keyValues(values: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of values ?? []) {
    const at = kv.indexOf("=");
    if (at <= 0) throw new InvalidArgumentError(`${flag} ${JSON.stringify(kv)}: expected key=value`);
    out[kv.slice(0, at)] = kv.slice(at + 1);
  }
  return out;
}

const MAX_U64 = (1n << 64n) - 1n;

/** A resource's revision (a positive whole number). */
export function parseRevision(v: string): bigint {
  if (!/^[1-9][0-9]{0,19}$/.test(v) || BigInt(v) > MAX_U64)
    throw new InvalidArgumentError(`${JSON.stringify(v)}: a revision is a whole number from 1`);
  return BigInt(v);
}

/** Stream sequences from arguments: "42", "10-20" (inclusive); at most `max` in all, each once, in order. */
export function parseSequences(args: readonly string[], max = 100_000): bigint[] {
  const out = new Set<bigint>();
  for (const arg of args) {
    for (const part of arg.split(",").filter(Boolean)) {
      const m = /^(\d{1,20})(?:-(\d{1,20}))?$/.exec(part.trim());
      if (!m) throw new InvalidArgumentError(`${JSON.stringify(part)} is not a sequence (42) or a range (10-20)`);
      const from = BigInt(m[1]!);
      const to = m[2] ? BigInt(m[2]) : from;
      if (from < 1n || to > MAX_U64 || to < from) throw new InvalidArgumentError(`${part}: sequences start at 1 and a range goes up`);
      if (to - from + BigInt(out.size) >= BigInt(max)) throw new InvalidArgumentError(`more than ${max} sequences: use a filter instead`);
      for (let s = from; s <= to; s++) out.add(s);
    }
  }
  return [...out].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Splits a list into chunks of `size` (replay and purge send at most 500 sequences per call). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Bytes for people: 1.2 KiB, 3.4 MiB. */
export function bytes(n: bigint | number): string {
  let v = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** A time for people: "2026-12-01 05:06:07Z"; "" when unset. */
export function when(d: Date | undefined): string {
  return d
    ? d
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, "Z")
    : "";
}

/** How long ago, for people: "12s", "5m", "3h", "2d". */
export function ago(d: Date | undefined, now: Date = new Date()): string {
  if (!d) return "";
  const s = Math.max(0, Math.round((now.getTime() - d.getTime()) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}
