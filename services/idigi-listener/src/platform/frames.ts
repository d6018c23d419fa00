import { gunzipSync, inflateSync } from "node:zlib";
import { type ConnectRefusal, IdigiConnectRefusedError, IdigiFrameError, IdigiPayloadError } from "./errors.js";

/**
 * The iDigi push-monitor TCP frame codec (pure: no sockets).
 *
 * Every frame is `type:u16 size:u32 payload[size]`, big-endian, where `size` counts the payload only
 * (not the 6-byte header). Layouts follow shared/protocols/idigi.md §2.
 */

export const FrameType = {
  ConnectRequest: 0x0001,
  ConnectResponse: 0x0002,
  PublishMessage: 0x0003,
  PublishMessageReceived: 0x0004,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

export const HEADER_SIZE = 6;
export const PROTOCOL_VERSION = 1;
export const STATUS_OK = 200;
/** Default upper bound of one frame's payload. Real blocks are a few hundred bytes to a few hundred KB. */
export const DEFAULT_MAX_FRAME_SIZE = 4 * 1024 * 1024;
/** Bytes before the payload inside a PublishMessage body: blockId, count, compression, format, payloadSize. */
export const PUBLISH_MESSAGE_PREFIX = 10;

export type Compression = "none" | "zlib";
export type PayloadFormat = "xml" | "json";

export interface RawFrame {
  type: number;
  /** The frame's body, without the 6-byte header. */
  body: Buffer;
}

export interface ConnectRequestFields {
  username: string;
  password: string;
  monitorId: number;
  /** Defaults to 1, the only version the notes know. */
  protocolVersion?: number;
}

/**
 * Encodes a ConnectRequest. Length prefixes are UTF-8 **byte** counts (`Buffer.byteLength`), not the character
 * counts the Python and the old TS client use. Throws RangeError (never echoing the values) when a field
 * does not fit its wire type.
 */
export function encodeConnectRequest(fields: ConnectRequestFields): Buffer {
  const user = Buffer.from(fields.username, "utf8");
  const pass = Buffer.from(fields.password, "utf8");
  if (user.length > 0xffff) throw new RangeError("username is longer than 65535 UTF-8 bytes");
  if (pass.length > 0xffff) throw new RangeError("password is longer than 65535 UTF-8 bytes");
  if (!Number.isInteger(fields.monitorId) || fields.monitorId < 0 || fields.monitorId > 0xffffffff) {
    throw new RangeError("monitorId must be an integer in [0, 2^32)");
  }
  const version = fields.protocolVersion ?? PROTOCOL_VERSION;
  const size = 10 + user.length + pass.length;
  const out = Buffer.alloc(HEADER_SIZE + size);
  let o = out.writeUInt16BE(FrameType.ConnectRequest, 0);
  o = out.writeUInt32BE(size, o);
  o = out.writeUInt16BE(version, o);
  o = out.writeUInt16BE(user.length, o);
  o += user.copy(out, o);
  o = out.writeUInt16BE(pass.length, o);
  o += pass.copy(out, o);
  out.writeUInt32BE(fields.monitorId, o);
  return out;
}

export interface ConnectResponse {
  status: number;
  protocolVersion: number;
}

/** Decodes a ConnectResponse body (the 4 bytes after the header). */
export function decodeConnectResponse(body: Buffer): ConnectResponse {
  if (body.length !== 4) {
    throw new IdigiFrameError("bad_length", `ConnectResponse body must be 4 bytes, got ${body.length}`, FrameType.ConnectResponse);
  }
  return { status: body.readUInt16BE(0), protocolVersion: body.readUInt16BE(2) };
}

export type ConnectResult = { ok: true; status: number; protocolVersion: number } | { ok: false; error: IdigiConnectRefusedError };

/**
 * Maps a ConnectResponse status to a result, by class: the notes verify only 200 and guess ([I]) which 4xx stands
 * for what, so every 4xx is one final refusal whatever its code.
 * - 2xx → ok. The notes' clients disagree: Python accepts only 200, the TS client any 2xx; we accept any 2xx.
 * - 4xx → `refused`, final (bad credentials, a monitor of another account, an unknown, non-tcp or DISABLED monitor,
 *   a protocol the server does not take: what reconnecting cannot change).
 * - 5xx → `server_error`, the only retryable refusal.
 * - anything else → `unexpected_status`, final.
 */
export function interpretConnectResponse(response: ConnectResponse): ConnectResult {
  const { status } = response;
  if (status >= 200 && status < 300) return { ok: true, status, protocolVersion: response.protocolVersion };
  const refusal: ConnectRefusal =
    status >= 400 && status < 500 ? "refused" : status >= 500 && status < 600 ? "server_error" : "unexpected_status";
  return { ok: false, error: new IdigiConnectRefusedError(status, refusal) };
}

export interface PublishMessage {
  /** The u16 "rotating" data block id; echo it in the ack. */
  blockId: number;
  /** Number of Msgs the server says the block holds (the Python clients ignore it). */
  count: number;
  compression: Compression;
  format: PayloadFormat;
  /** The payload as it was on the wire (compressed when `compression` is zlib). */
  payload: Buffer;
}

/** Decodes a PublishMessage body (after the header). Validates compression/format bytes and payloadSize. */
export function decodePublishMessage(body: Buffer): PublishMessage {
  if (body.length < PUBLISH_MESSAGE_PREFIX) {
    throw new IdigiFrameError("bad_length", `PublishMessage body must be at least 10 bytes, got ${body.length}`, FrameType.PublishMessage);
  }
  const blockId = body.readUInt16BE(0);
  const count = body.readUInt16BE(2);
  const compressionByte = body.readUInt8(4);
  const formatByte = body.readUInt8(5);
  const payloadSize = body.readUInt32BE(6);
  if (compressionByte > 1) {
    throw new IdigiFrameError("bad_field", `PublishMessage compression byte ${compressionByte} is neither 0 (none) nor 1 (zlib)`, 3);
  }
  if (formatByte > 1) throw new IdigiFrameError("bad_field", `PublishMessage format byte ${formatByte} is neither 0 (xml) nor 1 (json)`, 3);
  if (payloadSize !== body.length - PUBLISH_MESSAGE_PREFIX) {
    throw new IdigiFrameError(
      "bad_length",
      `PublishMessage payloadSize ${payloadSize} disagrees with frame size (${body.length - PUBLISH_MESSAGE_PREFIX} payload bytes)`,
      FrameType.PublishMessage,
    );
  }
  return {
    blockId,
    count,
    compression: compressionByte === 1 ? "zlib" : "none",
    format: formatByte === 1 ? "json" : "xml",
    payload: body.subarray(PUBLISH_MESSAGE_PREFIX),
  };
}

/** The Base64 alphabet, padding and line breaks: a JSON (`{`) or XML (`<`) document never consists of these alone. */
function isBase64Text(p: Buffer): boolean {
  let n = 0;
  for (const b of p) {
    if (b === 0x0d || b === 0x0a) continue;
    const ok = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2b || b === 0x2f || b === 0x3d;
    if (!ok) return false;
    n++;
  }
  return n > 0 && n % 4 === 0;
}

/** RFC 1950 header: CM = 8 (deflate) and the header checksum. */
const isZlib = (p: Buffer) => p.length >= 2 && (p[0]! & 0x0f) === 8 && ((p[0]! << 8) | p[1]!) % 31 === 0;
const isGzip = (p: Buffer) => p.length >= 2 && p[0] === 0x1f && p[1] === 0x8b;

/**
 * The payload bytes after decoding and decompression. Compression byte 1 means a **zlib stream** (RFC 1950, `78 9C`),
 * even when the monitor was created with `gzip`; a payload that starts with the gzip magic (`1F 8B`) is gunzipped
 * instead, defensively ([I]: never seen). The docs say a payload "may be compressed & Base64 encoded" ([I]: no client
 * in the notes decodes it): a payload made of Base64 text alone is decoded first, and what it holds is inflated when
 * the compression byte says so or when it starts with a zlib or gzip header (both readings of whether the byte is set
 * for Base64). A plain payload is never taken for Base64: JSON starts with `{`, XML with `<`. Output is capped at
 * `maxBytes` (zip-bomb guard).
 */
export function inflatePayload(message: Pick<PublishMessage, "compression" | "payload">, maxBytes = DEFAULT_MAX_FRAME_SIZE * 8): Buffer {
  let p = message.payload;
  let zipped = message.compression === "zlib";
  // A compressed payload with a zlib or gzip header is bytes on the wire, whatever its characters.
  if (!(zipped && (isZlib(p) || isGzip(p))) && isBase64Text(p)) {
    p = Buffer.from(p.toString("latin1"), "base64");
    zipped ||= isZlib(p) || isGzip(p);
  }
  if (!zipped) return p;
  try {
    if (isGzip(p)) return gunzipSync(p, { maxOutputLength: maxBytes });
    return inflateSync(p, { maxOutputLength: maxBytes });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ERR_BUFFER_TOO_LARGE")
      throw new IdigiPayloadError("too_large", `inflated payload exceeds ${maxBytes} bytes`, { cause: err });
    throw new IdigiPayloadError("inflate_failed", "compressed payload is not a valid zlib stream", { cause: err });
  }
}

/**
 * Encodes the spec's 10-byte PublishMessageReceived: `00 04 | 00 00 00 04 | blockId:u16 | status:u16`.
 *
 * The legacy Python clients send `struct.pack('!HHH', 4, blockId, 200)`, a 6-byte form **without the size
 * field** (`00 04 01 A7 00 C8`); a strict server reads its size as `(blockId << 16) | 200` and stalls. We never
 * send that form; it is documented here only so nobody "fixes" this encoder back to it.
 */
export function encodePublishMessageReceived(blockId: number, status: number = STATUS_OK): Buffer {
  if (!Number.isInteger(blockId) || blockId < 0 || blockId > 0xffff) throw new RangeError("blockId must be a u16");
  if (!Number.isInteger(status) || status < 0 || status > 0xffff) throw new RangeError("status must be a u16");
  const out = Buffer.alloc(10);
  out.writeUInt16BE(FrameType.PublishMessageReceived, 0);
  out.writeUInt32BE(4, 2);
  out.writeUInt16BE(blockId, 6);
  out.writeUInt16BE(status, 8);
  return out;
}

export interface FrameReaderOptions {
  /** Largest accepted `size` (payload bytes, excluding the header). Default 4 MiB. */
  maxFrameSize?: number;
  /** Frame types this side may receive. Default: ConnectResponse and PublishMessage (the client's side). */
  acceptTypes?: readonly number[];
}

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(FrameType));

