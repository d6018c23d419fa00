/** The last known value of a telemetry stream, as IoT Central keeps it for `GET .../telemetry/{name}`. */
import type { TelemetryMessage } from "../model.js";
import { isJsonObject } from "../twin.js";

/** The device's own send time (protocol notes 3.1), when it set one that parses. */
const CREATION_TIME = "iothub-creation-time-utc";

export interface TelemetryValue {
  timestamp: string;
  value: unknown;
}

/**
 * The newest message of the device (and component: `$.sub`, none for the default component) whose JSON body names
 * `name`. The timestamp is the device's `iothub-creation-time-utc` when valid, else when the hub received it.
 */
export function lastTelemetryValue(messages: TelemetryMessage[], name: string, component?: string): TelemetryValue | undefined {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.component !== component || !isJsonObject(m.json) || !Object.hasOwn(m.json, name)) continue;
    const sent = m.properties[CREATION_TIME];
    const at = sent === undefined ? Number.NaN : Date.parse(sent);
    return {
      timestamp: Number.isNaN(at) ? m.receivedAt.toISOString() : new Date(at).toISOString(),
      value: structuredClone(m.json[name]),
    };
  }
  return undefined;
}
