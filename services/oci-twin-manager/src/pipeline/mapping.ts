import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema, timestampNow } from "@bufbuild/protobuf/wkt";
import {
  Platform,
  type Point,
  PointSchema,
  type TelemetryEvent,
  TelemetryEventSchema,
} from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { Json, JsonObject } from "../platform/types.js";

/**
 * ORDS rows ↔ `meridian.telemetry.v1.TelemetryEvent`s. Pure, no I/O.
 *
 * Source: events come from PLATFORM_OCI_IOT, connection = the IoT domain's OCID, device = the instance's external key
 * (else its OCID). historizedData rows of one observation (consecutive rows with the same time_observed, each content
 * path once) form one event with a point per content path; rawData / rejectedData rows are one event each, a point
 * per top-level field of the row's content. Event ids are (domain, data set, first row id): the same rows read again
 * after a crash are the same events, and the bus stores each once.
 *
 * Sink: an event becomes the JSON a device posts, `{<point>: value, …, "time": <observed time in epoch µs>}`.
 */

/** The ORDS data sets a twin's source publishes. */
export type SourceDataSet = "historizedData" | "rawData" | "rejectedData";
export const SOURCE_DATA_SETS: readonly SourceDataSet[] = ["historizedData", "rawData", "rejectedData"];

/** The time field ORDS keeps for each data set: where a source that starts at a time reads from. */
export const TIME_FIELD: Readonly<Record<SourceDataSet, string>> = {
  historizedData: "time_observed",
  rawData: "time_received",
  rejectedData: "time_received",
};

/** What of a twin its events name. */
export interface TwinAddress {
  iotDomainId: string;
  instanceId: string;
  externalKey?: string | undefined;
}

/** DTDL primitive schemas whose values are whole numbers: their integer-valued numbers become int64 points. */
const INTEGER_SCHEMAS = new Set(["byte", "short", "integer", "long", "unsignedByte", "unsignedShort", "unsignedInteger", "unsignedLong"]);

export function deviceOf(twin: TwinAddress): string {
  return twin.externalKey || twin.instanceId;
}

export function eventIdOf(iotDomainId: string, dataSet: SourceDataSet, rowId: number): string {
  return `oci:${iotDomainId}:${dataSet}:${rowId}`;
}

/**
 * The content names of a DTDL interface whose schema is an integer type (`integer`, `long`, …): historized values at
 * those paths are int64 points when they are whole numbers. Anything that is not an interface gives none.
 */
export function integerContents(spec: JsonObject | undefined): Set<string> {
  const out = new Set<string>();
  const contents = spec?.["contents"];
  if (!Array.isArray(contents)) return out;
  for (const c of contents) {
    if (typeof c !== "object" || c === null || Array.isArray(c)) continue;
    const name = c["name"];
    const schema = c["schema"];
    if (typeof name === "string" && typeof schema === "string" && INTEGER_SCHEMAS.has(schema)) out.add(name);
  }
  return out;
}

const ISO = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d)$/;

/** ORDS's UTC ISO times (`2025-09-18T18:32:28.847244Z`) with their microseconds, which a Date would drop. */
export function timestampFromIso(value: Json | undefined): Timestamp | undefined {
  if (typeof value !== "string") return undefined;
  const m = ISO.exec(value);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  const nanos = m[2] ? Number(m[2].padEnd(9, "0")) : 0;
  return create(TimestampSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos });
}

/** A JSON value as a point, by its JSON type; null has no point. */
export function pointOf(name: string, value: Json | undefined, integer = false): Point | undefined {
  if (value === null || value === undefined) return undefined;
  switch (typeof value) {
    case "number":
      return integer && Number.isSafeInteger(value)
        ? create(PointSchema, { name, value: { case: "intValue", value: BigInt(value) } })
        : create(PointSchema, { name, value: { case: "doubleValue", value } });
    case "boolean":
      return create(PointSchema, { name, value: { case: "boolValue", value } });
    case "string":
      return create(PointSchema, { name, value: { case: "stringValue", value } });
    default:
      return create(PointSchema, { name, value: { case: "stringValue", value: JSON.stringify(value) } });
  }
}

/** One event made from ORDS rows, with the ids of the rows it came from (ascending). */
export interface RowsEvent {
  event: TelemetryEvent;
  firstRowId: number;
  lastRowId: number;
}

/** Events from a page of rows, and the rows that could not become one (no id, no time), by id. */
export interface MappedRows {
  events: RowsEvent[];
  skippedRowIds: number[];
}

export function rowIdOf(row: JsonObject): number | undefined {
  const id = row["id"];
  return typeof id === "number" && Number.isSafeInteger(id) ? id : undefined;
}

/**
 * historizedData rows (ascending id) → one event per observation: consecutive rows with the same time_observed, a
 * content path not yet in the event. A path seen again starts the next event, so two messages observed at the same
 * time never overwrite each other's values.
 */
