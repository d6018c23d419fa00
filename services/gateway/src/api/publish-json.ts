import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  PlatformSchema,
  type Point,
  QualitySchema,
  type Source,
  type TelemetryEvent,
} from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type PublishRequest, TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import type { JsonRequestReader, KeyCount } from "@meridian/service-kit";

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
  read: (json, keys) => readPublishRequest(json, keys),
};

/** `keys.count` is raised by one for each key of each object read (see JsonRequestReader). */
export function readPublishRequest(json: unknown, keys: KeyCount = { count: 0 }): PublishRequest | undefined {
  if (!isObject(json)) return undefined;
  let events: TelemetryEvent[] = [];
  for (const key in json) {
    keys.count++;
    if (key !== "events") return undefined;
    const list = json[key];
    if (!Array.isArray(list)) return undefined;
    events = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const event = readEvent(list[i], keys);
      if (event === undefined) return undefined;
      events[i] = event;
    }
  }
  return { $typeName: "meridian.telemetry.v1.PublishRequest", events };
}

function readEvent(json: unknown, keys: KeyCount): TelemetryEvent | undefined {
  if (!isObject(json)) return undefined;
  // Every field present from the start (unset ones undefined, as protobuf-es reads them): an object that gains
  // properties later changes shape and grows a separate property store, per event; Publish then sets id and receivedTime.
  const event: TelemetryEvent = {
    $typeName: "meridian.telemetry.v1.TelemetryEvent",
    id: "",
    source: undefined,
    observedTime: undefined,
    receivedTime: undefined,
    points: NO_POINTS,
    attributes: NO_ATTRIBUTES,
    raw: undefined,
  };
  for (const key in json) {
    keys.count++;
    const value = json[key];
    switch (key) {
      case "id":
        if (typeof value !== "string") return undefined;
        event.id = value;
        break;
      case "source": {
        const source = readSource(value, keys);
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
          const point = readPoint(value[j], keys);
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
          keys.count++;
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
  // Only the absent ones get their own (empty) list and map, as protobuf-es gives every message.
  if (event.points === NO_POINTS) event.points = [];
  if (event.attributes === NO_ATTRIBUTES) event.attributes = {};
  return event;
}

/** Markers for "not in the request", replaced before the event is returned. */
const NO_POINTS: Point[] = [];
const NO_ATTRIBUTES: Record<string, string> = {};
/** A point's value before its value field is read: replaced, never changed (oneof values are whole objects). */
const NO_VALUE: Point["value"] = Object.freeze({ case: undefined });

const PLATFORM_BY_NAME = new Map(PlatformSchema.values.map((v) => [v.name, v.number]));
const QUALITY_BY_NAME = new Map(QualitySchema.values.map((v) => [v.name, v.number]));

function readSource(json: unknown, keys: KeyCount): Source | undefined {
  if (!isObject(json)) return undefined;
  const source: Source = { $typeName: "meridian.telemetry.v1.Source", platform: 0, connection: "", device: "" };
  for (const key in json) {
    keys.count++;
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

function readPoint(json: unknown, keys: KeyCount): Point | undefined {
  if (!isObject(json)) return undefined;
  const point: Point = { $typeName: "meridian.telemetry.v1.Point", name: "", value: NO_VALUE, unit: "", quality: 0 };
  for (const key in json) {
    keys.count++;
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

// The bounds protobuf-es checks: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const TIMESTAMP_MS_MIN = -62135596800000;
const TIMESTAMP_MS_MAX = 253402300799000;
/** Positions of the digits of "YYYY-MM-DDTHH:MM:SS", and what stands between them. */
const SECONDS_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
const SECONDS_SEPARATORS: ReadonlyArray<[number, number]> = [
  [4, 0x2d], // -
  [7, 0x2d], // -
  [10, 0x54], // T
  [13, 0x3a], // :
  [16, 0x3a], // :
];
const DOT = 0x2e;
const Z = 0x5a;
/**
 * Seconds by "YYYYMMDDHHMMSS" read as a number: a request's events mostly share a few seconds, and Date.parse is not
 * cheap. The last one is kept apart, as most events carry the one before them.
 */
const secondsByDigits = new Map<number, bigint>();
const SECONDS_CACHED = 4096;
let lastDigits = -1;
let lastSeconds = 0n;

/**
 * `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, read by character (no regular expression, no substring per event): what
 * protobuf-es's fromJson accepts in that form, with the seconds from Date.parse as it takes them.
 */
function readTimestamp(json: unknown): Timestamp | undefined {
  if (typeof json !== "string") return undefined;
  const n = json.length;
  if (n < 20 || n > 30 || json.charCodeAt(n - 1) !== Z) return undefined;
  let digits = 0;
  for (const at of SECONDS_DIGITS) {
    const d = json.charCodeAt(at) - 0x30;
    if (d < 0 || d > 9) return undefined;
    digits = digits * 10 + d;
  }
  for (const [at, char] of SECONDS_SEPARATORS) if (json.charCodeAt(at) !== char) return undefined;
  let nanos = 0;
  if (n > 20) {
    // ".", 1 to 9 digits, "Z".
    if (json.charCodeAt(19) !== DOT || n === 21) return undefined;
    let scale = 100_000_000;
    for (let at = 20; at < n - 1; at++) {
      const d = json.charCodeAt(at) - 0x30;
      if (d < 0 || d > 9) return undefined;
      nanos += d * scale;
      scale /= 10;
    }
  }
  let seconds: bigint | undefined;
  if (digits === lastDigits) seconds = lastSeconds;
  else {
    seconds = secondsByDigits.get(digits);
    if (seconds === undefined) {
      const ms = Date.parse(`${json.slice(0, 19)}Z`);
      if (Number.isNaN(ms) || ms < TIMESTAMP_MS_MIN || ms > TIMESTAMP_MS_MAX) return undefined;
      seconds = BigInt(ms / 1000);
      if (secondsByDigits.size >= SECONDS_CACHED) secondsByDigits.clear();
      secondsByDigits.set(digits, seconds);
    }
    lastDigits = digits;
    lastSeconds = seconds;
  }
  return { $typeName: "google.protobuf.Timestamp", seconds, nanos };
}

function isObject(json: unknown): json is Record<string, unknown> {
  return typeof json === "object" && json !== null && !Array.isArray(json);
}
