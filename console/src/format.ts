import { type Duration, type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Point } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";

/**
 * The field violations of an invalid_argument message, as every Meridian service words it
 * ("invalid request: route.id: must be …; route.sink.target: required"), by field path. What does not parse stays
 * under "" (shown above the form).
 */
export function fieldViolations(message: string): Map<string, string> {
  const out = new Map<string, string>();
  const body = message.replace(/^invalid request:\s*/, "");
  for (const part of body.split(/;\s+(?=[\w.[\]()]+: )/)) {
    const m = /^([\w.[\]]+): (.+)$/s.exec(part.trim());
    const path = m ? m[1]! : "";
    const reason = m ? m[2]! : part.trim();
    out.set(path, out.has(path) ? `${out.get(path)}; ${reason}` : reason);
  }
  return out;
}

/** A point's value as text (int64 values are bigints). */
export function pointValue(p: Pick<Point, "value">): string {
  switch (p.value.case) {
    case "doubleValue":
      return Number.isInteger(p.value.value) ? p.value.value.toFixed(1) : String(Number(p.value.value.toPrecision(6)));
    case "intValue":
    case "boolValue":
    case "stringValue":
      return String(p.value.value);
    default:
      return "—";
  }
}

/** A point's value as a number for a chart, or undefined when it has none. */
export function pointNumber(p: Pick<Point, "value">): number | undefined {
  switch (p.value.case) {
    case "doubleValue":
      return p.value.value;
    case "intValue":
      return Number(p.value.value);
    case "boolValue":
      return p.value.value ? 1 : 0;
    default:
      return undefined;
  }
}

export function bytes(n: bigint | number): string {
  let v = Number(n);
  for (const unit of ["B", "KiB", "MiB", "GiB"]) {
    if (v < 1024 || unit === "GiB") return `${unit === "B" ? v : v.toFixed(1)} ${unit}`;
    v /= 1024;
  }
  return `${v} B`;
}

/** A protobuf Duration as "4.2 s", "3 min", "2.5 h", "7 d" (from two days on). */
export function duration(d: Duration | undefined): string {
  if (!d) return "—";
  const s = Number(d.seconds) + d.nanos / 1e9;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min`;
  if (s < 2 * 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${Number((s / 86400).toFixed(1))} d`;
}

/** How full a stream is against its size limit: "12 % of 1.0 GiB", or "no limit". */
export function fill(used: bigint, limit: bigint): string {
  if (limit <= 0n) return "no limit";
  return `${Math.min(100, Math.round((Number(used) / Number(limit)) * 100))} % of ${bytes(limit)}`;
}

export function time(t: Timestamp | undefined): string {
  return t ? timestampDate(t).toLocaleString() : "—";
}

/** "12 s ago" from a timestamp and now. */
export function ago(t: Timestamp | undefined, now = Date.now()): string {
  if (!t) return "—";
  const s = Math.max(0, Math.round((now - timestampDate(t).getTime()) / 1000));
  return s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

/** Events per second between two readings of a counter. */
export function rate(before: bigint | undefined, after: bigint, seconds: number): number {
  if (before === undefined || seconds <= 0 || after < before) return 0;
  return Number(after - before) / seconds;
}
