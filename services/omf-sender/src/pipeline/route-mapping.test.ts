import { describe, expect, it } from "vitest";
import { convertValue, MAX_MAPPING_BYTES, parseRouteMapping, renderTemplate } from "./route-mapping.js";

const POWER = {
  id: "PowerType",
  classification: "dynamic",
  type: "object",
  properties: {
    Timestamp: { type: "string", format: "date-time", isindex: true },
    Watts: { type: "number", format: "float64", uom: "W" },
    Count: { type: "integer", format: "int16" },
    Status: { type: "string", enum: ["False", "True"] },
  },
};
const DEVICE = {
  id: "Device",
  classification: "static",
  type: "object",
  properties: { DeviceId: { type: "string", isindex: true, isname: true }, Status: { type: "string" } },
};
const good = {
  types: [POWER, DEVICE],
  containers: [{ id: "{connection}.{device}.power", typeid: "PowerType", properties: { Watts: "power", Count: { point: "n" } } }],
  static: [
    {
      typeid: "Device",
      when: { "idigi.resource": "DeviceCore" },
      properties: { DeviceId: { template: "{device}" }, Status: { attribute: "connectionStatus" } },
    },
  ],
};
const problemsOf = (m: unknown) => parseRouteMapping(typeof m === "string" ? m : JSON.stringify(m)).problems;

describe("parseRouteMapping (route option omfMapping)", () => {
  it("accepts dynamic and static user types, container templates and value sources", () => {
    const { mapping, problems } = parseRouteMapping(JSON.stringify(good));
    expect(problems).toEqual([]);
    expect(mapping!.containers[0]).toMatchObject({ id: "{connection}.{device}.power", indexName: "Timestamp", readsEvent: true });
    expect(mapping!.statics[0]).toMatchObject({ indexName: "DeviceId", when: [["idigi.resource", "DeviceCore"]] });
    expect(mapping!.unmapped).toBe("skip");
  });

  it("names the option and the field of each problem", () => {
    expect(problemsOf("{not json")).toEqual([expect.stringMatching(/^options\.omfMapping: not JSON/)]);
    expect(problemsOf({ ...good, containers: [{ ...good.containers[0], typeid: "Nope" }] })).toEqual([
      'options.omfMapping.containers[0].typeid: "Nope" is not one of types[].id',
    ]);
    expect(problemsOf({ ...good, containers: [{ ...good.containers[0], properties: { Volts: "v" } }] })).toEqual([
      'options.omfMapping.containers[0].properties.Volts: not a property of type "PowerType"',
    ]);
    expect(problemsOf({ ...good, containers: [{ ...good.containers[0], id: "{site}.x" }] })).toEqual([
      "options.omfMapping.containers[0].id: unknown placeholder {site} (known: {platform}, {connection}, {device})",
    ]);
    expect(problemsOf({ ...good, containers: [{ ...good.containers[0], typeid: "Device" }] })).toContain(
      'options.omfMapping.containers[0].typeid: "Device" is static; containers need a dynamic type',
    );
    expect(problemsOf({ ...good, static: [{ typeid: "Device", properties: { Status: "s" } }] })).toEqual([
      "options.omfMapping.static[0].properties.DeviceId: required (the static type's index names the instance)",
    ]);
    expect(problemsOf({ ...good, containers: [{ ...good.containers[0], properties: { Timestamp: "t" } }] })).toEqual([
      "options.omfMapping.containers[0].properties.Timestamp: the index is the event's observed time, not mapped",
    ]);
    expect(problemsOf({ ...good, containers: [{ ...good.containers[0], id: "a/{device}" }] })).toEqual([
      'options.omfMapping.containers[0].id: "a/{device}" holds characters PI or SDS refuse in an id',
    ]);
    expect(problemsOf({ ...good, unmapped: "drop" })).toEqual(["options.omfMapping.unmapped: must be skip or generated"]);
    expect(problemsOf({ ...good, extra: 1 })).toEqual([
      "options.omfMapping.extra: unknown field (known: types, containers, static, unmapped)",
    ]);
    expect(problemsOf({ types: [POWER] })).toEqual(["options.omfMapping: needs containers and/or static"]);
  });

  it("checks the type definitions as PI and SDS would: one index of the right kind, scalar properties, safe ids", () => {
    const noIndex = { ...POWER, properties: { Watts: { type: "number" } } };
    expect(problemsOf({ types: [noIndex], containers: [] })).toContain(
      "options.omfMapping.types[0].properties: exactly one property must have isindex: true (found 0)",
    );
    const badIndex = { ...POWER, properties: { ...POWER.properties, Timestamp: { type: "string", isindex: true } } };
    expect(problemsOf({ types: [badIndex], containers: [] })).toContain(
      "options.omfMapping.types[0].properties.Timestamp: the index of a dynamic type must be a string of format date-time (the event's observed time)",
    );
    const arrays = { ...POWER, properties: { ...POWER.properties, List: { type: "array", items: { type: "number" } } } };
    expect(problemsOf({ types: [arrays], containers: [] })).toContain(
      "options.omfMapping.types[0].properties.List.type: must be integer, number, string or boolean (nullable allowed) in a route mapping",
    );
    const badFormat = { ...POWER, properties: { ...POWER.properties, Count: { type: "integer", format: "float32" } } };
    expect(problemsOf({ types: [badFormat], containers: [] })).toContain(
      'options.omfMapping.types[0].properties.Count.format: "float32" is not a format of integer',
    );
    expect(problemsOf({ types: [{ ...POWER, id: "__Link" }], containers: [] })).toContain(
      'options.omfMapping.types[0].id: must not start with "__" (reserved)',
    );
    expect(problemsOf({ types: [POWER, { ...POWER, id: "powertype" }], containers: [] })).toContain(
      'options.omfMapping.types[1].id: "powertype" is defined twice (ids are case-insensitive on PI and SDS)',
    );
    const nullable = { ...POWER, properties: { ...POWER.properties, Watts: { type: ["number", "null"], format: "float64" } } };
    expect(problemsOf({ types: [nullable], containers: [] })).toEqual([]);
  });

  it("is bounded in size", () => {
    expect(problemsOf(" ".repeat(MAX_MAPPING_BYTES + 1))).toEqual([`options.omfMapping: at most ${MAX_MAPPING_BYTES} bytes`]);
  });
});

