import { createHash, randomBytes } from "node:crypto";
import { decodeJwt } from "jose";
import { beforeEach, describe, expect, it } from "vitest";
import { EmulatorContext } from "../context.js";
import { EntraError } from "../errors.js";
import { resolveOptions } from "../options.js";
import { authorize } from "./authorize.js";
import { type TokenRequest, tokenEndpoint } from "./token.js";

const BASE = "https://entra.test";
const TENANT = "3aa4a235-b6e2-48d5-9195-7fcf05b459b0";
const API = "0b7a6c5d-1e2f-4a3b-8c9d-0e1f2a3b4c5d";
const SPA = "5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716";
const REDIRECT = "http://127.0.0.1:8080/sign-in/callback";
const ORIGIN = "http://127.0.0.1:8080";
const SCOPE = `openid profile ${API}/access_as_user`;

let ctx: EmulatorContext;
beforeEach(async () => {
  ctx = await EmulatorContext.create(
    resolveOptions({
      resources: [{ appId: API, displayName: "Meridian API", scopes: ["access_as_user"], appRoles: ["routes:admin", "routes:read"] }],
      applications: [
        { clientId: SPA, displayName: "Meridian console", spaRedirectUris: [REDIRECT], grants: { [API]: { scopes: ["access_as_user"] } } },
      ],
      users: [
        { username: "admin@meridian.test", displayName: "Admin", appRoles: { [API]: ["routes:admin"] } },
        { username: "nobody@meridian.test" },
      ],
    }),
    undefined,
  );
});

const verifier = () => randomBytes(32).toString("base64url");
const challengeOf = (v: string) => createHash("sha256").update(v).digest("base64url");

function request(over: Record<string, string | undefined> = {}, v = verifier()) {
  const q = new URLSearchParams();
  const params: Record<string, string | undefined> = {
    client_id: SPA,
    response_type: "code",
    redirect_uri: REDIRECT,
    scope: SCOPE,
    state: "st-1",
    nonce: "n-1",
    code_challenge: challengeOf(v),
    code_challenge_method: "S256",
    login_hint: "admin@meridian.test",
    ...over,
  };
  for (const [k, val] of Object.entries(params)) if (val !== undefined) q.set(k, val);
  return q;
}

/** The redirect's query, or a failure naming what was answered instead. */
function redirected(answer: ReturnType<typeof authorize>): URLSearchParams {
  if (answer.kind !== "redirect") throw new Error(`expected a redirect, got a ${answer.status} page: ${answer.html}`);
  expect(answer.location.startsWith(`${REDIRECT}?`)).toBe(true);
  return new URL(answer.location).searchParams;
}

/** `origin` null: a request without an Origin header, as a server (not a browser) sends it. */
const redeem = (form: Record<string, string>, origin: string | null = ORIGIN) =>
  tokenEndpoint(ctx, {
    form: new URLSearchParams({ grant_type: "authorization_code", client_id: SPA, redirect_uri: REDIRECT, ...form }),
    authorization: undefined,
    pathTenant: TENANT,
    baseUrl: BASE,
    origin: origin ?? undefined,
    note: {},
  } satisfies TokenRequest);

async function refused(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EntraError) return `${err.error} ${err.code}`;
    throw err;
  }
  return "ok";
}

