/**
 * Entra's token-endpoint error answer: `{error, error_description, error_codes, timestamp, trace_id, correlation_id,
 * error_uri}`, with the AADSTS code leading the description as the real service writes it. MSAL reads `error` (and
 * @azure/identity shows `error_description`), so those two must be exact; the codes are for people and tests.
 */
import { randomUUID } from "node:crypto";

export class EntraError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly code: number,
    readonly description: string,
  ) {
    super(`AADSTS${code}: ${description}`);
    this.name = "EntraError";
  }
}

/** Formats the timestamp the way Entra does: `2026-11-30 21:03:04Z`. */
function entraTimestamp(now: Date): string {
  return `${now.toISOString().slice(0, 19).replace("T", " ")}Z`;
}

export function entraErrorBody(e: EntraError, correlationId: string | undefined, baseUrl: string): Record<string, unknown> {
  const traceId = randomUUID();
  const corr = correlationId ?? randomUUID();
  const now = new Date();
  return {
    error: e.error,
    error_description: `AADSTS${e.code}: ${e.description} Trace ID: ${traceId} Correlation ID: ${corr} Timestamp: ${entraTimestamp(now)}`,
    error_codes: [e.code],
    timestamp: entraTimestamp(now),
    trace_id: traceId,
    correlation_id: corr,
    error_uri: `${baseUrl}/error?code=${e.code}`,
  };
}

