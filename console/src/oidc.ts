/**
 * Sign-in by redirect: the OAuth 2.0 authorization code flow with PKCE (S256) as a public client, with OpenID Connect
 * discovery, state and nonce, all through oauth4webapi (the protocol is not written here). The gateway says which
 * provider at /console/config.json; the access token obtained is the tab's credential, checked by the gateway like any
 * bearer token (AUTH_JWKS_URL, AUTH_JWT_ISSUER, AUTH_JWT_AUDIENCE).
 *
 * What the sign-in must remember across the redirect (verifier, state, nonce, the page to return to) is kept in
 * sessionStorage, in this tab only, and used once: a second answer to the same sign-in finds nothing to complete.
 */
import * as oauth from "oauth4webapi";

/** What the gateway publishes at /console/config.json. */
export interface ConsoleSignInConfig {
  apiKeySignIn: boolean;
  oidc?: { authority: string; clientId: string; scopes: string; providerName: string };
}

export type OidcConfig = NonNullable<ConsoleSignInConfig["oidc"]>;

/** The page the provider sends the person back to; registered at the provider as the SPA's redirect URI. */
export const CALLBACK_PATH = "/sign-in/callback";
const PENDING = "meridian.console.sign-in";

interface Pending {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
}

/** A sign-in that did not complete, said for a person. */
export class SignInError extends Error {
  override name = "SignInError";
}

export async function loadSignInConfig(): Promise<ConsoleSignInConfig> {
  const res = await fetch("/console/config.json", { headers: { accept: "application/json" } });
  if (!res.ok) throw new SignInError(`The gateway did not say how to sign in (GET /console/config.json answered ${res.status}).`);
  return (await res.json()) as ConsoleSignInConfig;
}

export const redirectUri = () => `${window.location.origin}${CALLBACK_PATH}`;

async function discover(config: OidcConfig): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(config.authority);
  let as: oauth.AuthorizationServer;
  try {
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oidc" }));
  } catch (err) {
    throw new SignInError(`Cannot read ${config.providerName}'s OpenID configuration at ${issuer.href}: ${(err as Error).message}.`);
  }
  // The page's content security policy lets it connect to the authority's origin only (the gateway's README).
  if (!as.token_endpoint || new URL(as.token_endpoint).origin !== issuer.origin)
    throw new SignInError(
      `${config.providerName}'s token endpoint (${as.token_endpoint ?? "none"}) is not on the authority's origin ${issuer.origin}, which is all the console may connect to.`,
    );
  if (!as.authorization_endpoint) throw new SignInError(`${config.providerName}'s OpenID configuration names no authorization endpoint.`);
  return as;
}

/** Sends the browser to the provider's sign-in; `returnTo` is the console page to show afterwards. */
export async function startSignIn(config: OidcConfig, returnTo: string): Promise<void> {
  const as = await discover(config);
  const pending: Pending = {
    state: oauth.generateRandomState(),
    nonce: oauth.generateRandomNonce(),
    verifier: oauth.generateRandomCodeVerifier(),
    returnTo: returnTo.startsWith("/") && !returnTo.startsWith("//") ? returnTo : "/",
  };
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set("client_id", config.clientId);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("redirect_uri", redirectUri());
  url.searchParams.set("scope", config.scopes);
  url.searchParams.set("state", pending.state);
  url.searchParams.set("nonce", pending.nonce);
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(pending.verifier));
  url.searchParams.set("code_challenge_method", "S256");
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  window.location.assign(url.href);
}

export interface SignedIn {
  accessToken: string;
  /** Epoch ms at which the access token expires (from expires_in), if the provider said. */
  expiresAt?: number;
  returnTo: string;
}

/** Completes the sign-in the provider answered at `callbackUrl`: state, code for tokens (PKCE), id token and nonce. */
export async function completeSignIn(config: OidcConfig, callbackUrl: URL): Promise<SignedIn> {
  const saved = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  if (!saved) throw new SignInError("No sign-in was started in this tab, or it was already completed. Sign in again.");
  const pending = JSON.parse(saved) as Pending;
  const as = await discover(config);
  const client: oauth.Client = { client_id: config.clientId };
  let params: URLSearchParams;
  try {
    params = oauth.validateAuthResponse(as, client, callbackUrl, pending.state);
  } catch (err) {
    if (err instanceof oauth.AuthorizationResponseError)
      throw new SignInError(`${config.providerName} refused the sign-in: ${err.error_description ?? err.error}`);
    if (err instanceof oauth.OperationProcessingError && /"state"/.test(err.message))
      throw new SignInError(
        `Sign-in refused: the answer from ${config.providerName} does not belong to the sign-in this tab started (its state does not match). Sign in again.`,
      );
    throw new SignInError(`Sign-in refused: ${(err as Error).message}.`);
  }
  let result: oauth.TokenEndpointResponse;
  try {
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri(), pending.verifier);
    result = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: pending.nonce, requireIdToken: true });
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError)
      throw new SignInError(`${config.providerName} did not issue a token: ${err.error_description ?? err.error}`);
    throw new SignInError(`Sign-in refused: the token answer from ${config.providerName} did not check out (${(err as Error).message}).`);
  }
  return {
    accessToken: result.access_token,
    ...(result.expires_in !== undefined ? { expiresAt: Date.now() + result.expires_in * 1000 } : {}),
    returnTo: pending.returnTo,
  };
}

/** Forgets a sign-in that was started but not completed (sign-out clears everything the tab kept). */
export function forgetPendingSignIn(): void {
  sessionStorage.removeItem(PENDING);
}
