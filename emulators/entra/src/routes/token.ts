/**
 * `/{tenant}/oauth2/v2.0/token` and `/{tenant}/oauth2/v2.0/devicecode`: client authentication (secret, certificate
 * assertion, or none for a public client) and the grants @azure/identity uses — client credentials, device code
 * (with its polling answers) and refresh token — and the authorization code a single-page application redeems.
 */
import { createHash } from "node:crypto";
import { basicCredentials, safeEqual } from "@meridian/emulator-kit";
import { decodeProtectedHeader, errors as joseErrors, jwtVerify } from "jose";
import type { EmulatorContext, IssuedTokens } from "../context.js";
import { type Application, MAX_SCOPE_LENGTH } from "../directory.js";
import { EntraError, Errors } from "../errors.js";

export const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

export interface TokenRequest {
  form: URLSearchParams;
  authorization: string | undefined;
  /** Tenant segment of the path, as sent. */
  pathTenant: string;
  baseUrl: string;
  /** The browser's Origin header: present on a cross-origin (SPA) request, absent from a server's. */
  origin?: string | undefined;
  /** For the log: what the request was, never its credentials. */
  note: { grantType?: string; clientId?: string };
}

type Azpacr = "0" | "1" | "2";

function required(form: URLSearchParams, name: string): string {
  const v = form.get(name);
  if (!v) throw Errors.missingParameter(name);
  return v;
}

function tenantOf(ctx: EmulatorContext, pathTenant: string): string {
  const t = ctx.directory.tenant(pathTenant);
  if (!t) throw Errors.tenantNotFound(pathTenant);
  return t;
}

function scopeParam(form: URLSearchParams): string {
  const scope = required(form, "scope");
  if (scope.length > MAX_SCOPE_LENGTH) throw Errors.invalidScope(`${scope.slice(0, 64)}...`);
  return scope;
}

/**
 * Who is calling and how it proved it: `azpacr` 0 (public), 1 (secret), 2 (certificate). `spa`: an authorization code,
 * which only "spa" redirect URIs get here: a browser redeems it, holding no credential (PKCE stands in for one).
 */
async function authenticateClient(
  ctx: EmulatorContext,
  r: TokenRequest,
  tenant: string,
  spa = false,
): Promise<{ app: Application; azpacr: Azpacr }> {
  const { form } = r;
  let clientId = form.get("client_id") ?? undefined;
  let secret = form.get("client_secret") ?? undefined;
  const basic = basicCredentials(r.authorization);
  if (basic) {
    // client_secret_basic: RFC 6749 §2.3.1 form-encodes the id and secret before Base64.
    clientId = decodeURIComponent(basic.username);
    secret = decodeURIComponent(basic.password);
  }
  if (!clientId) throw Errors.missingParameter("client_id");
  r.note.clientId = clientId;
  const app = ctx.directory.application(clientId);
  if (!app) throw Errors.unknownClient(clientId, tenant);
  const assertion = form.get("client_assertion");
  if (secret !== undefined) {
    if (app.secrets.length === 0 && app.publicClient) throw Errors.publicClientNotAllowed(app.clientId);
    if (!app.secrets.some((s) => safeEqual(s, secret))) throw Errors.wrongSecret(app.clientId);
    return { app, azpacr: "1" };
  }
  if (assertion) {
    if (form.get("client_assertion_type") !== ASSERTION_TYPE) throw Errors.missingParameter("client_assertion_type");
    await verifyAssertion(app, assertion, r, tenant);
    return { app, azpacr: "2" };
  }
  if (!app.publicClient && !spa) throw Errors.credentialRequired();
  return { app, azpacr: "0" };
}

