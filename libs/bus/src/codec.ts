import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  type Point,
  type Quality,
  type RawPayload,
  type Source,
  type TelemetryBatch,
  TelemetryBatchSchema,
  type TelemetryEvent,
} from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";

/** Header naming the protobuf message a bus message carries, so a reader never guesses. */
export const SCHEMA_HEADER = "Meridian-Schema";
export const TELEMETRY_BATCH_SCHEMA = TelemetryBatchSchema.typeName;

/** Events in one telemetry bus message at most: a publish call of more is split (Bus.publishEvents). */
export const MAX_EVENTS_PER_MESSAGE = 1000;
/** Encoded bytes of one telemetry bus message at most: half of NATS's default max_payload (1 MiB), headers aside. */
export const MAX_MESSAGE_BYTES = 512 * 1024;

/*
 * TelemetryBatch on the bus, encoded and decoded by hand: every event crosses this twice (publisher, sink), and the
 * reflective codec of protobuf-es was on top of both profiles. The reflective codec stays the definition: codec.test.ts
 * round-trips random batches through both, so a field added to telemetry.proto that this file does not know fails
 * there. What this file cannot represent goes to the reflective codec: unknown fields (a newer writer's), on either side.
 */

export function encodeBatch(batch: TelemetryBatch): Uint8Array {
  return encodeBatchWithin(batch, Number.POSITIVE_INFINITY)!;
}

/**
 * encodeBatch, or undefined when the events take more than `maxEventBytes` encoded (what chunkEvents adds up): a
 * publisher sizes a batch that fits once, while encoding it, and chunks only one that does not.
 */
export function encodeBatchWithin(batch: TelemetryBatch, maxEventBytes: number): Uint8Array | undefined {
  const events = batch.events;
  // Each event's size is needed twice (the sum, then its length prefix): computed once.
  const sizes = new Array<number>(events.length);
  let eventBytes = 0;
  for (let i = 0; i < events.length; i++) {
    const size = eventSize(events[i]!);
    sizes[i] = size;
    eventBytes += lenField(size);
  }
  if (eventBytes > maxEventBytes) return undefined;
  if (hasUnknown(batch)) return toBinary(TelemetryBatchSchema, batch);
  const w = new Writer(strField(batch.id) + eventBytes);
  strOut(w, 1, batch.id);
  for (let i = 0; i < events.length; i++) writeEvent(w, events[i]!, sizes[i]!);
  return w.finish();
}

export function decodeBatch(data: Uint8Array): TelemetryBatch {
  // What the fast path does not keep, or a broken message: the reflective codec decides, with its errors.
  return decodeBatchFast(data) ?? fromBinary(TelemetryBatchSchema, data);
}

/** The hand-written reader alone: undefined for what it leaves to the reflective codec (codec.test.ts holds it to that). */
export function decodeBatchFast(data: Uint8Array): TelemetryBatch | undefined {
  try {
    return readBatch(new BinaryReader(data));
  } catch {
    return undefined;
  }
}

export function makeBatch(id: string, events: TelemetryEvent[]): TelemetryBatch {
  return create(TelemetryBatchSchema, { id, events });
}

/** The encoded size of one event inside a batch (tag and length included): what chunking adds up. */
export function encodedEventSize(event: TelemetryEvent): number {
  return lenField(eventSize(event));
}

// ---- sizes -------------------------------------------------------------------------------------------------------

function utf8Length(s: string): number {
  const n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    // Anything past ASCII: let Buffer count it (surrogate pairs, lone surrogates as U+FFFD, like TextEncoder).
    return Buffer.byteLength(s, "utf8");
  }
  return n;
}

function varintSize(v: number): number {
  if (v < 0) return 10;
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  // Up to 2^53: each further 7 bits one byte.
  let n = 5;
  for (let x = Math.floor(v / 0x800000000); x > 0; x = Math.floor(x / 128)) n++;
  return n;
}

function varint64Size(v: bigint): number {
  // Times and counters are far below 2^53: sized as numbers, without a BigInt per 7 bits.
  if (v >= 0n && v <= 0x1fffffffffffffn) return varintSize(Number(v));
  let x = BigInt.asUintN(64, v);
  let n = 1;
  while (x >= 0x80n) {
    x >>= 7n;
    n++;
  }
  return n;
}

