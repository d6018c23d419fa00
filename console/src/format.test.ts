import { create } from "@bufbuild/protobuf";
import { PointSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import { bytes, duration, fieldViolations, fill, pointNumber, pointValue, rate } from "./format.js";

describe("fieldViolations", () => {
  it("splits the API's invalid_argument message by field path", () => {
    const v = fieldViolations(
      "invalid request: route.source: required; route.sink.target: required; route.id: must be lower-case letters, digits and '-'; 1 to 63",
    );
    expect(v.get("route.source")).toBe("required");
    expect(v.get("route.sink.target")).toBe("required");
    expect(v.get("route.id")).toBe("must be lower-case letters, digits and '-'; 1 to 63");
  });

  it("keeps a message without field paths whole, under the empty path", () => {
    expect([...fieldViolations("route cli-r1 already exists")]).toEqual([["", "route cli-r1 already exists"]]);
  });
});

describe("values", () => {
  it("formats and charts each kind of point value", () => {
    expect(pointValue(create(PointSchema, { value: { case: "doubleValue", value: 4.25 } }))).toBe("4.25");
    expect(pointValue(create(PointSchema, { value: { case: "intValue", value: 7n } }))).toBe("7");
    expect(pointNumber(create(PointSchema, { value: { case: "boolValue", value: true } }))).toBe(1);
    expect(pointNumber(create(PointSchema, { value: { case: "stringValue", value: "x" } }))).toBeUndefined();
  });

  it("bytes, durations and rates", () => {
    expect(bytes(512)).toBe("512 B");
    expect(bytes(1536n)).toBe("1.5 KiB");
    expect(duration({ seconds: 90n, nanos: 0 } as never)).toBe("2 min");
    expect(duration({ seconds: 36n * 3600n, nanos: 0 } as never)).toBe("36.0 h");
    expect(duration({ seconds: 7n * 86400n, nanos: 0 } as never)).toBe("7 d");
    expect(fill(256n * 1024n * 1024n, 1024n * 1024n * 1024n)).toBe("25 % of 1.0 GiB");
    expect(fill(5n, 0n)).toBe("no limit");
    expect(rate(100n, 160n, 2)).toBe(30);
    expect(rate(undefined, 160n, 2)).toBe(0);
    // A restarted instance starts its counters again: no negative rate.
    expect(rate(500n, 10n, 2)).toBe(0);
  });
});
