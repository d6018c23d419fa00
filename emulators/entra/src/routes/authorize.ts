/**
 * `GET /{tenant}/oauth2/v2.0/authorize`: the authorization code flow with PKCE for a single-page application, as
 * Entra runs it for a redirect URI of the "spa" platform. There is no password: a person picks a directory user on a
 * small page (a form that sends the same request again with `login_hint`), and a request that already carries a
 * known `login_hint` is answered at once, so a test can drive the flow without the page.
 *
 * As Entra (and RFC 6749 §4.1.2.1): while the client or the redirect URI is not known to be good, an error is shown
 * on a page and never sent to the redirect URI; after that, errors go back to the redirect URI with `state`.
 */
import type { EmulatorContext } from "../context.js";
import { type Application, MAX_SCOPE_LENGTH } from "../directory.js";
import { EntraError, Errors, entraErrorBody } from "../errors.js";
import { delegatedScopes } from "./token.js";

export type AuthorizeAnswer = { kind: "redirect"; location: string } | { kind: "page"; status: number; html: string };

/** Longest `state`, `nonce` or `login_hint` taken; the whole request must still fit a browser's URL. */
export const MAX_AUTHORIZE_PARAMETER = 2048;
/** An S256 challenge is the base64url SHA-256 of the verifier: 43 characters, no padding. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

const htmlText = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>${htmlText(title)}</title></head><body><main><h1>${htmlText(title)}</h1>${body}</main></body></html>`;
}

function errorPage(e: EntraError, baseUrl: string): AuthorizeAnswer {
  const body = entraErrorBody(e, undefined, baseUrl);
  return {
    kind: "page",
    status: e.status,
    html: page("Sign in", `<p role="alert" data-error="${htmlText(e.error)}">${htmlText(String(body.error_description))}</p>`),
  };
}

function redirectWith(redirectUri: string, params: Record<string, string | undefined>): AuthorizeAnswer {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return { kind: "redirect", location: url.toString() };
}

/** The sign-in page: one button per directory user, each sending this request again with its `login_hint`. */
function userPicker(ctx: EmulatorContext, app: Application, action: string, q: URLSearchParams, problem?: string): AuthorizeAnswer {
  const hidden = [...q.entries()]
    .filter(([k]) => k !== "login_hint" && k !== "prompt")
    .map(([k, v]) => `<input type="hidden" name="${htmlText(k)}" value="${htmlText(v)}">`)
    .join("");
  const users = ctx.directory.users
    .map(
      (u) =>
        `<li><button type="submit" name="login_hint" value="${htmlText(u.username)}">${htmlText(u.displayName)} (${htmlText(u.username)})</button></li>`,
    )
    .join("");
  const alert = problem ? `<p role="alert">${htmlText(problem)}</p>` : "";
  return {
    kind: "page",
    status: problem ? 400 : 200,
    html: page(
      `Sign in to ${app.displayName}`,
      `${alert}<p>Entra emulator: pick the directory user to sign in as.</p><form method="get" action="${htmlText(action)}">${hidden}<ul>${users}</ul></form>`,
    ),
  };
}

export function authorize(ctx: EmulatorContext, pathTenant: string, q: URLSearchParams, baseUrl: string): AuthorizeAnswer {
  // Until the client and its redirect URI check out, nothing is sent anywhere: the answer is a page.
  const tenant = ctx.directory.tenant(pathTenant);
  if (!tenant) return errorPage(Errors.tenantNotFound(pathTenant), baseUrl);
  const clientId = q.get("client_id");
  if (!clientId) return errorPage(Errors.missingParameter("client_id"), baseUrl);
  const app = ctx.directory.application(clientId);
  if (!app) return errorPage(Errors.unknownClient(clientId, tenant), baseUrl);
  const redirectUri = q.get("redirect_uri");
  if (!redirectUri) return errorPage(Errors.missingParameter("redirect_uri"), baseUrl);
  if (!app.spaRedirectUris.includes(redirectUri)) return errorPage(Errors.redirectUriMismatch(redirectUri, app.clientId), baseUrl);

  const state = q.get("state") ?? undefined;
  const fail = (e: EntraError): AuthorizeAnswer => {
    const body = entraErrorBody(e, undefined, baseUrl);
    ctx.countError(e.error);
    return redirectWith(redirectUri, {
      error: e.error,
      error_description: String(body.error_description),
      error_uri: String(body.error_uri),
      state: state !== undefined && state.length <= MAX_AUTHORIZE_PARAMETER ? state : undefined,
    });
  };
  try {
    for (const name of ["state", "nonce", "login_hint"]) {
      if ((q.get(name) ?? "").length > MAX_AUTHORIZE_PARAMETER) throw Errors.parameterTooLong(name);
    }
    const responseType = q.get("response_type");
    if (!responseType) throw Errors.missingParameter("response_type");
    if (responseType !== "code") throw Errors.unsupportedResponseType(responseType);
    const responseMode = q.get("response_mode");
    if (responseMode && responseMode !== "query") throw Errors.unsupportedResponseMode(responseMode);
    const scope = q.get("scope");
    if (!scope) throw Errors.missingParameter("scope");
    if (scope.length > MAX_SCOPE_LENGTH) throw Errors.invalidScope(`${scope.slice(0, 64)}...`);
    // The scope is checked now, as Entra does, so a bad one fails before a person signs in.
    delegatedScopes(ctx, app, scope, tenant);
    const challenge = q.get("code_challenge");
    if (!challenge) throw Errors.pkceRequired();
    const method = q.get("code_challenge_method") ?? "plain";
    if (method !== "S256") throw Errors.codeChallengeMethod(method);
    if (!S256_CHALLENGE.test(challenge)) throw Errors.codeChallengeSize();

    const prompt = q.get("prompt");
    const hint = q.get("login_hint");
    if (!hint || prompt === "login" || prompt === "select_account") {
      // No session to reuse: a silent request without a user cannot sign anyone in.
      if (prompt === "none") throw Errors.loginRequired();
      return userPicker(ctx, app, `${baseUrl}/${pathTenant}/oauth2/v2.0/authorize`, q);
    }
    const user = ctx.directory.user(hint);
    if (!user) {
      if (prompt === "none") throw Errors.loginRequired();
      const e = Errors.userNotFound(hint, tenant);
      return userPicker(ctx, app, `${baseUrl}/${pathTenant}/oauth2/v2.0/authorize`, q, `AADSTS${e.code}: ${e.description}`);
    }
    const nonce = q.get("nonce") ?? undefined;
    const code = ctx.newAuthorizationCode({
      clientId: app.clientId,
      tenant,
      redirectUri,
      scope,
      codeChallenge: challenge,
      user,
      ...(nonce !== undefined ? { nonce } : {}),
    });
    return redirectWith(redirectUri, { code, state });
  } catch (err) {
    if (err instanceof EntraError) return fail(err);
    throw err;
  }
}