/** The errors the emulator answers, one constructor each, so a code and its wording stay together. */
export const Errors = {
  missingParameter: (name: string) =>
    new EntraError(400, "invalid_request", 900144, `The request body must contain the following parameter: '${name}'.`),
  unsupportedGrant: (grant: string) =>
    new EntraError(400, "unsupported_grant_type", 70003, `The app requested an unsupported grant type '${grant}'.`),
  tenantNotFound: (tenant: string) =>
    new EntraError(
      400,
      "invalid_request",
      90002,
      `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
    ),
  unknownClient: (clientId: string, tenant: string) =>
    new EntraError(
      400,
      "unauthorized_client",
      700016,
      `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    ),
  wrongSecret: (clientId: string) =>
    new EntraError(
      401,
      "invalid_client",
      7000215,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
    ),
  credentialRequired: () =>
    new EntraError(
      401,
      "invalid_client",
      7000218,
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ),
  publicClientNotAllowed: (clientId: string) =>
    new EntraError(
      400,
      "unauthorized_client",
      700025,
      `Client is public so neither 'client_assertion' nor 'client_secret' should be presented (application '${clientId}').`,
    ),
  assertionInvalid: (why: string) => new EntraError(401, "invalid_client", 700027, `Client assertion failed signature validation. ${why}`),
  assertionCertUnknown: (thumbprint: string, clientId: string) =>
    new EntraError(
      401,
      "invalid_client",
      700027,
      `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${clientId}'.]`,
    ),
  assertionTime: () => new EntraError(401, "invalid_client", 700024, "Client assertion is not within its valid time range."),
  assertionAudience: (aud: string) =>
    new EntraError(401, "invalid_client", 50027, `Invalid JWT token. Client assertion audience '${aud}' is not the token endpoint.`),
  assertionSubject: () =>
    new EntraError(401, "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter."),
  clientCredentialsScope: (scope: string) =>
    new EntraError(
      400,
      "invalid_scope",
      1002012,
      `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    ),
  invalidScope: (scope: string) =>
    new EntraError(
      400,
      "invalid_scope",
      70011,
      `The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid.`,
    ),
  resourceNotFound: (resource: string, tenant: string) =>
    new EntraError(
      400,
      "invalid_resource",
      500011,
      `The resource principal named ${resource} was not found in the tenant named ${tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`,
    ),
  noConsent: (clientId: string, resource: string) =>
    new EntraError(
      400,
      "invalid_grant",
      65001,
      `The user or administrator has not consented to use the application with ID '${clientId}'. Send an interactive authorization request for this user and resource (${resource}).`,
    ),
  authorizationPending: () =>
    new EntraError(400, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling."),
  slowDown: () => new EntraError(400, "slow_down", 70016, "OAuth 2.0 device flow error. Polling too fast; slow down."),
  badDeviceCode: () =>
    new EntraError(400, "bad_verification_code", 70018, "The provided value for the input parameter 'device_code' is not valid."),
  deviceCodeExpired: () => new EntraError(400, "expired_token", 70019, "Verification code expired."),
  deviceCodeDeclined: () =>
    new EntraError(400, "authorization_declined", 70016, "OAuth 2.0 device flow error. The end user denied the authorization request."),
  deviceCodeWrongClient: () =>
    new EntraError(400, "invalid_grant", 70000, "The provided value for the 'device_code' was issued to another client."),
  refreshTokenInvalid: () => new EntraError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."),
  refreshTokenExpired: () =>
    new EntraError(
      400,
      "invalid_grant",
      70008,
      "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
    ),
  refreshTokenRevoked: () =>
    new EntraError(
      400,
      "invalid_grant",
      50173,
      "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
    ),
  refreshTokenOtherClient: () =>
    new EntraError(400, "invalid_grant", 700005, "Provided Authorization Code is intended to use against other tenant or client."),
  // --- authorization code flow (authorize endpoint and the authorization_code grant) ---
  redirectUriMismatch: (uri: string, clientId: string) =>
    new EntraError(
      400,
      "invalid_request",
      50011,
      `The redirect URI '${uri}' specified in the request does not match the redirect URIs configured for the application '${clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.`,
    ),
  unsupportedResponseType: (type: string) =>
    new EntraError(
      400,
      "unsupported_response_type",
      70005,
      `The provided value for the input parameter 'response_type' is not allowed for this request: '${type}'.`,
    ),
  unsupportedResponseMode: (mode: string) =>
    new EntraError(400, "invalid_request", 900144, `The emulator answers response_mode 'query' only; '${mode}' was asked.`),
  pkceRequired: () =>
    new EntraError(
      400,
      "invalid_request",
      9002325,
      "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
    ),
  codeChallengeMethod: (method: string) =>
    new EntraError(400, "invalid_request", 501490, `Invalid code_challenge_method '${method}': only S256 is accepted.`),
  codeChallengeSize: () => new EntraError(400, "invalid_request", 501491, "Invalid size of Code_Challenge parameter."),
  parameterTooLong: (name: string) => new EntraError(400, "invalid_request", 90015, `The value of the parameter '${name}' is too long.`),
  loginRequired: () => new EntraError(400, "login_required", 50058, "A silent sign-in request was sent but no user is signed in."),
  userNotFound: (username: string, tenant: string) =>
    new EntraError(
      400,
      "invalid_request",
      50034,
      `The user account ${username} does not exist in the ${tenant} directory. To sign into this application, the account must be added to the directory.`,
    ),
  authCodeInvalid: () => new EntraError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."),
  authCodeRedeemed: () =>
    new EntraError(
      400,
      "invalid_grant",
      54005,
      "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
    ),
  authCodeExpired: () =>
    new EntraError(
      400,
      "invalid_grant",
      70008,
      "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
    ),
  authCodeOtherClient: () =>
    new EntraError(400, "invalid_grant", 700005, "Provided Authorization Code is intended to use against other tenant or client."),
  replyAddressMismatch: (uri: string) =>
    new EntraError(
      400,
      "invalid_grant",
      500112,
      `The reply address '${uri}' does not match the reply address provided when requesting Authorization code.`,
    ),
  codeVerifierMismatch: () =>
    new EntraError(
      400,
      "invalid_grant",
      50148,
      "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
    ),
  spaRedemptionNotCrossOrigin: () =>
    new EntraError(
      400,
      "invalid_request",
      9002327,
      "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
    ),
  bodyTooLarge: () => new EntraError(413, "invalid_request", 90100, "The request body is too large."),
} as const;

/** Body for an injected fault status, in Entra's shape, so a client's error path reads it as it would the real one. */
export function faultError(status: number): EntraError {
  if (status === 429)
    return new EntraError(
      429,
      "temporarily_unavailable",
      50196,
      "The server terminated an operation because it encountered a client request loop.",
    );
  if (status >= 500) return new EntraError(status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.");
  return new EntraError(status, "invalid_request", 90100, "Injected error.");
}