/** RFC 7523 client assertion as MSAL makes it: signed by a registered certificate, for this token endpoint. */
async function verifyAssertion(app: Application, assertion: string, r: TokenRequest, tenant: string): Promise<void> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(assertion);
  } catch {
    throw Errors.assertionInvalid("The assertion is not a JWT.");
  }
  const x5tS256 = typeof header["x5t#S256"] === "string" ? (header["x5t#S256"] as string) : undefined;
  const x5t = typeof header.x5t === "string" ? header.x5t : undefined;
  const cert = app.certificates.find((c) => (x5tS256 && c.x5tS256 === x5tS256) || (x5t && c.x5t === x5t));
  if (!cert) throw Errors.assertionCertUnknown(x5tS256 ?? x5t ?? "(none)", app.clientId);
  const audiences = [r.pathTenant, tenant].flatMap((t) => [
    `${r.baseUrl}/${t}/oauth2/v2.0/token`,
    `${r.baseUrl}/${t}/oauth2/token`,
    `${r.baseUrl}/${t}/v2.0`,
  ]);
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(assertion, cert.publicKey, { algorithms: ["RS256", "PS256"], clockTolerance: 300 }));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw Errors.assertionTime();
    if (err instanceof joseErrors.JWTClaimValidationFailed && (err.claim === "nbf" || err.claim === "iat")) throw Errors.assertionTime();
    throw Errors.assertionInvalid((err as Error).message);
  }
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!aud.some((a) => typeof a === "string" && audiences.some((x) => x.toLowerCase() === a.toLowerCase())))
    throw Errors.assertionAudience(String(payload.aud));
  if (String(payload.iss).toLowerCase() !== app.clientId || String(payload.sub).toLowerCase() !== app.clientId)
    throw Errors.assertionSubject();
  if (typeof payload.exp !== "number") throw Errors.assertionTime();
}

export async function tokenEndpoint(ctx: EmulatorContext, r: TokenRequest): Promise<IssuedTokens> {
  const tenant = tenantOf(ctx, r.pathTenant);
  const grant = required(r.form, "grant_type");
  r.note.grantType = grant;
  // MSAL Node sends the short form `device_code`; the RFC's URN is what other clients send. Both mean the same grant.
  const kind = grant === "device_code" || grant === DEVICE_CODE_GRANT ? "device_code" : grant;
  if (kind !== "client_credentials" && kind !== "device_code" && kind !== "refresh_token" && kind !== "authorization_code")
    throw Errors.unsupportedGrant(grant);
  const { app, azpacr } = await authenticateClient(ctx, r, tenant, kind === "authorization_code");
  let out: IssuedTokens;
  if (kind === "client_credentials") out = await clientCredentials(ctx, r, app, tenant, azpacr);
  else if (kind === "device_code") out = await redeemDeviceCode(ctx, r, app, tenant, azpacr);
  else if (kind === "authorization_code") out = await redeemAuthorizationCode(ctx, r, app, tenant, azpacr);
  else out = await redeemRefreshToken(ctx, r, app, tenant, azpacr);
  ctx.countIssued(app.clientId, kind);
  return out;
}

async function clientCredentials(ctx: EmulatorContext, r: TokenRequest, app: Application, tenant: string, azpacr: Azpacr) {
  if (azpacr === "0") throw Errors.credentialRequired();
  const scope = scopeParam(r.form);
  const resolved = ctx.directory.resolveScope(scope, tenant);
  if (resolved.oidc.length > 0 || resolved.permissions.length !== 1 || resolved.permissions[0] !== ".default")
    throw Errors.clientCredentialsScope(scope);
  return ctx.appToken(app, tenant, r.baseUrl, resolved, azpacr as "1" | "2");
}

/** Delegated permissions for a user request: `.default` means all the application was granted. */
export function delegatedScopes(ctx: EmulatorContext, app: Application, scope: string, tenant: string) {
  const resolved = ctx.directory.resolveScope(scope, tenant);
  const grant = app.grants[resolved.resource.appId];
  if (!grant) throw Errors.noConsent(app.clientId, resolved.resource.appId);
  const exposed = resolved.resource.scopes ?? [];
  const scp: string[] = [];
  for (const p of resolved.permissions) {
    if (p === ".default") {
      scp.push(...grant.scopes);
      continue;
    }
    if (!exposed.includes(p)) throw Errors.invalidScope(`${resolved.resource.appId}/${p}`);
    if (!grant.scopes.includes(p)) throw Errors.noConsent(app.clientId, resolved.resource.appId);
    scp.push(p);
  }
  if (scp.length === 0) throw Errors.noConsent(app.clientId, resolved.resource.appId);
  return { resolved, scp: [...new Set(scp)] };
}