export function historizedEvents(
  twin: TwinAddress,
  rows: readonly JsonObject[],
  options: { integerPaths?: ReadonlySet<string>; receivedTime?: Timestamp } = {},
): MappedRows {
  const receivedTime = options.receivedTime ?? timestampNow();
  const events: RowsEvent[] = [];
  const skippedRowIds: number[] = [];
  let current: { time: string; paths: Set<string>; out: RowsEvent } | undefined;
  for (const row of rows) {
    const id = rowIdOf(row);
    const time = row["time_observed"];
    const observed = timestampFromIso(time);
    const path = row["content_path"];
    if (id === undefined || !observed || typeof path !== "string" || path === "") {
      if (id !== undefined) skippedRowIds.push(id);
      continue;
    }
    if (!current || current.time !== time || current.paths.has(path)) {
      const event = create(TelemetryEventSchema, {
        id: eventIdOf(twin.iotDomainId, "historizedData", id),
        source: { platform: Platform.OCI_IOT, connection: twin.iotDomainId, device: deviceOf(twin) },
        observedTime: observed,
        receivedTime,
        attributes: { data_set: "historizedData" },
      });
      current = { time: time as string, paths: new Set(), out: { event, firstRowId: id, lastRowId: id } };
      events.push(current.out);
    }
    current.paths.add(path);
    current.out.lastRowId = id;
    const point = pointOf(path, row["value"], options.integerPaths?.has(path) ?? false);
    if (point) current.out.event.points.push(point);
  }
  return { events, skippedRowIds };
}

/**
 * rawData / rejectedData rows (with their content, which ORDS gives only per row) → one event each: a point per
 * top-level field of a JSON object content, else one point `content`; attributes data_set, endpoint, content_type and,
 * for rejected rows, reason_code and reason_message.
 */
export function payloadEvents(
  twin: TwinAddress,
  dataSet: "rawData" | "rejectedData",
  rows: readonly JsonObject[],
  options: { receivedTime?: Timestamp } = {},
): MappedRows {
  const receivedTime = options.receivedTime ?? timestampNow();
  const events: RowsEvent[] = [];
  const skippedRowIds: number[] = [];
  for (const row of rows) {
    const id = rowIdOf(row);
    const observed = timestampFromIso(row["time_received"]);
    if (id === undefined || !observed) {
      if (id !== undefined) skippedRowIds.push(id);
      continue;
    }
    const attributes: Record<string, string> = { data_set: dataSet };
    for (const field of ["endpoint", "content_type", "reason_code", "reason_message"]) {
      const v = row[field];
      if (v !== undefined && v !== null) attributes[field] = typeof v === "string" ? v : JSON.stringify(v);
    }
    const content = row["content"];
    const points: Point[] = [];
    if (typeof content === "object" && content !== null && !Array.isArray(content)) {
      for (const [name, value] of Object.entries(content)) {
        const p = pointOf(name, value);
        if (p) points.push(p);
      }
    } else {
      const p = pointOf("content", content);
      if (p) points.push(p);
    }
    const event = create(TelemetryEventSchema, {
      id: eventIdOf(twin.iotDomainId, dataSet, id),
      source: { platform: Platform.OCI_IOT, connection: twin.iotDomainId, device: deviceOf(twin) },
      observedTime: observed,
      receivedTime,
      points,
      attributes,
    });
    events.push({ event, firstRowId: id, lastRowId: id });
  }
  return { events, skippedRowIds };
}

/** The payload field OCI's adapters read the observation time from (`envelopeMapping.timeObserved: "$.time"`). */
export const TIME_FIELD_NAME = "time";

export interface DevicePayload {
  payload: JsonObject;
  /** Points left out: no value, not a JSON number (NaN, ±Infinity), a second point of the same name, or one named "time". */
  skipped: number;
  /** Points in the payload. */
  points: number;
}

/** Epoch microseconds: OCI's timeObserved takes them as an integer (exact in a double until the year 2255). */
export function epochMicros(t: Timestamp): number {
  return Number(t.seconds) * 1_000_000 + Math.floor(t.nanos / 1000);
}

/**
 * An event → what its twin's device posts: each point by name (int64 as a JSON number while it is exact, else as a
 * decimal string), and `time` = the observed time in epoch microseconds. The observed time owns `time`: a point of
 * that name is left out (counted in `skipped`), as OCI would otherwise read a value as the observation time. The first
 * point of a name wins.
 */
export function toDevicePayload(event: TelemetryEvent): DevicePayload {
  // No prototype: a point named __proto__ is a field like any other.
  const payload = Object.create(null) as JsonObject;
  let skipped = 0;
  let points = 0;
  for (const p of event.points) {
    if (p.name === TIME_FIELD_NAME || Object.hasOwn(payload, p.name)) {
      skipped++;
      continue;
    }
    const v = p.value;
    let value: Json | undefined;
    switch (v.case) {
      case "doubleValue":
        value = Number.isFinite(v.value) ? v.value : undefined;
        break;
      case "intValue":
        value =
          v.value >= BigInt(Number.MIN_SAFE_INTEGER) && v.value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v.value) : v.value.toString();
        break;
      case "boolValue":
      case "stringValue":
        value = v.value;
        break;
    }
    if (value === undefined) {
      skipped++;
      continue;
    }
    payload[p.name] = value;
    points++;
  }
  if (event.observedTime) payload[TIME_FIELD_NAME] = epochMicros(event.observedTime);
  return { payload, skipped, points };
}
