import { describe, expect, it } from "vitest";
import { IdigiFrameError } from "./errors.js";
import { decodeConnectResponse, decodePublishMessage, FrameReader, HEADER_SIZE, type RawFrame } from "./frames.js";

/** Small deterministic PRNG (mulberry32) so a failure is reproducible from the printed seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const randInt = (rnd: () => number, n: number) => Math.floor(rnd() * n);
const randBytes = (rnd: () => number, n: number) => Buffer.from(Array.from({ length: n }, () => randInt(rnd, 256)));

function frame(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt16BE(type, 0);
  h.writeUInt32BE(body.length, 2);
  return Buffer.concat([h, body]);
}

function publish(rnd: () => number, maxPayload: number): Buffer {
  const payload = randBytes(rnd, randInt(rnd, maxPayload));
  const b = Buffer.alloc(10);
  b.writeUInt16BE(randInt(rnd, 0x10000), 0);
  b.writeUInt16BE(randInt(rnd, 5), 2);
  b.writeUInt8(randInt(rnd, 2), 4);
  b.writeUInt8(randInt(rnd, 2), 5);
  b.writeUInt32BE(payload.length, 6);
  return frame(3, Buffer.concat([b, payload]));
}

function connectResponse(rnd: () => number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(randInt(rnd, 600), 0);
  b.writeUInt16BE(1, 2);
  return frame(2, b);
}

/** Splits `buf` at random points into 1..n chunks. */
function randomSplit(rnd: () => number, buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const n = 1 + randInt(rnd, Math.min(buf.length - i, rnd() < 0.3 ? 3 : 64));
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** Feeds chunks; returns frames, plus the error if any. Fails the test on anything but IdigiFrameError. */
function feed(reader: FrameReader, chunks: Buffer[]): { frames: RawFrame[]; error?: IdigiFrameError } {
  const frames: RawFrame[] = [];
  for (const c of chunks) {
    try {
      // Alternate between the two entry points; both must only ever throw IdigiFrameError.
      if (c.length % 2) frames.push(...reader.push(c));
      else for (const f of reader.feed(c)) frames.push(f);
    } catch (err) {
      if (!(err instanceof IdigiFrameError)) throw new Error(`FrameReader threw a non-IdigiFrameError: ${String(err)}`);
      return { frames, error: err };
    }
    // Never holds more than one frame (header + max) plus the chunk just pushed.
    expect(reader.buffered).toBeLessThanOrEqual(HEADER_SIZE + reader.maxFrameSize + c.length);
  }
  return { frames };
}

const SEED = Number(process.env["FUZZ_SEED"] ?? 0x1d161);
const ITER = Number(process.env["FUZZ_ITER"] ?? 400);

describe(`FrameReader fuzz (seed ${SEED})`, () => {
  it("random bytes in random chunks: only IdigiFrameError, bounded buffering", () => {
    const rnd = prng(SEED);
    for (let i = 0; i < ITER; i++) {
      const max = 16 + randInt(rnd, 4096);
      const reader = new FrameReader({ maxFrameSize: max });
      const { frames } = feed(reader, randomSplit(rnd, randBytes(rnd, randInt(rnd, 2048))));
      for (const f of frames) expect(f.body.length).toBeLessThanOrEqual(max);
    }
  });

  it("random bytes after a valid prefix, and decoders on random bodies: only IdigiFrameError", () => {
    const rnd = prng(SEED + 1);
    for (let i = 0; i < ITER; i++) {
      const reader = new FrameReader({ maxFrameSize: 2048 });
      const data = Buffer.concat([connectResponse(rnd), publish(rnd, 100), randBytes(rnd, randInt(rnd, 512))]);
      const { frames } = feed(reader, randomSplit(rnd, data));
      for (const f of frames) {
        try {
          if (f.type === 2) decodeConnectResponse(f.body);
          else decodePublishMessage(f.body);
        } catch (err) {
          expect(err).toBeInstanceOf(IdigiFrameError);
        }
      }
      for (const body of [randBytes(rnd, randInt(rnd, 40))]) {
        for (const decode of [decodeConnectResponse, decodePublishMessage]) {
          try {
            decode(body);
          } catch (err) {
            expect(err).toBeInstanceOf(IdigiFrameError);
          }
        }
      }
    }
  });

  it("oversized lengths (up to 0xFFFFFFFF) are rejected from the header, without buffering the body", () => {
    const rnd = prng(SEED + 2);
    for (let i = 0; i < ITER; i++) {
      const max = 16 + randInt(rnd, 1 << 20);
      const size = max + 1 + randInt(rnd, 0xffffffff - max);
      const h = Buffer.alloc(6);
      h.writeUInt16BE(3, 0);
      h.writeUInt32BE(size, 2);
      const reader = new FrameReader({ maxFrameSize: max });
      const { frames, error } = feed(reader, randomSplit(rnd, Buffer.concat([h, randBytes(rnd, 64)])));
      expect(frames).toEqual([]);
      expect(error?.code).toBe("oversized");
      expect(reader.buffered).toBe(0);
    }
  });

  it("truncated streams yield only the whole frames before the cut, never an error", () => {
    const rnd = prng(SEED + 3);
    for (let i = 0; i < ITER; i++) {
      const frames = [connectResponse(rnd), ...Array.from({ length: 1 + randInt(rnd, 4) }, () => publish(rnd, 300))];
      const all = Buffer.concat(frames);
      const cut = randInt(rnd, all.length);
      let whole = 0;
      for (let acc = 0, k = 0; k < frames.length; k++) {
        acc += frames[k]!.length;
        if (acc <= cut) whole++;
      }
      const reader = new FrameReader();
      const { frames: got, error } = feed(reader, randomSplit(rnd, all.subarray(0, cut)));
      expect(error).toBeUndefined();
      expect(got).toHaveLength(whole);
    }
  });

  it("a valid stream split at every byte boundary decodes identically", () => {
    const rnd = prng(SEED + 4);
    const stream = Buffer.concat([connectResponse(rnd), publish(rnd, 200), publish(rnd, 0), publish(rnd, 50)]);
    const reference = new FrameReader().push(stream);
    expect(reference).toHaveLength(4);
    const norm = (fs: RawFrame[]) => fs.map((f) => `${f.type}:${f.body.toString("hex")}`);
    for (let i = 0; i <= stream.length; i++) {
      const r = new FrameReader();
      const got = [...r.push(stream.subarray(0, i)), ...r.push(stream.subarray(i))];
      expect(norm(got)).toEqual(norm(reference));
    }
    for (let i = 1; i < stream.length; i++) {
      for (const j of [i + 1, i + 7, stream.length - 1]) {
        if (j <= i || j > stream.length) continue;
        const r = new FrameReader();
        const got = [...r.push(stream.subarray(0, i)), ...r.push(stream.subarray(i, j)), ...r.push(stream.subarray(j))];
        expect(norm(got)).toEqual(norm(reference));
      }
    }
    // Byte by byte.
    const r = new FrameReader();
    const got: RawFrame[] = [];
    for (const b of stream) got.push(...r.push(Buffer.from([b])));
    expect(norm(got)).toEqual(norm(reference));
  });
});
