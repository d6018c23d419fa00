/**
 * The SDK's errors (and what the wire showed) as IotcErrors. The SDK often loses the cause: a refused first CONNECT
 * becomes a plain Error, a DPS 429 is retried silently, a twin error keeps only its message; the observations of the
 * MQTT connection (sdk.ts) supply what it dropped.
 */
import {
  IotcDeviceDisabledError,
  IotcError,
  IotcNotConnectedError,
  IotcRegistrationFailedError,
  IotcThrottledError,
  IotcTimeoutError,
  IotcUnauthorizedError,
} from "./errors.js";
import { isSdkError, type WireObservations } from "./sdk.js";

/** The socket and TLS error codes that mean the service could not be reached (or not trusted) this time. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

const TLS_CODES =
  /^(?:SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(?:_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID|ERR_SSL_.*)$/;

export type Service = "DPS" | "IoT Hub";

function codeOf(err: unknown): string | number | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && typeof e === "object" && e !== null; i++) {
    const c = (e as { code?: unknown }).code;
    if (typeof c === "string" || typeof c === "number") return c;
    e = (e as { transportError?: unknown; cause?: unknown }).transportError ?? (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** CONNACK return codes (MQTT 3.1.1) as refusals: 2 identifier rejected, 4 bad user name or password, 5 not authorized. */
export function isRefusalConnack(code: number | undefined): boolean {
  return code === 2 || code === 4 || code === 5;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A connection-level failure (CONNECT, socket, TLS) as an IotcError, or undefined when the error is not one.
 * `observations` is what the hooked mqtt.js saw on this attempt.
 */
export function connectionError(
  service: Service,
  err: unknown,
  observations: WireObservations,
  registrationId: string,
): IotcError | undefined {
  const details = { registrationId, cause: err };
  const connack = observations.connackCode;
  if (connack !== undefined && connack !== 0) {
    if (isRefusalConnack(connack))
      return new IotcUnauthorizedError(`${service} refused the connection (CONNACK ${connack}: not authorized)`, {
        ...details,
        code: connack,
      });
    if (connack === 3)
      return new IotcThrottledError(`${service} is unavailable (CONNACK 3); try again later`, undefined, { ...details, code: connack });
    return new IotcError(`${service} refused the connection (CONNACK ${connack})`, { ...details, code: connack });
  }
  const code = codeOf(err) ?? codeOf(observations.socketError);
  if (typeof code === "string" && TLS_CODES.test(code))
    return new IotcNotConnectedError(
      `${service}'s TLS certificate is not trusted (${code}): add its CA (an emulator's, a proxy's) to the trusted ones`,
      details,
    );
  if (typeof code === "string" && NETWORK_CODES.has(code))
    return new IotcNotConnectedError(`${service} cannot be reached (${code})`, details);
  if (isSdkError(err, "UnauthorizedError"))
    return new IotcUnauthorizedError(`${service} refused the credential: ${messageOf(err)}`, details);
  if (isSdkError(err, "NotConnectedError") || isSdkError(err, "ServiceUnavailableError") || isSdkError(err, "InternalServerError"))
    return new IotcNotConnectedError(`${service} is not reachable: ${messageOf(err)}`, details);
  return undefined;
}

/** A failed DPS registration as an IotcError (notes 1.2, 1.5, 7). */
export function registrationError(err: unknown, observations: WireObservations, registrationId: string): IotcError {
  if (err instanceof IotcError) return err;
  const details = { registrationId, cause: err };
  const result = (err as { result?: { status?: unknown; registrationState?: { errorCode?: unknown; errorMessage?: unknown } } })?.result;
  const status = typeof result?.status === "string" ? result.status.toLowerCase() : undefined;
  const state = result?.registrationState;
  const dpsCode = typeof state?.errorCode === "number" ? state.errorCode : undefined;
  const dpsMessage = typeof state?.errorMessage === "string" ? state.errorMessage : undefined;
  if (status === "disabled")
    return new IotcDeviceDisabledError("DPS answered that the device is disabled (blocked in IoT Central)", { ...details, code: dpsCode });
  if (isSdkError(err, "DeviceRegistrationFailedError"))
    return new IotcRegistrationFailedError(`DPS ended the registration as failed${dpsMessage ? `: ${dpsMessage}` : ""}`, {
      ...details,
      code: dpsCode,
    });
  if (err instanceof SyntaxError && status !== undefined)
    return new IotcRegistrationFailedError(`DPS ended the registration with status "${status}"`, { ...details, code: dpsCode });
  const throttled = observations.dpsStatus === 429;
  const retryAfterMs = observations.dpsRetryAfterSeconds === undefined ? undefined : observations.dpsRetryAfterSeconds * 1000;
  if (isSdkError(err, "TimeoutError") || isSdkError(err, "OperationCancelledError")) {
    if (throttled) return new IotcThrottledError("DPS kept throttling the registration (429)", retryAfterMs, { ...details, code: 429 });
    return new IotcTimeoutError("DPS did not complete the registration in time", details);
  }
  if (isSdkError(err, "ThrottlingError") || isSdkError(err, "IotHubQuotaExceededError"))
    return new IotcThrottledError(`DPS throttled the registration: ${messageOf(err)}`, retryAfterMs, { ...details, code: 429 });
  if (isSdkError(err, "DeviceNotFoundError"))
    return new IotcRegistrationFailedError(`DPS knows no enrollment for this device: ${messageOf(err)}`, { ...details, code: 404 });
  if (isSdkError(err, "ArgumentError"))
    return new IotcRegistrationFailedError(`DPS refused the registration request: ${messageOf(err)}`, { ...details, code: 400 });
  const connection = connectionError("DPS", err, observations, registrationId);
  if (connection) return connection;
  return new IotcError(`DPS registration failed: ${messageOf(err)}`, details);
}

/** A failed hub operation (CONNECT, publish, twin) as an IotcError. */
export function hubError(err: unknown, observations: WireObservations, registrationId: string, operation: string): IotcError {
  if (err instanceof IotcError) return err;
  const details = { registrationId, cause: err };
  if (isSdkError(err, "TimeoutError")) return new IotcTimeoutError(`IoT Hub did not acknowledge the ${operation} in time`, details);
  if (isSdkError(err, "MessageTooLargeError")) return new IotcError(`IoT Hub refused the ${operation}: too large`, details);
  if (isSdkError(err, "ThrottlingError") || isSdkError(err, "IotHubQuotaExceededError"))
    return new IotcThrottledError(`IoT Hub throttled the ${operation}`, undefined, details);
  const connection = connectionError("IoT Hub", err, observations, registrationId);
  if (connection) return connection;
  return new IotcError(`IoT Hub ${operation} failed: ${messageOf(err)}`, details);
}

/** A twin request's failure: the SDK keeps only the response's message, the wire keeps its status. */
export function twinError(err: unknown, observations: WireObservations, registrationId: string, operation: string): IotcError {
  const status = observations.twinStatus;
  if (status !== undefined && status >= 400 && !(err instanceof IotcError)) {
    const details = { registrationId, code: status, cause: err };
    if (status === 429) return new IotcThrottledError(`IoT Hub throttled the ${operation} (429)`, undefined, details);
    if (status >= 500) return new IotcNotConnectedError(`IoT Hub could not serve the ${operation} (${status})`, details);
    return new IotcError(`IoT Hub refused the ${operation} (${status}): ${messageOf(err)}`, details);
  }
  return hubError(err, observations, registrationId, operation);
}
