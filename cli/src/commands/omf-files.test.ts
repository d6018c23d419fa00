import { OMF_CONTAINERS_JSON, OMF_DATA_JSON, OMF_TYPES_JSON, SEED_CONTAINERS, SEED_TYPES } from "@meridian/fixtures/omf-seed";
import { describe, expect, it } from "vitest";
import { CliError, EXIT } from "../kit/exit.js";
import {
  comparePiPoint,
  compareSdsEvent,
  expectedFrom,
  failureMessage,
  fillPlaceholders,
  hasPlaceholders,
  parseOmfFile,
  parseOmfFiles,
  sendOrder,
} from "./omf-files.js";

const SEED = [
  { path: "OMF-Data.json", text: OMF_DATA_JSON },
  { path: "OMF-Types.json", text: OMF_TYPES_JSON },
  { path: "OMF-Containers.json", text: OMF_CONTAINERS_JSON },
];

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(EXIT.usage);
    return (err as Error).message;
  }
  throw new Error("no error");
}

describe("the seed's files", () => {
  it("are read as program.py loads them: each object's message type from its fields, action create", () => {
    const msgs = parseOmfFiles(SEED, { action: "create" });
    expect(msgs.filter((m) => m.kind === "type").map((m) => m.id)).toEqual(SEED_TYPES.map((t) => t.id));
    expect(msgs.filter((m) => m.kind === "container").map((m) => m.id)).toEqual(SEED_CONTAINERS.map((c) => c.id));
    expect(msgs.filter((m) => m.kind === "data").map((m) => m.id)).toEqual(SEED_CONTAINERS.map((c) => c.id));
    expect(new Set(msgs.map((m) => m.action))).toEqual(new Set(["create"]));
    // The objects are the files' own (descriptions, uom, enums kept).
    expect(msgs.find((m) => m.id === "SecondDynamicType")?.object).toEqual(SEED_TYPES[1]);
  });

  it("are sent types, then containers, then data, whatever order the files come in; deletes containers before types", () => {
    const msgs = parseOmfFiles(SEED, { action: "create" });
    expect(sendOrder(msgs).map((m) => m.kind)).toEqual([...Array(3).fill("type"), ...Array(4).fill("container"), ...Array(4).fill("data")]);
    const del = parseOmfFiles(SEED.slice(1), { action: "delete" });
    expect(sendOrder(del).map((m) => `${m.kind}:${m.id}`)).toEqual([
      ...SEED_CONTAINERS.map((c) => `container:${c.id}`),
      ...SEED_TYPES.map((t) => `type:${t.id}`),
    ]);
  });

  it("fill OMF-Data.json's null placeholders as get_data does: the index a microsecond UTC time, IntegerEnum 1 then 0, StringEnum False then True", () => {
    const msgs = parseOmfFiles(SEED, { action: "create" });
    expect(msgs.filter(hasPlaceholders)).toHaveLength(4);
    const now = new Date("2026-01-02T03:04:05.678Z");
    const first = fillPlaceholders(msgs, 0, now, () => 0.5);
    const second = fillPlaceholders(msgs, 1, now, () => 0.25);
    const value = (ms: typeof first, id: string) =>
      (ms.find((m) => m.kind === "data" && m.id === id)!.object.values as Record<string, unknown>[])[0]!;
    expect(value(first, "FirstContainer")).toEqual({ Timestamp: "2026-01-02T03:04:05.678456Z", IntegerProperty: 50 });
    expect(value(first, "ThirdContainer")).toEqual({
      Timestamp: "2026-01-02T03:04:05.678456Z",
      NumberProperty1: 50,
      NumberProperty2: 50,
      StringEnum: "False",
    });
    expect(value(first, "FourthContainer").IntegerEnum).toBe(1);
    expect(value(second, "ThirdContainer").StringEnum).toBe("True");
    expect(value(second, "FourthContainer").IntegerEnum).toBe(0);
    expect(value(second, "FirstContainer").Timestamp).not.toBe(value(first, "FirstContainer").Timestamp);
    expect(first.filter(hasPlaceholders)).toEqual([]);
  });

  it("refuse to fill a template whose type is not among the files, naming the file, container and what to add", () => {
    const msgs = parseOmfFiles([SEED[0]!, SEED[2]!], { action: "create" });
    const m = usageError(() => fillPlaceholders(msgs, 0));
    expect(m).toContain("OMF-Data.json");
    expect(m).toContain("FirstContainer");
    expect(m).toContain("type FirstDynamicType is not in the files");
  });
});

