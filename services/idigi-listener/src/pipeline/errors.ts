import type { IdigiConnectRefusedError } from "../platform/index.js";

/**
 * Root of the errors of idigi-listener's own session management (not answers of the platform, which are
 * IdigiErrors): what StartSession can run into besides the platform.
 */
export class SessionError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SessionError";
  }
}

/** The session refused for good at connect time (bad credentials, unknown monitor): StartSession reports it. */
export class SessionRefusedError extends SessionError {
  constructor(
    readonly monitorId: string,
    readonly refusal: IdigiConnectRefusedError | Error,
  ) {
    super(`push session for monitor ${monitorId} was refused: ${refusal.message}`, { cause: refusal });
    this.name = "SessionRefusedError";
  }
}

/** StartSession while the listener stops. */
export class ShuttingDownError extends SessionError {
  constructor() {
    super("idigi-listener is shutting down");
    this.name = "ShuttingDownError";
  }
}
