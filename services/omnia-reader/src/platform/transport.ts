import { networkErrorCode, readCapped, readCappedBytes } from "@meridian/http";
import { type Dispatcher, fetch } from "undici";
import { OmniaError, OmniaResponseTooLargeError, OmniaServerError } from "./errors.js";

export interface HttpRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxResponseBytes: number;
  signal?: AbortSignal;
  dispatcher?: Dispatcher;
  /** `METHOD path`, for error messages. */
  request: string;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  contentType: string;
  /** The body, as bytes for a protobuf answer and as text otherwise. */
  bytes?: Uint8Array;
  text?: string;
}

const PROTOBUF_TYPES = ["application/protobuf", "application/x-protobuf", "application/x-google-protobuf", "application/octet-stream"];

/** Whether a Content-Type is one of the protobuf spellings Omnia's clients have seen. */
export function isProtobufType(contentType: string): boolean {
  const base = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return PROTOBUF_TYPES.includes(base);
}

/**
 * One HTTP exchange with a timeout and a bounded body. Timeouts and connection failures become a retryable
 * OmniaServerError; an abort by the caller's signal is rethrown as the signal's reason.
 */
export async function httpExchange(req: HttpRequest): Promise<HttpResponse> {
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
  try {
    const res = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      signal,
      redirect: "manual",
      ...(req.dispatcher ? { dispatcher: req.dispatcher } : {}),
    });
    const headers = res.headers as unknown as Headers;
    const contentType = res.headers.get("content-type") ?? "";
    const tooLarge = () =>
      new OmniaResponseTooLargeError(
        `${req.request}: answer over ${req.maxResponseBytes} bytes (HTTP ${res.status}); not read`,
        req.maxResponseBytes,
        { status: res.status, request: req.request },
      );
    if (isProtobufType(contentType)) {
      const bytes = await readCappedBytes(
        res as unknown as { headers: Headers; body: ReadableStream<Uint8Array> | null },
        req.maxResponseBytes,
      );
      if (bytes === undefined) throw tooLarge();
      return { status: res.status, headers, contentType, bytes };
    }
    const text = await readCapped(res, req.maxResponseBytes);
    if (text === undefined) throw tooLarge();
    return { status: res.status, headers, contentType, text };
  } catch (err) {
    if (err instanceof OmniaError) throw err;
    if (req.signal?.aborted) throw req.signal.reason;
    if (timeout.aborted) {
      throw new OmniaServerError(`${req.request} timed out after ${req.timeoutMs} ms`, {
        request: req.request,
        code: "timeout",
        cause: err,
      });
    }
    const code = networkErrorCode(err);
    throw new OmniaServerError(`${req.request} failed: ${code ?? (err instanceof Error ? err.message : "network error")}`, {
      request: req.request,
      code,
      cause: err,
    });
  }
}