async function redeemDeviceCode(ctx: EmulatorContext, r: TokenRequest, app: Application, tenant: string, azpacr: Azpacr) {
  const dc = ctx.deviceCode(r.form.get("device_code") ?? r.form.get("code") ?? required(r.form, "device_code"));
  if (!dc) throw Errors.badDeviceCode();
  if (dc.clientId !== app.clientId || dc.tenant !== tenant) throw Errors.deviceCodeWrongClient();
  const now = Date.now() / 1000;
  if (dc.status === "redeemed")
    throw new EntraError(
      400,
      "invalid_grant",
      54005,
      "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
    );
  if (dc.expiresAt <= now) throw Errors.deviceCodeExpired();
  if (dc.status === "declined") throw Errors.deviceCodeDeclined();
  if (dc.status === "pending") {
    const tooSoon = dc.lastPollAt !== undefined && now - dc.lastPollAt < ctx.settings.deviceCodeIntervalSeconds - 0.5;
    dc.lastPollAt = now;
    if (tooSoon && ctx.settings.enforcePollingInterval) throw Errors.slowDown();
    throw Errors.authorizationPending();
  }
  const { resolved, scp } = delegatedScopes(ctx, app, dc.scope, tenant);
  dc.status = "redeemed";
  return ctx.userTokens(app, dc.user!, tenant, r.baseUrl, resolved, scp, azpacr, r.form.get("client_info") === "1");
}

async function redeemRefreshToken(ctx: EmulatorContext, r: TokenRequest, app: Application, tenant: string, azpacr: Azpacr) {
  const rt = ctx.refreshToken(required(r.form, "refresh_token"));
  if (!rt) throw Errors.refreshTokenInvalid();
  if (rt.clientId !== app.clientId || rt.tenant !== tenant) throw Errors.refreshTokenOtherClient();
  if (rt.revoked) throw Errors.refreshTokenRevoked();
  if (rt.expiresAt <= Date.now() / 1000) throw Errors.refreshTokenExpired();
  const { resolved, scp } = delegatedScopes(ctx, app, scopeParam(r.form), tenant);
  // A refresh always yields a new refresh token (Entra rotates them); the one redeemed stays valid until it expires.
  if (!resolved.oidc.some((s) => s.toLowerCase() === "offline_access")) resolved.oidc.push("offline_access");
  return ctx.userTokens(app, rt.user, tenant, r.baseUrl, resolved, scp, azpacr, r.form.get("client_info") === "1");
}

/**
 * A code from /authorize, redeemed once, before it expires, by the client it was issued to, from a browser (Entra
 * redeems codes of "spa" redirect URIs only across origins), with the same redirect URI and the verifier whose S256
 * hash is the challenge the authorization request carried.
 */
async function redeemAuthorizationCode(ctx: EmulatorContext, r: TokenRequest, app: Application, tenant: string, azpacr: Azpacr) {
  const code = ctx.authorizationCode(required(r.form, "code"));
  if (!code) throw Errors.authCodeInvalid();
  if (code.clientId !== app.clientId || code.tenant !== tenant) throw Errors.authCodeOtherClient();
  if (code.redeemed) throw Errors.authCodeRedeemed();
  if (code.expiresAt <= Date.now() / 1000) throw Errors.authCodeExpired();
  if (r.origin === undefined) throw Errors.spaRedemptionNotCrossOrigin();
  const redirectUri = required(r.form, "redirect_uri");
  if (redirectUri !== code.redirectUri) throw Errors.replyAddressMismatch(redirectUri);
  const verifier = required(r.form, "code_verifier");
  if (createHash("sha256").update(verifier).digest("base64url") !== code.codeChallenge) throw Errors.codeVerifierMismatch();
  const { resolved, scp } = delegatedScopes(ctx, app, code.scope, tenant);
  code.redeemed = true;
  return ctx.userTokens(app, code.user, tenant, r.baseUrl, resolved, scp, azpacr, r.form.get("client_info") === "1", code.nonce);
}

/** `/devicecode`: a device code for a public client, the user code a person (here: an admin call) approves. */
export async function deviceCodeEndpoint(ctx: EmulatorContext, r: TokenRequest): Promise<Record<string, unknown>> {
  const tenant = tenantOf(ctx, r.pathTenant);
  r.note.grantType = "devicecode";
  const { app } = await authenticateClient(ctx, r, tenant);
  const scope = scopeParam(r.form);
  // Checked now, as Entra does, so a bad scope fails before a person is asked to sign in.
  delegatedScopes(ctx, app, scope, tenant);
  const dc = ctx.newDeviceCode(app, tenant, scope);
  const verificationUri = `${r.baseUrl}/devicelogin`;
  return {
    user_code: dc.userCode,
    device_code: dc.deviceCode,
    verification_uri: verificationUri,
    expires_in: ctx.settings.deviceCodeLifetimeSeconds,
    interval: ctx.settings.deviceCodeIntervalSeconds,
    message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${dc.userCode} to authenticate.`,
  };
}
