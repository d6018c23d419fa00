import { describe, expect, it } from "vitest";
import { checkMessage, containerMessage, dataMessage, omfHeaders, serializeBody, typeMessage } from "./messages.js";
import { FIRST_CONTAINER, FIRST_DYNAMIC_TYPE } from "./testdata/bodies.js";

describe("omfHeaders", () => {
  it.each(["1.0", "1.1", "1.2"] as const)("sets the OMF headers for version %s", (version) => {
    const h = omfHeaders({ messageType: "data", version, kind: "eds", compressed: false });
    expect(h).toEqual({
      messagetype: "data",
      messageformat: "JSON",
      omfversion: version,
      action: "create",
      "content-type": "application/json",
    });
  });

  it("adds compression only when compressed and X-Requested-With only for PI", () => {
    expect(omfHeaders({ messageType: "type", version: "1.2", kind: "adh", compressed: true })["compression"]).toBe("gzip");
    expect(omfHeaders({ messageType: "type", version: "1.2", kind: "adh", compressed: false })).not.toHaveProperty("compression");
    expect(omfHeaders({ messageType: "type", version: "1.2", kind: "pi", compressed: false })["x-requested-with"]).toBe("XMLHttpRequest");
    expect(omfHeaders({ messageType: "type", version: "1.2", kind: "adh", compressed: false })).not.toHaveProperty("x-requested-with");
    expect(omfHeaders({ messageType: "type", version: "1.2", kind: "eds", compressed: false })).not.toHaveProperty("x-requested-with");
  });

  it("sends Accept-Verbosity only to PI, when configured", () => {
    expect(
      omfHeaders({ messageType: "data", version: "1.2", kind: "pi", compressed: false, acceptVerbosity: "verbose" })["accept-verbosity"],
    ).toBe("verbose");
    expect(
      omfHeaders({ messageType: "data", version: "1.2", kind: "adh", compressed: false, acceptVerbosity: "verbose" }),
    ).not.toHaveProperty("accept-verbosity");
  });

  it("sends the action given and producertoken only before 1.2", () => {
    expect(omfHeaders({ messageType: "container", action: "delete", version: "1.2", kind: "pi", compressed: false })["action"]).toBe(
      "delete",
    );
    expect(omfHeaders({ messageType: "data", version: "1.1", kind: "pi", compressed: false, producerToken: "t" })["producertoken"]).toBe(
      "t",
    );
    expect(omfHeaders({ messageType: "data", version: "1.2", kind: "pi", compressed: false, producerToken: "t" })).not.toHaveProperty(
      "producertoken",
    );
  });
});

describe("serializeBody", () => {
  it("is the JSON array of the message objects", () => {
    const m = typeMessage([FIRST_DYNAMIC_TYPE]);
    expect(JSON.parse(serializeBody(m))).toEqual([FIRST_DYNAMIC_TYPE]);
    expect(serializeBody(dataMessage([{ containerid: "c", values: [{ Timestamp: "2021-04-14T12:00:00.123456Z", v: 1 }] }]))).toBe(
      '[{"containerid":"c","values":[{"Timestamp":"2021-04-14T12:00:00.123456Z","v":1}]}]',
    );
  });
});

describe("checkMessage", () => {
  it("accepts the reference sample's type and container on every version", () => {
    for (const v of ["1.1", "1.2"] as const) {
      expect(checkMessage(typeMessage([FIRST_DYNAMIC_TYPE]), v, "pi")).toEqual([]);
      expect(checkMessage(containerMessage([FIRST_CONTAINER]), v, "pi")).toEqual([]);
    }
  });

  it("names fields that need a newer OMF version", () => {
    // uom is 1.1+, so the sample's FirstDynamicType is not valid OMF 1.0.
    expect(checkMessage(typeMessage([FIRST_DYNAMIC_TYPE]), "1.0")).toEqual(["body[0].properties.IntegerProperty.uom: requires OMF 1.1+"]);
    const t = {
      id: "T",
      classification: "dynamic" as const,
      properties: { v: { type: ["number", "null"] as const, interpolation: "discrete" as const } },
    };
    expect(checkMessage(typeMessage([t]), "1.1")).toEqual(["body[0].properties.v.interpolation: requires OMF 1.2"]);
    expect(checkMessage(typeMessage([t]), "1.0")).toContain("body[0].properties.v.type: nullable types require OMF 1.1+");
    expect(checkMessage(containerMessage([{ id: "c", typeid: "T", datasource: "x" }]), "1.1")).toEqual([
      "body[0].datasource: requires OMF 1.2",
    ]);
    expect(checkMessage(containerMessage([{ id: "c", typeid: "T", indexes: ["x"] }]), "1.0")).toEqual([
      "body[0].indexes: requires OMF 1.1+",
    ]);
  });

  it("rejects reserved type ids, empty bodies, missing ids and targetless data", () => {
    expect(checkMessage(typeMessage([{ id: "__Mine", properties: {} }]), "1.2")).toEqual([
      'body[0].id: must not start with "__" (reserved)',
    ]);
    expect(checkMessage(typeMessage([]), "1.2")).toEqual(["body: must be a non-empty array"]);
    expect(checkMessage(containerMessage([{ id: "", typeid: "T" }]), "1.2")).toEqual(["body[0].id: required"]);
    expect(checkMessage(dataMessage([{ values: [] } as never]), "1.2")).toEqual(["body[0]: needs containerid, typeid or properties"]);
  });

  it("rejects actions the endpoint kind does not support", () => {
    expect(checkMessage(typeMessage([FIRST_DYNAMIC_TYPE], "update"), "1.2", "pi")[0]).toMatch(/^action: update of types/);
    expect(checkMessage(dataMessage([{ containerid: "c", values: [] }], "update"), "1.2", "eds")).toEqual([
      "action: EDS accepts only create and delete",
    ]);
    expect(checkMessage(dataMessage([{ containerid: "c", values: [] }], "update"), "1.1", "pi")).toEqual([
      "action: PI Web API supports data update only with OMF 1.2",
    ]);
    expect(checkMessage(dataMessage([{ containerid: "c", values: [] }], "update"), "1.2", "pi")).toEqual([]);
    expect(checkMessage(typeMessage([{ id: "FirstDynamicType" }], "delete"), "1.2", "pi")).toEqual([]);
  });
});
