import { ACCEPT_ENCODING, networkErrorCode, readCappedStreamText } from "@meridian/http";
import { type Dispatcher, request } from "undici";
import { OmfError, OmfResponseTooLargeError, OmfServerError, OmfTlsError } from "./errors.js";

/**
 * The most of a reply body the client reads, counted after decompression (a small gzip body can inflate to gigabytes).
 * An OMF reply reports on one request, which PI takes up to 4 MiB; a reply longer than the largest request is taken for a
 * misbehaving endpoint or proxy (how large PI's per-message report can get is unverified), and reading on only costs memory.
 */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export interface HttpResponse {
  status: number;
  /** Names in lower case; a repeated header as an array. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  text: string;
}

export interface HttpRequest {
  method: "GET" | "POST";
  url: string;
  headers: Record<string, string>;
  body?: Uint8Array | string;
  timeoutMs: number;
  signal?: AbortSignal;
  dispatcher: Dispatcher;
  /** Endpoint name for error messages. */
  endpoint: string;
  /** What is being requested, for error messages (`OMF request`, `token request`). */
  what: string;
  /** Longest body read (after decompression); default MAX_RESPONSE_BYTES. */
  maxResponseBytes?: number;
}

const TLS_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "HOSTNAME_MISMATCH",
]);

/**
 * One HTTP exchange with a per-request timeout and a bounded body (`maxResponseBytes`). By undici's `request()` rather
 * than fetch: the same exchange (no redirect followed, compressed replies inflated) at a fraction of the CPU and garbage
 * per request, which at a few events per request was a good part of omf-sender's cost. Maps transport failures:
 * timeout / connection refused / reset → OmfServerError (retryable); certificate problems → OmfTlsError; a body over
 * the limit → OmfResponseTooLargeError. An abort by the caller's own signal is rethrown as the signal's reason.
 */
export async function httpExchange(req: HttpRequest): Promise<HttpResponse> {
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
  try {
    const res = await request(req.url, {
      method: req.method,
      headers: { "accept-encoding": ACCEPT_ENCODING, ...req.headers },
      body: req.body,
      signal,
      dispatcher: req.dispatcher,
    });
    const limit = req.maxResponseBytes ?? MAX_RESPONSE_BYTES;
    const text = await readCappedStreamText(res, limit);
    if (text === undefined) {
      throw new OmfResponseTooLargeError(
        `${req.what} to ${req.endpoint}: response body over ${limit} bytes (HTTP ${res.statusCode}); not read`,
        limit,
        {
          endpoint: req.endpoint,
          status: res.statusCode,
        },
      );
    }
    return { status: res.statusCode, headers: res.headers, text };
  } catch (err) {
    if (err instanceof OmfError) throw err;
    if (req.signal?.aborted) throw req.signal.reason;
    if (timeout.aborted) {
      throw new OmfServerError(`${req.what} to ${req.endpoint} timed out after ${req.timeoutMs} ms`, {
        endpoint: req.endpoint,
        code: "timeout",
        cause: err,
      });
    }
    const code = networkErrorCode(err);
    if (code !== undefined && (TLS_CODES.has(code) || code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS"))) {
      throw new OmfTlsError(`${req.what} to ${req.endpoint}: TLS verification failed (${code})`, code, {
        endpoint: req.endpoint,
        cause: err,
      });
    }
    throw new OmfServerError(`${req.what} to ${req.endpoint} failed: ${code ?? (err instanceof Error ? err.message : "network error")}`, {
      endpoint: req.endpoint,
      code,
      cause: err,
    });
  }
}
