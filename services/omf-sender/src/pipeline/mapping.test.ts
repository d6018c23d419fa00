import { create } from "@bufbuild/protobuf";
import { makeBatch } from "@meridian/bus";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import { OmfInvalidMessageError } from "../platform/index.js";
import { EventMapper, isoTime } from "./mapping.js";
import { parseRouteMapping, RouteMappingError } from "./route-mapping.js";

describe("isoTime (the OMF index)", () => {
  it("keeps the observed time to the 100 ns tick, trailing zeros trimmed, the same for the same timestamp", () => {
    expect(isoTime({ seconds: 1767225600n, nanos: 0 } as never)).toBe("2026-01-01T00:00:00Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 5_000_000 } as never)).toBe("2026-01-01T00:00:00.005Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 123_456_700 } as never)).toBe("2026-01-01T00:00:00.1234567Z");
    expect(() => isoTime({ seconds: 10n ** 15n, nanos: 0 } as never)).toThrow(/observed_time/);
  });

  it("truncates nanoseconds to 7 fractional digits, never rounding into the next tick or second", () => {
    expect(isoTime({ seconds: 1767225600n, nanos: 123_456_789 } as never)).toBe("2026-01-01T00:00:00.1234567Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 999_999_999 } as never)).toBe("2026-01-01T00:00:00.9999999Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 100_000_050 } as never)).toBe("2026-01-01T00:00:00.1Z");
    // Under one tick: nothing of the fraction is kept, as for a whole second.
    expect(isoTime({ seconds: 1767225600n, nanos: 99 } as never)).toBe("2026-01-01T00:00:00Z");
  });
});

describe("EventMapper.mapBatch", () => {
  const source = { platform: Platform.IDIGI, connection: "7", device: "dev-1" };
  const observedTime = { seconds: 1767225600n, nanos: 123_456_789 };

  it("indexes each value by its observed time to the 100 ns tick, and counts events without points as skipped", () => {
    const mapper = new EventMapper({ omfVersion: "1.2", intFormat: "int64" });
    const { groups, skipped } = mapper.mapBatch(
      makeBatch("b-1", [
        create(TelemetryEventSchema, {
          id: "with-point",
          source,
          observedTime,
          points: [{ name: "temperature", value: { case: "doubleValue", value: 21.5 } }],
        }),
        create(TelemetryEventSchema, {
          id: "device-core",
          source,
          observedTime,
          points: [],
          attributes: { "idigi.resource": "DeviceCore" },
        }),
      ]),
    );
    expect(skipped).toBe(1);
    const values = [...groups.values()].flatMap((g) => g.values);
    expect(values).toEqual([{ Timestamp: "2026-01-01T00:00:00.1234567Z", temperature: 21.5 }]);
  });
});

