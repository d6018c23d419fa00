import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Platform, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { comparableMessage } from "@meridian/testing";
import { describe, expect, it } from "vitest";
import { msgDocuments, parsePayload } from "../platform/index.js";
import { batchIdFor, canonicalJson, eventId, flattenAttributes, splitStreamId, toTelemetryEvents, typedValue } from "./mapping.js";

const received = timestampFromMs(Date.UTC(2026, 10, 23, 12, 0, 0));
const map = (payload: string, format: "json" | "xml", monitorId = "178008") =>
  toTelemetryEvents(monitorId, parsePayload(payload, format), { receivedTime: received });

const dataPointJson = (value: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    Document: {
      Msg: {
        timestamp: "2015-06-14T18:37:28.000Z",
        topic: "7603/DataPoint/00000000-00000000-00409DFF-FF458726/temp",
        operation: "INSERTION",
        group: "*",
        DataPoint: {
          cstId: 7603,
          data: value,
          description: "",
          id: "684572e0-12c3-11e5-8e1a-fa163ef93f9b",
          quality: 0,
          serverTimestamp: 1434307047694,
          streamId: "00000000-00000000-00409DFF-FF458726/temp",
          streamUnits: "degC",
          timestamp: 1434307047000,
          ...extra,
        },
      },
    },
  });

describe("DataPoint → typed points", () => {
  it("JSON: a numeric string becomes a double with its unit; observed time is the data point's own timestamp", () => {
    const [e, ...rest] = map(dataPointJson("21.5"), "json");
    expect(rest).toHaveLength(0);
    expect(e!.source).toMatchObject({ platform: Platform.IDIGI, connection: "178008", device: "00000000-00000000-00409DFF-FF458726" });
    expect(e!.points).toHaveLength(1);
    expect(e!.points[0]).toMatchObject({ name: "temp", unit: "degC", value: { case: "doubleValue", value: 21.5 } });
    expect(timestampDate(e!.observedTime!).toISOString()).toBe("2015-06-14T18:37:27.000Z");
    expect(e!.receivedTime).toEqual(received);
    expect(e!.attributes).toMatchObject({
      "idigi.topic": "7603/DataPoint/00000000-00000000-00409DFF-FF458726/temp",
      "idigi.operation": "INSERTION",
      "idigi.resource": "DataPoint",
      "idigi.stream_id": "00000000-00000000-00409DFF-FF458726/temp",
      "idigi.data_point_id": "684572e0-12c3-11e5-8e1a-fa163ef93f9b",
      "idigi.quality": "0",
    });
  });

  it("JSON: numbers are doubles, booleans bools, other strings strings; an empty unit is left out", () => {
    expect(map(dataPointJson(0.4117), "json")[0]!.points[0]!.value).toEqual({ case: "doubleValue", value: 0.4117 });
    expect(map(dataPointJson(3), "json")[0]!.points[0]!.value).toEqual({ case: "doubleValue", value: 3 });
    expect(map(dataPointJson(true), "json")[0]!.points[0]!.value).toEqual({ case: "boolValue", value: true });
    expect(map(dataPointJson("false"), "json")[0]!.points[0]!.value).toEqual({ case: "boolValue", value: false });
    const s = map(dataPointJson("door open", { streamUnits: "" }), "json")[0]!.points[0]!;
    expect(s.value).toEqual({ case: "stringValue", value: "door open" });
    expect(s.unit).toBe("");
  });

  it("JSON: a declared integer stream type gives int64 points", () => {
    const e = map(dataPointJson("42", { streamType: "LONG" }), "json")[0]!;
    expect(e.points[0]!.value).toEqual({ case: "intValue", value: 42n });
    expect(typedValue("9223372036854775807", "INTEGER")).toEqual({ case: "intValue", value: 9223372036854775807n });
    // Out of int64 range: kept as a double rather than failing.
    expect(typedValue("9223372036854775808", "LONG")).toEqual({ case: "doubleValue", value: 2 ** 63 });
    expect(typedValue("3.5", "DOUBLE")).toEqual({ case: "doubleValue", value: 3.5 });
    expect(typedValue(12, "STRING")).toEqual({ case: "stringValue", value: "12" });
  });

  it("XML: string leaves are typed the same way; the epoch-ms timestamp string is read as time", () => {
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?><Document><Msg topic="7603/DataPoint/dev1/pressure" operation="insertion" timestamp="2015-06-14T18:37:28.000Z">' +
      "<DataPoint><cstId>7603</cstId><data>4.25</data><id>dp-1</id><streamId>dev1/pressure</streamId><streamUnits>bar</streamUnits>" +
      "<timestamp>1434307047000</timestamp></DataPoint></Msg></Document>";
    const [e] = map(xml, "xml");
    expect(e!.source!.device).toBe("dev1");
    expect(e!.points[0]).toMatchObject({ name: "pressure", unit: "bar", value: { case: "doubleValue", value: 4.25 } });
    expect(timestampDate(e!.observedTime!).toISOString()).toBe("2015-06-14T18:37:27.000Z");
    expect(e!.attributes["idigi.operation"]).toBe("INSERTION");
  });

  it("a stream id without '/' is its own device with point 'value'; an unparseable timestamp falls back to the Msg's", () => {
    const [e] = map(dataPointJson("1.5", { streamId: "test", timestamp: "not a time" }), "json");
    expect(e!.source!.device).toBe("test");
    expect(e!.points[0]!.name).toBe("value");
    expect(timestampDate(e!.observedTime!).toISOString()).toBe("2015-06-14T18:37:28.000Z");
    expect(splitStreamId("dev/a/b")).toEqual({ device: "dev", name: "a/b" });
  });

  it("DataStream: the current value becomes a point typed by the stream's dataType, with units and its own timestamp", () => {
    const payload = JSON.stringify({
      Document: {
        Msg: {
          timestamp: "2024-01-01T00:00:05.000Z",
          topic: "1234/DataStream/dev7/counter",
          operation: "UPDATE",
          DataStream: {
            cstId: 1234,
            streamId: "dev7/counter",
            dataType: "INTEGER",
            units: "pcs",
            currentValue: { id: "cv-1", timestamp: 1704067203000, data: "17", quality: 0 },
          },
        },
      },
    });
    const [e] = map(payload, "json");
    expect(e!.source!.device).toBe("dev7");
    expect(e!.points[0]).toMatchObject({ name: "counter", unit: "pcs", value: { case: "intValue", value: 17n } });
    expect(timestampDate(e!.observedTime!).toISOString()).toBe("2024-01-01T00:00:03.000Z");
  });

  it("a Msg holding a list of data points gives one event per point, ids carrying the position", () => {
    const xml =
      '<Document><Msg topic="1/DataPoint/dev1/t" operation="insertion" timestamp="2024-01-01T00:00:00.000Z">' +
      "<DataPoint><data>1</data><streamId>dev1/t</streamId><timestamp>1704067200000</timestamp></DataPoint>" +
      "<DataPoint><data>2</data><streamId>dev1/t</streamId><timestamp>1704067201000</timestamp></DataPoint></Msg></Document>";
    const events = map(xml, "xml");
    expect(events.map((e) => e.points[0]!.value.value)).toEqual([1, 2]);
    expect(events[0]!.id.endsWith(":0")).toBe(true);
    expect(events[1]!.id.endsWith(":1")).toBe(true);
    expect(new Set(events.map((e) => e.id)).size).toBe(2);
  });
});

