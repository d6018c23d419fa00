import type { RetryHint } from "@meridian/retry";

/**
 * Every error the Omnia client throws is an `OmniaError`. What a caller decides on:
 *   retryable: true — OmniaThrottledError (429; `retryAfterMs` is the server's hint), OmniaServerError (408, 409?, 425,
 *                     502, 503, 504, timeouts, connection failures), already retried by the client before it throws
 *   OmniaUnauthorizedError (401 twice), OmniaForbiddenError (403), OmniaAuthError (no token) → credentials/access
 *   OmniaNotFoundError (404), OmniaConflictError (409 on a create), OmniaBadRequestError (400, the platform's message)
 *   OmniaValidationError → refused before sending; `field` names what is wrong
 */
export interface OmniaErrorDetails {
  /** HTTP status, when a response came. */
  status?: number;
  /** The API's `traceId`, to quote to Omnia support. */
  traceId?: string;
  /** The API's own `message`. */
  platformMessage?: string;
  /** `METHOD path` of the request (no query: a query may carry names the caller did not mean to log). */
  request?: string;
  cause?: unknown;
}

export class OmniaError extends Error implements RetryHint {
  readonly status: number | undefined;
  readonly traceId: string | undefined;
  readonly platformMessage: string | undefined;
  readonly request: string | undefined;
  readonly retryable: boolean = false;
  readonly retryAfterMs: number | undefined = undefined;
  readonly retryAfterRequestedMs: number | undefined = undefined;

  constructor(message: string, details: OmniaErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "OmniaError";
    this.status = details.status;
    this.traceId = details.traceId;
    this.platformMessage = details.platformMessage;
    this.request = details.request;
  }
}

/** 400: the platform's `message` says what it refused (e.g. `Facility not found.`). */
export class OmniaBadRequestError extends OmniaError {
  constructor(message: string, details?: OmniaErrorDetails) {
    super(message, details);
    this.name = "OmniaBadRequestError";
  }
}

/** Refused before anything was sent; `field` names the input (`items`, `limit`, `startTime`, `items[3].id`). */
export class OmniaValidationError extends OmniaBadRequestError {
  readonly field: string;
  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.name = "OmniaValidationError";
    this.field = field;
  }
}

/** 401 on a fresh token too: the token is not accepted (wrong resource id / tenant / audience). */
export class OmniaUnauthorizedError extends OmniaError {
  constructor(message: string, details?: OmniaErrorDetails) {
    super(message, details);
    this.name = "OmniaUnauthorizedError";
  }
}

/** 403: the principal lacks access to the series, source or facility (or the `Timeseries.Read` role). */
export class OmniaForbiddenError extends OmniaError {
  constructor(message: string, details?: OmniaErrorDetails) {
    super(message, details);
    this.name = "OmniaForbiddenError";
  }
}

/** No token could be had from Entra ID (bad secret, expired device code, no managed identity). */
export class OmniaAuthError extends OmniaError {
  constructor(message: string, details?: OmniaErrorDetails) {
    super(message, details);
    this.name = "OmniaAuthError";
  }
}

/** 404: unknown id (or path). */
export class OmniaNotFoundError extends OmniaError {
  constructor(message: string, details?: OmniaErrorDetails) {
    super(message, details);
    this.name = "OmniaNotFoundError";
  }
}

/**
 * 409. On a create: name + facility already exist, never retried. Elsewhere the python client retries it (what a 409
 * means on a read or write is undocumented), so there `retryable` follows the client's `retryConflict` option.
 */
export class OmniaConflictError extends OmniaError {
  override readonly retryable: boolean;
  constructor(message: string, details: OmniaErrorDetails & { retryable?: boolean } = {}) {
    super(message, details);
    this.name = "OmniaConflictError";
    this.retryable = details.retryable ?? false;
  }
}

/** 429. `retryAfterMs` is the Retry-After (cut to the cap), undefined ⇒ back off. */
export class OmniaThrottledError extends OmniaError {
  override readonly retryable = true;
  override readonly retryAfterMs: number | undefined;
  override readonly retryAfterRequestedMs: number | undefined;
  constructor(message: string, retry: { ms: number; requestedMs: number } | undefined, details?: OmniaErrorDetails) {
    super(message, details);
    this.name = "OmniaThrottledError";
    this.retryAfterMs = retry?.ms;
    this.retryAfterRequestedMs = retry === undefined || retry.requestedMs <= retry.ms ? undefined : retry.requestedMs;
  }
  /** The wait the server asked for, in ms (cut to the cap). */
  get retryAfter(): number | undefined {
    return this.retryAfterMs;
  }
}

/** 408, 409 (reads), 425, 5xx, timeouts and connection failures: the same request may succeed later. */
export class OmniaServerError extends OmniaError {
  override readonly retryable: boolean;
  override readonly retryAfterMs: number | undefined;
  override readonly retryAfterRequestedMs: number | undefined;
  /** `timeout` or the socket's error code when no response came. */
  readonly code: string | undefined;
  constructor(
    message: string,
    details: OmniaErrorDetails & { code?: string; retryable?: boolean; retry?: { ms: number; requestedMs: number } } = {},
  ) {
    super(message, details);
    this.name = "OmniaServerError";
    this.retryable = details.retryable ?? true;
    this.code = details.code;
    this.retryAfterMs = details.retry?.ms;
    this.retryAfterRequestedMs =
      details.retry === undefined || details.retry.requestedMs <= details.retry.ms ? undefined : details.retry.requestedMs;
  }
}

/** The answer was longer than the client reads (`limitBytes`, after decompression); the rest was not read. */
export class OmniaResponseTooLargeError extends OmniaError {
  readonly limitBytes: number;
  constructor(message: string, limitBytes: number, details?: OmniaErrorDetails) {
    super(message, details);
    this.name = "OmniaResponseTooLargeError";
    this.limitBytes = limitBytes;
  }
}

/** The answer did not have the documented shape (bad JSON, bad protobuf, unknown content type). */
export class OmniaProtocolError extends OmniaError {
  constructor(message: string, details?: OmniaErrorDetails) {
    super(message, details);
    this.name = "OmniaProtocolError";
  }
}

/** A collect-all helper reached its bound (`maxItems` / `maxPages`) before the last page. */
export class OmniaCollectLimitError extends OmniaError {
  readonly limit: number;
  readonly what: "items" | "pages";
  constructor(what: "items" | "pages", limit: number) {
    super(`more than ${limit} ${what}; narrow the query or raise the bound`);
    this.name = "OmniaCollectLimitError";
    this.limit = limit;
    this.what = what;
  }
}

/** A client configuration that does not validate; `problems` name the fields and never hold a secret. */
export class OmniaConfigError extends OmniaError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid Omnia client configuration: ${problems.join("; ")}`);
    this.name = "OmniaConfigError";
    this.problems = problems;
  }
}
