import { Code, ConnectError } from "@connectrpc/connect";
import type { ErrorTable } from "@meridian/service-kit";
import {
  ApplicationNotFoundError,
  BridgeError,
  CredentialsError,
  DeviceIdCollisionError,
  DeviceNotFoundError,
  TooManyApplicationsError,
  TooManyDevicesError,
} from "../pipeline/errors.js";
import {
  IotcDeviceDisabledError,
  IotcError,
  IotcInvalidArgumentError,
  IotcMessageTooLargeError,
  IotcNotConnectedError,
  IotcRegistrationFailedError,
  IotcThrottledError,
  IotcTimeoutError,
  IotcUnauthorizedError,
} from "../platform/index.js";

/** iotc-bridge's errors and IoT Central's at the API edge (the proto's comment is the table); bus errors are the starter's. */
export const iotcBridgeErrors: ErrorTable = (err) => {
  if (err instanceof ApplicationNotFoundError || err instanceof DeviceNotFoundError) return new ConnectError(err.message, Code.NotFound);
  if (err instanceof TooManyApplicationsError || err instanceof TooManyDevicesError)
    return new ConnectError(err.message, Code.ResourceExhausted);
  if (err instanceof DeviceIdCollisionError) return new ConnectError(err.message, Code.AlreadyExists);
  if (err instanceof CredentialsError) return new ConnectError(err.message, Code.FailedPrecondition);
  if (err instanceof BridgeError) return new ConnectError(err.message, Code.FailedPrecondition);
  if (!(err instanceof IotcError)) return undefined;
  // Refused before anything was sent; the client names the field.
  if (err instanceof IotcInvalidArgumentError) return new ConnectError(`invalid request: ${err.message}`, Code.InvalidArgument);
  if (err instanceof IotcMessageTooLargeError) return new ConnectError(`invalid request: ${err.message}`, Code.InvalidArgument);
  if (err instanceof IotcUnauthorizedError)
    return new ConnectError(`IoT Central refused the device's credential: ${err.message}`, Code.PermissionDenied);
  if (err instanceof IotcDeviceDisabledError)
    return new ConnectError(`the device is disabled or blocked in IoT Central: ${err.message}`, Code.FailedPrecondition);
  if (err instanceof IotcRegistrationFailedError)
    return new ConnectError(`DPS did not register the device: ${err.message}`, Code.FailedPrecondition);
  if (err instanceof IotcThrottledError)
    return new ConnectError(
      `throttled by IoT Central: ${err.message}${err.retryAfterMs !== undefined ? `; retry after ${Math.ceil(err.retryAfterMs / 1000)} s` : ""}`,
      Code.ResourceExhausted,
    );
  if (err instanceof IotcNotConnectedError) return new ConnectError(`IoT Central unreachable: ${err.message}`, Code.Unavailable);
  // The message may or may not have arrived.
  if (err instanceof IotcTimeoutError) return new ConnectError(`no answer from IoT Central in time: ${err.message}`, Code.DeadlineExceeded);
  return new ConnectError(`IoT Central: ${err.message}`, Code.FailedPrecondition);
};