describe("authorize", () => {
  it("with a known login_hint, redirects to the redirect URI with a code and the state", () => {
    const q = redirected(authorize(ctx, TENANT, request(), BASE));
    expect(q.get("state")).toBe("st-1");
    expect(q.get("code")).toMatch(/^1\.emu\./);
  });

  it("without login_hint (or with prompt=login) shows a page with one button per directory user, carrying the request", () => {
    for (const over of [{ login_hint: undefined }, { prompt: "login" }]) {
      const a = authorize(ctx, TENANT, request(over), BASE);
      if (a.kind !== "page") throw new Error("expected the sign-in page");
      expect(a.status).toBe(200);
      expect(a.html).toContain(`action="${BASE}/${TENANT}/oauth2/v2.0/authorize"`);
      expect(a.html).toContain('name="login_hint" value="admin@meridian.test"');
      expect(a.html).toContain('name="login_hint" value="nobody@meridian.test"');
      expect(a.html).toContain('name="state" value="st-1"');
      expect(a.html).not.toContain('name="prompt"');
    }
  });

  it("an unknown user is AADSTS50034 on the page; prompt=none without a user redirects login_required", () => {
    const a = authorize(ctx, TENANT, request({ login_hint: "who@meridian.test" }), BASE);
    expect(a.kind === "page" && a.status === 400 && a.html.includes("AADSTS50034")).toBe(true);
    const q = redirected(authorize(ctx, TENANT, request({ login_hint: undefined, prompt: "none" }), BASE));
    expect(q.get("error")).toBe("login_required");
    expect(q.get("error_description")).toMatch(/^AADSTS50058: /);
  });

  it("never redirects for an unknown client, a missing or unregistered redirect URI, or an unknown tenant: a page names it", () => {
    const cases: Array<[string, URLSearchParams, string]> = [
      ["unknown client", request({ client_id: "11111111-2222-4333-8444-555555555555" }), "AADSTS700016"],
      ["no redirect_uri", request({ redirect_uri: undefined }), "AADSTS900144"],
      ["other redirect_uri", request({ redirect_uri: "https://evil.test/cb" }), "AADSTS50011"],
      ["no client_id", request({ client_id: undefined }), "AADSTS900144"],
    ];
    for (const [name, q, code] of cases) {
      const a = authorize(ctx, TENANT, q, BASE);
      expect(a.kind, name).toBe("page");
      if (a.kind === "page") {
        expect(a.status, name).toBe(400);
        expect(a.html, name).toContain(code);
        expect(a.html, name).not.toContain("evil.test/cb?");
      }
    }
    expect(authorize(ctx, "consumers", request(), BASE)).toMatchObject({ kind: "page", status: 400 });
  });

  it("other errors go back to the redirect URI with Entra's error, AADSTS description and the state", () => {
    const cases: Array<[Record<string, string | undefined>, string, number]> = [
      [{ response_type: "token" }, "unsupported_response_type", 70005],
      [{ response_type: undefined }, "invalid_request", 900144],
      [{ response_mode: "fragment" }, "invalid_request", 900144],
      [{ scope: undefined }, "invalid_request", 900144],
      [{ scope: `${API}/not_exposed` }, "invalid_scope", 70011],
      [{ code_challenge: undefined }, "invalid_request", 9002325],
      [{ code_challenge_method: "plain" }, "invalid_request", 501490],
      [{ code_challenge_method: undefined }, "invalid_request", 501490],
      [{ code_challenge: "short" }, "invalid_request", 501491],
      [{ nonce: "n".repeat(2049) }, "invalid_request", 90015],
    ];
    for (const [over, error, code] of cases) {
      const q = redirected(authorize(ctx, TENANT, request(over), BASE));
      expect(q.get("error"), JSON.stringify(over)).toBe(error);
      expect(q.get("error_description"), JSON.stringify(over)).toMatch(new RegExp(`^AADSTS${code}: `));
      expect(q.get("state")).toBe("st-1");
      expect(q.get("code")).toBeNull();
    }
  });
});

describe("authorization_code grant", () => {
  it("the verifier redeems the code once: access token with scp and the user's roles on the API, id token with the nonce", async () => {
    const v = verifier();
    const code = redirected(authorize(ctx, TENANT, request({}, v), BASE)).get("code")!;
    const out = await redeem({ code, code_verifier: v });
    const access = decodeJwt(out.access_token);
    expect(access).toMatchObject({ aud: API, iss: `${BASE}/${TENANT}/v2.0`, scp: "access_as_user", roles: ["routes:admin"], azp: SPA });
    expect(access.preferred_username).toBe("admin@meridian.test");
    const id = decodeJwt(out.id_token!);
    expect(id).toMatchObject({ aud: SPA, nonce: "n-1", preferred_username: "admin@meridian.test" });
    expect(out.refresh_token).toBeUndefined();
    expect(await refused(redeem({ code, code_verifier: v }))).toBe("invalid_grant 54005");
    expect(ctx.counters.tokensIssued[SPA]).toEqual({ authorization_code: 1 });
  });

  it("a user without roles on the API gets no roles claim (the API then refuses), as Entra leaves it out", async () => {
    const v = verifier();
    const code = redirected(authorize(ctx, TENANT, request({ login_hint: "nobody@meridian.test" }, v), BASE)).get("code")!;
    expect(decodeJwt((await redeem({ code, code_verifier: v })).access_token).roles).toBeUndefined();
  });

  it("refuses a wrong verifier, another redirect URI, a request without Origin, and keeps the code for the right one", async () => {
    const v = verifier();
    const code = redirected(authorize(ctx, TENANT, request({}, v), BASE)).get("code")!;
    expect(await refused(redeem({ code, code_verifier: verifier() }))).toBe("invalid_grant 50148");
    expect(await refused(redeem({ code }))).toBe("invalid_request 900144");
    expect(await refused(redeem({ code, code_verifier: v, redirect_uri: `${REDIRECT}x` }))).toBe("invalid_grant 500112");
    expect(await refused(redeem({ code, code_verifier: v }, null))).toBe("invalid_request 9002327");
    expect(await refused(redeem({ code, code_verifier: v }))).toBe("ok");
  });

  it("an unknown code is AADSTS9002313, another client's AADSTS700005, an expired one AADSTS70008", async () => {
    expect(await refused(redeem({ code: "1.emu.nothing", code_verifier: verifier() }))).toBe("invalid_grant 9002313");
    ctx.directory.addApplication({ clientId: "other", spaRedirectUris: [REDIRECT], grants: { [API]: { scopes: ["access_as_user"] } } });
    const v = verifier();
    const code = redirected(authorize(ctx, TENANT, request({}, v), BASE)).get("code")!;
    expect(await refused(redeem({ code, code_verifier: v, client_id: "other" }))).toBe("invalid_grant 700005");
    ctx.settings.authorizationCodeLifetimeSeconds = 1;
    const v2 = verifier();
    const code2 = redirected(authorize(ctx, TENANT, request({}, v2), BASE)).get("code")!;
    await new Promise((r) => setTimeout(r, 1100));
    expect(await refused(redeem({ code: code2, code_verifier: v2 }))).toBe("invalid_grant 70008");
  });
});
