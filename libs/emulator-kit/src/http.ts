/** Answering and reading bodies with node:http, the way every emulator route does it. */
import type { IncomingMessage, ServerResponse } from "node:http";

/** Writes a whole response with Content-Length. Does nothing once headers went out (a fault may have answered). */
export function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer | undefined,
  contentType: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  if (body === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** `send` with a JSON body; `body` undefined answers with no body at all. */
export function sendJson(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  send(res, status, body === undefined ? undefined : JSON.stringify(body), "application/json; charset=utf-8", headers);
}

export interface ReadBody {
  /** The bytes up to the limit; empty when `tooLarge`. */
  buf: Buffer;
  /** Bytes received in all, also past the limit. */
  size: number;
  tooLarge: boolean;
}

/**
 * Reads the body up to `limit` bytes. Past the limit (or when Content-Length already says so) the rest is read and
 * discarded, so the client gets the 413 the caller answers rather than a reset while it is still sending; beyond
 * 16 × the limit + 1 MiB reading stops, as a client that far over is not one worth waiting for.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<ReadBody> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? -1);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = declared > limit;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
      else if (size > limit * 16 + 1024 * 1024) {
        req.removeAllListeners("data");
        req.pause();
        resolve({ buf: Buffer.alloc(0), size, tooLarge: true });
      }
    });
    req.on("end", () => {
      if (tooLarge) resolve({ buf: Buffer.alloc(0), size, tooLarge });
      else resolve({ buf: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), size, tooLarge });
    });
    req.on("error", reject);
  });
}

/** Reads and discards the body, so a keep-alive connection can carry the next request after an early answer. */
export function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    req.on("data", () => {});
    req.on("end", resolve);
    req.on("error", () => resolve());
    req.on("close", () => resolve());
  });
}
