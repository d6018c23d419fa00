import type { RetryHint } from "@meridian/retry";

/**
 * Every error the OCI IoT client throws is an `OciError`. What a caller decides on:
 *   retryable: true — OciThrottledError (429; `retryAfterMs` from Retry-After), OciUnavailableError (5xx, connection
 *                     refused or reset, a timeout: OCI may or may not have done it), OciConflictError with
 *                     code IncorrectState (transient; the SDK retries it first)
 *   OciNotAuthenticatedError (401: a bad signature, an unknown key, an expired or wrong-scope token),
 *   OciNotFoundError (404 NotAuthorizedOrNotFound: an unknown OCID, or a policy that hides it; OCI does not say which),
 *   OciConflictError (409 Conflict: in use, a duplicate spec URI or external key; 412 NoEtagMatch),
 *   OciInvalidArgumentError (400 from OCI, or refused before sending; `field` names the input)
 */
export interface OciErrorDetails {
  /** HTTP status OCI answered with. */
  status?: number;
  /** OCI's error code (`NotAuthorizedOrNotFound`, `IncorrectState`, …) or the OAuth error. */
  code?: string;
  /** opc-request-id, for Oracle support. */
  requestId?: string;
  cause?: unknown;
}

export class OciError extends Error implements RetryHint {
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly requestId: string | undefined;
  readonly retryable: boolean = false;
  readonly retryAfterMs: number | undefined = undefined;

  constructor(message: string, details: OciErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "OciError";
    this.status = details.status;
    this.code = details.code;
    this.requestId = details.requestId;
  }
}

/** Refused before anything was sent, or OCI's 400; `field` names the input (`spec.contents[2].schema`, `endpoint`). */
export class OciInvalidArgumentError extends OciError {
  readonly field: string;
  constructor(field: string, problem: string, details?: OciErrorDetails) {
    super(`${field}: ${problem}`, details);
    this.name = "OciInvalidArgumentError";
    this.field = field;
  }
}

export class OciNotAuthenticatedError extends OciError {
  constructor(message: string, details?: OciErrorDetails) {
    super(message, details);
    this.name = "OciNotAuthenticatedError";
  }
}

export class OciNotFoundError extends OciError {
  /** What was looked for, e.g. the OCID. */
  readonly resource: string;
  constructor(resource: string, message: string, details?: OciErrorDetails) {
    super(message, details);
    this.name = "OciNotFoundError";
    this.resource = resource;
  }
}

export class OciConflictError extends OciError {
  override readonly retryable: boolean;
  constructor(message: string, details?: OciErrorDetails) {
    super(message, details);
    this.name = "OciConflictError";
    this.retryable = details?.code === "IncorrectState";
  }
}

export class OciThrottledError extends OciError {
  override readonly retryable = true;
  override readonly retryAfterMs: number | undefined;
  constructor(message: string, details: OciErrorDetails & { retryAfterMs?: number } = {}) {
    super(message, details);
    this.name = "OciThrottledError";
    this.retryAfterMs = details.retryAfterMs;
  }
}

export class OciUnavailableError extends OciError {
  override readonly retryable = true;
  constructor(message: string, details?: OciErrorDetails) {
    super(message, details);
    this.name = "OciUnavailableError";
  }
}

/** waitFor gave up: the resource did not reach the state in time. */
export class OciTimeoutError extends OciError {
  override readonly retryable = true;
  constructor(message: string, details?: OciErrorDetails) {
    super(message, details);
    this.name = "OciTimeoutError";
  }
}
