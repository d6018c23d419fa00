import { create } from "@bufbuild/protobuf";
import { makeBatch } from "@meridian/bus";
import { Platform, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import { EventMapper, isoTime } from "./mapping.js";

describe("isoTime (the OMF index)", () => {
  it("keeps the observed time to the 100 ns tick, trailing zeros trimmed, the same for the same timestamp", () => {
    expect(isoTime({ seconds: 1767225600n, nanos: 0 } as never)).toBe("2026-01-01T00:00:00Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 5_000_000 } as never)).toBe("2026-01-01T00:00:00.005Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 123_456_700 } as never)).toBe("2026-01-01T00:00:00.1234567Z");
    expect(() => isoTime({ seconds: 10n ** 15n, nanos: 0 } as never)).toThrow(/observed_time/);
  });

  it("truncates nanoseconds to 7 fractional digits, never rounding into the next tick or second", () => {
    expect(isoTime({ seconds: 1767225600n, nanos: 123_456_789 } as never)).toBe("2026-01-01T00:00:00.1234567Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 999_999_999 } as never)).toBe("2026-01-01T00:00:00.9999999Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 100_000_050 } as never)).toBe("2026-01-01T00:00:00.1Z");
    // Under one tick: nothing of the fraction is kept, as for a whole second.
    expect(isoTime({ seconds: 1767225600n, nanos: 99 } as never)).toBe("2026-01-01T00:00:00Z");
  });
});

describe("EventMapper.mapBatch", () => {
  const source = { platform: Platform.IDIGI, connection: "7", device: "dev-1" };
  const observedTime = { seconds: 1767225600n, nanos: 123_456_789 };

  it("indexes each value by its observed time to the 100 ns tick, and counts events without points as skipped", () => {
    const mapper = new EventMapper({ omfVersion: "1.2", intFormat: "int64" });
    const { groups, skipped } = mapper.mapBatch(
      makeBatch("b-1", [
        create(TelemetryEventSchema, {
          id: "with-point",
          source,
          observedTime,
          points: [{ name: "temperature", value: { case: "doubleValue", value: 21.5 } }],
        }),
        create(TelemetryEventSchema, {
          id: "device-core",
          source,
          observedTime,
          points: [],
          attributes: { "idigi.resource": "DeviceCore" },
        }),
      ]),
    );
    expect(skipped).toBe(1);
    const values = [...groups.values()].flatMap((g) => g.values);
    expect(values).toEqual([{ Timestamp: "2026-01-01T00:00:00.1234567Z", temperature: 21.5 }]);
  });
});