/** One length-delimited field with a one-byte tag (every field here has a number below 16). */
function lenField(size: number): number {
  return 1 + varintSize(size) + size;
}

const strField = (s: string) => (s === "" ? 0 : lenField(utf8Length(s)));

function sourceSize(s: Source): number {
  return (s.platform !== 0 ? 1 + varintSize(s.platform) : 0) + strField(s.connection) + strField(s.device);
}

function timestampSize(t: Timestamp): number {
  return (t.seconds !== 0n ? 1 + varint64Size(t.seconds) : 0) + (t.nanos !== 0 ? 1 + varintSize(t.nanos) : 0);
}

function pointSize(p: Point): number {
  let n = strField(p.name);
  switch (p.value.case) {
    case "doubleValue":
      n += 9;
      break;
    case "intValue":
      n += 1 + varint64Size(p.value.value);
      break;
    case "boolValue":
      n += 2;
      break;
    case "stringValue":
      n += lenField(utf8Length(p.value.value));
      break;
  }
  n += strField(p.unit);
  if (p.quality !== 0) n += 1 + varintSize(p.quality);
  return n;
}

function rawSize(r: RawPayload): number {
  return (r.data.length > 0 ? lenField(r.data.length) : 0) + strField(r.contentType);
}

function eventSize(e: TelemetryEvent): number {
  let n = strField(e.id);
  if (e.source) n += lenField(sourceSize(e.source));
  if (e.observedTime) n += lenField(timestampSize(e.observedTime));
  if (e.receivedTime) n += lenField(timestampSize(e.receivedTime));
  for (const p of e.points) n += lenField(pointSize(p));
  for (const k in e.attributes) n += lenField(lenField(utf8Length(k)) + lenField(utf8Length(e.attributes[k]!)));
  if (e.raw) n += lenField(rawSize(e.raw));
  return n;
}

// ---- writing -----------------------------------------------------------------------------------------------------

/** Writes into one buffer of the size computed beforehand: no growth, no forks. */
class Writer {
  readonly buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }
  varint(v: number): void {
    if (v < 0) {
      this.varint64(BigInt(v));
      return;
    }
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }
  varint64(v: bigint): void {
    if (v >= 0n && v <= 0x1fffffffffffffn) {
      this.varint(Number(v));
      return;
    }
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.buf[this.pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.pos++] = Number(x);
  }
  string(s: string): void {
    // Copied as ASCII while it is (one pass, not a length pass and a copy); past ASCII, written again as UTF-8.
    const start = this.pos;
    const n = s.length;
    this.varint(n);
    const at = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.pos = start;
        this.varint(utf8Length(s));
        this.pos += this.buf.write(s, this.pos, "utf8");
        return;
      }
      this.buf[at + i] = c;
    }
    this.pos = at + n;
  }
  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  double(v: number): void {
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  finish(): Uint8Array {
    if (this.pos !== this.buf.length) throw new Error(`TelemetryBatch encoder wrote ${this.pos} of ${this.buf.length} bytes`);
    return this.buf;
  }
}

const tag = (field: number, wire: WireType) => (field << 3) | wire;

function strOut(w: Writer, field: number, s: string): void {
  if (s === "") return;
  w.byte(tag(field, WireType.LengthDelimited));
  w.string(s);
}

function writeTimestamp(w: Writer, field: number, t: Timestamp): void {
  w.byte(tag(field, WireType.LengthDelimited));
  w.varint(timestampSize(t));
  if (t.seconds !== 0n) {
    w.byte(tag(1, WireType.Varint));
    w.varint64(t.seconds);
  }
  if (t.nanos !== 0) {
    w.byte(tag(2, WireType.Varint));
    w.varint(t.nanos);
  }
}

function writePoint(w: Writer, p: Point): void {
  w.byte(tag(5, WireType.LengthDelimited));
  w.varint(pointSize(p));
  strOut(w, 1, p.name);
  switch (p.value.case) {
    case "doubleValue":
      w.byte(tag(2, WireType.Bit64));
      w.double(p.value.value);
      break;
    case "intValue":
      w.byte(tag(3, WireType.Varint));
      w.varint64(p.value.value);
      break;
    case "boolValue":
      w.byte(tag(4, WireType.Varint));
      w.byte(p.value.value ? 1 : 0);
      break;
    case "stringValue":
      w.byte(tag(5, WireType.LengthDelimited));
      w.string(p.value.value);
      break;
  }
  strOut(w, 6, p.unit);
  if (p.quality !== 0) {
    w.byte(tag(7, WireType.Varint));
    w.varint(p.quality);
  }
}

