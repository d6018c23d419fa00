import type { JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { columnsOf, jsonCell, omniaStatus, rfc3339 } from "./platforms-format.js";

describe("rfc3339", () => {
  it("keeps the fraction the timestamp has, in groups of three digits", () => {
    expect(rfc3339({ seconds: 1_764_662_400n, nanos: 0 } as never)).toBe("2025-12-02T08:00:00Z");
    expect(rfc3339({ seconds: 1_764_662_400n, nanos: 120_000_000 } as never)).toBe("2025-12-02T08:00:00.120Z");
    expect(rfc3339({ seconds: 1_764_662_400n, nanos: 120_500_000 } as never)).toBe("2025-12-02T08:00:00.120500Z");
    expect(rfc3339({ seconds: 1_764_662_400n, nanos: 100 } as never)).toBe("2025-12-02T08:00:00.000000100Z");
    expect(rfc3339(undefined)).toBe("—");
  });
});

describe("omniaStatus", () => {
  it("names good, questionable and bad; other codes stay numbers", () => {
    expect([192, 64, 0, 7].map(omniaStatus)).toEqual(["good", "questionable", "bad", "7"]);
  });
});

describe("jsonCell", () => {
  it("strings bare, everything else as JSON, nothing as a dash", () => {
    expect(jsonCell("iot/v1/telemetry")).toBe("iot/v1/telemetry");
    expect(jsonCell({ a: 1 })).toBe('{"a":1}');
    expect(jsonCell(21.5)).toBe("21.5");
    expect(jsonCell(null)).toBe("—");
    expect(jsonCell(undefined)).toBe("—");
  });
});

describe("columnsOf", () => {
  it("every field of any row once, the preferred ones first in their order", () => {
    const rows: Record<string, JsonValue>[] = [
      { id: 1, value: 2, time_observed: "t" },
      { id: 2, content_path: "humidity" },
    ];
    expect(columnsOf(rows, ["time_observed", "content_path", "missing"])).toEqual(["time_observed", "content_path", "id", "value"]);
  });
});
