import { fromJson, toBinary } from "@bufbuild/protobuf";
import { PublishRequestSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { keysInText } from "@meridian/service-kit";
import { comparableMessage, type SeededRandom, seededRandom } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { readPublishRequest } from "./publish-json.js";

/** What connect-es does with a parsed Connect JSON body: protobuf-es's fromJson, unknown fields ignored. */
function library(json: unknown): { message: unknown } | { error: string } {
  try {
    return { message: fromJson(PublishRequestSchema, json as never, { ignoreUnknownFields: true }) };
  } catch (err) {
    return { error: String(err) };
  }
}

/** Usually what a client sends; now and then a form the hand reader leaves, or one protobuf-es refuses. */
function randomValue(r: SeededRandom, usual: () => unknown, others: unknown[]): unknown {
  return r.int(8) === 0 ? r.pick(others) : usual();
}

function randomTimestamp(r: SeededRandom): unknown {
  return randomValue(
    r,
    () => `2026-12-0${1 + r.int(9)}T1${r.int(10)}:0${r.int(10)}:${10 + r.int(50)}${r.pick(["", ".5", ".123", ".123456789", ".0000001"])}Z`,
    [
      "2026-12-02T10:00:00+01:00",
      "2026-12-02T10:00:00.1234567890Z",
      "2026-13-02T10:00:00Z",
      "2026-02-30T10:00:00Z",
      "0000-01-01T00:00:00Z",
      "0001-01-01T00:00:00Z",
      "9999-12-31T23:59:59.999999999Z",
      "2026-12-02 10:00:00Z",
      "2026-12-02T10:00:00z",
      "2026-12-02T23:59:60Z",
      "2026-12-02T24:00:00Z",
      "2026-12-02T10:00:00.Z",
      "2026-12-02T10:00:00.12a4Z",
      "2026-12-02T10:00:00,5Z",
      "2026-12-02T10:00:00.5",
      "+2026-12-02T10:00:00Z",
      "2026-1-02T10:00:00.5Z",
      1764669600,
      null,
      {},
    ],
  );
}

function randomPoint(r: SeededRandom): unknown {
  const point: Record<string, unknown> = {};
  if (r.int(10) !== 0) point.name = randomValue(r, () => r.pick(["pressure", "temperature", "é", ""]), [null, 5, ["x"]]);
  const value = r.int(6);
  if (value === 0)
    point.doubleValue = randomValue(r, () => r.pick([4.53, 0, -1e-300, 1.7976931348623157e308]), [
      "NaN",
      "1.5",
      " 1",
      "Infinity",
      null,
      true,
    ]);
  if (value === 1)
    point.intValue = randomValue(r, () => String(r.int(1e9)), [
      7,
      -7,
      1.5,
      2 ** 53,
      "9223372036854775807",
      "9223372036854775808",
      "-00012",
      "+1",
      "1e3",
      "",
      null,
    ]);
  if (value === 2) point.boolValue = randomValue(r, () => r.bool(), ["true", 1, null]);
  if (value === 3) point.stringValue = randomValue(r, () => r.pick(["on", ""]), [1, null]);
  if (value === 4 && r.bool()) Object.assign(point, { doubleValue: 1, boolValue: true });
  if (r.int(6) === 0) point.unit = randomValue(r, () => "bar", [null, 1]);
  if (r.int(6) === 0) point.quality = randomValue(r, () => r.pick(["QUALITY_GOOD", "QUALITY_BAD"]), [1, "GOOD", null, "QUALITY_NOPE"]);
  if (r.int(30) === 0) point[r.pick(["double_value", "int_value", "extra"])] = 1;
  return point;
}

function randomEvent(r: SeededRandom): unknown {
  if (r.int(60) === 0) return r.pick([null, 1, "event", []]);
  const event: Record<string, unknown> = {};
  if (r.int(10) !== 0) event.id = randomValue(r, () => `ev-${r.int(1000)}`, [null, 1, ""]);
  if (r.int(10) !== 0) {
    const source: Record<string, unknown> = {};
    if (r.int(10) !== 0)
      source.platform = randomValue(r, () => "PLATFORM_API", ["PLATFORM_OMF", "PLATFORM_UNSPECIFIED", 6, "6", "api", null]);
    if (r.int(10) !== 0) source.connection = randomValue(r, () => "conn", [null, 1]);
    if (r.int(10) !== 0) source.device = randomValue(r, () => `dev-${r.int(10)}`, [null, true]);
    if (r.int(30) === 0) source.extra = "x";
    event.source = randomValue(r, () => source, [null, "source", []]);
  }
  if (r.int(10) !== 0) event[r.int(20) === 0 ? "observed_time" : "observedTime"] = randomTimestamp(r);
  if (r.int(4) === 0) event[r.int(20) === 0 ? "received_time" : "receivedTime"] = randomTimestamp(r);
  if (r.int(10) !== 0) event.points = randomValue(r, () => Array.from({ length: r.int(6) }, () => randomPoint(r)), [null, {}, "p"]);
  if (r.int(4) === 0)
    event.attributes = randomValue(r, () => ({ site: "plant-1", line: r.pick(["a", ""]) }), [
      null,
      { n: 1 },
      ["a"],
      JSON.parse('{"__proto__":"x"}'),
    ]);
  if (r.int(30) === 0) event.raw = r.pick([{ data: "AAEC", contentType: "application/octet-stream" }, null]);
  if (r.int(30) === 0) event.unknownField = 1;
  return event;
}

function randomRequest(r: SeededRandom): unknown {
  if (r.int(50) === 0) return r.pick([null, [], "events", {}, { events: null }, { events: {} }, { other: 1 }]);
  const request: Record<string, unknown> = { events: Array.from({ length: r.pick([0, 1, 3, 10]) }, () => randomEvent(r)) };
  if (r.int(40) === 0) request.extra = true;
  return request;
}

describe("readPublishRequest", () => {
  it("makes exactly protobuf-es's message, or leaves the body to it, for random requests", () => {
    const seed = Date.now();
    const r = seededRandom(seed);
    let read = 0;
    let left = 0;
    for (let n = 0; n < 4000; n++) {
      // Through text, as a body comes: JSON.parse makes "__proto__" an own key, as for a client's request.
      const text = JSON.stringify(randomRequest(r));
      const json = JSON.parse(text);
      const keys = { count: 0 };
      const byHand = readPublishRequest(json, keys);
      const want = library(json);
      const context = `seed ${seed}, request ${n}: ${JSON.stringify(json)}`;
      if (byHand === undefined) {
        left++;
        continue;
      }
      read++;
      // Every key of the body was counted: else the server could not tell it repeats none, and would not use the reader.
      if (!text.includes("\\")) expect(keys.count, context).toBe(keysInText(text));
      expect(want, context).toHaveProperty("message");
      if (!("message" in want)) continue;
      // The reader declares unset fields as undefined properties (one object shape per event, see readEvent).
      expect(comparableMessage(byHand), context).toStrictEqual(comparableMessage(want.message));
      expect(toBinary(PublishRequestSchema, byHand), context).toEqual(toBinary(PublishRequestSchema, want.message as never));
    }
    // Both paths were exercised.
    expect(read).toBeGreaterThan(400);
    expect(left).toBeGreaterThan(400);
  });

  it("reads the usual request by hand: sources, timestamps, every kind of value, attributes", () => {
    const json = {
      events: [
        {
          id: "e1",
          source: { platform: "PLATFORM_API", connection: "bench", device: "dev-1" },
          observedTime: "2026-12-02T10:00:00.0000001Z",
          receivedTime: "2026-12-02T10:00:01Z",
          points: [
            { name: "pressure", doubleValue: 4.53, unit: "bar", quality: "QUALITY_GOOD" },
            { name: "cycle_count", intValue: "-123456789012345678" },
            { name: "n", intValue: 42 },
            { name: "running", boolValue: false },
            { name: "state", stringValue: "on" },
          ],
          attributes: { site: "plant-1" },
        },
      ],
    };
    const byHand = readPublishRequest(json);
    expect(byHand).toBeDefined();
    expect(library(json)).toEqual({ message: byHand });
    expect(byHand?.events[0]?.observedTime).toEqual({
      $typeName: "google.protobuf.Timestamp",
      seconds: BigInt(Date.UTC(2026, 11, 2, 10) / 1000),
      nanos: 100,
    });
  });

  it("leaves to protobuf-es what it would convert or refuse: a proto field name, a null, a number in a string, an offset", () => {
    const one = (event: unknown) => readPublishRequest({ events: [event] });
    expect(one({ id: "a", observed_time: "2026-12-02T10:00:00Z" })).toBeUndefined();
    expect(one({ id: null })).toBeUndefined();
    expect(one({ points: [{ name: "p", doubleValue: "1.5" }] })).toBeUndefined();
    expect(one({ points: [{ name: "p", intValue: "9223372036854775807" }] })).toBeUndefined();
    expect(one({ observedTime: "2026-12-02T10:00:00+01:00" })).toBeUndefined();
    expect(one({ source: { platform: 6 } })).toBeUndefined();
  });
});
