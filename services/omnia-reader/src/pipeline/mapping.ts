import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema, timestampNow } from "@bufbuild/protobuf/wkt";
import {
  Platform,
  PointSchema,
  Quality,
  type TelemetryEvent,
  TelemetryEventSchema,
} from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { Datapoint } from "./omnia-api.js";

/**
 * Omnia datapoints ↔ `meridian.telemetry.v1.TelemetryEvent`s. Pure, no I/O.
 *
 * One event per datapoint: source (PLATFORM_OMNIA, connection = reader id, device = series id), observed time = the
 * point's exact time, one point named after the series (its metadata name, else "value") with the series' unit and
 * the status mapped to quality; the status code itself and the series' name and facility are attributes.
 */

/** What the reader knows of a series from its (cached) metadata. */
export interface SeriesInfo {
  id: string;
  name: string;
  facility: string;
  unit?: string;
}

/**
 * Omnia status (OPC DA quality) → quality. Omnia's table: Good 192, Questionable 64, Substituted 24,
 * UncertainSubstituteValue 8 are usable but doubtful; Bad 0 and BadSubstituteValue 60 are bad. Any other code is
 * read by its OPC quality bits (0xC0 good, 0x40 uncertain, 0x00 bad).
 */
export function qualityOf(status: number): Quality {
  switch (status) {
    case 192:
      return Quality.GOOD;
    case 64:
    case 24:
    case 8:
      return Quality.UNCERTAIN;
    case 0:
    case 60:
      return Quality.BAD;
  }
  const bits = status & 0xc0;
  return bits === 0xc0 ? Quality.GOOD : bits === 0x40 ? Quality.UNCERTAIN : Quality.BAD;
}

/** Quality → the Omnia status a sink writes (unspecified is good, as every sink reads it). */
export function statusOf(quality: Quality): number {
  return quality === Quality.BAD ? 0 : quality === Quality.UNCERTAIN ? 64 : 192;
}

/**
 * The event id of a datapoint: the series and its exact time, so the same point read again (a restart, an
 * overlapping window) is the same event and the bus's dedupe window stores it once.
 */
export function eventIdOf(seriesId: string, timeNs: bigint): string {
  return `omnia:${seriesId}:${timeNs}`;
}

export function timestampFromNs(ns: bigint): Timestamp {
  const seconds = ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n);
  return create(TimestampSchema, { seconds, nanos: Number(ns - seconds * 1_000_000_000n) });
}

export function nsFromTimestamp(t: Timestamp): bigint {
  return t.seconds * 1_000_000_000n + BigInt(t.nanos);
}

export function nsFromDate(d: Date): bigint {
  return BigInt(d.getTime()) * 1_000_000n;
}

export function toTelemetryEvents(
  readerId: string,
  series: SeriesInfo,
  points: readonly Datapoint[],
  receivedTime = timestampNow(),
): TelemetryEvent[] {
  return points.map((p) =>
    create(TelemetryEventSchema, {
      id: eventIdOf(series.id, p.timeNs),
      source: { platform: Platform.OMNIA, connection: readerId, device: series.id },
      observedTime: timestampFromNs(p.timeNs),
      receivedTime,
      points: [
        create(PointSchema, {
          name: series.name || "value",
          value: { case: "doubleValue", value: p.value },
          unit: series.unit ?? "",
          quality: qualityOf(p.status),
        }),
      ],
      attributes: {
        "omnia.status": String(p.status),
        ...(series.name ? { "omnia.name": series.name } : {}),
        ...(series.facility ? { "omnia.facility": series.facility } : {}),
      },
    }),
  );
}

/** One datapoint a sink writes, with the series (name at the route's facility) it goes to. */
export interface SinkPoint {
  name: string;
  unit: string;
  timeNs: bigint;
  value: number;
  status: number;
}

/**
 * Events → the datapoints a route writes into Omnia: one series per device and point, named `<device>.<point>` (as
 * Omnia tags read: `JSV.20PT1234.PV`), at the route's facility. Numbers and booleans (1 / 0) are written; strings
 * have no place in a time series and are skipped.
 */
export function toSinkPoints(events: readonly TelemetryEvent[]): { points: SinkPoint[]; skipped: number } {
  const points: SinkPoint[] = [];
  let skipped = 0;
  for (const e of events) {
    if (!e.observedTime || !e.source) {
      skipped++;
      continue;
    }
    const timeNs = nsFromTimestamp(e.observedTime);
    for (const p of e.points) {
      const v = p.value;
      const value =
        v.case === "doubleValue"
          ? v.value
          : v.case === "intValue"
            ? Number(v.value)
            : v.case === "boolValue"
              ? v.value
                ? 1
                : 0
              : undefined;
      if (value === undefined || !Number.isFinite(value)) {
        skipped++;
        continue;
      }
      points.push({ name: `${e.source.device}.${p.name}`, unit: p.unit, timeNs, value, status: statusOf(p.quality) });
    }
  }
  return { points, skipped };
}