/** Smallest legal body per type, and the exact one where the layout is fixed; checked from the header alone. */
function checkHeader(type: number, size: number, accept: ReadonlySet<number>, max: number): void {
  if (!KNOWN_TYPES.has(type)) throw new IdigiFrameError("unknown_type", `unknown frame type 0x${type.toString(16).padStart(4, "0")}`, type);
  if (!accept.has(type))
    throw new IdigiFrameError("unexpected_type", `frame type ${type} is not expected on this side of the connection`, type);
  if (size > max) throw new IdigiFrameError("oversized", `frame size ${size} exceeds the maximum of ${max}`, type);
  if ((type === FrameType.ConnectResponse || type === FrameType.PublishMessageReceived) && size !== 4) {
    throw new IdigiFrameError("bad_length", `frame type ${type} must have size 4, got ${size}`, type);
  }
  if ((type === FrameType.PublishMessage || type === FrameType.ConnectRequest) && size < 10) {
    throw new IdigiFrameError("bad_length", `frame type ${type} must have size ≥ 10, got ${size}`, type);
  }
}

/**
 * Incremental frame splitter: feed it chunks split anywhere, get whole frames back.
 *
 * The header is validated as soon as its 6 bytes are in, so an oversized length or an unknown type is rejected
 * before any body is buffered; the reader never holds more than one frame's worth (header + max size) of its own
 * copies. On any error it throws a `IdigiFrameError` and stays failed (`reader_failed`) until `reset()`: after a bad
 * header the stream cannot be resynchronised, so the connection must be dropped.
 */
