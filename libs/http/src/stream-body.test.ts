import { Readable } from "node:stream";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { readCappedStream, readCappedStreamText } from "./stream-body.js";

const body = (...chunks: Uint8Array[]) => Readable.from(chunks);

/** A body that never ends, counting what was pulled from it. */
function endless(chunkBytes: number): { stream: Readable; pulled: () => number } {
  let pulled = 0;
  const stream = new Readable({
    read() {
      pulled++;
      this.push(new Uint8Array(chunkBytes));
    },
  });
  return { stream, pulled: () => pulled };
}

describe("readCappedStream (an undici request() body: compressed bodies inflated here)", () => {
  it("reads a body up to the cap, exactly at the cap included, in order across chunks", async () => {
    const text = "héllo wörld";
    const bytes = new TextEncoder().encode(text);
    expect(await readCappedStreamText({ headers: {}, body: body(bytes.subarray(0, 3), bytes.subarray(3)) }, bytes.length)).toBe(text);
    expect(await readCappedStream({ headers: {}, body: body() }, 1)).toEqual(new Uint8Array(0));
  });

  it("refuses a body one byte over the cap, and destroys it", async () => {
    const stream = body(new Uint8Array(11));
    expect(await readCappedStream({ headers: {}, body: stream }, 10)).toBeUndefined();
    expect(stream.destroyed).toBe(true);
  });

  it("refuses a declared length over the cap without reading the body", async () => {
    const { stream, pulled } = endless(1024);
    expect(await readCappedStream({ headers: { "content-length": String(1 << 30) }, body: stream }, 4096)).toBeUndefined();
    expect(stream.destroyed).toBe(true);
    expect(pulled()).toBeLessThanOrEqual(1);
  });

  it("stops an endless body at the cap", async () => {
    const { stream, pulled } = endless(64 * 1024);
    expect(await readCappedStream({ headers: {}, body: stream }, 1 << 20)).toBeUndefined();
    expect(stream.destroyed).toBe(true);
    expect(pulled()).toBeLessThan(40);
  });

  it.each([
    ["gzip", gzipSync],
    ["x-gzip", gzipSync],
    ["deflate", deflateSync],
    ["br", brotliCompressSync],
  ] as const)("inflates %s and counts the cap after inflating: within it read whole, past it refused", async (coding, compress) => {
    const plain = new TextEncoder().encode(JSON.stringify({ values: Array.from({ length: 500 }, (_, i) => i) }));
    const packed = new Uint8Array(compress(plain));
    const headers = { "content-encoding": coding, "content-length": String(packed.byteLength) };
    expect(await readCappedStream({ headers, body: body(packed) }, plain.byteLength)).toEqual(plain);
    expect(await readCappedStream({ headers, body: body(packed) }, plain.byteLength - 1)).toBeUndefined();
  });

  it("a decompression bomb (16 MiB of zeros in a few KB) is refused at the cap, the rest not inflated", async () => {
    const packed = new Uint8Array(gzipSync(new Uint8Array(16 << 20)));
    expect(packed.byteLength).toBeLessThan(32 * 1024);
    const stream = body(packed);
    const before = process.memoryUsage().arrayBuffers;
    expect(await readCappedStream({ headers: { "content-encoding": "gzip" }, body: stream }, 1 << 20)).toBeUndefined();
    expect(stream.destroyed).toBe(true);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 << 20);
  });

  it("applies listed codings last first (deflate, then gzip on top), and leaves an unknown coding's bytes as sent", async () => {
    const plain = new TextEncoder().encode("layered");
    const twice = new Uint8Array(gzipSync(deflateSync(plain)));
    expect(await readCappedStream({ headers: { "content-encoding": "deflate, gzip" }, body: body(twice) }, 100)).toEqual(plain);
    expect(await readCappedStream({ headers: { "content-encoding": "zstd-unknown" }, body: body(plain) }, 100)).toEqual(plain);
    expect(await readCappedStream({ headers: { "content-encoding": "identity" }, body: body(plain) }, 100)).toEqual(plain);
  });

  it("a corrupt compressed body is an error, not a silent empty reply", async () => {
    const bad = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff]);
    await expect(readCappedStream({ headers: { "content-encoding": "gzip" }, body: body(bad) }, 100)).rejects.toThrow();
  });
});
