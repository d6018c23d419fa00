import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import {
  decodeToken,
  encodeToken,
  SEVERAL_DEVICES_TOKEN,
  severalDevicesSubject,
  sourceMatches,
  subjectMatches,
  subjectMayHold,
  telemetryFilterSubject,
  telemetrySelection,
  telemetrySubject,
} from "./subjects.js";

describe("subjects", () => {
  it("builds telemetry.v1.<platform>.<connection>.<device>", () => {
    expect(telemetrySubject({ platform: Platform.IDIGI, connection: "monitor-42", device: "dev_1" })).toBe(
      "telemetry.v1.idigi.monitor-42.dev_1",
    );
  });
  it("escapes characters that would break or widen a subject, reversibly", () => {
    for (const raw of ["00000000-00000000-00409DFF-FF5DD1A6", "a.b", "a b", "x*y>z", "100%", "ünïcødé/ø", ""]) {
      const token = encodeToken(raw);
      expect(token).toMatch(/^[A-Za-z0-9_%-]+$/);
      expect(decodeToken(token)).toBe(raw);
    }
    expect(encodeToken("a.b")).not.toBe(encodeToken("a_b"));
  });
  it("turns empty filter fields into wildcards", () => {
    expect(telemetryFilterSubject({ platform: Platform.OMNIA })).toBe("telemetry.v1.omnia.*.*");
    expect(telemetryFilterSubject(undefined)).toBe("telemetry.v1.*.*.*");
    expect(telemetryFilterSubject({ device: "d.1" })).toBe("telemetry.v1.*.*.d%2E1");
  });
  it("matches sources against filters field by field", () => {
    const s = { platform: Platform.IDIGI, connection: "m", device: "d" } as never;
    expect(sourceMatches({ platform: Platform.IDIGI } as never, s)).toBe(true);
    expect(sourceMatches({ device: "other" } as never, s)).toBe(false);
  });
  it("never makes a device token the several-devices token, whatever the id (random ids, every single code unit)", () => {
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    const ids = ["~", "~~", "%7E", " ~", ""];
    for (let c = 0; c < 0x10000; c++) ids.push(String.fromCharCode(c));
    for (let i = 0; i < 5000; i++)
      ids.push(Array.from({ length: 1 + (next() % 12) }, () => String.fromCodePoint(next() % 0x2ffff)).join(""));
    for (const id of ids) {
      const token = encodeToken(id);
      expect(token, JSON.stringify(id)).not.toBe(SEVERAL_DEVICES_TOKEN);
      expect(token, JSON.stringify(id)).not.toContain("~");
    }
  });
  it("reads a device's events from its own messages and its connection's several-devices ones", () => {
    const several = severalDevicesSubject(Platform.API, "plant 1");
    expect(several).toBe("telemetry.v1.api.plant%201.~");
    expect(telemetrySelection({ platform: Platform.API, connection: "plant 1" })).toEqual({ subject: "telemetry.v1.api.plant%201.*" });
    const byDevice = telemetrySelection({ platform: Platform.API, connection: "plant 1", device: "boiler.2" });
    expect(byDevice.subject).toBe("telemetry.v1.api.plant%201.*");
    expect(byDevice.events).toEqual({ platform: Platform.API, connection: "plant 1", device: "boiler.2" });
    const own = telemetrySubject({ platform: Platform.API, connection: "plant 1", device: "boiler.2" });
    const other = telemetrySubject({ platform: Platform.API, connection: "plant 1", device: "boiler" });
    for (const subject of [own, several, other]) expect(subjectMatches(byDevice.subject, subject)).toBe(true);
    expect([own, several, other].map((subject) => subjectMayHold(subject, byDevice.events!))).toEqual([true, true, false]);
    expect(subjectMatches(telemetrySelection({ device: "x" }).subject, "telemetry.v1.idigi.m.~")).toBe(true);
  });
});
