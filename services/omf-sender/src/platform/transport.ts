import { type Dispatcher, fetch } from "undici";
import { OmfServerError, OmfTlsError } from "./errors.js";

export interface HttpResponse {
  status: number;
  headers: Headers;
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

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e !== null && typeof e === "object"; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * One HTTP exchange with a per-request timeout. Maps transport failures:
 * timeout / connection refused / reset → OmfServerError (retryable); certificate problems → OmfTlsError.
 * An abort by the caller's own signal is rethrown as the signal's reason.
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
      dispatcher: req.dispatcher,
      redirect: "manual",
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers as unknown as Headers, text };
  } catch (err) {
    if (req.signal?.aborted) throw req.signal.reason;
    if (timeout.aborted) {
      throw new OmfServerError(`${req.what} to ${req.endpoint} timed out after ${req.timeoutMs} ms`, {
        endpoint: req.endpoint,
        code: "timeout",
        cause: err,
      });
    }
    const code = errorCode(err);
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
