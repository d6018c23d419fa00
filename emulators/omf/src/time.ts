/**
 * ISO-8601 timestamps as OMF uses them (`YYYY-MM-DDThh:mm:ss[.f…]Z`). A parsed timestamp becomes a
 * fixed-width UTC key with 7 fractional digits (100 ns ticks, SDS precision) that sorts as a string.
 */
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export const DEFAULT_DATE_TIME = "0001-01-01T00:00:00Z";

/** Sortable key `YYYY-MM-DDThh:mm:ss.fffffffZ`, or undefined when `s` is not a valid ISO-8601 timestamp. */
export function timeKey(s: string): string | undefined {
  const m = ISO_RE.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, sec, frac = "", zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(sec);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return undefined;
  const ticks = frac.padEnd(7, "0").slice(0, 7);
  if (zone === "Z" || zone === "z") {
    // fast path (the common case): no offset to apply, only the day of month to check
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    const dim = month === 2 ? (leap ? 29 : 28) : DAYS_IN_MONTH[month - 1]!;
    if (day > dim || year === 0) return undefined;
    return `${s.slice(0, 19)}.${ticks}Z`;
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  if (date.getUTCDate() !== day) return undefined; // e.g. Feb 30
  let ms = date.getTime();
  if (zone && zone.toUpperCase() !== "Z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const offset = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6));
    ms -= sign * offset * 60_000;
  }
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDThh:mm:ss.000Z for years 0..9999
  if (iso.length !== 24) return undefined;
  return `${iso.slice(0, 19)}.${ticks}Z`;
}

/** A key rendered the way PI Web API prints timestamps: trailing fractional zeros dropped. */
export function keyToPiTime(key: string): string {
  const frac = key.slice(20, 27).replace(/0+$/, "");
  return frac ? `${key.slice(0, 19)}.${frac}Z` : `${key.slice(0, 19)}Z`;
}

/** Milliseconds since epoch of a key (sub-millisecond ticks dropped). */
export function keyToMs(key: string): number {
  return Date.parse(`${key.slice(0, 23)}Z`);
}

/**
 * PI time strings for read-back queries: ISO-8601, `*` (now), `*-1d`, `*+2h`, `t`, `y`, with units s|m|h|d|w.
 * Returns ms since epoch, or undefined when unparseable.
 */
export function parsePiTime(s: string | null | undefined, now = Date.now()): number | undefined {
  if (s === null || s === undefined || s === "") return undefined;
  const t = s.trim();
  const rel = /^(\*|t|y|today|yesterday)?\s*(?:([+-])\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w|sec|min|hr|day|week)[a-z]*)?$/i.exec(t);
  if (rel && (rel[1] || rel[2])) {
    let base = now;
    const anchor = (rel[1] ?? "*").toLowerCase();
    if (anchor !== "*") {
      const d = new Date(now);
      d.setUTCHours(0, 0, 0, 0);
      base = d.getTime() - (anchor === "y" || anchor === "yesterday" ? 86_400_000 : 0);
    }
    if (rel[2]) {
      const unit = rel[4]!.toLowerCase()[0];
      const mult = unit === "s" ? 1000 : unit === "m" ? 60_000 : unit === "h" ? 3_600_000 : unit === "d" ? 86_400_000 : 604_800_000;
      base += (rel[2] === "-" ? -1 : 1) * Number(rel[3]) * mult;
    }
    return base;
  }
  const k = timeKey(t);
  if (k) return keyToMs(k);
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}
