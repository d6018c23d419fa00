import { describe, expect, it } from "vitest";
import { isoTime } from "./mapping.js";

describe("isoTime (the OMF index)", () => {
  it("keeps the full precision of the observed time, and is the same for the same timestamp", () => {
    expect(isoTime({ seconds: 1767225600n, nanos: 0 } as never)).toBe("2026-01-01T00:00:00Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 5_000_000 } as never)).toBe("2026-01-01T00:00:00.005Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 123_456_789 } as never)).toBe("2026-01-01T00:00:00.123456789Z");
    expect(() => isoTime({ seconds: 10n ** 15n, nanos: 0 } as never)).toThrow(/observed_time/);
  });
});
