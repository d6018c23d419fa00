import { Platform, Quality } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import { eventIdOf, nsFromTimestamp, qualityOf, statusOf, timestampFromNs, toSinkPoints, toTelemetryEvents } from "./mapping.js";

describe("mapping", () => {
  it("maps Omnia's status table to quality, and other codes by their OPC quality bits", () => {
    expect([192, 64, 24, 8, 0, 60].map(qualityOf)).toEqual([
      Quality.GOOD,
      Quality.UNCERTAIN,
      Quality.UNCERTAIN,
      Quality.UNCERTAIN,
      Quality.BAD,
      Quality.BAD,
    ]);
    expect([0xd8, 0x44, 0x04].map(qualityOf)).toEqual([Quality.GOOD, Quality.UNCERTAIN, Quality.BAD]);
    expect([Quality.UNSPECIFIED, Quality.GOOD, Quality.UNCERTAIN, Quality.BAD].map(statusOf)).toEqual([192, 192, 64, 0]);
  });

  it("keeps times exact to the nanosecond, before 1970 too", () => {
    for (const ns of [1727263834898000000n, 1727263834898000100n, -1n, -1_000_000_001n, 0n])
      expect(nsFromTimestamp(timestampFromNs(ns))).toBe(ns);
    expect(timestampFromNs(-1n)).toMatchObject({ seconds: -1n, nanos: 999_999_999 });
  });

  it("gives the same datapoint the same event id whatever reads it, and the series' name, unit and facility", () => {
    const p = { time: "2024-09-25T11:30:34.8980001Z", timeNs: 1727263834898000100n, value: 246.5, status: 192 };
    const series = { id: "s-1", name: "JSV.20PT1234.PV", facility: "JSV", unit: "bar" };
    const [a] = toTelemetryEvents("r1", series, [p]);
    const [b] = toTelemetryEvents("r1", series, [p]);
    expect(a!.id).toBe(eventIdOf("s-1", p.timeNs));
    expect(a!.id).toBe(b!.id);
    expect(a!.source).toMatchObject({ platform: Platform.OMNIA, connection: "r1", device: "s-1" });
    expect(a!.observedTime).toMatchObject({ seconds: 1727263834n, nanos: 898000100 });
    expect(a!.points[0]).toMatchObject({
      name: "JSV.20PT1234.PV",
      unit: "bar",
      quality: Quality.GOOD,
      value: { case: "doubleValue", value: 246.5 },
    });
    expect(a!.attributes).toEqual({ "omnia.status": "192", "omnia.name": "JSV.20PT1234.PV", "omnia.facility": "JSV" });
  });

  it("writes numbers and booleans of events into series named <device>.<point>, and skips strings", () => {
    const [e] = toTelemetryEvents("r1", { id: "pump-1", name: "pressure", facility: "JSV", unit: "bar" }, [
      { time: "", timeNs: 1_000_000_000n, value: 1.5, status: 0 },
    ]);
    e!.points.push({ ...e!.points[0]!, name: "running", value: { case: "boolValue", value: true } });
    e!.points.push({ ...e!.points[0]!, name: "label", value: { case: "stringValue", value: "x" } });
    const { points, skipped } = toSinkPoints([e!]);
    expect(skipped).toBe(1);
    expect(points).toEqual([
      { name: "pump-1.pressure", unit: "bar", timeNs: 1_000_000_000n, value: 1.5, status: 0 },
      { name: "pump-1.running", unit: "bar", timeNs: 1_000_000_000n, value: 1, status: 0 },
    ]);
  });
});
