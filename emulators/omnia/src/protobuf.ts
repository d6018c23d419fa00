/**
 * The protobuf answer of the data endpoints, `CompactDatapointsDto` of the API's `timeseries.proto` (proto3, no
 * package), written by hand with BinaryWriter from the field numbers of the protocol notes (§5), so the emulator
 * shares no generated code with any client:
 *
 *   CompactDatapointsDto   { repeated CompactDatapointsItem data = 1; string continuationToken = 2; }
 *   CompactDatapointsItem  { string id = 1; uint64 totalCount = 2; repeated string fields = 3;
 *                            repeated CompactDataPointValue values = 4; }
 *   CompactDataPointValue  { oneof value { int64 int64 = 1; double double = 2; uint32 uint32 = 3; uint64 uint64 = 4; } }
 *
 * `values` is row-major: every `fields.length` consecutive values are one row. There is no per-item continuation
 * token in this message: a protobuf multi-query pages with the overall token only.
 */
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

export type CompactValue =
  | { case: "int64"; value: bigint }
  | { case: "double"; value: number }
  | { case: "uint32"; value: number }
  | { case: "uint64"; value: bigint }
  /** No member set: an aggregate bucket without a value (fill `null`). */
  | { case: undefined };

export interface CompactItem {
  id: string;
  totalCount: bigint;
  fields: string[];
  values: CompactValue[];
}

export interface CompactDatapoints {
  data: CompactItem[];
  /** Empty or undefined is left off the wire (proto3 default). */
  continuationToken?: string | null;
}

export function encodeCompactDatapoints(dto: CompactDatapoints): Uint8Array {
  const w = new BinaryWriter();
  for (const item of dto.data) {
    w.tag(1, WireType.LengthDelimited).fork();
    writeItem(w, item);
    w.join();
  }
  if (dto.continuationToken) w.tag(2, WireType.LengthDelimited).string(dto.continuationToken);
  return w.finish();
}

function writeItem(w: BinaryWriter, item: CompactItem): void {
  if (item.id) w.tag(1, WireType.LengthDelimited).string(item.id);
  if (item.totalCount !== 0n) w.tag(2, WireType.Varint).uint64(item.totalCount);
  for (const f of item.fields) w.tag(3, WireType.LengthDelimited).string(f);
  for (const v of item.values) {
    // A oneof member is written even when it holds its default (a status of 0 is still on the wire).
    w.tag(4, WireType.LengthDelimited).fork();
    switch (v.case) {
      case "int64":
        w.tag(1, WireType.Varint).int64(v.value);
        break;
      case "double":
        w.tag(2, WireType.Bit64).double(v.value);
        break;
      case "uint32":
        w.tag(3, WireType.Varint).uint32(v.value);
        break;
      case "uint64":
        w.tag(4, WireType.Varint).uint64(v.value);
        break;
    }
    w.join();
  }
}

/** The media types the API answers in protobuf; anything else gets JSON. */
export function wantsProtobuf(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept
    .split(",")
    .map((p) => p.split(";")[0]!.trim().toLowerCase())
    .some((t) => t === "application/protobuf" || t === "application/x-protobuf" || t === "application/x-google-protobuf");
}
