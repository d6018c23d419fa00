import { describe, expect, it } from "vitest";
import { tickOf } from "./confirm.js";

describe("tickOf", () => {
  it("compares timestamps at the 100 ns tick the receiver keeps, whatever digits either side wrote", () => {
    expect(tickOf("2026-01-01T00:00:01Z")).toBe("2026-01-01T00:00:01.0000000Z");
    expect(tickOf("2026-01-01T00:00:01.5Z")).toBe(tickOf("2026-01-01T00:00:01.5000000Z"));
    expect(tickOf("2026-01-01T00:00:01.123456789Z")).toBe("2026-01-01T00:00:01.1234567Z");
    expect(tickOf("2026-01-01T00:00:01.25+00:00")).toBe("2026-01-01T00:00:01.2500000Z");
    expect(tickOf("not a time")).toBe("not a time");
  });
});
