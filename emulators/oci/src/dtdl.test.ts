// biome-ignore-all lint/suspicious/noTemplateCurlyInString: jq expressions are written ${ ... } in plain strings
import { describe, expect, it } from "vitest";
import { AdapterError, DtdlError, defaultAdapter, validateAdapter, validateDtdl } from "./dtdl.js";
import { m5CustomModel, m5DefaultModel, m5Envelope, m5Routes } from "./testdata/m5.js";

function errorOf<E extends Error>(kind: new (...a: never[]) => E, f: () => unknown): E {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(kind);
    return e as E;
  }
  throw new Error(`expected a ${kind.name}`);
}

const spec = (changes: Record<string, unknown>) => ({ ...m5DefaultModel, ...changes });
const content = (c: Record<string, unknown>) => spec({ contents: [c] });

describe("validateDtdl", () => {
  it("reads the M5 model: specUri, displayName, kinds, schemas and Historized", () => {
    const m = validateDtdl(m5CustomModel);
    expect(m.specUri).toBe("dtmi:com:oracle:dev42:m5:env:cust;1");
    expect(m.displayName).toBe("M5 environment");
    expect(m.description).toBeUndefined();
    expect(m.contents.map((c) => [c.name, c.kind, c.historized])).toEqual([
      ["sht_temperature", "Telemetry", true],
      ["qmp_temperature", "Telemetry", true],
      ["humidity", "Telemetry", true],
      ["pressure", "Telemetry", true],
      ["count", "Telemetry", false],
      ["system", "Telemetry", true],
    ]);
    expect(m.contents[4]!.schema).toBe("integer");
    expect(m.contents[5]!.schema).toEqual({ "@type": "Object" });
  });

  it("takes English (or else the first) from a language map, and accepts the v2 context and an @type array", () => {
    const m = validateDtdl(
      spec({
        "@context": "dtmi:dtdl:context;2",
        "@type": ["Interface"],
        displayName: { de: "Umwelt", en: "Environment" },
        description: { fr: "capteur" },
      }),
    );
    expect(m.displayName).toBe("Environment");
    expect(m.description).toBe("capteur");
    expect(validateDtdl(spec({ contents: undefined })).contents).toEqual([]);
  });

  it("takes the first of the five kinds in @type as the kind", () => {
    const m = validateDtdl(
      spec({
        contents: [
          { "@type": ["Historized", "Property"], name: "mode", schema: { "@type": "Enum", valueSchema: "string", enumValues: [] } },
          { "@type": "Command", name: "reboot" },
          { "@type": "Relationship", name: "feeds" },
          { "@type": "Component", name: "sub", schema: "dtmi:com:example:sub;1" },
        ],
      }),
    );
    expect(m.contents.map((c) => c.kind)).toEqual(["Property", "Command", "Relationship", "Component"]);
    expect(m.contents[0]!.historized).toBe(true);
  });

  it.each([
    ["not an object", [], "spec"],
    ["no @context", { ...m5DefaultModel, "@context": undefined }, 'spec["@context"]'],
    ["a foreign @context", spec({ "@context": ["dtmi:dtdl:context;1"] }), 'spec["@context"]'],
    ["not an Interface", spec({ "@type": "Telemetry" }), 'spec["@type"]'],
    ["no @id", spec({ "@id": undefined }), 'spec["@id"]'],
    ["an @id without a version", spec({ "@id": "dtmi:com:oracle:m5" }), 'spec["@id"]'],
    ["an @id segment ending in _", spec({ "@id": "dtmi:com:oracle_;1" }), 'spec["@id"]'],
    ["contents not an array", spec({ contents: {} }), "spec.contents"],
    ["a content without @type", content({ name: "x", schema: "double" }), 'spec.contents[0]["@type"]'],
    ["a content of no known kind", content({ "@type": ["Historized"], name: "x" }), 'spec.contents[0]["@type"]'],
    ["a content without a name", content({ "@type": "Telemetry", schema: "double" }), "spec.contents[0].name"],
    ["a name starting with a digit", content({ "@type": "Telemetry", name: "1x", schema: "double" }), "spec.contents[0].name"],
    ["a name longer than 64", content({ "@type": "Telemetry", name: "a".repeat(65), schema: "double" }), "spec.contents[0].name"],
    ["Telemetry without schema", content({ "@type": "Telemetry", name: "x" }), "spec.contents[0].schema"],
    ["an unknown primitive", content({ "@type": "Property", name: "x", schema: "decimal128" }), "spec.contents[0].schema"],
    [
      "a schema object of no known type",
      content({ "@type": "Property", name: "x", schema: { "@type": "Blob" } }),
      'spec.contents[0].schema["@type"]',
    ],
    ["displayName a number", spec({ displayName: 5 }), "spec.displayName"],
  ])("refuses %s, naming the path", (_what, input, path) => {
    const e = errorOf(DtdlError, () => validateDtdl(input));
    expect(e.path).toBe(path);
    expect(e.message.startsWith(`${path}: `)).toBe(true);
  });

  it("refuses a duplicate content name at the second occurrence", () => {
    const dup = spec({ contents: [...m5DefaultModel.contents, { "@type": "Telemetry", name: "count", schema: "long" }] });
    const e = errorOf(DtdlError, () => validateDtdl(dup));
    expect(e.message).toBe('spec.contents[5].name: duplicate name "count"');
  });

  it("says 'required' for a missing name, as in spec.contents[2].name: required", () => {
    const contents = [...m5DefaultModel.contents];
    contents[2] = { "@type": "Telemetry", schema: "double" } as never;
    expect(() => validateDtdl(spec({ contents }))).toThrow("spec.contents[2].name: required");
  });
});

