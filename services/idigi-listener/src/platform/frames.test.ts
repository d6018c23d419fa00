import { deflateSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { IdigiConnectRefusedError, IdigiFrameError, IdigiPayloadError } from "./errors.js";
import {
  decodeConnectResponse,
  decodePublishMessage,
  encodeConnectRequest,
  encodePublishMessageReceived,
  FrameReader,
  inflatePayload,
  interpretConnectResponse,
} from "./frames.js";

/** "00 01 | 00 00" → Buffer; ignores spaces, pipes and newlines, like the notes' notation. */
const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]/g, ""), "hex");

// shared/protocols/idigi.md §5: the worked payload (196 bytes).
const PAYLOAD =
  '{"Document":{"Msg":{"timestamp":"2024-01-01T00:00:00.000Z","topic":"1234/DataPoint/dev1/temp","operation":"INSERTION","group":"*","DataPoint":{"cstId":1234,"streamId":"dev1/temp","data":"21.5"}}}}';
// The same payload as classic zlib (`zlib.compress` in CPython) compresses it: 154 bytes, as the notes say. Node's
// bundled zlib produces a different (155-byte) but equally valid stream, so the bytes are pinned here.
const PAYLOAD_ZLIB = hex(
  "789c4d4ebb0ec2300cfc178fa8b44e294be632646841d0892d6aa32a431e4a5c968a7fc761405827f96cdd9dbd431fe6cd194f207718f25a1a596732691741428b6d7744c19810e51735223ea1020ad1ce2c11eda96b7a4dfa16aca766312fd190617705219aa4c906cf32353e2ef7495d47deaf296c25fdc0fce72ca7e74c6a0159222bc8948c766586ffd0850de533519fe1cdf5017e873ac1",
);