export class FrameReader {
  readonly maxFrameSize: number;
  private readonly accept: ReadonlySet<number>;
  private chunks: Buffer[] = [];
  private length = 0;
  private failed: IdigiFrameError | undefined;
  /** Header of the frame being assembled, once its 6 bytes are known. */
  private pending: { type: number; size: number } | undefined;

  constructor(options: FrameReaderOptions = {}) {
    const max = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    if (!Number.isInteger(max) || max < 10 || max > 0xffffffff) throw new RangeError("maxFrameSize must be an integer in [10, 2^32)");
    this.maxFrameSize = max;
    this.accept = new Set(options.acceptTypes ?? [FrameType.ConnectResponse, FrameType.PublishMessage]);
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.length;
  }

  /**
   * Adds a chunk and returns every frame it completes (possibly none). Throws only `IdigiFrameError`; whole frames that
   * preceded the bad header in the same chunk are then lost to the caller (use `feed` to get them).
   */
  push(chunk: Uint8Array): RawFrame[] {
    return [...this.feed(chunk)];
  }

  /**
   * Adds a chunk now and returns an iterator over the frames it completes. The iterator yields each whole frame
   * before throwing the `IdigiFrameError` of a bad header that follows it, so frames preceding an error in the same
   * chunk (say, a valid ConnectResponse coalesced with garbage) are still delivered.
   */
  feed(chunk: Uint8Array): IterableIterator<RawFrame> {
    if (this.failed)
      throw new IdigiFrameError("reader_failed", `frame reader already failed: ${this.failed.message}`, this.failed.frameType);
    if (chunk.length > 0) {
      this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.length += chunk.length;
    }
    return this.drain();
  }

