import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { TelemetryOptions } from "../platform/types.js";

/** IoT Hub counts application properties towards the 256 KiB message; IoT Central shows none of them. Kept small. */
export const MAX_PROPERTIES = 64;
export const MAX_PROPERTY_NAME = 128;
export const MAX_PROPERTY_VALUE = 1024;

/** One telemetry message of one IoT Central device. */
export interface TelemetryMessage {
  /** `{point name: value}`: IoT Central matches the names against the device template's telemetry. */
  payload: Record<string, unknown>;
  options: TelemetryOptions;
  /** Points left out: a value JSON cannot carry (NaN, ±Infinity) or no value at all. */
  skipped: number;
}

/**
 * One TelemetryEvent → one telemetry message (IoT Central reads one flat JSON object per message; arrays of messages
 * are not supported over MQTT).
 *  - doubles, booleans and strings as JSON values; NaN and ±Infinity have no JSON form and are left out;
 *  - int64 as a JSON number when it is a safe integer (|v| ≤ 2^53-1), else as a decimal string, because a JSON
 *    number beyond that is rounded by every reader, IoT Central's included;
 *  - a name given twice: the last point wins (one member per name in a JSON object);
 *  - quality and unit are not sent: IoT Central has no place for them (the device template carries the unit);
 *  - messageId = the event id, so a redelivered event carries the same $.mid and can be recognised downstream;
 *  - creationTime = observed_time (iothub-creation-time-utc); properties = the event's attributes, at most
 *    MAX_PROPERTIES, names and values cut to their bounds (the rest left out, counted in `droppedProperties`).
 * Returns undefined for an event with no sendable point (nothing to tell IoT Central).
 */
export function toTelemetryMessage(
  event: TelemetryEvent,
  component?: string,
): (TelemetryMessage & { droppedProperties: number }) | undefined {
  const payload: Record<string, unknown> = {};
  let skipped = 0;
  for (const p of event.points) {
    const v = p.value;
    switch (v.case) {
      case "doubleValue":
        if (Number.isFinite(v.value)) payload[p.name] = v.value;
        else skipped++;
        break;
      case "intValue":
        payload[p.name] = int64Json(v.value);
        break;
      case "boolValue":
      case "stringValue":
        payload[p.name] = v.value;
        break;
      default:
        skipped++;
    }
  }
  if (Object.keys(payload).length === 0) return undefined;
  const properties: Record<string, string> = {};
  let droppedProperties = 0;
  for (const [name, value] of Object.entries(event.attributes)) {
    if (Object.keys(properties).length >= MAX_PROPERTIES || name.length === 0 || name.length > MAX_PROPERTY_NAME) {
      droppedProperties++;
      continue;
    }
    properties[name] = value.length > MAX_PROPERTY_VALUE ? value.slice(0, MAX_PROPERTY_VALUE) : value;
  }
  const options: TelemetryOptions = {
    messageId: event.id,
    ...(event.observedTime ? { creationTime: timestampDate(event.observedTime) } : {}),
    ...(Object.keys(properties).length > 0 ? { properties } : {}),
    ...(component ? { component } : {}),
  };
  return { payload, options, skipped, droppedProperties };
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** An int64 as JSON: a number while it is exact, else its decimal string. */
export function int64Json(v: bigint): number | string {
  return v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : v.toString();
}
