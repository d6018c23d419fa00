import type { RetryHint } from "@meridian/retry";
import type { OmfResult } from "./types.js";

/**
 * Every error the OMF client throws is an `OmfError`. What the pipeline decides on:
 *   retryable: true  — OmfThrottledError, OmfServerError (nak / back off; `retryAfterMs` is the server's hint)
 *   OmfAuthError, OmfTlsError, OmfConfigError   → operator must fix config/credentials (pause the endpoint)
 *   OmfConflictError                            → definition drift (new type id / container id)
 *   OmfPayloadTooLargeError                     → split (`splitInHalf`) and resend
 *   OmfBadRequestError (+ OmfNotFoundError, OmfInvalidMessageError) → retrying the same bytes cannot help
 *   OmfResponseTooLargeError                    → the endpoint (or a proxy) answered with more than we read
 */
export interface OmfErrorDetails {
  /** Endpoint name (never a credential). */
  endpoint?: string;
  /** HTTP status, when a response was received. */
  status?: number;
  /** The parsed response (OMF event/error bodies), when there was one. */
  result?: OmfResult;
  cause?: unknown;
}

/** The root of the client's errors. Final unless a subclass says otherwise. */
export class OmfError extends Error implements RetryHint {
  readonly endpoint: string | undefined;
  readonly status: number | undefined;
  readonly result: OmfResult | undefined;
  /** Whether the same request may succeed later (read by `@meridian/retry` and the bus consumer). */
  readonly retryable: boolean = false;
  /** How long to wait before trying again: the endpoint's Retry-After, at most `MAX_RETRY_AFTER_MS`. */
  readonly retryAfterMs: number | undefined = undefined;
  /** What the endpoint's Retry-After asked for, when that was more than the cap in `retryAfterMs`. */
  readonly retryAfterRequestedMs: number | undefined;

  constructor(message: string, details: OmfErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "OmfError";
    this.endpoint = details.endpoint;
    this.status = details.status;
    this.result = details.result;
    this.retryAfterRequestedMs = details.result?.retryAfterRequestedMs;
  }
}

/** 401 / 403, or the token endpoint refused the client credentials. */
export class OmfAuthError extends OmfError {
  constructor(message: string, details?: OmfErrorDetails) {
    super(message, details);
    this.name = "OmfAuthError";
  }
}

/** 409 redefinition / overlap (PI); also SDS's 400 "Redefinition of the type with the same ID is not allowed". */
export class OmfConflictError extends OmfError {
  constructor(message: string, details?: OmfErrorDetails) {
    super(message, details);
    this.name = "OmfConflictError";
  }
}

/** 413: the request body exceeds the endpoint's limit. */
export class OmfPayloadTooLargeError extends OmfError {
  constructor(message: string, details?: OmfErrorDetails) {
    super(message, details);
    this.name = "OmfPayloadTooLargeError";
  }
}

/** A 4xx (or 501) that retrying the same request cannot fix; `result` carries the OMF error body. */
export class OmfBadRequestError extends OmfError {
  constructor(message: string, details?: OmfErrorDetails) {
    super(message, details);
    this.name = "OmfBadRequestError";
  }
}

/** 404 / SDS "Container is not defined": the referenced type or container does not exist (re-send definitions). */
export class OmfNotFoundError extends OmfBadRequestError {
  constructor(message: string, details?: OmfErrorDetails) {
    super(message, details);
    this.name = "OmfNotFoundError";
  }
}

/** Rejected before sending (nothing went on the wire): `problems` name the fields. */
export class OmfInvalidMessageError extends OmfBadRequestError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[], details?: OmfErrorDetails) {
    super(`invalid OMF message: ${problems.join("; ")}`, details);
    this.name = "OmfInvalidMessageError";
    this.problems = problems;
  }
}

/** TLS verification failed (wrong CA, self-signed, host mismatch): not retryable. */
export class OmfTlsError extends OmfError {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined, details?: OmfErrorDetails) {
    super(message, details);
    this.name = "OmfTlsError";
    this.code = code;
  }
}

/** An endpoint configuration that does not validate; `problems` name the fields and never contain secrets. */
export class OmfConfigError extends OmfError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid OMF endpoint configuration: ${problems.join("; ")}`);
    this.name = "OmfConfigError";
    this.problems = problems;
  }
}

/**
 * A response body longer than the client reads (`limitBytes`, counted after decompression): the rest was never read,
 * the connection was dropped. Not retryable: the same request is likely to get the same answer; a pipeline keeps the
 * data and tries again later, as for any error that is not the data's fault.
 */
export class OmfResponseTooLargeError extends OmfError {
  readonly limitBytes: number;
  constructor(message: string, limitBytes: number, details?: OmfErrorDetails) {
    super(message, details);
    this.name = "OmfResponseTooLargeError";
    this.limitBytes = limitBytes;
  }
}

/**
 * A reply that is not what the endpoint's API documents (a read that is not JSON, an item without the fields
 * read-back needs, a link off the endpoint's URL): not retryable, the endpoint or a proxy must be looked at.
 */
export class OmfUnexpectedReplyError extends OmfError {
  constructor(message: string, details?: OmfErrorDetails) {
    super(message, details);
    this.name = "OmfUnexpectedReplyError";
  }
}

/** 429, or 503 with Retry-After. `retryAfterMs` is the server's hint (undefined ⇒ use backoff). */
export class OmfThrottledError extends OmfError {
  override readonly retryable = true;
  override readonly retryAfterMs: number | undefined;
  constructor(message: string, retryAfterMs: number | undefined, details: OmfErrorDetails = {}) {
    super(message, details);
    this.name = "OmfThrottledError";
    this.retryAfterMs = retryAfterMs;
  }
}

/** 5xx (other than throttling), 408, timeout, connection refused/reset: retryable. */
export class OmfServerError extends OmfError {
  override readonly retryable = true;
  override readonly retryAfterMs: number | undefined;
  /** `timeout`, or the socket error code (`ECONNRESET`, `ECONNREFUSED`, `UND_ERR_SOCKET`, …) when no response came. */
  readonly code: string | undefined;
  constructor(message: string, details: OmfErrorDetails & { code?: string; retryAfterMs?: number } = {}) {
    super(message, details);
    this.name = "OmfServerError";
    this.retryAfterMs = details.retryAfterMs;
    this.code = details.code;
  }
}
