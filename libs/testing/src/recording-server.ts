/**
 * A recording HTTP(S) server with canned replies, for a platform client's unit tests. Deliberately not an emulator:
 * a client's tests must not share code with the other side of the protocol. TLS uses a self-signed certificate for
 * localhost / 127.0.0.1 whose PEM (at TEST_CA_PATH) is its own CA.
 */
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { gunzipSync } from "node:zlib";

export const TEST_CA_PATH = new URL("../testdata/server-cert.pem", import.meta.url).pathname;
const TEST_KEY_PATH = new URL("../testdata/server-key.pem", import.meta.url).pathname;

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Raw header names as sent, in order. */
  rawHeaderNames: string[];
  /** Body bytes as received (compressed if the client compressed). */
  raw: Buffer;
  /** Body text, after gunzip when `content-encoding` (or OMF's `compression`) says gzip. */
  text: string;
}

export type Reply =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  /**
   * A body written as the iterable produces it, with backpressure, so a test can send more than memory holds (a
   * gigabyte, a gzip bomb made on the fly); it stops when the client hangs up.
   */
  | { status: number; headers?: Record<string, string>; stream: AsyncIterable<Uint8Array> | Iterable<Uint8Array> }
  | { reset: true }
  | { hang: true }
  | { delayMs: number; reply: Reply };

export type Handler = (req: RecordedRequest) => Reply | Promise<Reply>;

export interface RecordingServer {
  url: string;
  requests: RecordedRequest[];
  handler: Handler;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startRecordingServer(handler: Handler, options: { tls?: boolean } = {}): Promise<RecordingServer> {
  const state: RecordingServer = { url: "", requests: [], handler, close: async () => {} };
  const hanging = new Set<ServerResponse>();
  const onRequest = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = await readBody(req);
    const encoding = String(req.headers["content-encoding"] ?? req.headers["compression"] ?? "").toLowerCase();
    const gz = encoding === "gzip";
    const recorded: RecordedRequest = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers: req.headers,
      rawHeaderNames: req.rawHeaders.filter((_, i) => i % 2 === 0),
      raw,
      text: gz ? gunzipSync(raw).toString("utf8") : raw.toString("utf8"),
    };
    state.requests.push(recorded);
    let reply = await state.handler(recorded);
    while ("delayMs" in reply) {
      const { delayMs, reply: next } = reply;
      await new Promise((r) => setTimeout(r, delayMs));
      reply = next;
    }
    if ("reset" in reply) {
      req.socket.destroy();
      return;
    }
    if ("hang" in reply) {
      hanging.add(res);
      return;
    }
    if ("stream" in reply) {
      res.writeHead(reply.status, { "content-type": "application/octet-stream", ...reply.headers });
      const source = reply.stream instanceof Readable ? reply.stream : Readable.from(reply.stream, { objectMode: false });
      // The client going away mid-body is what such a reply is for; pipeline then ends the source.
      await pipeline(source, res).catch(() => {});
      return;
    }
    const body = reply.body === undefined ? "" : typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
    res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers });
    res.end(body);
  };
  const server = options.tls
    ? createHttpsServer({ cert: readFileSync(TEST_CA_PATH), key: readFileSync(TEST_KEY_PATH) }, onRequest)
    : createHttpServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  state.url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
  state.close = async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}

/** A JSON reply. */
export const json = (status: number, body?: unknown, headers?: Record<string, string>): Reply => ({ status, body, headers });

/**
 * A body of `total` zero bytes, made only as it is sent (for a streamed reply), so a test can offer a client 1 GB
 * without holding it; `produced` tells how much the server made and whether the client ended the body early.
 */
export function zeroBody(total: number): { stream: Readable; produced: { bytes: number; ended: boolean } } {
  const produced = { bytes: 0, ended: false };
  const chunk = Buffer.alloc(64 * 1024);
  function* generate() {
    try {
      for (; produced.bytes < total; produced.bytes += chunk.length) yield chunk;
    } finally {
      produced.ended = true;
    }
  }
  return { stream: Readable.from(generate()), produced };
}
