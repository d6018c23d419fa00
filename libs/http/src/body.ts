/** The parts of a fetch (or undici) Response that reading its body needs. */
export interface ResponseLike {
  headers: { get(name: string): string | null };
  body: ReadableStream<Uint8Array> | null;
}

/**
 * The body's bytes, read up to `maxBytes` after decompression, or undefined when it is longer: the rest is neither
 * read nor inflated (the stream is cancelled, which drops the connection), so a 1 GB answer or a decompression bomb
 * from a platform costs at most `maxBytes` of memory.
 */
export async function readCappedBytes(res: ResponseLike, maxBytes: number): Promise<Uint8Array | undefined> {
  if (res.body === null) return new Uint8Array(0);
  // Content-Length counts encoded bytes, so it only tells in advance for a body that is not compressed.
  const declared = Number(res.headers.get("content-length") ?? Number.NaN);
  if (res.headers.get("content-encoding") === null && declared > maxBytes) {
    await res.body.cancel().catch(() => {});
    return undefined;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/** readCappedBytes as text: UTF-8, a leading BOM dropped (as Response.text()). */
export async function readCapped(res: ResponseLike, maxBytes: number): Promise<string | undefined> {
  const bytes = await readCappedBytes(res, maxBytes);
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}
