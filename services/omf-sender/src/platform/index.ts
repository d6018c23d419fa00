export { ClientCredentialsTokenProvider, type TokenProviderOptions } from "./auth.js";
export { type BatchLimits, batchMessage, splitInHalf } from "./batching.js";
export { createClients, type EndpointOutcome, OmfClient, type OmfClientOptions, type SendOptions, sendToEndpoints } from "./client.js";
export {
  type AdhEndpointConfig,
  type AdhEndpointInput,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_VALUES_PER_REQUEST,
  DEFAULT_OMF_VERSION,
  DEFAULT_TIMEOUT_MS,
  type EdsEndpointConfig,
  type EdsEndpointInput,
  OMF_SPEC_MAX_BODY_BYTES,
  type OmfEndpointConfig,
  type OmfEndpointInput,
  PI_DEFAULT_MAX_BODY_BYTES,
  type PiEndpointConfig,
  type PiEndpointInput,
  type ValidationResult,
  validateEndpointConfig,
} from "./config.js";
export {
  isOmfError,
  OmfAuthError,
  OmfBadRequestError,
  OmfConfigError,
  OmfConflictError,
  OmfError,
  type OmfErrorDetails,
  OmfInvalidMessageError,
  OmfNotFoundError,
  OmfPayloadTooLargeError,
  type OmfSendError,
  OmfServerError,
  OmfThrottledError,
  OmfTlsError,
} from "./errors.js";
export {
  type ContainerMappingOptions,
  containerFor,
  containerIdFor,
  MAX_ID_LENGTH,
  type PointKind,
  type PointShape,
  type PointSpec,
  type SourceRef,
  sanitizeIdSegment,
  type TypeMapping,
  type TypeMappingOptions,
  typeForShape,
  valueFor,
} from "./mapping.js";
export * from "./messages.js";
export {
  classifyResult,
  effectiveStatus,
  type HeaderSource,
  type OmfResult,
  type OmfResultMessage,
  type OmfSeverity,
  parseOmfResponse,
} from "./response.js";
export { isSecret, Secret } from "./secret.js";
