/** The parts of a fetch (or undici) Response that reading its body needs. */
export interface ResponseLike {
  headers: { get(name: string): string | null };
  body: ReadableStream<Uint8Array> | null;
}

/**
 * The body as text, read up to `maxBytes` after decompression, or undefined when it is longer: the rest is neither
 * read nor inflated (the stream is cancelled, which drops the connection), so a 1 GB answer or a decompression bomb
 * from a platform costs at most `maxBytes` of memory.
 */
export async function readCapped(res: ResponseLike, maxBytes: number): Promise<string | undefined> {
  if (res.body === null) return "";
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
  // TextDecoder, as Response.text(): UTF-8, a leading BOM dropped.
  return new TextDecoder().decode(Buffer.concat(chunks));
}
