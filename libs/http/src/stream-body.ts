import { pipeline, type Readable, type Transform } from "node:stream";
import { constants, createBrotliDecompress, createGunzip, createInflate } from "node:zlib";

/**
 * The parts of an undici `request()` answer (Dispatcher.ResponseData) that reading its body needs. Unlike fetch,
 * `request()` hands over the body as sent: compressed bodies are inflated here.
 */
export interface StreamedResponse {
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Readable;
}

/** What a client that reads with readCappedStream offers, as fetch would: the codings inflated below. */
export const ACCEPT_ENCODING = "gzip, deflate, br";

/**
 * The body's bytes, read up to `maxBytes` after decompression (gzip, deflate, br), or undefined when it is longer: the
 * rest is neither read nor inflated (the body is destroyed, which drops the connection), so a 1 GB answer or a
 * decompression bomb costs at most `maxBytes` of memory. A coding it does not know leaves the bytes as sent, as fetch does.
 */
export async function readCappedStream(res: StreamedResponse, maxBytes: number): Promise<Uint8Array | undefined> {
  const codings = headerValue(res.headers, "content-encoding")
    ?.split(",")
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== "" && c !== "identity");
  const inflaters = codings && codings.length > 0 ? inflatersFor(codings) : [];
  // Content-Length counts encoded bytes, so it only tells in advance for a body that is not compressed.
  const declared = Number(headerValue(res.headers, "content-length") ?? Number.NaN);
  if (inflaters.length === 0 && declared > maxBytes) {
    res.body.destroy();
    return undefined;
  }
  let source: Readable = res.body;
  if (inflaters.length > 0) {
    // Errors of any stage end the last one, where the loop below sees them.
    source = pipeline([res.body, ...inflaters] as unknown as [Readable, Transform], () => {}) as unknown as Readable;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of source as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > maxBytes) return undefined;
      chunks.push(chunk);
    }
  } finally {
    // Ends the exchange early when it stopped at the cap (or failed); a no-op once the body was read whole.
    if (size > maxBytes) {
      res.body.destroy();
      for (const s of inflaters) s.destroy();
    }
  }
  // A plain Uint8Array (a view, not a copy) whatever the chunks were: the caller's bytes, not a Buffer.
  const whole = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  return new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength);
}

/** readCappedStream as text: UTF-8, a leading BOM dropped (as Response.text()). */
export async function readCappedStreamText(res: StreamedResponse, maxBytes: number): Promise<string | undefined> {
  const bytes = await readCappedStream(res, maxBytes);
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

/** The decoders for the codings as listed (applied last first), or none when one is unknown. */
function inflatersFor(codings: string[]): Transform[] {
  // As fetch does: lenient about a truncated end (a body cut short still gives what arrived).
  const lenient = { flush: constants.Z_SYNC_FLUSH, finishFlush: constants.Z_SYNC_FLUSH };
  const out: Transform[] = [];
  for (const coding of [...codings].reverse()) {
    if (coding === "gzip" || coding === "x-gzip") out.push(createGunzip(lenient));
    else if (coding === "deflate") out.push(createInflate(lenient));
    else if (coding === "br")
      out.push(createBrotliDecompress({ flush: constants.BROTLI_OPERATION_FLUSH, finishFlush: constants.BROTLI_OPERATION_FLUSH }));
    else return [];
  }
  return out;
}

function headerValue(headers: StreamedResponse["headers"], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}