describe("golden frames (notes §5 and §2 captures)", () => {
  it("encodes ConnectRequest pepsi/cola monitor 260 byte for byte (25 bytes)", () => {
    const out = encodeConnectRequest({ username: "pepsi", password: "cola", monitorId: 260 });
    expect(out.toString("hex")).toBe(
      hex("00 01 00 00 00 13 | 00 01 | 00 05 70 65 70 73 69 | 00 04 63 6F 6C 61 | 00 00 01 04").toString("hex"),
    );
    expect(out.length).toBe(25);
  });

  it("encodes the real 2012 capture jfocht/digidev monitor 99850", () => {
    const out = encodeConnectRequest({ username: "jfocht", password: "digidev", monitorId: 0x0001860a });
    expect(out).toEqual(hex("00 01 00 00 00 17 00 01 00 06 6A 66 6F 63 68 74 00 07 64 69 67 69 64 65 76 00 01 86 0A"));
  });

  it("uses UTF-8 byte lengths, not character counts, for non-ASCII credentials", () => {
    const out = encodeConnectRequest({ username: "jürgen", password: "pässwörd€", monitorId: 1 });
    expect(out.readUInt16BE(8)).toBe(7); // ü is 2 bytes
    const pLenAt = 10 + 7;
    expect(out.readUInt16BE(pLenAt)).toBe(Buffer.byteLength("pässwörd€"));
    expect(out.readUInt32BE(2)).toBe(out.length - 6);
    expect(out.readUInt32BE(out.length - 4)).toBe(1);
  });

  it("refuses credentials that do not fit a u16 length without echoing them", () => {
    const secret = "s".repeat(70_000);
    expect(() => encodeConnectRequest({ username: "u", password: secret, monitorId: 1 })).toThrow(/password/);
    try {
      encodeConnectRequest({ username: "u", password: secret, monitorId: 1 });
    } catch (err) {
      expect((err as Error).message).not.toContain("sss");
    }
    expect(() => encodeConnectRequest({ username: "u", password: "p", monitorId: 2 ** 32 })).toThrow(RangeError);
  });

  it("decodes ConnectResponse OK (00 02 00 00 00 04 00 C8 00 01)", () => {
    const frames = new FrameReader().push(hex("00 02 00 00 00 04 00 C8 00 01"));
    expect(frames).toHaveLength(1);
    const resp = decodeConnectResponse(frames[0]!.body);
    expect(resp).toEqual({ status: 200, protocolVersion: 1 });
    expect(interpretConnectResponse(resp)).toEqual({ ok: true, status: 200, protocolVersion: 1 });
  });

  it("decodes ConnectResponse refused 403 [I] (00 02 00 00 00 04 01 93 00 01) as a final refusal", () => {
    const frames = new FrameReader().push(hex("00 02 00 00 00 04 01 93 00 01"));
    const result = interpretConnectResponse(decodeConnectResponse(frames[0]!.body));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toBeInstanceOf(IdigiConnectRefusedError);
    expect(result.error.status).toBe(403);
    expect(result.error.refusal).toBe("refused");
    expect(result.error.retryable).toBe(false);
  });

  it.each([
    [200, true, undefined, undefined],
    [204, true, undefined, undefined], // the TS client accepts any 2xx, Python only 200
    // By class: which 4xx means what is [I], so every one is the same final refusal, including codes nobody guessed.
    [400, false, "refused", false],
    [401, false, "refused", false],
    [403, false, "refused", false],
    [404, false, "refused", false],
    [409, false, "refused", false],
    [418, false, "refused", false],
    [499, false, "refused", false],
    [500, false, "server_error", true],
    [599, false, "server_error", true],
    [302, false, "unexpected_status", false],
    [600, false, "unexpected_status", false],
    [503, false, "server_error", true],
    [1, false, "unexpected_status", false], // the misleading doc legend "Status: 0x0001"
  ])("maps ConnectResponse status %i", (status, ok, refusal, retryable) => {
    const r = interpretConnectResponse({ status, protocolVersion: 1 });
    expect(r.ok).toBe(ok);
    if (!r.ok) {
      expect(r.error.refusal).toBe(refusal);
      expect(r.error.retryable).toBe(retryable);
    }
  });

  it("decodes the uncompressed JSON PublishMessage, block 0x01A7 (size 0xCE, payloadSize 0xC4)", () => {
    expect(Buffer.byteLength(PAYLOAD)).toBe(196);
    const wire = Buffer.concat([hex("00 03 00 00 00 CE | 01 A7 | 00 01 | 00 | 01 | 00 00 00 C4"), Buffer.from(PAYLOAD)]);
    expect(wire.subarray(16, 20)).toEqual(hex("7B 22 44 6F"));
    const frames = new FrameReader().push(wire);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.type).toBe(3);
    const msg = decodePublishMessage(frames[0]!.body);
    expect(msg).toMatchObject({ blockId: 0x01a7, count: 1, compression: "none", format: "json" });
    expect(msg.payload.toString()).toBe(PAYLOAD);
    expect(inflatePayload(msg).toString()).toBe(PAYLOAD);
  });

  it("decodes the zlib-compressed PublishMessage (size 0xA4, payloadSize 0x9A = compressed length)", () => {
    expect(PAYLOAD_ZLIB.length).toBe(154);
    expect(PAYLOAD_ZLIB.subarray(0, 2)).toEqual(hex("78 9C"));
    const wire = Buffer.concat([hex("00 03 00 00 00 A4 | 01 A7 | 00 01 | 01 | 01 | 00 00 00 9A"), PAYLOAD_ZLIB]);
    const msg = decodePublishMessage(new FrameReader().push(wire)[0]!.body);
    expect(msg).toMatchObject({ blockId: 0x01a7, count: 1, compression: "zlib", format: "json" });
    expect(msg.payload.length).toBe(154);
    expect(inflatePayload(msg).toString()).toBe(PAYLOAD);
  });

  it("inflates Node-produced zlib too, and a gzip-magic payload defensively ([I] never seen)", () => {
    expect(inflatePayload({ compression: "zlib", payload: deflateSync(PAYLOAD) }).toString()).toBe(PAYLOAD);
    expect(inflatePayload({ compression: "zlib", payload: gzipSync(PAYLOAD) }).toString()).toBe(PAYLOAD);
  });

  it.each([
    ["plain, byte 0", "none", () => Buffer.from(PAYLOAD)],
    ["zlib, byte 1", "zlib", () => deflateSync(PAYLOAD)],
    ["zlib, byte 0 ([I] the other reading)", "none", () => deflateSync(PAYLOAD)],
    ["gzip, byte 1", "zlib", () => gzipSync(PAYLOAD)],
  ] as const)("decodes a Base64 payload (%s) to the plain document ([I] 'may be compressed & Base64 encoded')", (_, compression, bytes) => {
    const b64 = Buffer.from(bytes().toString("base64"));
    expect(inflatePayload({ compression, payload: b64 }).toString()).toBe(PAYLOAD);
    // MIME-style line breaks too.
    const wrapped = Buffer.from(
      bytes()
        .toString("base64")
        .replace(/(.{76})/g, "$1\r\n"),
    );
    expect(inflatePayload({ compression, payload: wrapped }).toString()).toBe(PAYLOAD);
  });

  it("never takes a plain payload for Base64, and caps what Base64 zlib inflates to", () => {
    expect(inflatePayload({ compression: "none", payload: Buffer.from("<Document/>") }).toString()).toBe("<Document/>");
    expect(inflatePayload({ compression: "zlib", payload: PAYLOAD_ZLIB }).toString()).toBe(PAYLOAD);
    const bomb = Buffer.from(deflateSync(Buffer.alloc(1_000_000)).toString("base64"));
    expect(() => inflatePayload({ compression: "none", payload: bomb }, 10_000)).toThrow(/exceeds 10000 bytes/);
  });

  it("rejects corrupt and over-large compressed payloads with IdigiPayloadError", () => {
    expect(() => inflatePayload({ compression: "zlib", payload: hex("78 9C DE AD BE EF") })).toThrow(IdigiPayloadError);
    const bomb = deflateSync(Buffer.alloc(1_000_000));
    try {
      inflatePayload({ compression: "zlib", payload: bomb }, 10_000);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(IdigiPayloadError);
      expect((err as IdigiPayloadError).code).toBe("too_large");
    }
  });

  it("encodes the spec's 10-byte PublishMessageReceived (00 04 00 00 00 04 01 A7 00 C8)", () => {
    expect(encodePublishMessageReceived(0x01a7)).toEqual(hex("00 04 00 00 00 04 01 A7 00 C8"));
    expect(encodePublishMessageReceived(0x01a7, 200).length).toBe(10);
  });

  it("never produces the legacy Python 6-byte ack (00 04 01 A7 00 C8)", () => {
    const legacy = hex("00 04 01 A7 00 C8");
    const ours = encodePublishMessageReceived(0x01a7);
    expect(ours.length).not.toBe(legacy.length);
    expect(ours.subarray(0, 6)).not.toEqual(legacy);
    // What a strict reader would make of the legacy form: a size of (blockId << 16) | 200.
    expect(legacy.readUInt32BE(2)).toBe((0x01a7 << 16) | 200);
  });
});