describe("defaultAdapter", () => {
  it("synthesizes the envelope and one catch-all identity route from the Telemetry and Property contents", () => {
    const { contents } = validateDtdl(
      spec({
        contents: [
          ...m5DefaultModel.contents,
          { "@type": "Property", name: "label", schema: "string" },
          { "@type": "Property", name: "on", schema: "boolean" },
          { "@type": "Command", name: "reboot" },
        ],
      }),
    );
    const a = defaultAdapter(contents);
    expect(a.inboundEnvelope).toEqual({
      referenceEndpoint: "/",
      referencePayload: {
        dataFormat: "JSON",
        data: { sht_temperature: 0, qmp_temperature: 0, humidity: 0, pressure: 0, count: 0, label: "", on: false, time: 0 },
      },
      envelopeMapping: { timeObserved: "$.time" },
    });
    expect(a.inboundRoutes).toEqual([
      {
        condition: "*",
        payloadMapping: {
          "$.sht_temperature": "$.sht_temperature",
          "$.qmp_temperature": "$.qmp_temperature",
          "$.humidity": "$.humidity",
          "$.pressure": "$.pressure",
          "$.count": "$.count",
          "$.label": "$.label",
          "$.on": "$.on",
        },
      },
    ]);
    expect(() => validateAdapter(a.inboundEnvelope, a.inboundRoutes, contents)).not.toThrow();
  });
});

describe("validateAdapter", () => {
  const { contents } = validateDtdl(m5CustomModel);

  it("accepts the M5 custom envelope and routes, and absent ones", () => {
    expect(() => validateAdapter(m5Envelope, m5Routes, contents)).not.toThrow();
    expect(() => validateAdapter(undefined, undefined, contents)).not.toThrow();
    expect(() => validateAdapter(null, [{ condition: "*" }], contents)).not.toThrow();
  });

  it("names the unknown content a payloadMapping target writes into", () => {
    const routes = [m5Routes[0], { condition: "*", payloadMapping: { "$.x.y": "$.x" } }];
    const e = errorOf(AdapterError, () => validateAdapter(m5Envelope, routes, contents));
    expect(e.field).toBe('inboundRoutes[1].payloadMapping["$.x.y"]');
    expect(e.message).toContain('"x" is not a content of the model');
  });

  it.each([
    ["an envelope that is not an object", "x", undefined, "inboundEnvelope"],
    ["an envelope without referenceEndpoint", { envelopeMapping: {} }, undefined, "inboundEnvelope.referenceEndpoint"],
    [
      "a non-JSON referencePayload",
      { referenceEndpoint: "/", referencePayload: { dataFormat: "XML" } },
      undefined,
      "inboundEnvelope.referencePayload",
    ],
    [
      "a timeObserved outside the subset",
      { referenceEndpoint: "/", envelopeMapping: { timeObserved: "${.t | todate}" } },
      undefined,
      "inboundEnvelope.envelopeMapping.timeObserved",
    ],
    ["routes that are not an array", undefined, {}, "inboundRoutes"],
    ["more than 128 routes", undefined, Array.from({ length: 129 }, () => ({ condition: "*" })), "inboundRoutes"],
    ["a route without condition", undefined, [{ payloadMapping: {} }], "inboundRoutes[0].condition"],
    ["a condition that does not compile", undefined, [{ condition: "${endpoint(3) = 1}" }], "inboundRoutes[0].condition"],
    ["a payloadMapping that is an array", undefined, [{ condition: "*", payloadMapping: [] }], "inboundRoutes[0].payloadMapping"],
    [
      "a target that is not a JsonPath",
      undefined,
      [{ condition: "*", payloadMapping: { count: "$.count" } }],
      'inboundRoutes[0].payloadMapping["count"]',
    ],
    ["a target of the root", undefined, [{ condition: "*", payloadMapping: { $: "$.count" } }], 'inboundRoutes[0].payloadMapping["$"]'],
    [
      "a value that does not compile",
      undefined,
      [{ condition: "*", payloadMapping: { "$.count": "${.a[]}" } }],
      'inboundRoutes[0].payloadMapping["$.count"]',
    ],
    [
      "a value that is not a string",
      undefined,
      [{ condition: "*", payloadMapping: { "$.count": 5 } }],
      'inboundRoutes[0].payloadMapping["$.count"]',
    ],
  ])("refuses %s, naming the field", (_what, envelope, routes, field) => {
    const e = errorOf(AdapterError, () => validateAdapter(envelope, routes, contents));
    expect(e.field).toBe(field);
    expect(e.message.startsWith(`${field}: `)).toBe(true);
  });
});
