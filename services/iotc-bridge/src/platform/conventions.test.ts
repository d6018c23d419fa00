import { describe, expect, it } from "vitest";
import {
  checkSize,
  MAX_TELEMETRY_BYTES,
  nestInComponent,
  offlineCommandName,
  parsePayload,
  pendingWritableProperties,
  splitCommandName,
  telemetrySize,
  validateAck,
  writablePropertyAckPatch,
  writablePropertyChanges,
} from "./conventions.js";
import { IotcInvalidArgumentError, IotcMessageTooLargeError } from "./errors.js";

describe("components", () => {
  it("nests a reported patch under its component with __t: c", () => {
    expect(nestInComponent({ maxTemp: 25.3 }, "thermostat1")).toEqual({ thermostat1: { __t: "c", maxTemp: 25.3 } });
    expect(nestInComponent({ serialNumber: "123" })).toEqual({ serialNumber: "123" });
  });

  it("refuses a component name DTDL would not allow", () => {
    expect(() => nestInComponent({}, "thermo stat")).toThrow(IotcInvalidArgumentError);
    expect(() => nestInComponent({}, "_x")).toThrow(/component: /);
  });
});

describe("writable property acknowledgements (notes 3.1)", () => {
  it("acks the default component as {name: {value, ac, ad, av}}", () => {
    expect(writablePropertyAckPatch({ name: "targetTemperature", value: 42, version: 5 }, { ac: 200, ad: "completed" })).toEqual({
      targetTemperature: { value: 42, ac: 200, ad: "completed", av: 5 },
    });
  });

  it("acks a component's property nested with __t: c, and the value in effect when given", () => {
    expect(writablePropertyAckPatch({ component: "thermostat1", name: "target", value: 30, version: 4 }, { ac: 400, value: 21 })).toEqual({
      thermostat1: { __t: "c", target: { value: 21, ac: 400, av: 4 } },
    });
  });

  it("checks ac", () => {
    expect(() => validateAck({ ac: 99 })).toThrow(/ack.ac/);
    expect(() => validateAck({ ac: 200.5 })).toThrow(/ack.ac/);
    expect(() => validateAck({ ac: 202 })).not.toThrow();
  });

  it("reads the properties of a desired patch: components by __t, $-members and nulls left out", () => {
    const patch = { targetTemperature: 42, thermostat1: { __t: "c", target: 21.8, gone: null }, removed: null, $version: 7 };
    expect(writablePropertyChanges(patch, 7)).toEqual([
      { name: "targetTemperature", value: 42, version: 7 },
      { component: "thermostat1", name: "target", value: 21.8, version: 7 },
    ]);
  });

  it("an object value without __t is a property of the default component", () => {
    expect(writablePropertyChanges({ schedule: { from: 1, to: 2 } }, 3)).toEqual([
      { name: "schedule", value: { from: 1, to: 2 }, version: 3 },
    ]);
  });

  it("pending: no reported ack, or an av older than the desired $version (the iotc clients' rule)", () => {
    const twin = {
      desired: { a: 1, b: 2, c: 3, comp: { __t: "c", d: 4 }, $version: 9 },
      reported: {
        a: { value: 1, ac: 200, av: 9 },
        b: { value: 2, ac: 200, av: 8 },
        comp: { __t: "c", d: { value: 4, ac: 200, av: 9 } },
        $version: 3,
      },
    };
    expect(pendingWritableProperties(twin).map((c) => c.name)).toEqual(["b", "c"]);
  });

  it("pending with $metadata (design for both readings): an unchanged property acked at its last update is not pending", () => {
    const twin = {
      desired: { a: 1, b: 2, $version: 9, $metadata: { a: { $lastUpdatedVersion: 4 }, b: { $lastUpdatedVersion: 9 } } },
      reported: { a: { value: 1, ac: 200, av: 4 }, b: { value: 2, ac: 200, av: 4 } },
    };
    expect(pendingWritableProperties(twin).map((c) => c.name)).toEqual(["b"]);
  });
});

describe("command names", () => {
  it("splits component*command", () => {
    expect(splitCommandName("thermostat1*getMaxMinReport")).toEqual({ component: "thermostat1", name: "getMaxMinReport" });
    expect(splitCommandName("reboot")).toEqual({ name: "reboot" });
    expect(splitCommandName("*odd")).toEqual({ name: "*odd" });
  });

  it("reads an offline command's method-name in the 1.1 form and the legacy interface:command form", () => {
    expect(offlineCommandName("thermostat1*reset")).toEqual({ component: "thermostat1", name: "reset" });
    expect(offlineCommandName("urn:example:iface:1:reset")).toEqual({ name: "reset" });
    expect(offlineCommandName("reset")).toEqual({ name: "reset" });
  });

  it("parses payloads: blank is null, JSON is parsed, anything else kept as text", () => {
    expect(parsePayload(Buffer.from(" "))).toEqual({ value: null, json: true });
    expect(parsePayload(Buffer.from('{"a":1}'))).toEqual({ value: { a: 1 }, json: true });
    expect(parsePayload("not json")).toEqual({ value: "not json", json: false });
  });
});

describe("telemetry size", () => {
  it("counts body and every property name and value in UTF-8 bytes", () => {
    expect(telemetrySize('{"t":"é"}', { "$.mid": "1", k: "vé" })).toBe(10 + 5 + 1 + 1 + 3);
  });

  it("a message of exactly 256 KiB passes, one byte more is IotcMessageTooLargeError", () => {
    expect(() => checkSize(MAX_TELEMETRY_BYTES, MAX_TELEMETRY_BYTES)).not.toThrow();
    try {
      checkSize(MAX_TELEMETRY_BYTES + 1, MAX_TELEMETRY_BYTES, "dev");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(IotcMessageTooLargeError);
      expect((err as IotcMessageTooLargeError).bytes).toBe(MAX_TELEMETRY_BYTES + 1);
      expect((err as IotcMessageTooLargeError).retryable).toBe(false);
    }
  });
});
