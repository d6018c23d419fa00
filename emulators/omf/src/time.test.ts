import { describe, expect, it } from "vitest";
import { keyToPiTime, parsePiTime, timeKey } from "./time.js";

describe("time keys", () => {
  it("normalise to 7 fractional digits in UTC and sort as strings", () => {
    expect(timeKey("2021-04-14T12:00:00.123456Z")).toBe("2021-04-14T12:00:00.1234560Z");
    expect(timeKey("2021-04-14T14:00:00+02:00")).toBe("2021-04-14T12:00:00.0000000Z");
    expect(timeKey("0001-01-01T00:00:00Z")).toBe("0001-01-01T00:00:00.0000000Z");
    expect(timeKey("2021-02-30T00:00:00Z")).toBeUndefined();
    expect(timeKey("2021-04-14 12:00:00")).toBeUndefined();
    expect(timeKey("2021-04-14T12:00:00.9Z")! > timeKey("2021-04-14T12:00:00.10Z")!).toBe(true);
    expect(keyToPiTime("2021-04-14T12:00:00.1234560Z")).toBe("2021-04-14T12:00:00.123456Z");
    expect(parsePiTime("*-1d", 86_400_000 * 2)).toBe(86_400_000);
  });
});
