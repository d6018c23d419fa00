import { cpus, totalmem } from "node:os";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Platform, Quality, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";

/** A realistic ~300-byte event: 4 points with units and quality, 2 attributes. */
export function sampleEvent(n: number, device: string, connection = "bench"): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${connection}:${device}:${n.toString().padStart(10, "0")}`,
    source: { platform: Platform.API, connection, device },
    observedTime: timestampFromDate(new Date(1_700_000_000_000 + n)),
    receivedTime: timestampFromDate(new Date()),
    points: [
      { name: "pressure", value: { case: "doubleValue", value: 4 + (n % 100) / 100 }, unit: "bar", quality: Quality.GOOD },
      { name: "temperature", value: { case: "doubleValue", value: 80 + (n % 50) / 10 }, unit: "degC", quality: Quality.GOOD },
      { name: "cycle_count", value: { case: "intValue", value: BigInt(n) }, quality: Quality.GOOD },
      { name: "running", value: { case: "boolValue", value: n % 7 !== 0 }, quality: Quality.GOOD },
    ],
    attributes: { site: "rotterdam-plant-2", line: "press-line-a" },
  });
}

/** What every benchmark prints with its numbers: the hardware they came from. */
export function machine() {
  return {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
  };
}

export function rate(count: number, ms: number): number {
  return Math.round((count / ms) * 1000);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
