export {
  type AuthSettings,
  authSettings,
  type Caller,
  callerOf,
  newApiKey,
  ROLES,
  type Role,
  type ServerAuth,
  serverAuth,
} from "./auth/index.js";
export { ConfigError, env, loadConfig, loadConfigOrExit } from "./config.js";
export { type ErrorTable, mapError } from "./errors.js";
export type { HealthRegistry, ServingStatus } from "./health.js";
export { CallLog, callLog, codeName, REQUEST_ID_HEADER, requestId, requestLogger } from "./interceptors.js";
export type { JsonRequestReader, KeyCount } from "./json-request.js";
export { keysInText } from "./json-request.js";
export { DEFAULT_SERVER_LIMITS, SERVER_LIMIT_BOUNDS, type ServerLimits } from "./limits.js";
export { createLogger, type Logger, REDACT_PATHS } from "./logger.js";
export { EXIT_CONFIG, packageVersion, runMain, type ServiceIdentity, serviceIdentity } from "./main.js";
export {
  type CredentialsKeySettings,
  credentialsKeySettings,
  DEVELOPMENT_CREDENTIALS_KEY,
  isDevelopmentKey,
  isSealedSecret,
  type SealedSecret,
  type SecretBindingField,
  SecretKeyring,
  type SecretKeyringOptions,
  SecretOpenError,
} from "./sealing.js";
export {
  type HttpRouteHandler,
  type HttpRouteRequest,
  type HttpRouteResponse,
  type RunningService,
  type ServiceOptions,
  startService,
} from "./server.js";
export {
  type ClientAuth,
  type ClientTls,
  clientTlsFromFiles,
  type PeerCertificate,
  peerCertificateKey,
  type ServerTlsOptions,
  type TlsFile,
  type TlsFiles,
} from "./tls.js";
export { assertRequiredFields, type FieldViolation, invalidArgument, RequestViolations, requireFields } from "./validation.js";
