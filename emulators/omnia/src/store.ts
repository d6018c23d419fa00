/**
 * The emulator's memory: timeseries metadata, their datapoints (ordered by time, one point per timestamp), the
 * change history, the facility table, and the streaming subscriptions. Pure data; no HTTP.
 */
import { createHash } from "node:crypto";

export interface Datapoint {
  /** ns since the Unix epoch. */
  t: bigint;
  value: number;
  status: number;
}

export interface TimeseriesMeta {
  id: string;
  name: string;
  description: string | null;
  step: boolean;
  unit: string | null;
  standardUnit: string | null;
  assetId: string | null;
  facility: string;
  externalId: string | null;
  source: string;
  createdTime: string;
  changedTime: string;
  metadata: Record<string, string>;
}

export interface HistoryEntry {
  changedBy: string;
  changedTime: string;
  changes: Record<string, { oldValue: unknown; newValue: unknown }>;
}

export interface Facility {
  /** The code the API answers with, e.g. `ASGB`. */
  code: string;
  /** Other codes that name the same facility (SAP / STID / NPD), e.g. `1191`. */
  aliases: string[];
}

export class Series {
  readonly points: Datapoint[] = [];
  readonly history: HistoryEntry[] = [];
  constructor(public meta: TimeseriesMeta) {}

  /** Index of the first point with t >= ns. */
  lowerBound(ns: bigint): number {
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]!.t < ns) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Insert or replace the point at its timestamp. Appending in time order is O(1). */
  upsert(p: Datapoint): "inserted" | "replaced" {
    const last = this.points[this.points.length - 1];
    if (!last || last.t < p.t) {
      this.points.push(p);
      return "inserted";
    }
    const i = this.lowerBound(p.t);
    if (this.points[i]?.t === p.t) {
      this.points[i] = p;
      return "replaced";
    }
    this.points.splice(i, 0, p);
    return "inserted";
  }

  /** Removes points with start <= t < end; returns how many. */
  deleteRange(start: bigint, end: bigint): number {
    const a = this.lowerBound(start);
    const b = this.lowerBound(end);
    if (b <= a) return 0;
    this.points.splice(a, b - a);
    return b - a;
  }
}

export class Store {
  readonly series = new Map<string, Series>();
  /** Lower-cased code or alias → facility. */
  private readonly facilityIndex = new Map<string, Facility>();
  readonly subscriptions = new Map<string, { id: string; customerId: string }>();
  streamingDestination: string | undefined;

  constructor(readonly facilities: Facility[]) {
    for (const f of facilities) {
      this.facilityIndex.set(f.code.toLowerCase(), f);
      for (const a of f.aliases) this.facilityIndex.set(a.toLowerCase(), f);
    }
  }

  /** The facility a code names (any letter case, any alias), or undefined. */
  facility(code: string): Facility | undefined {
    return this.facilityIndex.get(code.toLowerCase());
  }

  get(id: string): Series | undefined {
    return this.series.get(id.toLowerCase());
  }

  add(meta: TimeseriesMeta): Series {
    const s = new Series(meta);
    this.series.set(meta.id.toLowerCase(), s);
    return s;
  }

  delete(id: string): boolean {
    return this.series.delete(id.toLowerCase());
  }

  /** The series with this name at this facility (name any letter case, facility by any alias). */
  byName(name: string, facility: string): Series | undefined {
    const f = this.facility(facility);
    const n = name.toLowerCase();
    for (const s of this.series.values()) {
      if (s.meta.name.toLowerCase() === n && (f ? f.code === s.meta.facility : s.meta.facility.toLowerCase() === facility.toLowerCase()))
        return s;
    }
    return undefined;
  }

  /** All series, ordered by id: the order paging walks. */
  ordered(): Series[] {
    return [...this.series.values()].sort((a, b) => (a.meta.id < b.meta.id ? -1 : a.meta.id > b.meta.id ? 1 : 0));
  }

  clear(): void {
    this.series.clear();
    this.subscriptions.clear();
    this.streamingDestination = undefined;
  }
}

/** A UUID derived from text: the same seed gives the same ids on every start. */
export function stableUuid(text: string): string {
  const h = createHash("sha256").update(text).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** `*` matches any run of characters; everything else literally, any letter case. */
export function wildcardMatcher(pattern: string): (value: string | null | undefined) => boolean {
  const re = new RegExp(`^${pattern.split("*").map(escapeRegExp).join(".*")}$`, "is");
  return (value) => value != null && re.test(value);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