function writeEvent(w: Writer, e: TelemetryEvent, size: number): void {
  w.byte(tag(2, WireType.LengthDelimited));
  w.varint(size);
  strOut(w, 1, e.id);
  const s = e.source;
  if (s) {
    w.byte(tag(2, WireType.LengthDelimited));
    w.varint(sourceSize(s));
    if (s.platform !== 0) {
      w.byte(tag(1, WireType.Varint));
      w.varint(s.platform);
    }
    strOut(w, 2, s.connection);
    strOut(w, 3, s.device);
  }
  if (e.observedTime) writeTimestamp(w, 3, e.observedTime);
  if (e.receivedTime) writeTimestamp(w, 4, e.receivedTime);
  for (const p of e.points) writePoint(w, p);
  for (const k in e.attributes) {
    const v = e.attributes[k]!;
    w.byte(tag(6, WireType.LengthDelimited));
    w.varint(lenField(utf8Length(k)) + lenField(utf8Length(v)));
    // Key and value both written, as the reflective codec does for map entries.
    w.byte(tag(1, WireType.LengthDelimited));
    w.string(k);
    w.byte(tag(2, WireType.LengthDelimited));
    w.string(v);
  }
  const r = e.raw;
  if (r) {
    w.byte(tag(7, WireType.LengthDelimited));
    w.varint(rawSize(r));
    if (r.data.length > 0) {
      w.byte(tag(1, WireType.LengthDelimited));
      w.bytes(r.data);
    }
    strOut(w, 2, r.contentType);
  }
}

function hasUnknown(b: TelemetryBatch): boolean {
  if (b.$unknown?.length) return true;
  for (const e of b.events) {
    if (e.$unknown?.length || e.source?.$unknown?.length || e.observedTime?.$unknown?.length || e.receivedTime?.$unknown?.length)
      return true;
    if (e.raw?.$unknown?.length) return true;
    for (const p of e.points) if (p.$unknown?.length) return true;
  }
  return false;
}

// ---- reading -----------------------------------------------------------------------------------------------------

/** Thrown inside the reader for what only the reflective codec keeps (unknown fields, wire types it tolerates). */
const NOT_MINE = Symbol("not for the TelemetryBatch fast path");

function expect(wire: WireType, want: WireType): void {
  if (wire !== want) throw NOT_MINE;
}

function readSource(r: BinaryReader, end: number): Source {
  const s: Source = { $typeName: "meridian.telemetry.v1.Source", platform: 0, connection: "", device: "" };
  while (r.pos < end) {
    const [field, wire] = r.tag();
    if (field === 1) {
      expect(wire, WireType.Varint);
      s.platform = r.int32();
    } else if (field === 2) {
      expect(wire, WireType.LengthDelimited);
      s.connection = r.string();
    } else if (field === 3) {
      expect(wire, WireType.LengthDelimited);
      s.device = r.string();
    } else throw NOT_MINE;
  }
  if (r.pos !== end) throw NOT_MINE;
  return s;
}

function readTimestamp(r: BinaryReader, end: number): Timestamp {
  const t: Timestamp = { $typeName: "google.protobuf.Timestamp", seconds: 0n, nanos: 0 };
  while (r.pos < end) {
    const [field, wire] = r.tag();
    if (field === 1) {
      expect(wire, WireType.Varint);
      t.seconds = BigInt(r.int64());
    } else if (field === 2) {
      expect(wire, WireType.Varint);
      t.nanos = r.int32();
    } else throw NOT_MINE;
  }
  if (r.pos !== end) throw NOT_MINE;
  return t;
}