  private *drain(): IterableIterator<RawFrame> {
    for (;;) {
      if (this.failed)
        throw new IdigiFrameError("reader_failed", `frame reader already failed: ${this.failed.message}`, this.failed.frameType);
      if (!this.pending) {
        if (this.length < HEADER_SIZE) return;
        const header = this.take(HEADER_SIZE);
        const type = header.readUInt16BE(0);
        const size = header.readUInt32BE(2);
        try {
          checkHeader(type, size, this.accept, this.maxFrameSize);
        } catch (err) {
          this.failed = err instanceof IdigiFrameError ? err : new IdigiFrameError("bad_length", String(err));
          this.chunks = [];
          this.length = 0;
          throw this.failed;
        }
        this.pending = { type, size };
      }
      if (this.length < this.pending.size) return;
      const frame = { type: this.pending.type, body: this.take(this.pending.size) };
      this.pending = undefined;
      yield frame;
    }
  }

  /** Forgets buffered bytes and any failure (use for a new connection). */
  reset(): void {
    this.chunks = [];
    this.length = 0;
    this.pending = undefined;
    this.failed = undefined;
  }

  /** Removes and returns the first `n` buffered bytes (n ≤ length); copies only when they span chunks. */
  private take(n: number): Buffer {
    this.length -= n;
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      // Copy, so a small frame does not pin a large socket chunk in memory.
      return Buffer.from(first.subarray(0, n));
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[0]!;
      const want = n - o;
      if (c.length <= want) {
        c.copy(out, o);
        o += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, o, 0, want);
        this.chunks[0] = c.subarray(want);
        o += want;
      }
    }
    return out;
  }
}