describe("EventMapper.mapBatch with a route mapping (omfMapping)", () => {
  const source = { platform: Platform.IDIGI, connection: "acct-7", device: "dev-1" };
  const observedTime = { seconds: 1767225600n, nanos: 500_000_000 };
  const mappingText = JSON.stringify({
    types: [
      {
        id: "PowerType",
        classification: "dynamic",
        properties: {
          Timestamp: { type: "string", format: "date-time", isindex: true },
          Watts: { type: "number", format: "float64" },
          Count: { type: "integer", format: "int32" },
          Site: { type: "string" },
        },
      },
      {
        id: "Device",
        classification: "static",
        properties: { DeviceId: { type: "string", isindex: true }, Status: { type: "string" } },
      },
    ],
    containers: [
      {
        id: "{platform}.{device}.power",
        typeid: "PowerType",
        name: "{device} power",
        properties: { Watts: "power", Count: "n", Site: { template: "{connection}" } },
      },
    ],
    static: [
      {
        typeid: "Device",
        when: { "idigi.resource": "DeviceCore" },
        properties: { DeviceId: { template: "{device}" }, Status: { attribute: "connectionStatus" } },
      },
    ],
  });
  const mapperWith = (text: string) => {
    const { mapping, problems } = parseRouteMapping(text);
    expect(problems).toEqual([]);
    return new EventMapper({ omfVersion: "1.2", intFormat: "int64", mapping });
  };
  const point = (name: string, value: TelemetryEvent["points"][number]["value"]) => ({ name, value });
  const reading = (id: string, points: ReturnType<typeof point>[]) => create(TelemetryEventSchema, { id, source, observedTime, points });
  const deviceCore = create(TelemetryEventSchema, {
    id: "core",
    source,
    observedTime,
    attributes: { "idigi.resource": "DeviceCore", connectionStatus: "1" },
  });

  it("writes mapped points into the user's container and properties, and DeviceCore records as static instances", () => {
    const { groups, skipped } = mapperWith(mappingText).mapBatch(
      makeBatch("b-1", [
        reading("r-1", [
          point("power", { case: "doubleValue", value: 230.5 }),
          point("n", { case: "doubleValue", value: 4 }),
          point("ignored", { case: "boolValue", value: true }),
        ]),
        deviceCore,
      ]),
    );
    expect(skipped).toBe(0);
    const power = groups.get("idigi.dev-1.power")!;
    expect(power.container).toEqual({ id: "idigi.dev-1.power", typeid: "PowerType", name: "dev-1 power" });
    expect(power.values).toEqual([{ Timestamp: "2026-01-01T00:00:00.5Z", Watts: 230.5, Count: 4, Site: "acct-7" }]);
    expect(power.mapping.type.id).toBe("PowerType");
    const statics = [...groups.values()].filter((g) => !g.container);
    expect(statics).toHaveLength(1);
    expect(statics[0]!.mapping.typeId).toBe("Device");
    expect(statics[0]!.values).toEqual([{ DeviceId: "dev-1", Status: "1" }]);
  });

  it("counts an event no entry writes as skipped, unless unmapped points go to the generated types", () => {
    const other = reading("r-2", [point("humidity", { case: "doubleValue", value: 40 })]);
    const bare = create(TelemetryEventSchema, { id: "file", source, observedTime, attributes: { "idigi.resource": "FileDataCore" } });
    const skip = mapperWith(mappingText).mapBatch(makeBatch("b-2", [other, bare]));
    expect(skip.skipped).toBe(2);
    expect(skip.groups.size).toBe(0);
    const generated = mapperWith(JSON.stringify({ ...JSON.parse(mappingText), unmapped: "generated" })).mapBatch(
      makeBatch("b-3", [
        other,
        bare,
        reading("r-3", [point("power", { case: "doubleValue", value: 1 }), point("humidity", { case: "doubleValue", value: 2 })]),
      ]),
    );
    expect(generated.skipped).toBe(1);
    const values = [...generated.groups.values()].map((g) => [g.container?.typeid, g.values]);
    expect(values).toContainEqual(["PowerType", [{ Timestamp: "2026-01-01T00:00:00.5Z", Watts: 1, Site: "acct-7" }]]);
    // humidity of both events goes to a generated type; power, already mapped, does not.
    const generatedValues = [...generated.groups.values()]
      .filter((g) => g.container?.typeid.startsWith("meridian-"))
      .flatMap((g) => g.values);
    expect(generatedValues).toEqual([
      { Timestamp: "2026-01-01T00:00:00.5Z", humidity: 40 },
      { Timestamp: "2026-01-01T00:00:00.5Z", humidity: 2 },
    ]);
  });

  it("refuses (dead-letters) a message whose double does not fit the integer property, naming the event and the field", () => {
    const mapper = mapperWith(mappingText);
    const batch = makeBatch("b-4", [reading("r-4", [point("n", { case: "doubleValue", value: 3.5 })])]);
    expect(() => mapper.mapBatch(batch)).toThrow(OmfInvalidMessageError);
    expect(() => mapper.mapBatch(batch)).toThrow(
      "events[0] (r-4): options.omfMapping.containers[0].properties.Count: double 3.5 does not fit integer (int32): not a whole number (values are never rounded)",
    );
  });

  it("holds every message of a route whose mapping is unusable (retried later, never written with generated types)", () => {
    const mapper = new EventMapper({ omfVersion: "1.2", intFormat: "int64", mappingProblem: "options.omfMapping.types: required" });
    const batch = makeBatch("b-5", [reading("r-5", [point("power", { case: "doubleValue", value: 1 })])]);
    expect(() => mapper.mapBatch(batch)).toThrow(RouteMappingError);
    try {
      mapper.mapBatch(batch);
    } catch (err) {
      expect((err as RouteMappingError).retryAfterMs).toBe(30_000);
      expect((err as Error).message).toMatch(/route option omfMapping: options\.omfMapping\.types: required/);
    }
  });
});

