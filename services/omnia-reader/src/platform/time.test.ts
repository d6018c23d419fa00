import { describe, expect, it } from "vitest";
import { OmniaValidationError } from "./errors.js";
import { formatTimeNs, parseTimeNs, queryTime, toTimeNs } from "./time.js";

describe("times", () => {
  it("reads every spelling Omnia's clients send, to exact nanoseconds", () => {
    const ns = 1_640_995_200_000_000_000n; // 2022-01-01T00:00:00Z
    for (const s of [
      "2022-01-01T00:00:00Z",
      "2022-01-01T00:00:00.000Z",
      "2022-01-01T00:00:00.000000Z",
      "2022-01-01",
      "2022-01-01T01:00:00+01:00",
    ]) {
      expect(parseTimeNs(s), s).toBe(ns);
    }
    expect(parseTimeNs("2021-02-01T09:54:05.4200000Z")).toBe(1_612_173_245_420_000_000n);
    expect(parseTimeNs("2024-09-25T11:30:34.898Z")).toBe(1_727_263_834_898_000_000n);
    expect(parseTimeNs("2024-09-25T11:30:34.898765432Z")).toBe(1_727_263_834_898_765_432n);
  });

  it("refuses a time without zone, an impossible date, and names the field", () => {
    for (const bad of ["2022-01-01T00:00:00", "2022-02-30", "yesterday", "2022-01-01T25:00:00Z"]) {
      try {
        toTimeNs(bad, "startTime");
        expect.fail(bad);
      } catch (err) {
        expect(err).toBeInstanceOf(OmniaValidationError);
        expect((err as OmniaValidationError).field).toBe("startTime");
        expect((err as Error).message).toMatch(/^startTime: /);
      }
    }
    expect(() => toTimeNs(new Date(Number.NaN), "endTime")).toThrow(/endTime: invalid Date/);
  });

  it("writes Omnia's 7 digits, 9 only when finer than 100 ns; before 1970 too", () => {
    expect(formatTimeNs(1_727_263_834_898_000_000n)).toBe("2024-09-25T11:30:34.8980000Z");
    expect(formatTimeNs(1n)).toBe("1970-01-01T00:00:00.000000001Z");
    expect(formatTimeNs(-100n)).toBe("1969-12-31T23:59:59.9999999Z");
    expect(queryTime(new Date("2022-01-01T00:00:00.123Z"), "t")).toBe("2022-01-01T00:00:00.1230000Z");
    expect(queryTime(1_727_263_834_898_765_432n, "t")).toBe("2024-09-25T11:30:34.8987654Z");
  });
});
