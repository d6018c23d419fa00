import { create, createFileRegistry, setExtension } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldOptionsSchema,
  FileDescriptorProtoSchema,
  type Timestamp,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { FieldBehavior, field_behavior, file_google_api_field_behavior } from "@meridian/contracts/google/api/field_behavior_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { CreateRouteRequestSchema, ListRoutesResponseSchema } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform, TelemetryBatchSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { PublishRequestSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { describe, expect, it } from "vitest";
import { assertRequiredFields, type FieldViolation, invalidArgument, RequestViolations, requireFields } from "./validation.js";

const goodEvent = (id: string) => ({
  id,
  source: { platform: Platform.OMF, connection: "c", device: "d" },
  observedTime: { seconds: 1n },
});

describe("requireFields", () => {
  it("accepts a message whose REQUIRED fields are all set", () => {
    const req = create(PublishRequestSchema, { events: [goodEvent("a"), goodEvent("b")] });
    expect(requireFields(PublishRequestSchema, req)).toEqual([]);
  });

  it("names nested and repeated paths with proto field names", () => {
    const req = create(PublishRequestSchema, {
      events: [
        goodEvent("a"),
        { id: "b", source: { platform: Platform.OMF, connection: "c", device: "d" } }, // observed_time missing
        { id: "c", source: { platform: Platform.UNSPECIFIED, connection: "c" }, observedTime: { seconds: 1n } },
        { source: undefined, observedTime: { seconds: 1n } },
      ],
    });
    expect(requireFields(PublishRequestSchema, req)).toEqual([
      { path: "events[1].observed_time", reason: "required" },
      { path: "events[2].source.platform", reason: "required" },
      { path: "events[2].source.device", reason: "required" },
      { path: "events[3].id", reason: "required" },
      { path: "events[3].source", reason: "required" },
    ]);
  });

  it("an empty REQUIRED repeated field is a violation; optional fields are not checked", () => {
    expect(requireFields(PublishRequestSchema, create(PublishRequestSchema))).toEqual([{ path: "events", reason: "required" }]);
    // TelemetryBatch.events is not REQUIRED, but its events are still checked when present.
    const batch = create(TelemetryBatchSchema, { id: "b1", events: [{ id: "e" }] });
    expect(requireFields(TelemetryBatchSchema, batch).map((v) => v.path)).toEqual(["events[0].source", "events[0].observed_time"]);
  });

  it("prefixes paths and walks messages inside messages (route.sink.target)", () => {
    const req = create(CreateRouteRequestSchema, { route: { id: "r", source: {}, sink: { platform: Platform.OMF } } });
    expect(requireFields(CreateRouteRequestSchema, req)).toEqual([{ path: "route.sink.target", reason: "required" }]);
    expect(requireFields(RouteSchema, req.route!, "body.route")).toEqual([{ path: "body.route.sink.target", reason: "required" }]);
    expect(requireFields(CreateRouteRequestSchema, create(CreateRouteRequestSchema))).toEqual([{ path: "route", reason: "required" }]);
  });

  it("walks lists of messages in responses too (routes[1].sink)", () => {
    const res = create(ListRoutesResponseSchema, {
      routes: [{ source: {}, sink: { platform: Platform.OMF, target: "t" } }, { source: {} }],
    });
    expect(requireFields(ListRoutesResponseSchema, res)).toEqual([{ path: "routes[1].sink", reason: "required" }]);
  });
});