describe("the events are protobuf-es's own messages (built without create())", () => {
  it("every field with its type and default, as protobuf-es reads the event back from its encoding", () => {
    const xmlList =
      '<Document><Msg topic="1/DataPoint/dev1/t" operation="insertion" timestamp="2024-01-01T00:00:00.000Z">' +
      "<DataPoint><data>1</data><streamId>dev1/t</streamId><timestamp>1704067200000</timestamp></DataPoint>" +
      "<DataPoint><data>x</data><streamId>dev1/t</streamId><timestamp>1704067201999</timestamp></DataPoint></Msg></Document>";
    const deviceCore =
      '<Document><Msg topic="3/DeviceCore/882/7" operation="update" timestamp="2010-12-03T13:34:00.001Z"><DeviceCore><id><devId>882</devId>' +
      "<devVersion>7</devVersion></id><dpConnectionStatus>1</dpConnectionStatus></DeviceCore></Msg></Document>";
    const events = [
      ...map(dataPointJson(21.5), "json"),
      ...map(dataPointJson("42"), "json"),
      ...map(dataPointJson(true, { timestamp: "not a time" }), "json"),
      ...map(dataPointJson(null), "json"),
      ...map(xmlList, "xml"),
      ...toTelemetryEvents("5", parsePayload(deviceCore, "xml"), {
        receivedTime: received,
        raw: { documents: msgDocuments(deviceCore, "xml", 1)!, format: "xml" },
      }),
    ];
    expect(events.length).toBe(7);
    expect(events.some((e) => e.raw !== undefined)).toBe(true);
    for (const e of events) {
      expect(comparableMessage(e)).toStrictEqual(comparableMessage(fromBinary(TelemetryEventSchema, toBinary(TelemetryEventSchema, e))));
    }
  });

  it("observed times are timestampFromMs's, to the millisecond, before and after 1970", () => {
    for (const ms of [1704067201999, 1434307047000, 1, 0, -1, -1500, -86_400_001]) {
      const [e] = map(dataPointJson(1, { timestamp: ms }), "json");
      expect(e!.observedTime, String(ms)).toStrictEqual(timestampFromMs(ms));
    }
  });
});

