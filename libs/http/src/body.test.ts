import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { readCapped, readCappedBytes } from "./body.js";

const response = (body: string | null, headers: Record<string, string> = {}) => new Response(body, { headers });

describe("readCapped", () => {
  it("reads a body up to the cap, exactly at the cap included", async () => {
    expect(await readCapped(response("héllo"), 6)).toBe("héllo");
    expect(await readCapped(response(null), 1)).toBe("");
  });

  it("refuses a body one byte over the cap", async () => {
    expect(await readCapped(response("x".repeat(11)), 10)).toBeUndefined();
  });

  it("refuses a declared length over the cap without reading the body", async () => {
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled++;
        c.enqueue(new Uint8Array(1024));
      },
    });
    expect(await readCapped({ headers: new Headers({ "content-length": String(1 << 30) }), body: stream }, 4096)).toBeUndefined();
    expect(pulled).toBeLessThanOrEqual(1);
  });

  it("stops an endless stream at the cap", async () => {
    const stream = new ReadableStream<Uint8Array>({ pull: (c) => c.enqueue(new Uint8Array(64 * 1024)) });
    expect(await readCapped({ headers: new Headers(), body: stream }, 1 << 20)).toBeUndefined();
  });

  it("counts bytes after decompression (the caller's fetch inflates): a small compressed body that inflates past the cap is refused", async () => {
    const inflated = new Response(new Uint8Array(2 << 20)).body;
    const compressed = gzipSync(new Uint8Array(2 << 20));
    expect(compressed.byteLength).toBeLessThan(64 * 1024);
    expect(
      await readCapped(
        { headers: new Headers({ "content-encoding": "gzip", "content-length": String(compressed.byteLength) }), body: inflated },
        1 << 20,
      ),
    ).toBeUndefined();
  });
});

describe("readCappedBytes", () => {
  it("gives the bytes as sent (not text: a protobuf body keeps every byte), up to the cap", async () => {
    const bytes = new Uint8Array([0x0a, 0xff, 0x00, 0xc3, 0x28]);
    expect(await readCappedBytes(new Response(bytes), 5)).toEqual(bytes);
    expect(await readCappedBytes(new Response(bytes), 4)).toBeUndefined();
    expect(await readCappedBytes(new Response(null), 1)).toEqual(new Uint8Array(0));
  });
});
