import { create } from "@bufbuild/protobuf";
import { TimestampSchema, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Platform, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import { epochMicros, historizedEvents, integerContents, payloadEvents, timestampFromIso, toDevicePayload } from "./mapping.js";

const twin = { iotDomainId: "ocid1.iotdomain.oc1.x.dom", instanceId: "ocid1.iotdigitaltwininstance.oc1.x.i1", externalKey: "m5-1" };
const T1 = "2025-09-18T18:32:28.847244Z";
const T2 = "2025-09-18T18:32:33.000001Z";

function hist(id: number, path: string, value: unknown, time = T1) {
  return { id, digital_twin_instance_id: twin.instanceId, content_path: path, value, time_observed: time } as never;
}

describe("historized rows", () => {
  it("rows of one observation are one event, a point per content path with its JSON type; ids from domain, data set and first row", () => {
    const { events, skippedRowIds } = historizedEvents(
      twin,
      [
        hist(10, "sht_temperature", 22.5),
        hist(11, "count", 7),
        hist(12, "online", true),
        hist(13, "label", "ok"),
        hist(14, "system", { a: 1 }),
        hist(15, "nothing", null),
        hist(16, "sht_temperature", 22.6, T2),
      ],
      { integerPaths: new Set(["count"]) },
    );
    expect(skippedRowIds).toEqual([]);
    expect(events.map((e) => [e.event.id, e.firstRowId, e.lastRowId])).toEqual([
      ["oci:ocid1.iotdomain.oc1.x.dom:historizedData:10", 10, 15],
      ["oci:ocid1.iotdomain.oc1.x.dom:historizedData:16", 16, 16],
    ]);
    const [first] = events;
    expect(first!.event.source).toMatchObject({ platform: Platform.OCI_IOT, connection: twin.iotDomainId, device: "m5-1" });
    expect(first!.event.observedTime).toMatchObject({ seconds: 1758220348n, nanos: 847_244_000 });
    expect(first!.event.attributes).toEqual({ data_set: "historizedData" });
    expect(first!.event.points.map((p) => [p.name, p.value.case, p.value.value])).toEqual([
      ["sht_temperature", "doubleValue", 22.5],
      ["count", "intValue", 7n],
      ["online", "boolValue", true],
      ["label", "stringValue", "ok"],
      ["system", "stringValue", '{"a":1}'],
    ]);
  });

  it("an integer-valued number without an integer DTDL schema stays a double; a fraction at an integer path too", () => {
    const { events } = historizedEvents(twin, [hist(1, "humidity", 56), hist(2, "count", 5.5)], { integerPaths: new Set(["count"]) });
    expect(events[0]!.event.points.map((p) => p.value.case)).toEqual(["doubleValue", "doubleValue"]);
  });

  it("the same content path twice at one time starts a second event (two messages observed at the same time)", () => {
    const { events } = historizedEvents(twin, [hist(1, "humidity", 50), hist(2, "humidity", 51), hist(3, "pressure", 1000)]);
    expect(events.map((e) => [e.firstRowId, e.lastRowId, e.event.points.length])).toEqual([
      [1, 1, 1],
      [2, 3, 2],
    ]);
  });

  it("a row without a readable time or path is reported by id, not made up", () => {
    const { events, skippedRowIds } = historizedEvents(twin, [hist(1, "humidity", 50, "yesterday"), hist(2, "", 1)]);
    expect(events).toEqual([]);
    expect(skippedRowIds).toEqual([1, 2]);
  });

  it("the device is the instance OCID when the twin has no external key", () => {
    const { events } = historizedEvents({ iotDomainId: "d", instanceId: "i" }, [hist(1, "x", 1)]);
    expect(events[0]!.event.source?.device).toBe("i");
  });
});

describe("raw and rejected rows", () => {
  it("one event per row, a point per top-level field, with data set, endpoint and content type", () => {
    const { events } = payloadEvents(twin, "rawData", [
      {
        id: 5,
        digital_twin_instance_id: twin.instanceId,
        endpoint: "iot/v1/telemetry",
        content_type: "application/json",
        time_received: T1,
        content: { humidity: 56.1, count: 5479, ok: true, nested: { x: [1] } },
      },
      { id: 6, endpoint: "iot/v1/text", content_type: "text/plain", time_received: T2, content: "hello" },
    ]);
    expect(events.map((e) => e.event.id)).toEqual(["oci:ocid1.iotdomain.oc1.x.dom:rawData:5", "oci:ocid1.iotdomain.oc1.x.dom:rawData:6"]);
    expect(events[0]!.event.attributes).toEqual({ data_set: "rawData", endpoint: "iot/v1/telemetry", content_type: "application/json" });
    expect(events[0]!.event.points.map((p) => [p.name, p.value.value])).toEqual([
      ["humidity", 56.1],
      ["count", 5479],
      ["ok", true],
      ["nested", '{"x":[1]}'],
    ]);
    expect(events[1]!.event.points.map((p) => [p.name, p.value.value])).toEqual([["content", "hello"]]);
  });

  it("a rejected row carries reason_code and reason_message", () => {
    const { events } = payloadEvents(twin, "rejectedData", [
      {
        id: 9,
        endpoint: "iot/v1/other",
        content_type: "application/json",
        time_received: T1,
        reason_code: 500,
        reason_message: "Normalization output is empty",
        content: { foo: 1 },
      },
    ]);
    expect(events[0]!.event.id).toBe("oci:ocid1.iotdomain.oc1.x.dom:rejectedData:9");
    expect(events[0]!.event.attributes).toMatchObject({
      data_set: "rejectedData",
      reason_code: "500",
      reason_message: "Normalization output is empty",
    });
  });
});

describe("DTDL integer contents", () => {
  it("names the contents whose schema is an integer type", () => {
    const spec = {
      "@type": "Interface",
      contents: [
        { "@type": ["Telemetry", "Historized"], name: "humidity", schema: "double" },
        { "@type": "Telemetry", name: "count", schema: "integer" },
        { "@type": "Telemetry", name: "total", schema: "long" },
        { "@type": "Telemetry", name: "system", schema: { "@type": "Object" } },
      ],
    };
    expect([...integerContents(spec)]).toEqual(["count", "total"]);
    expect(integerContents(undefined).size).toBe(0);
  });
});

describe("times", () => {
  it("keeps microseconds and offsets", () => {
    expect(timestampFromIso("2025-09-18T18:32:28.847244Z")).toMatchObject({ seconds: 1758220348n, nanos: 847244000 });
    expect(timestampFromIso("2025-09-18T20:32:28+02:00")).toMatchObject({ seconds: 1758220348n, nanos: 0 });
    expect(timestampFromIso("2025-09-18")).toBeUndefined();
    expect(timestampFromIso(5)).toBeUndefined();
  });
});

describe("device payloads (sink)", () => {
  const observedTime = create(TimestampSchema, { seconds: 1758220348n, nanos: 847244999 });

  it("points by name, time in epoch microseconds", () => {
    const e = create(TelemetryEventSchema, {
      id: "e",
      observedTime,
      points: [
        { name: "humidity", value: { case: "doubleValue", value: 56.1 } },
        { name: "count", value: { case: "intValue", value: 5479n } },
        { name: "on", value: { case: "boolValue", value: false } },
        { name: "label", value: { case: "stringValue", value: "x" } },
      ],
    });
    const out = toDevicePayload(e);
    expect(JSON.parse(JSON.stringify(out.payload))).toEqual({ humidity: 56.1, count: 5479, on: false, label: "x", time: 1758220348847244 });
    expect(out).toMatchObject({ skipped: 0, points: 4 });
    expect(epochMicros(timestampFromMs(1_000))).toBe(1_000_000);
  });

  it("an int64 beyond 2^53 goes as a decimal string, exactly; NaN and valueless points are left out", () => {
    const e = create(TelemetryEventSchema, {
      observedTime,
      points: [
        { name: "big", value: { case: "intValue", value: 9_007_199_254_740_993n } },
        { name: "safe", value: { case: "intValue", value: -9_007_199_254_740_991n } },
        { name: "nan", value: { case: "doubleValue", value: Number.NaN } },
        { name: "none" },
      ],
    });
    const out = toDevicePayload(e);
    expect(JSON.parse(JSON.stringify(out.payload))).toEqual({ big: "9007199254740993", safe: -9007199254740991, time: 1758220348847244 });
    expect(out.skipped).toBe(2);
  });

  it('a point named "time" is left out (counted as skipped): the observed time owns "time", which OCI reads as timeObserved', () => {
    const e = create(TelemetryEventSchema, {
      observedTime,
      points: [
        { name: "time", value: { case: "stringValue", value: "12:00" } },
        { name: "x", value: { case: "doubleValue", value: 1 } },
        { name: "x", value: { case: "doubleValue", value: 2 } },
      ],
    });
    const out = toDevicePayload(e);
    expect(JSON.parse(JSON.stringify(out.payload))).toEqual({ x: 1, time: 1758220348847244 });
    expect(out).toMatchObject({ skipped: 2, points: 1 });
  });

  it("an event without an observed time posts no time (OCI then uses the time it received it)", () => {
    const out = toDevicePayload(
      create(TelemetryEventSchema, { points: [{ name: "__proto__", value: { case: "doubleValue", value: 1 } }] }),
    );
    expect(JSON.stringify(out.payload)).toBe('{"__proto__":1}');
  });
});
