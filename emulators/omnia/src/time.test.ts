import { describe, expect, it } from "vitest";
import { formatTime, parseInterval, parseTime } from "./time.js";

describe("times", () => {
  it("parses RFC 3339 with 0 to 9 fractional digits, Z or an offset, and a date alone", () => {
    const base = 1727263834898000000n;
    expect(parseTime("2024-09-25T11:30:34.898Z")).toBe(base);
    expect(parseTime("2024-09-25T11:30:34.8980000Z")).toBe(base);
    expect(parseTime("2024-09-25T11:30:34.898000000Z")).toBe(base);
    expect(parseTime("2024-09-25T13:30:34.898+02:00")).toBe(base);
    expect(parseTime("2024-09-25T11:30:34Z")).toBe(base - 898000000n);
    expect(parseTime("2024-09-25T11:30:34.1234567Z")).toBe(base - 898000000n + 123456700n);
    expect(parseTime("2021-03-20")).toBe(BigInt(Date.UTC(2021, 2, 20)) * 1_000_000n);
    expect(parseTime("2022-01-01T00:00:00.000000Z")).toBe(BigInt(Date.UTC(2022, 0, 1)) * 1_000_000n);
  });

  it("refuses what is not a time", () => {
    for (const bad of ["yesterday", "2024-13-01", "2024-02-30", "2024-09-25T25:00:00Z", "1727263834", ""])
      expect(parseTime(bad)).toBeUndefined();
  });

  it("formats with 7 fractional digits", () => {
    expect(formatTime(1727263834898000000n)).toBe("2024-09-25T11:30:34.8980000Z");
    expect(formatTime(1612173245420000000n + 123456700n)).toBe("2021-02-01T09:54:05.5434567Z");
    expect(formatTime(-100n)).toBe("1969-12-31T23:59:59.9999999Z");
  });

  it("parses processing intervals", () => {
    expect(parseInterval("1s")).toBe(1_000_000_000n);
    expect(parseInterval("15m")).toBe(900_000_000_000n);
    expect(parseInterval("20d")).toBe(20n * 86_400_000_000_000n);
    expect(parseInterval("0s")).toBeUndefined();
    expect(parseInterval("5 minutes")).toBeUndefined();
  });
});
