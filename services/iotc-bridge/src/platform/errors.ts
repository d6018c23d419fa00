import type { RetryHint } from "@meridian/retry";

/**
 * Every error the IoT Central device client throws is an `IotcError`. What a caller decides on:
 *   retryable: true — IotcThrottledError (DPS 429 / CONNACK 3 / twin 429; `retryAfterMs` is the service's hint),
 *                     IotcNotConnectedError (connection lost, hub or DPS unreachable), IotcTimeoutError (no PUBACK or
 *                     response in time: the message may or may not have arrived)
 *   IotcUnauthorizedError (DPS 401 / CONNACK 4-5 after registering again), IotcDeviceDisabledError (DPS "disabled" or
 *   the hub refusing a disabled/blocked device), IotcRegistrationFailedError (DPS "failed", e.g. unknown enrollment)
 *   → the device can never be accepted as it is
 *   IotcMessageTooLargeError (over 256 KiB), IotcInvalidArgumentError (refused before sending; `field` names it)
 */
export interface IotcErrorDetails {
  /** The registration (device) id concerned. */
  registrationId?: string;
  /** The service's status or error code when it sent one (DPS errorCode, twin status, CONNACK return code). */
  code?: number;
  cause?: unknown;
}

export class IotcError extends Error implements RetryHint {
  readonly registrationId: string | undefined;
  readonly code: number | undefined;
  readonly retryable: boolean = false;
  readonly retryAfterMs: number | undefined = undefined;
  readonly retryAfterRequestedMs: number | undefined = undefined;

  constructor(message: string, details: IotcErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "IotcError";
    this.registrationId = details.registrationId;
    this.code = details.code;
  }
}

/** Refused before anything was sent; `field` names the input (`deviceId`, `payload`, `patch`). */
export class IotcInvalidArgumentError extends IotcError {
  readonly field: string;
  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.name = "IotcInvalidArgumentError";
    this.field = field;
  }
}

/** The credential was refused (DPS 401, CONNACK 4 or 5) and registering again did not help. */
export class IotcUnauthorizedError extends IotcError {
  constructor(message: string, details?: IotcErrorDetails) {
    super(message, details);
    this.name = "IotcUnauthorizedError";
  }
}

/** The device is disabled or blocked in IoT Central: DPS answers "disabled", or the hub refuses it. */
export class IotcDeviceDisabledError extends IotcError {
  constructor(message: string, details?: IotcErrorDetails) {
    super(message, details);
    this.name = "IotcDeviceDisabledError";
  }
}

/** DPS ended the registration as "failed" (unknown enrollment, bad attestation); its errorCode and message. */
export class IotcRegistrationFailedError extends IotcError {
  constructor(message: string, details?: IotcErrorDetails) {
    super(message, details);
    this.name = "IotcRegistrationFailedError";
  }
}

/** Throttled by DPS or IoT Hub; retry after `retryAfterMs` (the service's retry-after when it gave one). */
export class IotcThrottledError extends IotcError {
  override readonly retryable = true;
  override readonly retryAfterMs: number | undefined;
  override readonly retryAfterRequestedMs: number | undefined;
  constructor(message: string, retryAfterMs: number | undefined, details?: IotcErrorDetails) {
    super(message, details);
    this.name = "IotcThrottledError";
    this.retryAfterMs = retryAfterMs;
    this.retryAfterRequestedMs = retryAfterMs;
  }
}

/** Not connected, the connection dropped, or DPS / the hub could not be reached. */
export class IotcNotConnectedError extends IotcError {
  override readonly retryable = true;
  constructor(message: string, details?: IotcErrorDetails) {
    super(message, details);
    this.name = "IotcNotConnectedError";
  }
}

/** No acknowledgement or response in time: the message may or may not have reached the hub. */
export class IotcTimeoutError extends IotcError {
  override readonly retryable = true;
  constructor(message: string, details?: IotcErrorDetails) {
    super(message, details);
    this.name = "IotcTimeoutError";
  }
}

/** Over IoT Hub's 256 KiB device-to-cloud limit (body and properties): it can never be sent. */
export class IotcMessageTooLargeError extends IotcError {
  readonly bytes: number;
  constructor(bytes: number, limit: number, details?: IotcErrorDetails) {
    super(`message of ${bytes} bytes is over IoT Hub's ${limit}-byte limit`, details);
    this.name = "IotcMessageTooLargeError";
    this.bytes = bytes;
  }
}
