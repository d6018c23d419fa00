/**
 * The kit's errors. One root, `EmulatorHttpError`, carries the HTTP status it becomes, so the admin surface (and any
 * emulator route that wants to) answers every kit error the same way: `{ error: message, ...detail }`.
 */
export class EmulatorHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Extra fields for the JSON error body, e.g. `{ field: "count" }`. */
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "EmulatorHttpError";
  }
}

/** A request the caller must correct; `field` names what is wrong (a body field, or `body` for the whole body). */
export class BadRequestError extends EmulatorHttpError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(400, `${field}: ${message}`, { field });
    this.name = "BadRequestError";
  }
}

/** A fault switch setting that does not validate. */
export class FaultConfigError extends BadRequestError {
  constructor(field: string, message: string) {
    super(field, message);
    this.name = "FaultConfigError";
  }
}

/** A request body over the limit the reader was given. */
export class BodyTooLargeError extends EmulatorHttpError {
  constructor(readonly limit: number) {
    super(413, `body exceeds ${limit} bytes`);
    this.name = "BodyTooLargeError";
  }
}
