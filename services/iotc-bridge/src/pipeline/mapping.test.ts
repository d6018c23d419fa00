import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Platform, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import { int64Json, MAX_PROPERTIES, toTelemetryMessage } from "./mapping.js";

const event = (init: { points?: MessageInitShape<typeof TelemetryEventSchema>["points"]; attributes?: Record<string, string> }) =>
  create(TelemetryEventSchema, {
    id: "ev-1",
    source: { platform: Platform.API, connection: "line", device: "pump-1" },
    observedTime: timestampFromMs(Date.UTC(2026, 10, 30, 12, 0, 0, 250)),
    points: init.points ?? [],
    attributes: init.attributes ?? {},
  });

describe("toTelemetryMessage", () => {
  it("makes one flat JSON object of the points, with the event id as message id and observed time as creation time", () => {
    const m = toTelemetryMessage(
      event({
        points: [
          { name: "temperature", value: { case: "doubleValue", value: 21.5 }, unit: "°C" },
          { name: "running", value: { case: "boolValue", value: true } },
          { name: "mode", value: { case: "stringValue", value: "auto" } },
          { name: "count", value: { case: "intValue", value: 42n } },
        ],
        attributes: { line: "a" },
      }),
      "pump",
    );
    expect(m?.payload).toEqual({ temperature: 21.5, running: true, mode: "auto", count: 42 });
    expect(m?.options).toEqual({
      messageId: "ev-1",
      creationTime: new Date(Date.UTC(2026, 10, 30, 12, 0, 0, 250)),
      properties: { line: "a" },
      component: "pump",
    });
    expect(m?.skipped).toBe(0);
  });

  it("sends an int64 beyond 2^53 as its decimal string, since a JSON number would be rounded", () => {
    expect(int64Json(9_007_199_254_740_991n)).toBe(9_007_199_254_740_991);
    expect(int64Json(-9_007_199_254_740_991n)).toBe(-9_007_199_254_740_991);
    expect(int64Json(9_007_199_254_740_993n)).toBe("9007199254740993");
    expect(int64Json(-9_223_372_036_854_775_808n)).toBe("-9223372036854775808");
  });

  it("leaves out NaN, infinities and points without a value, and the last of a repeated name wins", () => {
    const m = toTelemetryMessage(
      event({
        points: [
          { name: "a", value: { case: "doubleValue", value: Number.NaN } },
          { name: "b", value: { case: "doubleValue", value: Number.POSITIVE_INFINITY } },
          { name: "c" },
          { name: "d", value: { case: "doubleValue", value: 1 } },
          { name: "d", value: { case: "doubleValue", value: 2 } },
        ],
      }),
    );
    expect(m?.payload).toEqual({ d: 2 });
    expect(m?.skipped).toBe(3);
    expect(m?.options.component).toBeUndefined();
    expect(m?.options.properties).toBeUndefined();
  });

  it("an event with nothing sendable makes no message", () => {
    expect(toTelemetryMessage(event({ points: [{ name: "x", value: { case: "doubleValue", value: Number.NaN } }] }))).toBeUndefined();
    expect(toTelemetryMessage(event({ points: [] }))).toBeUndefined();
  });

  it("bounds the properties: at most 64, long values cut, over-long names left out", () => {
    const attributes: Record<string, string> = { ["n".repeat(129)]: "x", long: "v".repeat(5000) };
    for (let i = 0; i < 100; i++) attributes[`k${i}`] = String(i);
    const m = toTelemetryMessage(event({ points: [{ name: "x", value: { case: "boolValue", value: false } }], attributes }));
    expect(Object.keys(m?.options.properties ?? {})).toHaveLength(MAX_PROPERTIES);
    expect(m?.options.properties?.["long"]).toHaveLength(1024);
    expect(m?.droppedProperties).toBe(102 - MAX_PROPERTIES);
  });
});
