import { describe, expect, it } from "vitest";
import { OmfInvalidMessageError } from "./errors.js";
import { containerFor, containerIdFor, MAX_ID_LENGTH, type PointShape, sanitizeIdSegment, typeForShape, valueFor } from "./mapping.js";
import { checkMessage, typeMessage } from "./messages.js";

const shape: PointShape = [
  { name: "temperature", kind: "double" },
  { name: "count", kind: "int" },
  { name: "running", kind: "bool" },
  { name: "mode", kind: "string" },
];

const PI_RESERVED = /[*?;{}[\]\\'"|]/;
const SDS_FORBIDDEN = /[/:?#[\]@!$&'()\\*+,;=%<>|]/;
function assertSafeId(id: string) {
  expect(id.length).toBeGreaterThan(0);
  expect(id.length).toBeLessThanOrEqual(MAX_ID_LENGTH);
  expect(id).not.toMatch(PI_RESERVED);
  expect(id).not.toMatch(SDS_FORBIDDEN);
  expect(id).not.toMatch(/^__|^\.|\.$|\.\.|^\s|\s$/);
}

describe("typeForShape", () => {
  it("gives the same id for the same names and kinds, in any order", () => {
    const a = typeForShape(shape);
    const b = typeForShape([...shape].reverse());
    expect(b.typeId).toBe(a.typeId);
    expect(b.type).toEqual(a.type);
    expect(a.typeId).toMatch(/^meridian-[0-9a-f]{16}$/);
    expect(a.typeTag).toBe(a.typeId.slice("meridian-".length, "meridian-".length + 8));
  });

  it("is pinned: a mapping change must be deliberate (new ids strand existing PI points)", () => {
    expect(typeForShape([{ name: "Value", kind: "double" }]).typeId).toMatchInlineSnapshot(`"meridian-47cded045108d015"`);
  });

  it("gives a different id for a different shape or options", () => {
    const base = typeForShape(shape).typeId;
    const variants = [
      typeForShape(shape.map((p) => (p.name === "count" ? { ...p, kind: "double" as const } : p))),
      typeForShape(shape.map((p) => (p.name === "count" ? { ...p, name: "Count" } : p))),
      typeForShape(shape.slice(1)),
      typeForShape(shape, { omfVersion: "1.0" }),
      typeForShape(shape, { intFormat: "int32" }),
      typeForShape(shape, { prefix: "other" }),
    ].map((m) => m.typeId);
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
  });

  it("defines a dynamic type with a date-time index and the OMF type/format of each kind", () => {
    const { type } = typeForShape(shape);
    expect(type).toEqual({
      id: type.id,
      classification: "dynamic",
      type: "object",
      properties: {
        Timestamp: { type: "string", format: "date-time", isindex: true },
        count: { type: ["integer", "null"], format: "int64" },
        mode: { type: ["string", "null"] },
        running: { type: ["boolean", "null"] },
        temperature: { type: ["number", "null"], format: "float64" },
      },
    });
    expect(checkMessage(typeMessage([type]), "1.2", "pi")).toEqual([]);
  });

  it("is not nullable for OMF 1.0 and honours int32", () => {
    const { type } = typeForShape(shape, { omfVersion: "1.0", intFormat: "int32" });
    expect(type.properties?.["count"]).toEqual({ type: "integer", format: "int32" });
    expect(type.properties?.["temperature"]).toEqual({ type: "number", format: "float64" });
    expect(checkMessage(typeMessage([type]), "1.0")).toEqual([]);
  });

  it("sanitises point names into safe, distinct property ids and maps values through them", () => {
    const m = typeForShape([
      { name: "flow[1]", kind: "double" },
      { name: "flow_1_", kind: "double" },
      { name: "timestamp", kind: "string" },
    ]);
    const ids = [...m.propertyIds.values()];
    expect(new Set(ids.map((i) => i.toLowerCase())).size).toBe(3);
    for (const id of ids) assertSafeId(id);
    expect(m.propertyIds.get("flow_1_")).toBe("flow_1_");
    expect(m.propertyIds.get("flow[1]")).toMatch(/^flow_1__[0-9a-f]{8}$/);
    expect(m.propertyIds.get("timestamp")).not.toBe("timestamp");
    const v = valueFor(m, new Date("2026-01-01T00:00:00.000Z"), { "flow[1]": 2.5, timestamp: "t" });
    expect(v).toEqual({
      Timestamp: "2026-01-01T00:00:00.000Z",
      [m.propertyIds.get("flow[1]")!]: 2.5,
      [m.propertyIds.get("timestamp")!]: "t",
    });
  });

  it("rejects empty shapes, bad kinds and case-insensitive duplicate names, naming the field", () => {
    expect(() => typeForShape([])).toThrow("points: at least one point is required");
    expect(() => typeForShape([{ name: "a", kind: "float" as never }])).toThrow("points[0].kind: must be one of double, int, bool, string");
    expect(() =>
      typeForShape([
        { name: "Temp", kind: "double" },
        { name: "temp", kind: "int" },
      ]),
    ).toThrow(OmfInvalidMessageError);
    expect(() =>
      typeForShape([
        { name: "Temp", kind: "double" },
        { name: "temp", kind: "int" },
      ]),
    ).toThrow("points[1].name: duplicates points[0].name");
  });

  it("rejects unknown points and non-UTC timestamps in values", () => {
    const m = typeForShape(shape);
    expect(() => valueFor(m, "2026-01-01T00:00:00Z", { nope: 1 })).toThrow("values.nope: not a point");
    expect(() => valueFor(m, "2026-01-01T00:00:00+02:00", {})).toThrow("timestamp: must be ISO-8601 UTC");
  });
});

describe("container ids", () => {
  const tag = typeForShape(shape).typeTag;

  it("are {platform}.{connection}.{device}.{typeTag} for plain names", () => {
    expect(containerIdFor({ platform: "idigi", connection: "plant-a", device: "00000000-00000000-00409DFF-FF123456" }, tag)).toBe(
      `idigi.plant-a.00000000-00000000-00409DFF-FF123456.${tag}`,
    );
    expect(containerFor({ platform: "p", connection: "c", device: "d" }, typeForShape(shape), { name: "Pump 7" })).toEqual({
      id: `p.c.d.${tag}`,
      typeid: typeForShape(shape).typeId,
      name: "Pump 7",
    });
  });

  it("replace forbidden characters, keep distinct inputs distinct and stay ≤ 100 chars", () => {
    const sources = [
      { platform: "p", connection: "a.b", device: "c" },
      { platform: "p", connection: "a", device: "b.c" },
      { platform: "p", connection: "a_b", device: "c" },
      { platform: "p", connection: "x", device: "dev/1:2?*" },
      { platform: "p", connection: "x", device: "dev_1_2__" },
      { platform: "__sys", connection: " x ", device: ".." },
      { platform: "p", connection: "c", device: "d".repeat(300) },
      { platform: "p", connection: "c", device: `${"d".repeat(299)}e` },
      { platform: "p", connection: "c", device: "ünïcødé ok" },
    ];
    const ids = sources.map((s) => containerIdFor(s, tag));
    for (const id of ids) assertSafeId(id);
    expect(new Set(ids).size).toBe(sources.length);
    // Segments with dots are rewritten (dots separate segments), so a.b|c and a|b.c cannot collide.
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids[8]).toBe(`p.c.ünïcødé ok.${tag}`);
    for (const id of ids) expect(id.endsWith(`.${tag}`)).toBe(true);
  });

  it("are deterministic and reject empty source parts", () => {
    const s = { platform: "p", connection: "c", device: "d/1" };
    expect(containerIdFor(s, tag)).toBe(containerIdFor({ ...s }, tag));
    expect(() => containerIdFor({ platform: "p", connection: " ", device: "d" }, tag)).toThrow(
      "source.connection: must be a non-empty string",
    );
  });

  it("sanitizeIdSegment leaves safe segments alone", () => {
    expect(sanitizeIdSegment("Pump 7-A_b")).toBe("Pump 7-A_b");
    expect(sanitizeIdSegment("a'b")).toMatch(/^a_b_[0-9a-f]{8}$/);
  });
});
