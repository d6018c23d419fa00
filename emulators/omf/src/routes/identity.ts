/** ADH/OCS identity: the OpenID discovery document and the client-credentials token endpoint. */
import { basicCredentials, drain, readBody, safeEqual, sendJson } from "@meridian/emulator-kit";
import type { EmulatorContext, Exchange } from "../context.js";

const TOKEN_REQUEST_LIMIT = 64 * 1024;

export async function identity(ctx: EmulatorContext, x: Exchange): Promise<void> {
  const { req, res, path } = x;
  const what = path.rest.join("/").toLowerCase();
  const base = `${ctx.baseUrl(req, path)}/identity`;
  if (req.method === "GET" && what === ".well-known/openid-configuration") {
    return sendJson(res, 200, {
      issuer: base,
      token_endpoint: `${base}/connect/token`,
      jwks_uri: `${base}/.well-known/openid-configuration/jwks`,
      grant_types_supported: ["client_credentials"],
      token_endpoint_auth_methods_supported: ["client_secret_post", "client_secret_basic"],
      response_types_supported: ["token"],
      scopes_supported: ["ocsapi"],
    });
  }
  if (req.method === "POST" && what === "connect/token") {
    const body = await readBody(req, TOKEN_REQUEST_LIMIT);
    const form = new URLSearchParams(body.tooLarge ? "" : body.buf.toString("utf8"));
    let clientId = form.get("client_id");
    let clientSecret = form.get("client_secret");
    // client_secret_basic: RFC 6749 §2.3.1 form-encodes the id and secret before Base64.
    const basic = basicCredentials(req.headers.authorization);
    if (basic) {
      clientId = decodeURIComponent(basic.username);
      clientSecret = decodeURIComponent(basic.password);
    }
    const grant = form.get("grant_type");
    if (!grant) return sendJson(res, 400, { error: "invalid_request", error_description: "grant_type is required" });
    if (grant !== "client_credentials") return sendJson(res, 400, { error: "unsupported_grant_type" });
    const ok = ctx.opts.adhClients.some((c) => c.clientId === clientId && safeEqual(c.clientSecret, clientSecret ?? ""));
    if (!ok) {
      ctx.counters.authFailures++;
      return sendJson(res, 400, { error: "invalid_client" });
    }
    const { token, expiresIn } = ctx.tokens.issue(clientId!, ctx.opts.tokenLifetimeSeconds, base);
    ctx.counters.tokensIssued++;
    return sendJson(
      res,
      200,
      { access_token: token, expires_in: expiresIn, token_type: "Bearer", scope: "ocsapi" },
      { "Cache-Control": "no-store" },
    );
  }
  await drain(req);
  return sendJson(res, 404, { error: "not_found" });
}
