import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { create, fromBinary } from "@bufbuild/protobuf";
import { CodeGeneratorRequestSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firstSentence } from "./document.js";
import { openApiPlugin, parseOptions } from "./plugin.js";
import { commentText } from "./schema.js";

const root = join(import.meta.dirname, "..", "..", "..");
// biome-ignore lint/suspicious/noExplicitAny: the generated document is read as plain JSON, path by path
type Json = Record<string, any>;

/**
 * src/testdata/kinds/v1/kinds.proto compiled by buf (as `npm run generate` does, source info and all) with the
 * imports it needs from proto/, then handed to the plugin as buf would.
 */
function compile(parameter: string): Json {
  const image = join(work, "image.binpb");
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(image));
  const request = create(CodeGeneratorRequestSchema, { fileToGenerate: ["kinds/v1/kinds.proto"], protoFile: set.file, parameter });
  const response = openApiPlugin.run(request);
  expect(response.file).toHaveLength(1);
  return { name: response.file[0]!.name, doc: JSON.parse(response.file[0]!.content) };
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "openapi-plugin-"));
  const copy = (from: string, to: string) => {
    mkdirSync(dirname(join(work, to)), { recursive: true });
    cpSync(from, join(work, to));
  };
  copy(join(import.meta.dirname, "testdata", "kinds", "v1", "kinds.proto"), "kinds/v1/kinds.proto");
  copy(join(root, "proto", "meridian", "auth", "v1", "access.proto"), "meridian/auth/v1/access.proto");
  copy(join(root, "proto", "third_party", "google", "api", "field_behavior.proto"), "google/api/field_behavior.proto");
  writeFileSync(join(work, "buf.yaml"), "version: v2\n");
  execFileSync(join(root, "node_modules", ".bin", "buf"), ["build", "-o", "image.binpb"], { cwd: work, stdio: "pipe" });
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the document of a service", () => {
  let doc: Json;
  let thing: Json;
  beforeAll(() => {
    const out = compile("packages=kinds.");
    expect(out.name).toBe("meridian.openapi.json");
    doc = out.doc;
    thing = doc.components.schemas["kinds.v1.Thing"];
  });

  it("is OpenAPI 3.1 with relative servers, bearer security and the Connect error schema", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers).toEqual([{ url: "/" }]);
    expect(doc.security).toEqual([{ bearer: [] }]);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.components.schemas["connect.error"].properties.code.enum).toContain("invalid_argument");
    expect(doc.tags).toEqual([{ name: "kinds.v1.KindsService", description: "Every kind of field the document maps." }]);
  });

  it("has POST /<package>.<Service>/<Method> per RPC with operationId, tag, summary and description from comments, role", () => {
    const get = doc.paths["/kinds.v1.KindsService/GetThing"].post;
    expect(get.operationId).toBe("KindsService_GetThing");
    expect(get.tags).toEqual(["kinds.v1.KindsService"]);
    expect(get.summary).toBe("Reads one thing.");
    expect(get.description).toContain("Reads one thing. Nothing changes.\n\nA second paragraph.");
    expect(get.description).toContain("Requires the role `platform:read`.");
    expect(get["x-meridian-role"]).toBe("platform:read");
    expect(get.requestBody.content["application/json"].schema).toEqual({ $ref: "#/components/schemas/kinds.v1.GetThingRequest" });
    expect(get.responses["200"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/kinds.v1.Thing" });
    expect(get.responses.default.content["application/json"].schema).toEqual({ $ref: "#/components/schemas/connect.error" });
    // No comment: the method's name is the summary.
    expect(doc.paths["/kinds.v1.KindsService/PutThing"].post.summary).toBe("PutThing");
  });

  it("has GET (Connect GET) only for NO_SIDE_EFFECTS methods, with encoding and the message as JSON in the query", () => {
    const get = doc.paths["/kinds.v1.KindsService/GetThing"].get;
    expect(get.operationId).toBe("KindsService_GetThing_get");
    const params = Object.fromEntries(get.parameters.map((p: Json) => [p.name, p]));
    expect(params.encoding).toMatchObject({ in: "query", required: true, schema: { enum: ["json"] } });
    expect(params.message).toMatchObject({
      in: "query",
      required: true,
      content: { "application/json": { schema: { $ref: "#/components/schemas/kinds.v1.GetThingRequest" } } },
    });
    expect(doc.paths["/kinds.v1.KindsService/PutThing"].get).toBeUndefined();
    expect(doc.paths["/kinds.v1.KindsService/WatchThings"].get).toBeUndefined();
  });

  it("marks server streams and documents the application/connect+json envelope", () => {
    const watch = doc.paths["/kinds.v1.KindsService/WatchThings"].post;
    expect(watch["x-meridian-streaming"]).toBe("server_streaming");
    expect(watch["x-meridian-request-schema"]).toBe("#/components/schemas/kinds.v1.GetThingRequest");
    expect(watch["x-meridian-response-schema"]).toBe("#/components/schemas/kinds.v1.Thing");
    expect(Object.keys(watch.requestBody.content)).toEqual(["application/connect+json"]);
    expect(watch.description).toMatch(/needs a Connect client/);
    expect(watch.description).toMatch(/4 bytes of big-endian length/);
  });

  it("maps scalars as proto3 JSON: 64-bit integers as strings, bytes as base64, 32-bit as integers", () => {
    expect(thing.properties.count).toMatchObject({ type: "string", format: "int64" });
    expect(thing.properties.total).toMatchObject({ type: "string", format: "uint64" });
    expect(thing.properties.blob).toMatchObject({ type: "string", contentEncoding: "base64" });
    expect(thing.properties.small).toMatchObject({ type: "integer", minimum: 0 });
    expect(thing.properties.level).toMatchObject({ type: "integer", format: "int32" });
    expect(thing.properties.ratio).toMatchObject({ type: "number", format: "float" });
    expect(thing.properties.on).toMatchObject({ type: "boolean", description: "Trailing comment." });
  });

  it("maps enums by name, with their values' comments", () => {
    expect(thing.properties.colour).toEqual({ $ref: "#/components/schemas/kinds.v1.Colour" });
    const colour = doc.components.schemas["kinds.v1.Colour"];
    expect(colour.type).toBe("string");
    expect(colour.enum).toEqual(["COLOUR_UNSPECIFIED", "COLOUR_BLUE", "COLOUR_RED"]);
    expect(colour.description).toContain("- COLOUR_BLUE: Like the sky.");
  });

  it("maps well-known types to their JSON forms, inline", () => {
    expect(thing.properties.seen).toMatchObject({ type: "string", format: "date-time", readOnly: true });
    expect(thing.properties.wait).toMatchObject({ type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$" });
    expect(thing.properties.attributes).toEqual({ type: "object", additionalProperties: true });
    expect(thing.properties.anyValue).toEqual({ description: "Any JSON value." });
    expect(thing.properties.list).toEqual({ type: "array", items: {} });
    expect(thing.properties.maybeCount).toMatchObject({ type: ["string", "null"], format: "int64" });
    expect(thing.properties.maybeName).toEqual({ type: ["string", "null"] });
    expect(Object.keys(doc.components.schemas).filter((k) => k.startsWith("google."))).toEqual([]);
  });

  it("maps maps, repeated fields and recursion", () => {
    expect(thing.properties.counts).toEqual({
      type: "object",
      propertyNames: { type: "string" },
      additionalProperties: { type: "string", format: "int64", pattern: "^-?[0-9]+$" },
    });
    expect(thing.properties.children).toEqual({
      type: "object",
      propertyNames: { pattern: "^-?[0-9]+$" },
      additionalProperties: { $ref: "#/components/schemas/kinds.v1.Thing" },
    });
    expect(thing.properties.tags).toEqual({ type: "array", items: { type: "string" } });
    expect(thing.properties.colours).toEqual({ type: "array", items: { $ref: "#/components/schemas/kinds.v1.Colour" } });
  });

  it("maps a oneof to at most one of its fields; a proto3 optional is no oneof", () => {
    expect(thing["x-meridian-oneofs"]).toEqual({ value: ["number", "text"] });
    expect(thing.allOf).toEqual([
      { oneOf: [{ required: ["number"] }, { required: ["text"] }, { not: { anyOf: [{ required: ["number"] }, { required: ["text"] }] } }] },
    ]);
    expect(thing.properties.number.description).toBe("One of value: number, text.");
  });

  it("takes field_behavior: REQUIRED into required, OUTPUT_ONLY readOnly, INPUT_ONLY writeOnly; comments into descriptions", () => {
    expect(thing.required).toEqual(["name"]);
    expect(thing.description).toBe("A thing with every kind of field.");
    expect(thing.properties.secret.writeOnly).toBe(true);
    expect(doc.components.schemas["kinds.v1.GetThingRequest"]).toEqual({
      type: "object",
      properties: { name: { type: "string", description: "The thing's name." } },
      required: ["name"],
    });
  });

  it("leaves out services outside the packages asked for", () => {
    expect(compile("packages=other.").doc.paths).toEqual({});
  });
});

describe("options and text", () => {
  it("parses the plugin's options and refuses unknown ones", () => {
    expect(parseOptions("")).toEqual({ file: "meridian.openapi.json", title: "Meridian API", version: "v1", packages: [] });
    expect(parseOptions("file=x.json,packages=a.,packages=b.,title=T,version=2")).toEqual({
      file: "x.json",
      title: "T",
      version: "2",
      packages: ["a.", "b."],
    });
    expect(() => parseOptions("colour=blue")).toThrow(/unknown option "colour"/);
    expect(() => parseOptions("file=")).toThrow(/file needs a value/);
  });

  it("turns comments into text and summaries", () => {
    expect(commentText({ leading: " One.\n Two.\n" })).toBe("One.\nTwo.");
    expect(commentText({ leading: undefined, trailing: " t " })).toBe("t");
    expect(commentText({ leading: "   \n" })).toBeUndefined();
    expect(firstSentence("Reads one thing. Nothing changes.")).toBe("Reads one thing.");
    expect(firstSentence("No full stop\nacross lines")).toBe("No full stop across lines");
    expect(firstSentence("v1.2 is a version. Then")).toBe("v1.2 is a version.");
    expect(firstSentence("x".repeat(200))).toHaveLength(160);
  });
});