describe("a file that says its message type and action", () => {
  it("carries an update of data and a delete of a container in one file", () => {
    const text = JSON.stringify([
      {
        messagetype: "data",
        action: "update",
        messages: [{ containerid: "FirstContainer", values: [{ Timestamp: "2026-01-01T00:00:00Z", IntegerProperty: 7 }] }],
      },
      { messagetype: "container", action: "delete", messages: [{ id: "SecondContainer", typeid: "FirstDynamicType" }] },
    ]);
    const msgs = parseOmfFile("mixed.json", text, { action: "create" });
    expect(msgs.map((m) => [m.kind, m.action, m.id])).toEqual([
      ["data", "update", "FirstContainer"],
      ["container", "delete", "SecondContainer"],
    ]);
  });

  it("refuses what is wrong, naming the file and the object", () => {
    expect(usageError(() => parseOmfFile("bad.json", "{ not json", { action: "create" }))).toMatch(/^OMF file bad.json: not JSON/);
    expect(usageError(() => parseOmfFile("empty.json", "[]", { action: "create" }))).toBe("OMF file empty.json: holds no OMF object");
    expect(usageError(() => parseOmfFile("what.json", '[{"id": "x"}]', { action: "create" }))).toContain(
      "OMF file what.json object 0: cannot tell its message type",
    );
    expect(usageError(() => parseOmfFile("c.json", '[{"id": "C1", "typeid": "T"}, {"id": "", "typeid": "T"}]', { action: "create" }))).toBe(
      'OMF file c.json object 1 (container): "id" must be a non-empty string',
    );
    expect(usageError(() => parseOmfFile("d.json", '[{"containerid": "C1", "values": [1]}]', { action: "create" }))).toBe(
      'OMF file d.json object 0 (data for C1): "values" must be an array of objects',
    );
    expect(usageError(() => parseOmfFile("e.json", '{"messagetype": "event", "messages": []}', { action: "create" }))).toContain(
      'messagetype "event" is not one of type, container, data',
    );
  });
});

describe("test.py's comparison", () => {
  const sent = { Timestamp: "2026-01-02T03:04:05.678456Z", NumberProperty1: 12.5, NumberProperty2: 99.25, StringEnum: "True" };

  it("a dotted PI point compares its property; a tampered value is named with both values", () => {
    expect(comparePiPoint("ThirdContainer.NumberProperty1", 12.5, sent)).toEqual([
      { what: "value", name: "ThirdContainer.NumberProperty1", ok: true, expected: "12.5", actual: "12.5" },
    ]);
    const checks = comparePiPoint("ThirdContainer.NumberProperty2", 42, sent);
    expect(checks[0]?.ok).toBe(false);
    expect(failureMessage(checks)).toBe("verify failed: 1 difference\n  ThirdContainer.NumberProperty2: expected 99.25, found 42");
  });

  it("a plain PI point compares every value but Timestamp; a digital state matches by name", () => {
    expect(comparePiPoint("FirstContainer", 7, { Timestamp: "x", IntegerProperty: 7 }).every((c) => c.ok)).toBe(true);
    expect(comparePiPoint("ThirdContainer.StringEnum", { Name: "True", Value: 1 }, sent)[0]?.ok).toBe(true);
  });

  it("an SDS event: every key equal, the index the same instant at 100 ns (SDS writes 7 digits)", () => {
    const event = { ...sent, Timestamp: "2026-01-02T03:04:05.6784560Z" };
    expect(compareSdsEvent("ThirdContainer", event, sent).every((c) => c.ok)).toBe(true);
    const tampered = compareSdsEvent("ThirdContainer", { ...event, StringEnum: "False" }, sent);
    expect(tampered.filter((c) => !c.ok).map((c) => c.name)).toEqual(["ThirdContainer.StringEnum"]);
    const late = compareSdsEvent("ThirdContainer", { ...event, Timestamp: "2026-01-02T03:04:05.6784570Z" }, sent);
    expect(late.filter((c) => !c.ok).map((c) => c.name)).toEqual(["ThirdContainer.Timestamp"]);
  });

  it("expects the last value of each container's data, and only concrete ones", () => {
    const msgs = parseOmfFiles(SEED, { action: "create" });
    expect(expectedFrom(msgs).lastValues.size).toBe(0);
    const filled = fillPlaceholders(msgs, 1);
    const exp = expectedFrom(filled);
    expect(exp.types).toEqual(SEED_TYPES.map((t) => t.id));
    expect(exp.containers).toEqual(SEED_CONTAINERS.map((c) => ({ id: c.id, typeId: c.typeid })));
    expect([...exp.lastValues.keys()]).toEqual(SEED_CONTAINERS.map((c) => c.id));
  });
});