describe("PublishMessage validation", () => {
  const body = (compression: number, format: number, payload: Buffer, payloadSize = payload.length) => {
    const b = Buffer.alloc(10);
    b.writeUInt16BE(7, 0);
    b.writeUInt16BE(1, 2);
    b.writeUInt8(compression, 4);
    b.writeUInt8(format, 5);
    b.writeUInt32BE(payloadSize, 6);
    return Buffer.concat([b, payload]);
  };
  it("reads format byte 0 as xml", () => {
    expect(decodePublishMessage(body(0, 0, Buffer.from("<Document/>"))).format).toBe("xml");
  });
  it.each([
    ["compression byte 2", body(2, 1, Buffer.from("{}")), "bad_field"],
    ["format byte 9", body(0, 9, Buffer.from("{}")), "bad_field"],
    ["payloadSize larger than the frame", body(0, 1, Buffer.from("{}"), 3), "bad_length"],
    ["payloadSize smaller than the frame", body(0, 1, Buffer.from("{}"), 1), "bad_length"],
    ["body shorter than 10 bytes", Buffer.alloc(9), "bad_length"],
  ])("rejects %s with IdigiFrameError", (_name, b, code) => {
    try {
      decodePublishMessage(b);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(IdigiFrameError);
      expect((err as IdigiFrameError).code).toBe(code);
    }
  });
  it("rejects a ConnectResponse body that is not 4 bytes", () => {
    expect(() => decodeConnectResponse(Buffer.alloc(5))).toThrow(IdigiFrameError);
  });
});

