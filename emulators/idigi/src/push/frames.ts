/**
 * The iDigi push-monitor TCP framing (protocol notes §2), server side: encoders for the frames the
 * server sends (ConnectResponse, PublishMessage) and an incremental decoder for the frames a client
 * sends (ConnectRequest, PublishMessageReceived in both the spec 10-byte and the legacy 6-byte form).
 * Every integer is big-endian. Written from the notes alone; shares nothing with any client.
 */

export const FrameType = {
  ConnectRequest: 0x0001,
  ConnectResponse: 0x0002,
  PublishMessage: 0x0003,
  PublishMessageReceived: 0x0004,
} as const;

export const PROTOCOL_VERSION = 1;
export const HEADER_SIZE = 6;
/** Bytes of the PublishMessage body before the payload: blockId, count, compression, format, payloadSize. */
export const PUBLISH_PREAMBLE = 10;

export const Compression = { none: 0, zlib: 1 } as const;
export const Format = { xml: 0, json: 1 } as const;

/** `00 02 00000004 <status> 0001`, always 10 bytes, always written in one piece. */
export function encodeConnectResponse(status: number, version = PROTOCOL_VERSION): Buffer {
  const b = Buffer.allocUnsafe(10);
  b.writeUInt16BE(FrameType.ConnectResponse, 0);
  b.writeUInt32BE(4, 2);
  b.writeUInt16BE(status & 0xffff, 6);
  b.writeUInt16BE(version & 0xffff, 8);
  return b;
}

export interface PublishFrame {
  blockId: number;
  count: number;
  compression: number;
  format: number;
  /** The bytes on the wire: already compressed when `compression` is 1. */
  payload: Buffer;
}

/** One buffer holding the whole PublishMessage: size = 10 + payloadSize, payloadSize = on-wire payload bytes. */
export function encodePublishMessage(f: PublishFrame): Buffer {
  const n = f.payload.length;
  const b = Buffer.allocUnsafe(HEADER_SIZE + PUBLISH_PREAMBLE + n);
  b.writeUInt16BE(FrameType.PublishMessage, 0);
  b.writeUInt32BE(PUBLISH_PREAMBLE + n, 2);
  b.writeUInt16BE(f.blockId & 0xffff, 6);
  b.writeUInt16BE(f.count & 0xffff, 8);
  b.writeUInt8(f.compression, 10);
  b.writeUInt8(f.format, 11);
  b.writeUInt32BE(n, 12);
  f.payload.copy(b, 16);
  return b;
}

/** Any frame with an arbitrary type, for the "send a bad frame type" fault. */
export function encodeRawFrame(type: number, body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(HEADER_SIZE + body.length);
  b.writeUInt16BE(type & 0xffff, 0);
  b.writeUInt32BE(body.length, 2);
  body.copy(b, 6);
  return b;
}

export interface ConnectRequest {
  kind: "connect";
  version: number;
  username: string;
  password: string;
  monitorId: number;
}

export interface MalformedConnect {
  kind: "malformed";
  reason: string;
  /** Present when the version field could be read. */
  version?: number;
}

export interface Ack {
  kind: "ack";
  blockId: number;
  status: number;
  /** `spec`: `00 04 00000004 id status`; `legacy`: the Python `!HHH` form `00 04 id status`. */
  form: "spec" | "legacy";
}

export interface OtherFrame {
  kind: "other";
  type: number;
  body: Buffer;
}

export type ClientFrame = ConnectRequest | MalformedConnect | Ack | OtherFrame;

/** Parses a ConnectRequest body (the bytes after the 6-byte header). Lengths are byte counts. */
export function parseConnectRequestBody(body: Buffer): ConnectRequest | MalformedConnect {
  if (body.length < 2) return { kind: "malformed", reason: "body shorter than the version field" };
  const version = body.readUInt16BE(0);
  if (body.length < 4) return { kind: "malformed", reason: "no username length", version };
  const uLen = body.readUInt16BE(2);
  if (body.length < 4 + uLen + 2) return { kind: "malformed", reason: "username overruns the frame", version };
  const username = body.toString("utf8", 4, 4 + uLen);
  const pLen = body.readUInt16BE(4 + uLen);
  const pEnd = 6 + uLen + pLen;
  if (body.length < pEnd + 4) return { kind: "malformed", reason: "password or monitor id overruns the frame", version };
  const password = body.toString("utf8", 6 + uLen, pEnd);
  const monitorId = body.readUInt32BE(pEnd);
  if (body.length !== pEnd + 4) return { kind: "malformed", reason: "trailing bytes after the monitor id", version };
  return { kind: "connect", version, username, password, monitorId };
}

export class FrameTooLargeError extends Error {
  constructor(
    readonly type: number,
    readonly size: number,
  ) {
    super(`frame type ${type} declares ${size} bytes, over the limit`);
    this.name = "FrameTooLargeError";
  }
}

/**
 * Incremental decoder for client → server bytes. Tolerates fragmentation and coalescing: feed it
 * any chunks, it returns every complete frame. A type-4 frame is recognised in both ack forms:
 * after `00 04`, `00 00 00 04` means the spec form, anything else the legacy 6-byte form.
 */
export class ClientFrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly opts: { maxFrameSize?: number; acceptLegacyAck?: boolean } = {}) {}

  /** Bytes received but not yet forming a whole frame. */
  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): ClientFrame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: ClientFrame[] = [];
    const max = this.opts.maxFrameSize ?? 1 << 20;
    const legacy = this.opts.acceptLegacyAck ?? true;
    let off = 0;
    for (;;) {
      const avail = this.buf.length - off;
      if (avail < HEADER_SIZE) break;
      const type = this.buf.readUInt16BE(off);
      if (type === FrameType.PublishMessageReceived) {
        const size = this.buf.readUInt32BE(off + 2);
        if (size === 4) {
          if (avail < 10) break;
          out.push({ kind: "ack", blockId: this.buf.readUInt16BE(off + 6), status: this.buf.readUInt16BE(off + 8), form: "spec" });
          off += 10;
          continue;
        }
        if (legacy) {
          out.push({ kind: "ack", blockId: this.buf.readUInt16BE(off + 2), status: this.buf.readUInt16BE(off + 4), form: "legacy" });
          off += 6;
          continue;
        }
      }
      const size = this.buf.readUInt32BE(off + 2);
      if (size > max) throw new FrameTooLargeError(type, size);
      if (avail < HEADER_SIZE + size) break;
      const body = this.buf.subarray(off + HEADER_SIZE, off + HEADER_SIZE + size);
      off += HEADER_SIZE + size;
      if (type === FrameType.ConnectRequest) out.push(parseConnectRequestBody(body));
      else out.push({ kind: "other", type, body: Buffer.from(body) });
    }
    this.buf = off === 0 ? this.buf : Buffer.from(this.buf.subarray(off));
    return out;
  }
}
