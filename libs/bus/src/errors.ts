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