describe("requireFields on map values", () => {
  // No contract has a map of messages with REQUIRED fields, so build one: message Inner { string name = 1
  // [(google.api.field_behavior) = REQUIRED]; } message Outer { map<string, Inner> items = 1; map<int32, Inner> by_number = 2; }
  const required = create(FieldOptionsSchema);
  setExtension(required, field_behavior, [FieldBehavior.REQUIRED]);
  const { OPTIONAL, REPEATED } = FieldDescriptorProto_Label;
  const { STRING, INT32, MESSAGE } = FieldDescriptorProto_Type;
  const entry = (name: string, keyType: FieldDescriptorProto_Type) => ({
    name,
    options: { mapEntry: true },
    field: [
      { name: "key", jsonName: "key", number: 1, label: OPTIONAL, type: keyType },
      { name: "value", jsonName: "value", number: 2, label: OPTIONAL, type: MESSAGE, typeName: ".test.Inner" },
    ],
  });
  const registry = createFileRegistry(
    create(FileDescriptorProtoSchema, {
      name: "test/maps.proto",
      package: "test",
      syntax: "proto3",
      dependency: ["google/api/field_behavior.proto"],
      messageType: [
        { name: "Inner", field: [{ name: "name", jsonName: "name", number: 1, label: OPTIONAL, type: STRING, options: required }] },
        {
          name: "Outer",
          field: [
            { name: "items", jsonName: "items", number: 1, label: REPEATED, type: MESSAGE, typeName: ".test.Outer.ItemsEntry" },
            { name: "by_number", jsonName: "byNumber", number: 2, label: REPEATED, type: MESSAGE, typeName: ".test.Outer.ByNumberEntry" },
          ],
          nestedType: [entry("ItemsEntry", STRING), entry("ByNumberEntry", INT32)],
        },
      ],
    }),
    (name) => (name === "google/api/field_behavior.proto" ? file_google_api_field_behavior : undefined),
  );
  const Outer = registry.getMessage("test.Outer")!;

  it("names map entries by key", () => {
    const msg = create(Outer, { items: { ok: { name: "x" }, "bad key": {} }, byNumber: { 7: {} } }) as never;
    expect(requireFields(Outer, msg)).toEqual([
      { path: 'items["bad key"].name', reason: "required" },
      { path: "by_number[7].name", reason: "required" },
    ]);
  });
});

describe("invalidArgument", () => {
  it("throws invalid_argument listing each path and reason, with a service's own checks mixed in", () => {
    const violations: FieldViolation[] = requireFields(
      CreateRouteRequestSchema,
      create(CreateRouteRequestSchema, { route: { id: "Bad!" } }),
    );
    violations.push({ path: "route.id", reason: "must be lower-case letters, digits or '-'" });
    let caught: unknown;
    try {
      invalidArgument(violations);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConnectError);
    const err = caught as ConnectError;
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toBe(
      "invalid request: route.source: required; route.sink: required; route.id: must be lower-case letters, digits or '-'",
    );
  });

  it("assertRequiredFields throws only when something is missing", () => {
    expect(() => assertRequiredFields(PublishRequestSchema, create(PublishRequestSchema, { events: [goodEvent("a")] }))).not.toThrow();
    expect(() => assertRequiredFields(PublishRequestSchema, create(PublishRequestSchema, { events: [{ id: "x" }] }))).toThrow(
      /events\[0\]\.source: required; events\[0\]\.observed_time: required/,
    );
  });
});

describe("RequestViolations", () => {
  it("gathers every problem with its path and throws them as one invalid_argument", () => {
    const v = new RequestViolations();
    v.time("start_time", { seconds: -62_135_596_801n, nanos: 0 } as Timestamp);
    v.time("end_time", { seconds: 0n, nanos: 1_000_000_000 } as Timestamp);
    v.time("unset", undefined);
    v.time("fine", { seconds: 253_402_300_799n, nanos: 999_999_999 } as Timestamp);
    expect(v.jsonObject("payload", undefined, 10)).toBeUndefined();
    expect(v.jsonObject("big", { a: "12345678" }, 10)).toBeUndefined();
    expect(v.jsonObject("ok", { a: 1 }, 10)).toEqual({ a: 1 });
    expect(v.list.map((x) => x.path)).toEqual(["start_time", "end_time", "payload", "big"]);
    expect(() => v.throwIfAny()).toThrow(
      /invalid request: start_time: must be a time between years 1 and 9999; .*payload: is required \(a JSON object\); big: is 16 bytes as JSON, over the 10-byte limit/,
    );
    expect(() => new RequestViolations().throwIfAny()).not.toThrow();
  });
});
