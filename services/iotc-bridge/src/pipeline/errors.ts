/** Root of iotc-bridge's own errors (not IoT Central's answers, which are the platform client's IotcError). */
export class BridgeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BridgeError";
  }
}

export class ApplicationNotFoundError extends BridgeError {
  constructor(readonly applicationId: string) {
    super(`application ${applicationId} not found`);
    this.name = "ApplicationNotFoundError";
  }
}

export class DeviceNotFoundError extends BridgeError {
  constructor(
    readonly applicationId: string,
    readonly deviceId: string,
  ) {
    super(`device ${deviceId} of application ${applicationId} not found`);
    this.name = "DeviceNotFoundError";
  }
}

/** IOTC_MAX_APPLICATIONS reached. */
export class TooManyApplicationsError extends BridgeError {
  constructor(readonly max: number) {
    super(`iotc-bridge holds IOTC_MAX_APPLICATIONS=${max} applications; delete one first`);
    this.name = "TooManyApplicationsError";
  }
}

/**
 * IOTC_MAX_DEVICES devices are connected or connecting and none of them is idle enough to be closed. Transient: a
 * route's message waits on the bus and is tried again (`retryable`, read by the bus consumer).
 */
export class TooManyDevicesError extends BridgeError {
  readonly retryable = true;
  readonly retryAfterMs = 5000;
  constructor(readonly max: number) {
    super(`iotc-bridge has IOTC_MAX_DEVICES=${max} devices connected and busy; try again later`);
    this.name = "TooManyDevicesError";
  }
}

/**
 * A credential that cannot be used: no IOTC_CREDENTIALS_KEY to seal or open it, a record whose binding changed (a
 * re-pointed record), a key no longer configured. The operator must fix it; the message names no secret.
 */
export class CredentialsError extends BridgeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CredentialsError";
  }
}

/** Two source devices whose names normalise to the same IoT Central device id. */
export class DeviceIdCollisionError extends BridgeError {
  constructor(
    readonly deviceId: string,
    readonly holder: string,
    readonly source: string,
  ) {
    super(`device id collision: ${deviceId} already stands for ${holder}`);
    this.name = "DeviceIdCollisionError";
  }
}

/** A route option the sink cannot use (an unknown placeholder, a template that leaves nothing). */
export class RouteOptionError extends BridgeError {
  constructor(
    readonly option: string,
    problem: string,
  ) {
    super(`route option ${option}: ${problem}`);
    this.name = "RouteOptionError";
  }
}