describe("renderTemplate", () => {
  it("puts the source in, made safe for an id where it is one", () => {
    const src = { platform: "idigi", connection: "acct 7", device: "00000000-00000000-00409DFF-FF5E11A2" };
    expect(renderTemplate("{platform}.{device}.power", src, true)).toBe("idigi.00000000-00000000-00409DFF-FF5E11A2.power");
    expect(renderTemplate("{connection}/{device}", { ...src, device: "a/b" }, false)).toBe("acct 7/a/b");
    expect(renderTemplate("x.{device}", { ...src, device: "a/b" }, true)).toMatch(/^x\.a_b_[0-9a-f]{8}$/);
  });
});

describe("convertValue (to the property's OMF type)", () => {
  const int32 = { type: "integer", format: "int32" } as const;
  it("a double into an integer property: whole numbers pass, a fraction is refused, never rounded", () => {
    expect(convertValue({ kind: "double", value: 3 }, int32)).toEqual({ value: 3 });
    expect(convertValue({ kind: "double", value: 3.5 }, int32)).toEqual({
      problem: "double 3.5 does not fit integer (int32): not a whole number (values are never rounded)",
    });
    expect(convertValue({ kind: "int", value: 40_000n }, { type: "integer", format: "int16" })).toEqual({
      problem: "int 40000 does not fit integer (int16): out of range -32768..32767",
    });
    expect(convertValue({ kind: "int", value: -1n }, { type: "integer", format: "uint16" })).toMatchObject({ problem: /out of range/ });
    // Without a format OMF's default integer is int32.
    expect(convertValue({ kind: "int", value: 2n ** 31n }, { type: "integer" })).toMatchObject({ problem: /int32|out of range/ });
  });

  it("numbers, booleans and strings: what converts and what is refused", () => {
    const number = { type: "number", format: "float64" } as const;
    expect(convertValue({ kind: "int", value: 7n }, number)).toEqual({ value: 7 });
    expect(convertValue({ kind: "string", value: " 21.5 " }, number)).toEqual({ value: 21.5 });
    expect(convertValue({ kind: "string", value: "warm" }, number)).toMatchObject({ problem: /not a number/ });
    expect(convertValue({ kind: "bool", value: true }, number)).toMatchObject({ problem: /not a number/ });
    expect(convertValue({ kind: "bool", value: true }, int32)).toEqual({ value: 1 });
    expect(convertValue({ kind: "string", value: "12" }, int32)).toEqual({ value: 12 });
    expect(convertValue({ kind: "string", value: "TRUE" }, { type: "boolean" })).toEqual({ value: true });
    expect(convertValue({ kind: "int", value: 2n }, { type: "boolean" })).toMatchObject({ problem: /not true or false/ });
    expect(convertValue({ kind: "double", value: 1.25 }, { type: "string" })).toEqual({ value: "1.25" });
    expect(convertValue({ kind: "string", value: "x" }, { type: ["string", "null"] })).toEqual({ value: "x" });
  });

  it("an enum takes its own spelling, and refuses what it does not list", () => {
    const e = { type: "string", enum: ["False", "True"] } as const;
    expect(convertValue({ kind: "bool", value: true }, e)).toEqual({ value: "True" });
    expect(convertValue({ kind: "string", value: "maybe" }, e)).toMatchObject({ problem: /not one of the enum/ });
    expect(convertValue({ kind: "int", value: 2n }, { type: "integer", format: "int16", enum: [0, 1] })).toMatchObject({
      problem: /not one of the enum/,
    });
  });
});
