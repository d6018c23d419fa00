import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type TelemetryBatch, TelemetryBatchSchema, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";

/** Header naming the protobuf message a bus message carries, so a reader never guesses. */
export const SCHEMA_HEADER = "Meridian-Schema";
export const TELEMETRY_BATCH_SCHEMA = TelemetryBatchSchema.typeName;

export function encodeBatch(batch: TelemetryBatch): Uint8Array {
  return toBinary(TelemetryBatchSchema, batch);
}

export function decodeBatch(data: Uint8Array): TelemetryBatch {
  return fromBinary(TelemetryBatchSchema, data);
}

export function makeBatch(id: string, events: TelemetryEvent[]): TelemetryBatch {
  return create(TelemetryBatchSchema, { id, events });
}
