export {
  type CredentialOptions,
  createCredential,
  type DeviceCodePrompt,
  type OmniaAuthConfig,
  TokenSource,
} from "./auth.js";
export { OmniaClient, type OmniaClientOptions } from "./client.js";
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
export * from "./types.js";
