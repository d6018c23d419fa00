export { type IssuedDeviceCertificate, type IssueOptions, issueDeviceCertificate, type SigningCertificate } from "./certificates.js";
export { GLOBAL_PROVISIONING_HOST } from "./config.js";
export {
  COMMAND_COMPONENT_SEPARATOR,
  COMPONENT_MARKER,
  MAX_COMMAND_RESPONSE_BYTES,
  MAX_REPORTED_BYTES,
  MAX_TELEMETRY_BYTES,
  nestInComponent,
  OFFLINE_COMMAND_PROPERTY,
  offlineCommandName,
  pendingWritableProperties,
  splitCommandName,
  telemetrySize,
  validateComponentName,
  writablePropertyAckPatch,
  writablePropertyChanges,
} from "./conventions.js";
export { deriveDeviceKey } from "./credentials.js";
export { createIotcDevice, type IotcDeviceOptions } from "./device.js";
export {
  IotcDeviceDisabledError,
  IotcError,
  type IotcErrorDetails,
  IotcInvalidArgumentError,
  IotcMessageTooLargeError,
  IotcNotConnectedError,
  IotcRegistrationFailedError,
  IotcThrottledError,
  IotcTimeoutError,
  IotcUnauthorizedError,
} from "./errors.js";
export type { DeviceLogger } from "./logger.js";
export { type RegisterOptions, register, validateCredential } from "./provisioning.js";
export {
  MAX_REGISTRATION_ID_LENGTH,
  type NormalisedRegistrationId,
  normaliseRegistrationId,
  validateRegistrationId,
} from "./registration-id.js";
export type {
  DeviceConnectionState,
  DeviceCredential,
  DeviceHandlers,
  DeviceRegistration,
  DirectMethodRequest,
  IotcDevice,
  OfflineCommand,
  ProvisioningEndpoint,
  RegistrationStore,
  TelemetryOptions,
  Twin,
  WritablePropertyAck,
  WritablePropertyChange,
} from "./types.js";