describe("DeviceCore and other resources → attributes", () => {
  // The real 2012 capture (protocol notes §1.8).
  const capture =
    '{"Document":{"Msg":{"timestamp":"2012-04-17T14:14:07.028Z","topic":"1654/DeviceCore/6283/0","operation":"UPDATE","DeviceCore":{"devEffectiveStartDate":"2012-04-16T21:43:00.000Z","dpDeviceType":"unknown","dpRestrictedStatus":0,"dpConnectionStatus":0,"grpId":1654,"id":{"devVersion":0,"devId":6283},"devMac":"00:40:9D:45:87:26","devConnectwareId":"00000000-00000000-00409DFF-FF458726","cstId":1654,"devTerminated":false}}}}';

  it("the record is flattened into string attributes; no points; device is the Connectware id; time is the Msg's", () => {
    const [e] = map(capture, "json", "99850");
    expect(e!.points).toHaveLength(0);
    expect(e!.source).toMatchObject({ platform: Platform.IDIGI, connection: "99850", device: "00000000-00000000-00409DFF-FF458726" });
    expect(timestampDate(e!.observedTime!).toISOString()).toBe("2012-04-17T14:14:07.028Z");
    expect(e!.attributes).toMatchObject({
      "id.devId": "6283",
      "id.devVersion": "0",
      devMac: "00:40:9D:45:87:26",
      dpConnectionStatus: "0",
      devTerminated: "false",
      "idigi.resource": "DeviceCore",
      "idigi.operation": "UPDATE",
      "idigi.topic": "1654/DeviceCore/6283/0",
    });
    expect(e!.raw).toBeUndefined();
  });

  it("XML DeviceCore gives the same attributes (as strings), and the raw Msg is attached when asked", () => {
    const xml =
      '<Document><Msg topic="3/DeviceCore/882/7" operation="update" timestamp="2010-12-03T13:34:00.001Z"><DeviceCore><id><devId>882</devId>' +
      "<devVersion>7</devVersion></id><dpConnectionStatus>1</dpConnectionStatus></DeviceCore></Msg></Document>";
    const events = parsePayload(xml, "xml");
    const raw = { documents: msgDocuments(xml, "xml", events.length)!, format: "xml" as const };
    const [e] = toTelemetryEvents("5", events, { receivedTime: received, raw });
    expect(e!.source!.device).toBe("882");
    expect(e!.attributes).toMatchObject({ "id.devId": "882", "id.devVersion": "7", dpConnectionStatus: "1", "idigi.operation": "UPDATE" });
    expect(e!.raw?.contentType).toBe("application/xml");
    // A block of one Msg is the raw payload byte for byte, as the seed's callback got it.
    expect(new TextDecoder().decode(e!.raw!.data)).toBe(xml);
  });

  it("a resource without a device id uses the topic key; over-long values are left out and named", () => {
    const big = "x".repeat(5000);
    const payload = JSON.stringify({
      Document: {
        Msg: {
          timestamp: "2024-01-01T00:00:00.000Z",
          topic: "1/FileData/db/1_x/a.txt",
          operation: "INSERTION",
          FileData: { id: { fdName: "a.txt", fdPath: "/db/1_x/" }, fdData: big },
        },
      },
    });
    const [e] = map(payload, "json");
    expect(e!.source!.device).toBe("db/1_x/a.txt");
    expect(e!.attributes["id.fdName"]).toBe("a.txt");
    expect(e!.attributes.fdData).toBeUndefined();
    expect(e!.attributes["idigi.omitted"]).toBe("fdData");
    expect(flattenAttributes({ a: [1, { b: null }] })).toEqual({ "a[0]": "1", "a[1].b": "" });
  });
});