describe("EventMapper with a mapping for an endpoint that keeps no static data (ADH, EDS)", () => {
  it("writes no static instance and counts an event only a static entry takes as skipped", () => {
    const { mapping } = parseRouteMapping(
      JSON.stringify({
        types: [{ id: "Device", classification: "static", properties: { DeviceId: { type: "string", isindex: true } } }],
        static: [{ typeid: "Device", when: { "idigi.resource": "DeviceCore" }, properties: { DeviceId: { template: "{device}" } } }],
      }),
    );
    const core = create(TelemetryEventSchema, {
      id: "core",
      source: { platform: Platform.IDIGI, connection: "7", device: "dev-1" },
      observedTime: { seconds: 1767225600n, nanos: 0 },
      attributes: { "idigi.resource": "DeviceCore" },
    });
    const pi = new EventMapper({ omfVersion: "1.2", intFormat: "int64", mapping }).mapBatch(makeBatch("b", [core]));
    expect(pi).toMatchObject({ skipped: 0 });
    expect([...pi.groups.values()].map((g) => g.values)).toEqual([[{ DeviceId: "dev-1" }]]);
    const sds = new EventMapper({ omfVersion: "1.2", intFormat: "int64", mapping, staticData: false }).mapBatch(makeBatch("b", [core]));
    expect(sds.skipped).toBe(1);
    expect(sds.groups.size).toBe(0);
  });
});

describe("EventMapper's cached layouts", () => {
  const source = { platform: Platform.IDIGI, connection: "7", device: "dev-1" };
  /** The reference: the original formula (toISOString, 9 digits cut to 7, zeros trimmed). */
  const reference = (seconds: bigint, nanos: number) => {
    const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
    const f = String(nanos).padStart(9, "0").slice(0, 7).replace(/0+$/, "");
    return f === "" ? `${base}Z` : `${base}.${f}Z`;
  };

  it("isoTime equals the reference formula for random times, across changes of second", () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 2000; i++) {
      const seconds = BigInt(1_700_000_000 + Math.floor(rnd() * 3));
      const nanos = [0, 99, 100, 5_000_000, 999_999_999][i % 5]! + (i % 3 === 0 ? Math.floor(rnd() * 999_999) : 0);
      const t = { seconds, nanos: Math.min(nanos, 999_999_999) };
      expect(isoTime(t as never), `${t.seconds}s ${t.nanos}ns`).toBe(reference(t.seconds, t.nanos));
    }
  });

  it("events of different layouts (order, repeated names, points without a value) map as each alone would", () => {
    const observedTime = { seconds: 1767225600n, nanos: 0 };
    const layouts = [
      [
        { name: "a", value: { case: "doubleValue" as const, value: 1.5 } },
        { name: "b", value: { case: "intValue" as const, value: 7n } },
      ],
      [
        { name: "b", value: { case: "intValue" as const, value: 8n } },
        { name: "a", value: { case: "doubleValue" as const, value: Number.NaN } },
      ],
      [
        { name: "a", value: { case: "doubleValue" as const, value: 2 } },
        { name: "A", value: { case: "boolValue" as const, value: true } },
        { name: "c", value: { case: undefined } },
      ],
      [{ name: "a", value: { case: "stringValue" as const, value: "x" } }],
    ];
    const events = [0, 1, 2, 3, 0, 2, 1, 3].map((k, i) =>
      create(TelemetryEventSchema, { id: `e${i}`, source, observedTime: { ...observedTime, nanos: i * 1000 }, points: layouts[k]! }),
    );
    const together = new EventMapper({ omfVersion: "1.2", intFormat: "int64" }).mapBatch(makeBatch("b", events));
    const alone = events.map((e) => new EventMapper({ omfVersion: "1.2", intFormat: "int64" }).mapBatch(makeBatch("b", [e])));
    const flat = (groups: Map<string, { values: unknown[] }>) => [...groups].flatMap(([id, g]) => g.values.map((v) => [id, v]));
    const expected = alone.flatMap((m) => flat(m.groups)).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
    expect(flat(together.groups).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))).toEqual(expected);
    // Same layout in another order: the same type, so the same container.
    expect(together.groups.size).toBe(3);
    expect(flat(together.groups)).toContainEqual([expect.any(String), { Timestamp: "2026-01-01T00:00:00.000001Z", b: 8, a: null }]);
  });
});
