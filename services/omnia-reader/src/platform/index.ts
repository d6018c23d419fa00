export {
  type CredentialOptions,
  createCredential,
  type DeviceCodePrompt,
  type OmniaAuthConfig,
  TokenSource,
} from "./auth.js";
export {
  collect,
  DEFAULT_COLLECT_MAX_ITEMS,
  DEFAULT_COLLECT_MAX_PAGES,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_TIMEOUT_MS,
  MAX_COLLECT_ITEMS,
  OMNIA_BACKOFF,
  OmniaClient,
  type OmniaClientOptions,
} from "./client.js";
export {
  DEFAULT_AUTHORITY_HOST,
  EQUINOR_TENANT_ID,
  OMNIA_ENVIRONMENTS,
  type OmniaApiVersion,
  type OmniaEnvironmentDefaults,
  type OmniaEnvironmentInput,
  type OmniaEnvironmentName,
  type ResolvedOmniaEnvironment,
  resolveEnvironment,
} from "./environments.js";
export {
  OmniaAuthError,
  OmniaBadRequestError,
  OmniaCollectLimitError,
  OmniaConfigError,
  OmniaConflictError,
  OmniaError,
  type OmniaErrorDetails,
  OmniaForbiddenError,
  OmniaNotFoundError,
  OmniaProtocolError,
  OmniaResponseTooLargeError,
  OmniaServerError,
  OmniaThrottledError,
  OmniaUnauthorizedError,
  OmniaValidationError,
} from "./errors.js";
export {
  type CompactDatapointsDto,
  type CompactDatapointsItem,
  type CompactValue,
  compactToAggregates,
  compactToDatapoints,
  decodeCompactDatapoints,
  encodeCompactDatapoints,
} from "./protobuf.js";
export { formatTimeNs, parseTimeNs, queryTime, toTimeNs } from "./time.js";
export * from "./types.js";
export { MAX_LIMIT, MAX_METADATA_KEYS, MAX_MULTI_ITEMS, MAX_WRITE_POINTS } from "./validate.js";