describe("event ids: monitor + topic + operation + timestamp + digest of the data (+ position in a list)", () => {
  const one = (opts: { value?: string; ts?: string; op?: string; replay?: boolean } = {}) =>
    JSON.stringify({
      Document: {
        Msg: {
          timestamp: opts.ts ?? "2024-01-01T00:00:00.000Z",
          topic: "1234/DataPoint/dev1/temp",
          operation: opts.op ?? "INSERTION",
          ...(opts.replay ? { replay: "true" } : {}),
          DataPoint: { streamId: "dev1/temp", data: opts.value ?? "21.5", timestamp: 1704067200000 },
        },
      },
    });

  it("are stable for the same content", () => {
    expect(map(one(), "json")[0]!.id).toBe(map(one(), "json")[0]!.id);
    expect(map(one(), "json")[0]!.id).toMatch(/^idigi:178008:[0-9a-f]{32}$/);
  });

  it("differ when the data, timestamp, operation or monitor differ", () => {
    const ids = [
      map(one(), "json")[0]!.id,
      map(one({ value: "21.6" }), "json")[0]!.id,
      map(one({ ts: "2024-01-01T00:00:00.001Z" }), "json")[0]!.id,
      map(one({ op: "UPDATE" }), "json")[0]!.id,
      map(one(), "json", "178009")[0]!.id,
    ];
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("are stable across block id restarts (block 0 on a new connection is not block 0 of the old one) and replays", () => {
    // The same event arrives as block 7 on connection 1 and, replayed, as block 0 on connection 2; a different event
    // arrives as block 0 on connection 1. Ids depend on neither block id nor position, only on content.
    const first = map(one(), "json")[0]!.id;
    const replayed = map(one({ replay: true }), "json")[0]!.id;
    const otherEventSameBlockId = map(one({ value: "99" }), "json")[0]!.id;
    expect(replayed).toBe(first);
    expect(otherEventSameBlockId).not.toBe(first);
    // Position in the block does not count either: the same event first alone, then second in a two-event block.
    const pair = JSON.stringify({
      Document: { Msg: [JSON.parse(one({ value: "1" })).Document.Msg, JSON.parse(one()).Document.Msg] },
    });
    expect(map(pair, "json")[1]!.id).toBe(first);
  });

  it("do not depend on key order (canonical JSON of the record)", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: "x" } })).toBe('{"a":{"c":"x","d":[2,{"e":0,"f":1}]},"b":1}');
    const a = { topic: "1/DeviceCore/1/0", operation: "UPDATE", timestamp: "t", resource: "DeviceCore", data: { x: 1, y: 2 } };
    const b = { ...a, data: { y: 2, x: 1 } };
    expect(eventId("1", a)).toBe(eventId("1", b));
  });

  it("canonical JSON is JSON.stringify of the record with its keys sorted (ids must not change with the code that spells them)", () => {
    // The spelling before it was made faster: every event id of a replay must equal the original's.
    const reference = (v: unknown): string => {
      if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
      if (Array.isArray(v)) return `[${v.map(reference).join(",")}]`;
      const r = v as Record<string, unknown>;
      const parts = Object.keys(r)
        .sort()
        .filter((k) => r[k] !== undefined)
        .map((k) => `${JSON.stringify(k)}:${reference(r[k])}`);
      return `{${parts.join(",")}}`;
    };
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const leaves: unknown[] = [
      0,
      -0,
      1.5,
      -2e21,
      1e-7,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      true,
      false,
      null,
      undefined,
      "",
      'q"\\\n\u2028é',
      "x",
    ];
    const value = (depth: number): unknown => {
      const r = rnd();
      if (depth > 2 || r < 0.5) return leaves[Math.floor(rnd() * leaves.length)];
      if (r < 0.7) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rnd() * 5); i > 0; i--)
        o[["b", "a", 'k"1', "é", "10", "2", "streamId"][Math.floor(rnd() * 7)]!] = value(depth + 1);
      return o;
    };
    for (let i = 0; i < 500; i++) {
      const v = { root: value(0), n: i };
      expect(canonicalJson(v)).toBe(reference(v));
    }
  });

  it("the batch id is a digest of the event ids", () => {
    const events = map(one(), "json");
    expect(batchIdFor("178008", events)).toBe(batchIdFor("178008", map(one(), "json")));
    expect(batchIdFor("178008", events)).not.toBe(batchIdFor("178008", map(one({ value: "2" }), "json")));
  });
});