function readPoint(r: BinaryReader, end: number): Point {
  const p: Point = { $typeName: "meridian.telemetry.v1.Point", name: "", value: { case: undefined }, unit: "", quality: 0 };
  while (r.pos < end) {
    const [field, wire] = r.tag();
    switch (field) {
      case 1:
        expect(wire, WireType.LengthDelimited);
        p.name = r.string();
        break;
      case 2:
        expect(wire, WireType.Bit64);
        p.value = { case: "doubleValue", value: r.double() };
        break;
      case 3:
        expect(wire, WireType.Varint);
        p.value = { case: "intValue", value: BigInt(r.int64()) };
        break;
      case 4:
        expect(wire, WireType.Varint);
        p.value = { case: "boolValue", value: r.bool() };
        break;
      case 5:
        expect(wire, WireType.LengthDelimited);
        p.value = { case: "stringValue", value: r.string() };
        break;
      case 6:
        expect(wire, WireType.LengthDelimited);
        p.unit = r.string();
        break;
      case 7:
        expect(wire, WireType.Varint);
        p.quality = r.int32() as Quality;
        break;
      default:
        throw NOT_MINE;
    }
  }
  if (r.pos !== end) throw NOT_MINE;
  return p;
}

function readRaw(r: BinaryReader, end: number): RawPayload {
  const raw: RawPayload = { $typeName: "meridian.telemetry.v1.RawPayload", data: new Uint8Array(0), contentType: "" };
  while (r.pos < end) {
    const [field, wire] = r.tag();
    if (field === 1) {
      expect(wire, WireType.LengthDelimited);
      raw.data = r.bytes();
    } else if (field === 2) {
      expect(wire, WireType.LengthDelimited);
      raw.contentType = r.string();
    } else throw NOT_MINE;
  }
  if (r.pos !== end) throw NOT_MINE;
  return raw;
}

function readAttribute(r: BinaryReader, end: number, into: Record<string, string>): void {
  let key = "";
  let value = "";
  while (r.pos < end) {
    const [field, wire] = r.tag();
    expect(wire, WireType.LengthDelimited);
    if (field === 1) key = r.string();
    else if (field === 2) value = r.string();
    else throw NOT_MINE;
  }
  if (r.pos !== end) throw NOT_MINE;
  into[key] = value;
}

/** The end of the length-delimited field the reader stands at, checked against the buffer. */
function sub(r: BinaryReader): number {
  // The length first: it moves pos past its own varint.
  const length = r.uint32();
  const end = r.pos + length;
  if (end > r.len) throw NOT_MINE;
  return end;
}

function readEvent(r: BinaryReader, end: number): TelemetryEvent {
  const e: TelemetryEvent = {
    $typeName: "meridian.telemetry.v1.TelemetryEvent",
    id: "",
    source: undefined,
    observedTime: undefined,
    receivedTime: undefined,
    points: [],
    attributes: {},
    raw: undefined,
  };
  while (r.pos < end) {
    const [field, wire] = r.tag();
    if (field !== 1 && field <= 7) expect(wire, WireType.LengthDelimited);
    switch (field) {
      case 1:
        expect(wire, WireType.LengthDelimited);
        e.id = r.string();
        break;
      case 2:
        // A message field seen twice is merged by the reflective codec: leave that rarity to it.
        if (e.source) throw NOT_MINE;
        e.source = readSource(r, sub(r));
        break;
      case 3:
        if (e.observedTime) throw NOT_MINE;
        e.observedTime = readTimestamp(r, sub(r));
        break;
      case 4:
        if (e.receivedTime) throw NOT_MINE;
        e.receivedTime = readTimestamp(r, sub(r));
        break;
      case 5:
        e.points.push(readPoint(r, sub(r)));
        break;
      case 6:
        readAttribute(r, sub(r), e.attributes);
        break;
      case 7:
        if (e.raw) throw NOT_MINE;
        e.raw = readRaw(r, sub(r));
        break;
      default:
        throw NOT_MINE;
    }
  }
  if (r.pos !== end) throw NOT_MINE;
  return e;
}

function readBatch(r: BinaryReader): TelemetryBatch {
  const b: TelemetryBatch = { $typeName: "meridian.telemetry.v1.TelemetryBatch", id: "", events: [] };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    expect(wire, WireType.LengthDelimited);
    if (field === 1) b.id = r.string();
    else if (field === 2) {
      const end = sub(r);
      b.events.push(readEvent(r, end));
      if (r.pos !== end) throw NOT_MINE;
    } else throw NOT_MINE;
  }
  return b;
}
