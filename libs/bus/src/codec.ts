import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
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
  if (hasUnknown(batch)) {
    const bytes = toBinary(TelemetryBatchSchema, batch);
    return bytes.length - strField(batch.id) > maxEventBytes ? undefined : bytes;
  }
  const w = new Writer();
  strOut(w, 1, batch.id);
  const eventsAt = w.pos;
  for (const e of batch.events) writeEvent(w, e);
  // Written whole, then measured: a batch too large for one message is rare (a publisher sizes it, Bus chunks it).
  if (w.pos - eventsAt > maxEventBytes) return undefined;
  return w.finish();
}

export function decodeBatch(data: Uint8Array): TelemetryBatch {
  // What the fast path does not keep, or a broken message: the reflective codec decides, with its errors.
  return decodeBatchFast(data) ?? fromBinary(TelemetryBatchSchema, data);
}

/** The hand-written reader alone: undefined for what it leaves to the reflective codec (codec.test.ts holds it to that). */
export function decodeBatchFast(data: Uint8Array): TelemetryBatch | undefined {
  try {
    return readBatch(new Reader(data));
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

/** Scratch space the encoder writes into; each message is copied out at the end (the bus holds on to what it sends). */
const SCRATCH_BYTES = 64 * 1024;
let scratch: Buffer = Buffer.allocUnsafe(SCRATCH_BYTES);

/**
 * Writes a message in one pass. A nested message's length is not known before its fields are written: one byte is
 * kept for it (most are under 128 bytes), and the fields are moved along when it needs more. So no field's size is
 * computed apart from writing it (the size pass was a fifth of encoding, and repeated per nesting level).
 */
class Writer {
  buf: Buffer = scratch;
  pos = 0;
  private ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }
  private grow(n: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }
  varint(v: number): void {
    this.ensure(10);
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
    this.ensure(10);
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.buf[this.pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.pos++] = Number(x);
  }
  string(s: string): void {
    // Copied as ASCII while it is (one pass, not a length pass and a copy); past ASCII, written again as UTF-8.
    const n = s.length;
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.ensure(10 + 3 * n);
    const start = this.pos;
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
    this.ensure(10 + b.length);
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  /** Starts a nested message (field `field`): returns where its fields begin, for `end`. */
  begin(field: number): number {
    this.ensure(2);
    this.buf[this.pos++] = tag(field, WireType.LengthDelimited);
    this.pos++;
    return this.pos;
  }
  /** Ends the nested message begun at `start`: writes its length, moving its fields along when it takes more than a byte. */
  end(start: number): void {
    const length = this.pos - start;
    if (length < 0x80) {
      this.buf[start - 1] = length;
      return;
    }
    const extra = varintSize(length) - 1;
    this.ensure(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    this.pos += extra;
    const end = this.pos;
    this.pos = start - 1;
    this.varint(length);
    this.pos = end;
  }
  finish(): Uint8Array {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    // A batch that outgrew the scratch space leaves it the larger buffer only up to a bound.
    if (this.buf !== scratch && this.buf.length <= 16 * SCRATCH_BYTES) scratch = this.buf;
    return out;
  }
}

const tag = (field: number, wire: WireType) => (field << 3) | wire;

function strOut(w: Writer, field: number, s: string): void {
  if (s === "") return;
  w.byte(tag(field, WireType.LengthDelimited));
  w.string(s);
}

function writeTimestamp(w: Writer, field: number, t: Timestamp): void {
  const at = w.begin(field);
  if (t.seconds !== 0n) {
    w.byte(tag(1, WireType.Varint));
    w.varint64(t.seconds);
  }
  if (t.nanos !== 0) {
    w.byte(tag(2, WireType.Varint));
    w.varint(t.nanos);
  }
  w.end(at);
}

function writePoint(w: Writer, p: Point): void {
  const at = w.begin(5);
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
  w.end(at);
}

function writeEvent(w: Writer, e: TelemetryEvent): void {
  const at = w.begin(2);
  strOut(w, 1, e.id);
  const s = e.source;
  if (s) {
    const sourceAt = w.begin(2);
    if (s.platform !== 0) {
      w.byte(tag(1, WireType.Varint));
      w.varint(s.platform);
    }
    strOut(w, 2, s.connection);
    strOut(w, 3, s.device);
    w.end(sourceAt);
  }
  if (e.observedTime) writeTimestamp(w, 3, e.observedTime);
  if (e.receivedTime) writeTimestamp(w, 4, e.receivedTime);
  for (const p of e.points) writePoint(w, p);
  for (const k in e.attributes) {
    const entryAt = w.begin(6);
    // Key and value both written, as the reflective codec does for map entries.
    w.byte(tag(1, WireType.LengthDelimited));
    w.string(k);
    w.byte(tag(2, WireType.LengthDelimited));
    w.string(e.attributes[k]!);
    w.end(entryAt);
  }
  const r = e.raw;
  if (r) {
    const rawAt = w.begin(7);
    if (r.data.length > 0) {
      w.byte(tag(1, WireType.LengthDelimited));
      w.bytes(r.data);
    }
    strOut(w, 2, r.contentType);
    w.end(rawAt);
  }
  w.end(at);
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

/** Fatal, as protobuf-es's fromBinary is on string fields: bytes that are not UTF-8 go to the reflective codec, which refuses them. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/*
 * Short strings of a batch repeat from event to event (point names, units, devices, connections): each is kept in a
 * small table by a hash of its bytes and handed out again while its bytes match, so a repeated name costs a compare,
 * not a string. Event and batch ids, which never repeat, are not kept. The table is bounded (slots × ≤ 48 bytes).
 */
const INTERN_SLOTS = 2048;
const INTERN_MAX_BYTES = 48;
const interned: (string | undefined)[] = new Array(INTERN_SLOTS).fill(undefined);

/** Events of one batch mostly share their seconds: the last seconds read, and its bigint, are reused. */
let lastSeconds = -1;
let lastSecondsBigint = 0n;

/**
 * A protobuf wire reader for TelemetryBatch alone, over the message's bytes. protobuf-es's BinaryReader allocates an
 * array per tag and per short string; this one allocates only what the decoded batch holds. Anything it does not
 * expect (an unknown field, a wire type the reflective codec would tolerate, bytes past the end) throws NOT_MINE, and
 * the reflective codec decides, with its own errors.
 */
class Reader {
  readonly buf: Uint8Array;
  readonly len: number;
  /** The same bytes as a Buffer: latin1 slices and doubles without a copy. */
  readonly view: Buffer;
  pos = 0;
  // The two halves of the last varint64 read.
  lo = 0;
  hi = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.len = buf.length;
    this.view = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** A varint's low 32 bits, unsigned, as protobuf-es's uint32() (10 bytes at most). */
  uint32(): number {
    const buf = this.buf;
    let b = buf[this.pos++]!;
    let result = b & 0x7f;
    if (b < 0x80) return this.bounded(result);
    b = buf[this.pos++]!;
    result |= (b & 0x7f) << 7;
    if (b < 0x80) return this.bounded(result);
    b = buf[this.pos++]!;
    result |= (b & 0x7f) << 14;
    if (b < 0x80) return this.bounded(result);
    b = buf[this.pos++]!;
    result |= (b & 0x7f) << 21;
    if (b < 0x80) return this.bounded(result);
    b = buf[this.pos++]!;
    result |= (b & 0x0f) << 28;
    for (let read = 5; b >= 0x80 && read < 10; read++) b = buf[this.pos++]!;
    if (b >= 0x80) throw NOT_MINE;
    return this.bounded(result >>> 0);
  }

  /** A field's tag: field number × 8 + wire type, as one number (no pair allocated). */
  tag(): number {
    const start = this.pos;
    const tag = this.uint32();
    const read = this.pos - start;
    if (read > 5 || (read === 5 && this.buf[this.pos - 1]! > 0x0f)) throw NOT_MINE;
    return tag;
  }

  int32(): number {
    return this.uint32() | 0;
  }

  /** A varint of up to 64 bits into lo and hi, as protobuf-es's varint64read. */
  varint64(): void {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      const b = buf[this.pos++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.halves(lo, hi);
        return;
      }
    }
    const middle = buf[this.pos++]!;
    lo |= (middle & 0x0f) << 28;
    hi = (middle & 0x70) >> 4;
    if (middle < 0x80) {
      this.halves(lo, hi);
      return;
    }
    for (let shift = 3; shift <= 31; shift += 7) {
      const b = buf[this.pos++]!;
      hi |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.halves(lo, hi);
        return;
      }
    }
    throw NOT_MINE;
  }

  /** A signed 64-bit varint as a number while it is a safe integer ≥ 0 (times, most values), else undefined. */
  smallInt64(): number | undefined {
    this.varint64();
    const hi = this.hi;
    return hi >= 0 && hi < 0x200000 ? hi * 0x100000000 + (this.lo >>> 0) : undefined;
  }

  int64(): bigint {
    const n = this.smallInt64();
    return n !== undefined ? BigInt(n) : BigInt.asIntN(64, (BigInt(this.hi >>> 0) << 32n) | BigInt(this.lo >>> 0));
  }

  /** Timestamp seconds: an int64, the last one's bigint when it is the same. */
  seconds(): bigint {
    const n = this.smallInt64();
    if (n === undefined) return BigInt.asIntN(64, (BigInt(this.hi >>> 0) << 32n) | BigInt(this.lo >>> 0));
    if (n !== lastSeconds) {
      lastSecondsBigint = BigInt(n);
      lastSeconds = n;
    }
    return lastSecondsBigint;
  }

  bool(): boolean {
    this.varint64();
    return this.lo !== 0 || this.hi !== 0;
  }

  double(): number {
    const at = this.pos;
    if (at + 8 > this.len) throw NOT_MINE;
    this.pos = at + 8;
    return this.view.readDoubleLE(at);
  }

  bytes(): Uint8Array {
    const start = this.end();
    return this.buf.subarray(start, this.pos);
  }

  /** A string field; `keep`: one that repeats (names, devices), handed out from the table while its bytes match. */
  string(keep: boolean): string {
    const start = this.end();
    const end = this.pos;
    const n = end - start;
    if (n === 0) return "";
    const buf = this.buf;
    if (!keep || n > INTERN_MAX_BYTES) return this.decode(start, end);
    // FNV-1a over the bytes, and whether any is past ASCII (the table holds ASCII only: a char code is its byte).
    let hash = 0x811c9dc5;
    let high = 0;
    for (let i = start; i < end; i++) {
      const b = buf[i]!;
      high |= b;
      hash = Math.imul(hash ^ b, 0x01000193);
    }
    if (high >= 0x80) return utf8.decode(buf.subarray(start, end));
    const slot = (hash ^ (hash >>> 15)) & (INTERN_SLOTS - 1);
    const known = interned[slot];
    if (known !== undefined && known.length === n) {
      let k = 0;
      while (k < n && known.charCodeAt(k) === buf[start + k]) k++;
      if (k === n) return known;
    }
    const text = this.view.toString("latin1", start, end);
    interned[slot] = text;
    return text;
  }

  /** UTF-8 as protobuf-es decodes it (TextDecoder; ASCII sliced directly). */
  private decode(start: number, end: number): string {
    const buf = this.buf;
    for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return utf8.decode(buf.subarray(start, end));
    return this.view.toString("latin1", start, end);
  }

  /** Reads a length prefix and moves past what it covers; returns where that starts (checked against the buffer). */
  end(): number {
    // The length first: it moves pos past its own varint.
    const length = this.uint32();
    const start = this.pos;
    if (start + length > this.len) throw NOT_MINE;
    this.pos = start + length;
    return start;
  }

  /** The end of the length-delimited field the reader stands at; the reader stays at its start. */
  sub(): number {
    const length = this.uint32();
    const end = this.pos + length;
    if (end > this.len) throw NOT_MINE;
    return end;
  }

  private bounded(value: number): number {
    if (this.pos > this.len) throw NOT_MINE;
    return value;
  }

  private halves(lo: number, hi: number): void {
    if (this.pos > this.len) throw NOT_MINE;
    this.lo = lo;
    this.hi = hi;
  }
}

// Tags as read (field number × 8 + wire type): field 1 as a varint, as a 64-bit value, length-delimited; and so on.
const VARINT_1 = tag(1, WireType.Varint);
const VARINT_2 = tag(2, WireType.Varint);
const VARINT_3 = tag(3, WireType.Varint);
const VARINT_4 = tag(4, WireType.Varint);
const VARINT_7 = tag(7, WireType.Varint);
const BIT64_2 = tag(2, WireType.Bit64);
const LEN_1 = tag(1, WireType.LengthDelimited);
const LEN_2 = tag(2, WireType.LengthDelimited);
const LEN_3 = tag(3, WireType.LengthDelimited);
const LEN_4 = tag(4, WireType.LengthDelimited);
const LEN_5 = tag(5, WireType.LengthDelimited);
const LEN_6 = tag(6, WireType.LengthDelimited);
const LEN_7 = tag(7, WireType.LengthDelimited);

function readSource(r: Reader, end: number): Source {
  const s: Source = { $typeName: "meridian.telemetry.v1.Source", platform: 0, connection: "", device: "" };
  while (r.pos < end) {
    switch (r.tag()) {
      case VARINT_1:
        s.platform = r.int32();
        break;
      case LEN_2:
        s.connection = r.string(true);
        break;
      case LEN_3:
        s.device = r.string(true);
        break;
      default:
        throw NOT_MINE;
    }
  }
  if (r.pos !== end) throw NOT_MINE;
  return s;
}

function readTimestamp(r: Reader, end: number): Timestamp {
  const t: Timestamp = { $typeName: "google.protobuf.Timestamp", seconds: 0n, nanos: 0 };
  while (r.pos < end) {
    switch (r.tag()) {
      case VARINT_1:
        t.seconds = r.seconds();
        break;
      case VARINT_2:
        t.nanos = r.int32();
        break;
      default:
        throw NOT_MINE;
    }
  }
  if (r.pos !== end) throw NOT_MINE;
  return t;
}

function readPoint(r: Reader, end: number): Point {
  const p: Point = { $typeName: "meridian.telemetry.v1.Point", name: "", value: { case: undefined }, unit: "", quality: 0 };
  while (r.pos < end) {
    switch (r.tag()) {
      case LEN_1:
        p.name = r.string(true);
        break;
      case BIT64_2:
        p.value = { case: "doubleValue", value: r.double() };
        break;
      case VARINT_3:
        p.value = { case: "intValue", value: r.int64() };
        break;
      case VARINT_4:
        p.value = { case: "boolValue", value: r.bool() };
        break;
      case LEN_5:
        p.value = { case: "stringValue", value: r.string(true) };
        break;
      case LEN_6:
        p.unit = r.string(true);
        break;
      case VARINT_7:
        p.quality = r.int32() as Quality;
        break;
      default:
        throw NOT_MINE;
    }
  }
  if (r.pos !== end) throw NOT_MINE;
  return p;
}

function readRaw(r: Reader, end: number): RawPayload {
  const raw: RawPayload = { $typeName: "meridian.telemetry.v1.RawPayload", data: new Uint8Array(0), contentType: "" };
  while (r.pos < end) {
    switch (r.tag()) {
      case LEN_1:
        raw.data = r.bytes();
        break;
      case LEN_2:
        raw.contentType = r.string(true);
        break;
      default:
        throw NOT_MINE;
    }
  }
  if (r.pos !== end) throw NOT_MINE;
  return raw;
}

function readAttribute(r: Reader, end: number, into: Record<string, string>): void {
  let key = "";
  let value = "";
  while (r.pos < end) {
    switch (r.tag()) {
      case LEN_1:
        key = r.string(true);
        break;
      case LEN_2:
        value = r.string(true);
        break;
      default:
        throw NOT_MINE;
    }
  }
  if (r.pos !== end) throw NOT_MINE;
  into[key] = value;
}

function readEvent(r: Reader, end: number): TelemetryEvent {
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
    switch (r.tag()) {
      case LEN_1:
        e.id = r.string(false);
        break;
      case LEN_2:
        // A message field seen twice is merged by the reflective codec: leave that rarity to it.
        if (e.source) throw NOT_MINE;
        e.source = readSource(r, r.sub());
        break;
      case LEN_3:
        if (e.observedTime) throw NOT_MINE;
        e.observedTime = readTimestamp(r, r.sub());
        break;
      case LEN_4:
        if (e.receivedTime) throw NOT_MINE;
        e.receivedTime = readTimestamp(r, r.sub());
        break;
      case LEN_5:
        e.points.push(readPoint(r, r.sub()));
        break;
      case LEN_6:
        readAttribute(r, r.sub(), e.attributes);
        break;
      case LEN_7:
        if (e.raw) throw NOT_MINE;
        e.raw = readRaw(r, r.sub());
        break;
      default:
        throw NOT_MINE;
    }
  }
  if (r.pos !== end) throw NOT_MINE;
  return e;
}

function readBatch(r: Reader): TelemetryBatch {
  const b: TelemetryBatch = { $typeName: "meridian.telemetry.v1.TelemetryBatch", id: "", events: [] };
  while (r.pos < r.len) {
    switch (r.tag()) {
      case LEN_1:
        b.id = r.string(false);
        break;
      case LEN_2: {
        const end = r.sub();
        b.events.push(readEvent(r, end));
        break;
      }
      default:
        throw NOT_MINE;
    }
  }
  return b;
}
