import type { JsonValue } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";

/**
 * A timestamp as RFC 3339 UTC with as many fraction digits as it has (0, 3, 6 or 9): platform times are compared with
 * what the platform itself says, and Omnia keeps 100 ns resolution that a Date would cut to the millisecond.
 */
export function rfc3339(t: Timestamp | undefined): string {
  if (!t) return "—";
  const base = new Date(Number(t.seconds) * 1000).toISOString().slice(0, 19);
  if (t.nanos === 0) return `${base}Z`;
  const digits = String(t.nanos).padStart(9, "0");
  const keep = digits.endsWith("000000") ? 3 : digits.endsWith("000") ? 6 : 9;
  return `${base}.${digits.slice(0, keep)}Z`;
}

/** Omnia's datapoint status codes by name (the OPC quality bits it uses); others as the number. */
export function omniaStatus(status: number): string {
  switch (status) {
    case 192:
      return "good";
    case 64:
      return "questionable";
    case 0:
      return "bad";
    default:
      return String(status);
  }
}

/** A JSON value on one line for a table cell ("—" for none); strings without quotes. */
export function jsonCell(v: JsonValue | undefined): string {
  if (v === undefined || v === null) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/**
 * The columns of rows as a platform returns them (ORDS rows: snake_case, not all rows with every field), in the order
 * they first appear, the time and identity fields first so the table reads left to right.
 */
export function columnsOf(rows: readonly Record<string, JsonValue>[], first: readonly string[] = []): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...first.filter((k) => seen.has(k)), ...[...seen].filter((k) => !first.includes(k))];
}