describe("FrameReader", () => {
  const ok = hex("00 02 00 00 00 04 00 C8 00 01");
  const pub = Buffer.concat([hex("00 03 00 00 00 CE 01 A7 00 01 00 01 00 00 00 C4"), Buffer.from(PAYLOAD)]);

  it("returns several frames from one chunk, and nothing for a partial header", () => {
    const r = new FrameReader();
    expect(r.push(Buffer.concat([ok, pub, pub.subarray(0, 3)])).map((f) => f.type)).toEqual([2, 3]);
    expect(r.buffered).toBe(3);
    expect(r.push(pub.subarray(3)).map((f) => f.type)).toEqual([3]);
    expect(r.buffered).toBe(0);
  });

  it("accepts an empty chunk", () => {
    expect(new FrameReader().push(Buffer.alloc(0))).toEqual([]);
  });

  it("rejects an oversized length from the header alone, before the body arrives", () => {
    const r = new FrameReader({ maxFrameSize: 1000 });
    try {
      r.push(hex("00 03 00 00 03 E9"));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(IdigiFrameError);
      expect((err as IdigiFrameError).code).toBe("oversized");
    }
    expect(r.buffered).toBe(0);
  });

  it("rejects unknown types, and client-bound readers reject server-bound types", () => {
    expect(() => new FrameReader().push(hex("00 09 00 00 00 00"))).toThrow(expect.objectContaining({ code: "unknown_type" }));
    expect(() => new FrameReader().push(hex("00 04 00 00 00 04 01 A7 00 C8"))).toThrow(
      expect.objectContaining({ code: "unexpected_type" }),
    );
    expect(new FrameReader({ acceptTypes: [4] }).push(hex("00 04 00 00 00 04 01 A7 00 C8"))).toHaveLength(1);
  });

  it("rejects the legacy 6-byte ack when reading acks strictly (its size field is (blockId<<16)|200)", () => {
    const r = new FrameReader({ acceptTypes: [4] });
    expect(() => r.push(hex("00 04 01 A7 00 C8"))).toThrow(IdigiFrameError);
  });

  it("rejects a ConnectResponse whose size is not 4", () => {
    expect(() => new FrameReader().push(hex("00 02 00 00 00 05"))).toThrow(expect.objectContaining({ code: "bad_length" }));
  });

  it("feed() yields the whole frames before a bad header in the same chunk, then throws", () => {
    const r = new FrameReader();
    const seen: number[] = [];
    expect(() => {
      for (const f of r.feed(Buffer.concat([ok, pub, hex("00 09 00 00 00 00")]))) seen.push(f.type);
    }).toThrow(expect.objectContaining({ code: "unknown_type" }));
    expect(seen).toEqual([2, 3]);
  });

  it("feed() keeps the chunk even if the iterator is not consumed at once", () => {
    const r = new FrameReader();
    r.feed(ok);
    expect(r.buffered).toBe(10);
    expect([...r.feed(Buffer.alloc(0))]).toHaveLength(1);
  });

  it("stays failed after an error until reset", () => {
    const r = new FrameReader();
    expect(() => r.push(hex("00 09 00 00 00 00"))).toThrow(IdigiFrameError);
    expect(() => r.push(ok)).toThrow(expect.objectContaining({ code: "reader_failed" }));
    r.reset();
    expect(r.push(ok)).toHaveLength(1);
  });
});
