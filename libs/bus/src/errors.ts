import { ErrorCode } from "nats";

/** The bus cannot be reached now; callers answer `unavailable` and try again later. */
export class BusUnavailableError extends Error {
  /** Read by `retry()` from `@meridian/retry`: a source keeps its data and publishes again once the bus is back. */
  readonly retryable = true;
  constructor(message = "NATS is not connected", options?: ErrorOptions) {
    super(message, options);
    this.name = "BusUnavailableError";
  }
}

/**
 * Thrown by a consumer handler when retrying can never succeed (a schema the target rejects,
 * a message that cannot be decoded). The message goes to the dead-letter subject with the reason.
 */
export class PermanentError extends Error {
  constructor(
    message: string,
    /** Details for the dead letter, e.g. the target platform's error body. */
    readonly detail?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "PermanentError";
  }
}

/** A KV create found the key taken. */
export class KeyExistsError extends Error {
  constructor(readonly key: string) {
    super(`key already exists: ${key}`);
    this.name = "KeyExistsError";
  }
}

/** A compare-and-set write to a KV key that was written since the revision it names. */
export class KeyChangedError extends Error {
  constructor(
    readonly key: string,
    readonly revision: number,
    options?: ErrorOptions,
  ) {
    super(`key "${key}" changed since revision ${revision}`, options);
    this.name = "KeyChangedError";
  }
}

/**
 * A message over the server's max_payload. Retrying can never help: split the batch, or dead-letter it.
 */
export class MessageTooLargeError extends Error {
  constructor(
    readonly subject: string,
    readonly bytes: number,
    options?: ErrorOptions,
  ) {
    super(`message of ${bytes} bytes for ${subject} exceeds the server's max_payload`, options);
    this.name = "MessageTooLargeError";
  }
}

/**
 * NATS refused an operation this connection's user has no permission for (a subject outside its `allow` list).
 * Retrying cannot help: the deployment's NATS permissions, or the caller, are wrong.
 */
export class BusPermissionError extends Error {
  readonly retryable = false;
  constructor(
    readonly subject: string,
    options?: ErrorOptions,
  ) {
    super(`NATS refused this service's user permission for ${subject}`, options);
    this.name = "BusPermissionError";
  }
}

/** A JetStream API answer or client error saying what was asked for does not exist. */
export function isNotFound(err: unknown): boolean {
  const e = err as { code?: string; api_error?: { err_code?: number; code?: number }; message?: string };
  return e?.api_error?.code === 404 || e?.code === "404" || /not found/i.test(e?.message ?? "");
}

/** A NATS permissions violation (publish or subscribe outside the user's permissions). */
export function isPermissionError(err: unknown): boolean {
  return (err as { code?: string })?.code === "PERMISSIONS_VIOLATION";
}

/**
 * A failure another attempt may overcome: the client between two servers, no JetStream answering (no responders, a
 * stream without a leader: a JetStream API 5xx), or no answer in time. What the caller sees as "the bus is unavailable,
 * try again"; a timeout of a write may hide that it was done, so whoever retries a write must allow for that.
 */
export function isTransientBusFailure(err: unknown): boolean {
  const e = err as { code?: string; api_error?: { code?: number } } | undefined;
  if (e === undefined || e === null) return false;
  if (e.code !== undefined && TRANSIENT_CODES.has(e.code)) return true;
  const status = e.api_error?.code;
  return status !== undefined && status >= 500;
}

const TRANSIENT_CODES = new Set<string>([
  ErrorCode.NoResponders,
  ErrorCode.Timeout,
  ErrorCode.Disconnect,
  ErrorCode.ConnectionClosed,
  ErrorCode.ConnectionDraining,
]);
