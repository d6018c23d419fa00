import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  PlatformSchema,
  type Point,
  QualitySchema,
  type Source,
  type TelemetryEvent,
} from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type PublishRequest, TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import type { JsonRequestReader } from "@meridian/service-kit";

/**
 * Reads a Publish request in Connect JSON in its usual shape, for the gateway's busiest path (see JsonRequestReader).
 * It returns the message protobuf-es's fromJson makes, or undefined for anything else, which protobuf-es then reads:
 * - fields by their JSON names only (`observedTime`, not `observed_time`), and no unknown field;
 * - values of the JSON type the field's usual form has: no null, no number as a string or string as a number,
 *   no "NaN"; enums by name; int64 as a string of at most 18 digits or a safe integer;
 * - timestamps as `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, not with an offset;
 * - no `raw` (bytes in base64 are rare here, and protobuf-es's base64 rules are its own).
 * Validation stays where it was: this only reads, as fromJson does, and validatePublish checks after either.
 */
export const publishRequestJsonReader: JsonRequestReader = {
  method: TelemetryService.method.publish,
  read: (json) => readPublishRequest(json),
};

export function readPublishRequest(json: unknown): PublishRequest | undefined {
  if (!isObject(json)) return undefined;
  let events: TelemetryEvent[] = [];
  for (const key in json) {
    if (key !== "events") return undefined;
    const list = json[key];
    if (!Array.isArray(list)) return undefined;
    events = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const event = readEvent(list[i]);
      if (event === undefined) return undefined;
      events[i] = event;
    }
  }
  return { $typeName: "meridian.telemetry.v1.PublishRequest", events };
}

function readEvent(json: unknown): TelemetryEvent | undefined {
  if (!isObject(json)) return undefined;
  const event: TelemetryEvent = { $typeName: "meridian.telemetry.v1.TelemetryEvent", id: "", points: [], attributes: {} };
  for (const key in json) {
    const value = json[key];
    switch (key) {
      case "id":
        if (typeof value !== "string") return undefined;
        event.id = value;
        break;
      case "source": {
        const source = readSource(value);
        if (source === undefined) return undefined;
        event.source = source;
        break;
      }
      case "observedTime": {
        const time = readTimestamp(value);
        if (time === undefined) return undefined;
        event.observedTime = time;
        break;
      }
      case "receivedTime": {
        const time = readTimestamp(value);
        if (time === undefined) return undefined;
        event.receivedTime = time;
        break;
      }
      case "points": {
        if (!Array.isArray(value)) return undefined;
        const points: Point[] = new Array(value.length);
        for (let j = 0; j < value.length; j++) {
          const point = readPoint(value[j]);
          if (point === undefined) return undefined;
          points[j] = point;
        }
        event.points = points;
        break;
      }
      case "attributes": {
        if (!isObject(value)) return undefined;
        const attributes: Record<string, string> = {};
        for (const name in value) {
          const text = value[name];
          if (typeof text !== "string" || name === "__proto__") return undefined;
          attributes[name] = text;
        }
        event.attributes = attributes;
        break;
      }
      default:
        return undefined;
    }
  }
  return event;
}

const PLATFORM_BY_NAME = new Map(PlatformSchema.values.map((v) => [v.name, v.number]));
const QUALITY_BY_NAME = new Map(QualitySchema.values.map((v) => [v.name, v.number]));

function readSource(json: unknown): Source | undefined {
  if (!isObject(json)) return undefined;
  const source: Source = { $typeName: "meridian.telemetry.v1.Source", platform: 0, connection: "", device: "" };
  for (const key in json) {
    const value = json[key];
    switch (key) {
      case "platform": {
        const platform = typeof value === "string" ? PLATFORM_BY_NAME.get(value) : undefined;
        if (platform === undefined) return undefined;
        source.platform = platform;
        break;
      }
      case "connection":
        if (typeof value !== "string") return undefined;
        source.connection = value;
        break;
      case "device":
        if (typeof value !== "string") return undefined;
        source.device = value;
        break;
      default:
        return undefined;
    }
  }
  return source;
}

function readPoint(json: unknown): Point | undefined {
  if (!isObject(json)) return undefined;
  const point: Point = { $typeName: "meridian.telemetry.v1.Point", name: "", value: { case: undefined }, unit: "", quality: 0 };
  for (const key in json) {
    const value = json[key];
    switch (key) {
      case "name":
        if (typeof value !== "string") return undefined;
        point.name = value;
        break;
      case "unit":
        if (typeof value !== "string") return undefined;
        point.unit = value;
        break;
      case "quality": {
        const quality = typeof value === "string" ? QUALITY_BY_NAME.get(value) : undefined;
        if (quality === undefined) return undefined;
        point.quality = quality;
        break;
      }
      case "doubleValue":
        // JSON.parse gives only finite numbers; "NaN" and the like are strings, left to protobuf-es.
        if (typeof value !== "number" || point.value.case !== undefined) return undefined;
        point.value = { case: "doubleValue", value };
        break;
      case "intValue": {
        const int = point.value.case === undefined ? readInt64(value) : undefined;
        if (int === undefined) return undefined;
        point.value = { case: "intValue", value: int };
        break;
      }
      case "boolValue":
        if (typeof value !== "boolean" || point.value.case !== undefined) return undefined;
        point.value = { case: "boolValue", value };
        break;
      case "stringValue":
        if (typeof value !== "string" || point.value.case !== undefined) return undefined;
        point.value = { case: "stringValue", value };
        break;
      default:
        return undefined;
    }
  }
  return point;
}

const INT64_DIGITS = /^-?[0-9]{1,18}$/;

function readInt64(json: unknown): bigint | undefined {
  if (typeof json === "string") return INT64_DIGITS.test(json) ? BigInt(json) : undefined;
  if (typeof json === "number" && Number.isSafeInteger(json)) return BigInt(json);
  return undefined;
}

const TIMESTAMP = /^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?Z$/;
// The bounds protobuf-es checks: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const TIMESTAMP_MS_MIN = -62135596800000;
const TIMESTAMP_MS_MAX = 253402300799000;
/** Seconds by "YYYY-MM-DDTHH:MM:SS": a request's events mostly share a few seconds, and Date.parse is not cheap. */
const secondsByPrefix = new Map<string, bigint>();
const SECONDS_CACHED = 4096;

function readTimestamp(json: unknown): Timestamp | undefined {
  if (typeof json !== "string") return undefined;
  const match = TIMESTAMP.exec(json);
  if (match === null) return undefined;
  const prefix = match[1]!;
  let seconds = secondsByPrefix.get(prefix);
  if (seconds === undefined) {
    const ms = Date.parse(`${prefix}Z`);
    if (Number.isNaN(ms) || ms < TIMESTAMP_MS_MIN || ms > TIMESTAMP_MS_MAX) return undefined;
    seconds = BigInt(ms / 1000);
    if (secondsByPrefix.size >= SECONDS_CACHED) secondsByPrefix.clear();
    secondsByPrefix.set(prefix, seconds);
  }
  const fraction = match[2];
  const nanos = fraction === undefined ? 0 : Number(fraction) * 10 ** (9 - fraction.length);
  return { $typeName: "google.protobuf.Timestamp", seconds, nanos };
}

function isObject(json: unknown): json is Record<string, unknown> {
  return typeof json === "object" && json !== null && !Array.isArray(json);
}
