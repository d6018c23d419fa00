/**
 * The application API's one error root. Every refusal is an `AppApiError` carrying the HTTP status and IoT Central's
 * error code; the router turns it into `{"error":{"code","message","requestId","time"}}` with `x-ms-error-code`.
 */
export class AppApiError extends Error {
  override name = "AppApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A request the caller must correct; `what` names the parameter or body field path that is wrong. */
export function badRequest(what: string, message: string): AppApiError {
  return new AppApiError(400, "BadRequest", `${what}: ${message}`);
}

export function deviceNotFound(deviceId: string): AppApiError {
  return new AppApiError(404, "NotFound", `device ${JSON.stringify(deviceId)} not found`);
}

/** IoT Central's error document; `time` is RFC 1123, as the service writes it. */
export function errorBody(err: AppApiError, requestId: string, now = new Date()) {
  return { error: { code: err.code, message: err.message, requestId, time: now.toUTCString() } };
}
