export { assertAccessRules } from "./access.js";
export { apiKeyId, hashApiKey, newApiKey } from "./api-keys.js";
export { ANONYMOUS, Authenticator, type PeerCertificateIdentity } from "./authenticator.js";
export { type Caller, callerKey, callerOf } from "./caller.js";
export { type AuthInterceptorOptions, authInterceptor, type CallerLimits } from "./interceptor.js";
export { ROLES, type Role } from "./roles.js";
export { type ServerAuth, serverAuth } from "./server-auth.js";
export { type AuthSettings, authSettings } from "./settings.js";
