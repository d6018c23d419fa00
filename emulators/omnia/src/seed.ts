/**
 * Deterministic seed data: a handful of series at a few facilities, each with a few thousand points ending at a
 * fixed time (sine, ramp, step and 100 ns resolution shapes, status mix 192 / 0 / 64), so golden tests see the same
 * ids, times and values on every start. Live growth and late points are added on top by the emulator.
 */
import { type Datapoint, type Facility, type Store, stableUuid, type TimeseriesMeta } from "./store.js";
import { formatTime } from "./time.js";

export const DEFAULT_FACILITIES: Facility[] = [
  { code: "JSV", aliases: [] },
  { code: "SNA", aliases: [] },
  { code: "ASGB", aliases: ["1191"] },
  { code: "TROA", aliases: [] },
];

export interface SeedOptions {
  /** Changes every id and value; the same seed gives the same data. */
  seed: string;
  /** Points per seeded series. */
  points: number;
  /** The seeded history ends just before this time (ns). */
  endNs: bigint;
  /** Spacing of the seeded points (ns). */
  stepNs: bigint;
}

interface SeedSeries {
  name: string;
  facility: string;
  unit: string;
  standardUnit: string;
  description: string;
  step?: boolean;
  externalId?: string;
  assetId?: string;
  /** Spacing multiplier in 100 ns on top of stepNs: gives times with sub-millisecond digits. */
  extraStep100ns?: number;
  value(i: number, n: number): number;
}

const SERIES: SeedSeries[] = [
  {
    name: "JSV.20PT1234.PV",
    facility: "JSV",
    unit: "barg",
    standardUnit: "bar",
    description: "Separator pressure",
    assetId: "JSV-20-VA-001",
    value: (i) => 50 + 5 * Math.sin((2 * Math.PI * i) / 360),
  },
  {
    name: "JSV.20TT1001.PV",
    facility: "JSV",
    unit: "degC",
    standardUnit: "degC",
    description: "Separator temperature",
    value: (i, n) => 20 + (40 * i) / n,
  },
  {
    name: "SNA.13FT0101.PV",
    facility: "SNA",
    unit: "Sm3/h",
    standardUnit: "m3/s",
    description: "Export gas flow",
    externalId: "SNA-13FT0101",
    value: (i, n) => 1000 + 200 * Math.sin((2 * Math.PI * i) / 720) + (100 * i) / n,
  },
  {
    name: "SNA.13LT0202.PV",
    facility: "SNA",
    unit: "%",
    standardUnit: "%",
    description: "Tank level (step)",
    step: true,
    value: (i) => 10 * Math.floor(i / 100) + 5,
  },
  {
    name: "ASGB.17IIC1030/A/PRIM",
    facility: "ASGB",
    unit: "A",
    standardUnit: "A",
    description: "Omnia timeseries test current",
    value: (i) => 12.5 + Math.cos((2 * Math.PI * i) / 60),
  },
  {
    name: "JSV.HIRES.VIB01",
    facility: "JSV",
    unit: "mm/s",
    standardUnit: "m/s",
    description: "Vibration, 100 ns resolution times",
    extraStep100ns: 1,
    value: (i) => Math.sin(i / 7) * Math.cos(i / 13),
  },
];

/** Status mix: mostly good (192), every 17th bad (0), every 13th questionable (64). */
export function seedStatus(i: number): number {
  if (i % 17 === 16) return 0;
  if (i % 13 === 12) return 64;
  return 192;
}

export function seedStore(store: Store, o: SeedOptions, createdNs: bigint): string[] {
  const ids: string[] = [];
  const created = formatTime(createdNs);
  for (const s of SERIES) {
    const id = stableUuid(`${o.seed}/${s.facility}/${s.name}`);
    const meta: TimeseriesMeta = {
      id,
      name: s.name,
      description: s.description,
      step: s.step ?? false,
      unit: s.unit,
      standardUnit: s.standardUnit,
      assetId: s.assetId ?? null,
      facility: s.facility,
      externalId: s.externalId ?? null,
      source: "IMS",
      createdTime: created,
      changedTime: created,
      metadata: { seeded: "true" },
    };
    const series = store.add(meta);
    const step = o.stepNs + BigInt(s.extraStep100ns ?? 0) * 100n;
    const start = o.endNs - step * BigInt(o.points);
    for (let i = 0; i < o.points; i++) {
      const p: Datapoint = { t: start + step * BigInt(i), value: s.value(i, o.points), status: seedStatus(i) };
      series.points.push(p);
    }
    ids.push(id);
  }
  return ids;
}

/** The value a live series gets at a time: a slow sine, so consecutive live points differ. */
export function liveValue(ns: bigint, index: number): number {
  const seconds = Number(ns / 1_000_000n) / 1000;
  return 100 * (index + 1) + 10 * Math.sin(seconds / 60);
}
