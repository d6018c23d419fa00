import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import { decodeToken, encodeToken, sourceMatches, telemetryFilterSubject, telemetrySubject } from "./subjects.js";

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
});
