import type { ContainerDef, TypeDef } from "./model.js";
import type { Profile } from "./options.js";
import type { CreateMode } from "./settings.js";

export type StoredValue = Record<string, unknown>;

/** Values that overwrote another at their index (PI Replace sets the value's Substituted flag). */
const substituted = new WeakSet<StoredValue>();
export const isSubstituted = (v: StoredValue) => substituted.has(v);

/**
 * Values of one container ordered by index key. Appending in index order (the normal case) is O(1);
 * out-of-order inserts binary-search their slot. Each key holds one value, or several under PI Insert: every value
 * a receiver would hold is kept, so a test can count them exactly.
 */
export class Series {
  readonly keys: string[] = [];
  readonly entries = new Map<string, StoredValue[]>();
  count = 0;

  /**
   * Returns what happened to the value. `replace` overwrites one value at the index (the latest), as PI's Replace
   * "overwrites one of them"; with one value per index (SDS) that is the event. InsertNoCompression stores like Insert.
   */
  put(key: string, value: StoredValue, mode: CreateMode, markSubstituted = false): "inserted" | "replaced" | "ignored" {
    const existing = this.entries.get(key);
    if (existing) {
      if (mode === "noreplace") return "ignored";
      if (mode === "replace") {
        existing[existing.length - 1] = value;
        if (markSubstituted) substituted.add(value);
        return "replaced";
      }
      existing.push(value);
      this.count++;
      return "inserted";
    }
    this.entries.set(key, [value]);
    this.count++;
    const n = this.keys.length;
    if (n === 0 || this.keys[n - 1]! < key) this.keys.push(key);
    else this.keys.splice(this.lowerBound(key), 0, key);
    return "inserted";
  }

  /** Removes the latest value at `key` (PI's Remove takes one value at a time); true if there was one. */
  removeOne(key: string): boolean {
    const existing = this.entries.get(key);
    if (!existing) return false;
    if (existing.length === 1) return this.remove(key);
    existing.pop();
    this.count--;
    return true;
  }

  remove(key: string): boolean {
    const existing = this.entries.get(key);
    if (!existing) return false;
    this.entries.delete(key);
    this.count -= existing.length;
    const i = this.lowerBound(key);
    if (this.keys[i] === key) this.keys.splice(i, 1);
    return true;
  }

  /** First position whose key is >= `key`. */
  lowerBound(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  last(): { key: string; value: StoredValue } | undefined {
    const key = this.keys[this.keys.length - 1];
    if (key === undefined) return undefined;
    const vs = this.entries.get(key)!;
    return { key, value: vs[vs.length - 1]! };
  }

  first(): { key: string; value: StoredValue } | undefined {
    const key = this.keys[0];
    if (key === undefined) return undefined;
    return { key, value: this.entries.get(key)![0]! };
  }

  /** Values with start <= key <= end (either bound optional), in index order. */
  *range(start?: string, end?: string): Generator<{ key: string; value: StoredValue }> {
    let i = start === undefined ? 0 : this.lowerBound(start);
    for (; i < this.keys.length; i++) {
      const key = this.keys[i]!;
      if (end !== undefined && key > end) return;
      for (const value of this.entries.get(key)!) yield { key, value };
    }
  }
}

/** A PI point created for a container property (simple type ⇒ named after the container). */
export interface PiPoint {
  name: string;
  key: string;
  containerKey: string;
  propertyId: string;
  pointType: string;
  uom?: string;
  id: number;
}

export interface ContainerRecord {
  def: ContainerDef;
  type: TypeDef;
  series: Series;
  points: PiPoint[];
  created: string;
}

export interface LinkRecord {
  key: string;
  source: Record<string, unknown>;
  target: Record<string, unknown>;
}

/** Everything one receiver (PI, EDS, or one ADH tenant/namespace) has accepted. */
export class Scope {
  readonly types = new Map<string, TypeDef>();
  readonly containers = new Map<string, ContainerRecord>();
  /** PI only: point name (lower-case) → point. */
  readonly points = new Map<string, PiPoint>();
  /** PI only: static type key → index (lower-case) → instance values. */
  readonly staticInstances = new Map<string, Map<string, StoredValue>>();
  /** PI only: links by canonical key. */
  readonly links = new Map<string, LinkRecord>();
  nextPointId = 1;

  constructor(
    readonly name: string,
    readonly profile: Profile,
  ) {}

  get valueCount(): number {
    let n = 0;
    for (const c of this.containers.values()) n += c.series.count;
    return n;
  }

  snapshot(opts: { values: boolean; maxValues?: number }) {
    const containers: Record<string, unknown> = {};
    for (const c of this.containers.values()) {
      let values: unknown[] | undefined;
      if (opts.values) {
        values = [];
        const max = opts.maxValues;
        if (max === undefined || max > 0) {
          // with a cap, start near the end instead of walking the whole series
          const from = max === undefined ? undefined : c.series.keys[Math.max(0, c.series.keys.length - max)];
          for (const { value } of c.series.range(from)) values.push(value);
          if (max !== undefined && values.length > max) values = values.slice(values.length - max);
        }
      }
      containers[c.def.id] = {
        id: c.def.id,
        typeid: c.type.id,
        definition: c.def.raw,
        valueCount: c.series.count,
        firstIndex: c.series.first()?.key,
        lastIndex: c.series.last()?.key,
        points: this.profile === "pi" ? c.points.map((p) => p.name) : undefined,
        values,
      };
    }
    const staticData: Record<string, unknown[]> = {};
    for (const [typeKey, instances] of this.staticInstances) staticData[typeKey] = [...instances.values()];
    return {
      profile: this.profile,
      types: Object.fromEntries([...this.types.values()].map((t) => [t.id, t.raw])),
      containers,
      staticData: this.profile === "pi" ? staticData : undefined,
      links: this.profile === "pi" ? [...this.links.values()].map(({ source, target }) => ({ source, target })) : undefined,
      valueCount: this.valueCount,
    };
  }
}

/** All scopes. ADH scopes are per tenant/namespace (case-insensitive). */
export class Store {
  readonly pi = new Scope("pi", "pi");
  readonly eds = new Scope("eds", "eds");
  readonly adh = new Map<string, Scope>();

  adhScope(tenant: string, namespace: string, create: boolean): Scope | undefined {
    const name = `adh/${tenant.toLowerCase()}/${namespace.toLowerCase()}`;
    let s = this.adh.get(name);
    if (!s && create) {
      s = new Scope(name, "adh");
      this.adh.set(name, s);
    }
    return s;
  }

  /** Empties every container's values, keeping types, containers and points (benchmarks between phases). */
  clearValues(): number {
    let n = 0;
    for (const s of [this.pi, this.eds, ...this.adh.values()])
      for (const c of s.containers.values()) {
        n += c.series.count;
        c.series = new Series();
      }
    return n;
  }

  reset(): void {
    for (const s of [this.pi, this.eds]) {
      s.types.clear();
      s.containers.clear();
      s.points.clear();
      s.staticInstances.clear();
      s.links.clear();
    }
    this.adh.clear();
  }
}
