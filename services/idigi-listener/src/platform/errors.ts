import type { RetryHint } from "@meridian/retry";

/**
 * Typed errors of the iDigi platform client. No error message ever contains a password or a username.
 *
 * Every error the client throws is an `IdigiError`. Whether trying again can help is the `retryable` property
 * (with the server's `retryAfterMs` when it sent Retry-After), which `retry()` from `@meridian/retry` reads: true
 * for server errors, network loss and a 5xx ConnectResponse, false for everything else.
 */

/** Longest text of the platform's a message repeats: enough for "Invalid topic 'DataPoint[X]'", not for a page. */
export const MAX_ECHO_CHARS = 200;

/** A Java exception class before its message (`com.digi.ws.InvalidRequestException: …`), kept out of what is echoed. */
const EXCEPTION_CLASS = /^(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error)\s*:?\s*/;
/** Where a stack trace or a source location starts: everything from there is the platform's internals. */
const INTERNALS =
  /\s(?:at\s+[\w$.<>]+\(|at\s+\S+:\d+)|\bTraceback \(most recent call last\)|\(?[\w./\\-]+\.(?:java|py|js|ts|rb|go|cs):\d+\)?/;

/**
 * Text a platform sent, made fit to repeat in an error message, a log line or an API answer: its first line only,
 * without control characters, a leading exception class name or anything from a stack trace on, whitespace
 * collapsed, at most `max` characters (an ellipsis marks a cut).
 */
export function echoText(text: string, max = MAX_ECHO_CHARS): string {
  let t = text.replace(/^\s+/, "").split(/\r?\n|\r/, 1)[0] ?? "";
  t = t.replace(/\p{Cc}|\p{Cf}/gu, " ").replace(EXCEPTION_CLASS, "");
  const internals = INTERNALS.exec(t);
  if (internals) t = t.slice(0, internals.index);
  t = t.replace(/\s+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max - 1).trimEnd()}…` : t;
}

/** The root of the client's errors. Final unless a subclass says otherwise. */
export class IdigiError extends Error implements RetryHint {
  /** Whether the same request may succeed later. */
  readonly retryable: boolean = false;
  /** How long the server asked us to wait (Retry-After), when it did. */
  readonly retryAfterMs: number | undefined = undefined;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "IdigiError";
  }
}

/** What was wrong with a frame on the TCP push stream. */
export type FrameErrorCode =
  /** The header's type is none of 1..4. */
  | "unknown_type"
  /** A known type that must not arrive here (e.g. a ConnectRequest sent to a client, or a second ConnectResponse). */
  | "unexpected_type"
  /** The header's size is larger than the configured maximum. */
  | "oversized"
  /** A size field disagrees with the frame's layout (ConnectResponse not 4 bytes, payloadSize ≠ size − 10, …). */
  | "bad_length"
  /** A field holds a value the notes do not define (compression or format byte other than 0/1). */
  | "bad_field"
  /** The reader already failed; it must be reset (i.e. the connection dropped) before reuse. */
  | "reader_failed";

/** A malformed frame. The stream cannot be resynchronised after one: close the socket and reconnect. */
export class IdigiFrameError extends IdigiError {
  constructor(
    readonly code: FrameErrorCode,
    message: string,
    readonly frameType?: number,
  ) {
    super(message);
    this.name = "IdigiFrameError";
  }
}

/** A PublishMessage payload that could not be inflated or parsed into events. The framing itself was fine. */
export class IdigiPayloadError extends IdigiError {
  constructor(
    readonly code: "inflate_failed" | "too_large" | "bad_json" | "bad_xml" | "bad_envelope",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "IdigiPayloadError";
  }
}

/**
 * Why a ConnectResponse refused the session, by the status's class: which 4xx the server sends for bad credentials,
 * a monitor of another account, an unknown, non-tcp or DISABLED monitor is unverified ([I] in the notes: 400, 403 or
 * 404 are guesses), so no meaning is read from the exact code; `status` keeps it.
 */
export type ConnectRefusal =
  /** 4xx: the server will not take this ConnectRequest as it is (credentials, monitor, protocol); final. */
  | "refused"
  /** 5xx: a server-side failure; worth reconnecting later. */
  | "server_error"
  /** Any other status (1xx, 3xx, or outside 100-599). */
  | "unexpected_status";

/**
 * A ConnectResponse with a status other than 2xx. `retryable` is true only for 5xx: the session keeps
 * reconnecting (with backoff) on those and stops for everything else (bad credentials, unknown monitor, …).
 */
export class IdigiConnectRefusedError extends IdigiError {
  override readonly retryable: boolean;
  constructor(
    readonly status: number,
    readonly refusal: ConnectRefusal,
  ) {
    super(`push server refused the ConnectRequest with status ${status} (${refusal})`);
    this.name = "IdigiConnectRefusedError";
    this.retryable = refusal === "server_error";
  }
}

/** `ack()` for a block that is not pending on the current connection (already acked, or its connection is gone). */
export class IdigiAckError extends IdigiError {
  constructor(
    readonly blockId: number,
    readonly reason: "stale_connection" | "not_pending" | "not_connected",
  ) {
    super(`cannot ack block ${blockId}: ${reason.replace("_", " ")}`);
    this.name = "IdigiAckError";
  }
}

/** Invalid configuration. `field` names the offending option; the message never contains its value. */
export class IdigiConfigError extends IdigiError {
  constructor(
    readonly field: string,
    message: string,
    readonly issues: ReadonlyArray<{ field: string; message: string }> = [{ field, message }],
  ) {
    super(issues.length > 1 ? issues.map((i) => `${i.field}: ${i.message}`).join("; ") : `${field}: ${message}`);
    this.name = "IdigiConfigError";
  }
}

// ---- REST (monitor API) errors ----

/** 401 / 403 from the REST API. */
export class IdigiAuthError extends IdigiError {
  constructor(
    readonly status: number,
    readonly serverMessage?: string,
  ) {
    super(`authentication failed (HTTP ${status})${serverMessage ? `: ${serverMessage}` : ""}`);
    this.name = "IdigiAuthError";
  }
}

/** 404, or a lookup whose result set is empty. */
export class IdigiNotFoundError extends IdigiError {
  constructor(
    readonly what: string,
    readonly status?: number,
  ) {
    super(`${what} not found`);
    this.name = "IdigiNotFoundError";
  }
}

/** Any other 4xx: the server rejected the request; `serverMessage` is what it said (`echoText`: capped, no internals). */
export class IdigiBadRequestError extends IdigiError {
  constructor(
    readonly status: number,
    readonly serverMessage: string,
  ) {
    super(`request rejected (HTTP ${status})${serverMessage ? `: ${serverMessage}` : ""}`);
    this.name = "IdigiBadRequestError";
  }
}

/** A 2xx whose body or headers are not what the API documents (e.g. a create response without an id). */
export class IdigiUnexpectedResponseError extends IdigiError {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "IdigiUnexpectedResponseError";
  }
}

/**
 * A response body longer than the client reads (`limitBytes`, counted after decompression): the rest was never read and
 * the connection was dropped. Not retryable: the same request is likely to get the same answer.
 */
export class IdigiResponseTooLargeError extends IdigiUnexpectedResponseError {
  constructor(
    readonly limitBytes: number,
    status: number,
    what: string,
  ) {
    super(`${what}: response body over ${limitBytes} bytes (HTTP ${status}); not read`, status);
    this.name = "IdigiResponseTooLargeError";
  }
}

/**
 * 5xx or 429: retryable, with the server's Retry-After when it sent one, at most `MAX_RETRY_AFTER_MS`
 * (`@meridian/retry`); `retryAfterRequestedMs` is what the server asked for when that was longer.
 */
export class IdigiServerError extends IdigiError {
  override readonly retryable = true;
  override readonly retryAfterMs: number | undefined;
  readonly retryAfterRequestedMs: number | undefined;
  constructor(
    readonly status: number,
    readonly serverMessage: string,
    retryAfterMs?: number,
    retryAfterRequestedMs?: number,
  ) {
    super(`server error (HTTP ${status})${serverMessage ? `: ${serverMessage}` : ""}`);
    this.name = "IdigiServerError";
    this.retryAfterMs = retryAfterMs;
    this.retryAfterRequestedMs = retryAfterRequestedMs;
  }
}

/** The request never got an HTTP answer (connection refused, reset, DNS, timeout): retryable. */
export class IdigiNetworkError extends IdigiError {
  override readonly retryable = true;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "IdigiNetworkError";
  }
}
