import { describe, expect, it } from "vitest";
import { IotcInvalidArgumentError } from "./errors.js";
import { normaliseRegistrationId, validateRegistrationId } from "./registration-id.js";

describe("validateRegistrationId", () => {
  it("accepts lower-case alphanumerics and - . _ : up to 128", () => {
    expect(() => validateRegistrationId("dev-1.a_b:c")).not.toThrow();
    expect(() => validateRegistrationId("a".repeat(128))).not.toThrow();
  });

  it.each([
    ["", /must not be empty/],
    ["a".repeat(129), /129 characters, DPS accepts at most 128/],
    ["Dev1", /character "D" at position 0/],
    ["dev 1", /character " " at position 3/],
    ["dev1.", /must end with/],
  ])("refuses %j naming what is wrong", (id, message) => {
    expect(() => validateRegistrationId(id, "devices[0].id")).toThrow(message);
    try {
      validateRegistrationId(id, "devices[0].id");
    } catch (err) {
      expect((err as IotcInvalidArgumentError).field).toBe("devices[0].id");
    }
  });
});

describe("normaliseRegistrationId", () => {
  it("leaves an acceptable id alone and says nothing changed", () => {
    expect(normaliseRegistrationId("pump-7")).toEqual({ registrationId: "pump-7", changes: [] });
  });

  it("lower-cases, replaces, cuts and trims, and says so", () => {
    const r = normaliseRegistrationId("  Plant A/Pump#7:  ");
    expect(r.registrationId).toBe("plant-a-pump-7");
    expect(r.changes).toEqual([
      "surrounding white space removed",
      "lower-cased",
      "3 characters DPS does not accept replaced by '-'",
      "trailing '.', '_' or ':' removed",
    ]);
    validateRegistrationId(r.registrationId);
  });

  it("replaces one emoji by one '-' and cuts to 128", () => {
    expect(normaliseRegistrationId("a😀b").registrationId).toBe("a-b");
    const long = normaliseRegistrationId("x".repeat(200));
    expect(long.registrationId).toHaveLength(128);
    expect(long.changes).toEqual(["cut from 200 to 128 characters"]);
  });

  it("refuses an input with nothing usable, naming the input", () => {
    for (const raw of ["", "   ", "///", "..."]) {
      expect(() => normaliseRegistrationId(raw, "template")).toThrow(IotcInvalidArgumentError);
      expect(() => normaliseRegistrationId(raw, "template")).toThrow(/^template: /);
    }
  });
});
