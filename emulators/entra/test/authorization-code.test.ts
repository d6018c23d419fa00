/**
 * The authorization code flow over HTTPS as a browser makes it: the sign-in page, its form sent back with the chosen
 * user, the 302 to the redirect URI, then the cross-origin token request (CORS preflight and answer headers) with the
 * PKCE verifier. The checks of each parameter are unit-tested beside the route (src/routes/authorize.test.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningEntraEmulator, startEntraEmulator } from "../src/index.js";
import { call } from "./helpers.js";

const API = "0b7a6c5d-1e2f-4a3b-8c9d-0e1f2a3b4c5d";
const SPA = "5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716";
const ORIGIN = "http://127.0.0.1:8080";
const REDIRECT = `${ORIGIN}/sign-in/callback`;

let emu: RunningEntraEmulator;
let tenantBase: string;

beforeAll(async () => {
  emu = await startEntraEmulator({
    resources: [{ appId: API, scopes: ["access_as_user"], appRoles: ["status:read"] }],
    applications: [{ clientId: SPA, spaRedirectUris: [REDIRECT], grants: { [API]: { scopes: ["access_as_user"] } } }],
    users: [{ username: "viewer@meridian.test", displayName: "Viewer", appRoles: { [API]: ["status:read"] } }],
  });
  tenantBase = `${emu.url}/${emu.tenantId}`;
});
afterAll(async () => {
  await emu?.stop();
});

describe("authorization code with PKCE, as a single-page application runs it", () => {
  it("sign-in page → chosen user → redirect with code → cross-origin redemption with the verifier", async () => {
    const verifier = randomBytes(32).toString("base64url");
    const q = new URLSearchParams({
      client_id: SPA,
      response_type: "code",
      redirect_uri: REDIRECT,
      scope: `openid ${API}/access_as_user`,
      state: "s1",
      nonce: "n1",
      code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
    });
    const signInPage = await call(`${tenantBase}/oauth2/v2.0/authorize?${q}`, emu.caPem);
    expect(signInPage.status).toBe(200);
    expect(signInPage.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(signInPage.text).toContain('value="viewer@meridian.test"');

    // What the page's form sends: the same request with the user's login_hint.
    q.set("login_hint", "viewer@meridian.test");
    const back = await call(`${tenantBase}/oauth2/v2.0/authorize?${q}`, emu.caPem);
    expect(back.status).toBe(302);
    const location = new URL(String(back.headers.location));
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
    expect(location.searchParams.get("state")).toBe("s1");
    const code = location.searchParams.get("code")!;

    const preflight = await call(`${tenantBase}/oauth2/v2.0/token`, emu.caPem, {
      method: "OPTIONS",
      headers: { origin: ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers["access-control-allow-origin"]).toBe(ORIGIN);
    expect(preflight.headers["access-control-allow-headers"]).toBe("content-type");

    const form = { grant_type: "authorization_code", client_id: SPA, code, redirect_uri: REDIRECT, code_verifier: verifier };
    const tokens = await call(`${tenantBase}/oauth2/v2.0/token`, emu.caPem, { form, headers: { origin: ORIGIN } });
    expect(tokens.status).toBe(200);
    expect(tokens.headers["access-control-allow-origin"]).toBe(ORIGIN);
    expect(decodeJwt(tokens.json.access_token)).toMatchObject({ aud: API, roles: ["status:read"], iss: emu.issuer() });
    expect(decodeJwt(tokens.json.id_token)).toMatchObject({ aud: SPA, nonce: "n1" });

    // Redeemed once; the error is readable by the page too.
    const again = await call(`${tenantBase}/oauth2/v2.0/token`, emu.caPem, { form, headers: { origin: ORIGIN } });
    expect(again.status).toBe(400);
    expect(again.json).toMatchObject({ error: "invalid_grant", error_codes: [54005] });
    expect(again.headers["access-control-allow-origin"]).toBe(ORIGIN);
  });

  it("a page of another origin gets no CORS grant on the token endpoint; metadata and keys are open to any page", async () => {
    const other = await call(`${tenantBase}/oauth2/v2.0/token`, emu.caPem, {
      form: { grant_type: "authorization_code", client_id: SPA },
      headers: { origin: "https://elsewhere.test" },
    });
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();
    const meta = await call(`${tenantBase}/v2.0/.well-known/openid-configuration`, emu.caPem, { headers: { origin: ORIGIN } });
    expect(meta.headers["access-control-allow-origin"]).toBe("*");
    expect(meta.json.authorization_endpoint).toBe(`${tenantBase}/oauth2/v2.0/authorize`);
    expect(meta.json.grant_types_supported).toContain("authorization_code");
    expect((await call(emu.jwksUrl(), emu.caPem)).headers["access-control-allow-origin"]).toBe("*");
  });

  it("an unregistered redirect URI is answered on a page, never redirected to", async () => {
    const q = new URLSearchParams({
      client_id: SPA,
      response_type: "code",
      redirect_uri: "https://evil.test/cb",
      scope: `${API}/access_as_user`,
    });
    const res = await call(`${tenantBase}/oauth2/v2.0/authorize?${q}`, emu.caPem);
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(res.text).toContain("AADSTS50011");
  });
});
