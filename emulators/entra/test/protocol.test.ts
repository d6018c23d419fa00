/**
 * The emulator's wire protocol as a client without MSAL sees it: metadata, instance discovery, the token endpoint's
 * answers and Entra's error bodies, the device code flow step by step, refresh, the admin surface and faults.
 */
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt, jwtVerify } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  DEFAULTS,
  OMNIA_PUBLIC_CLIENT_NONPROD,
  OMNIA_PUBLIC_CLIENT_PROD,
  OMNIA_RESOURCE_NONPROD,
  OMNIA_RESOURCE_PROD,
  type RunningEntraEmulator,
  startEntraEmulator,
} from "../src/index.js";
import { call, keySet } from "./helpers.js";

let emu: RunningEntraEmulator;
let tenantBase: string;
const { clientId, secret } = DEFAULTS.confidentialClient;
const SCOPE = `${OMNIA_RESOURCE_NONPROD}/.default`;
const USER_SCOPE = `${OMNIA_RESOURCE_NONPROD}/user_impersonation openid profile offline_access`;

const token = (form: Record<string, string>, headers?: Record<string, string>) =>
  call(`${tenantBase}/oauth2/v2.0/token`, emu.caPem, { form, headers });
const admin = (path: string, method = "POST", body: unknown = {}) =>
  call(`${emu.url}/_emulator/${path}`, emu.caPem, {
    method,
    body: method === "GET" ? undefined : JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });

async function deviceCode(client = OMNIA_PUBLIC_CLIENT_NONPROD, scope = USER_SCOPE) {
  const res = await call(`${tenantBase}/oauth2/v2.0/devicecode`, emu.caPem, { form: { client_id: client, scope } });
  expect(res.status).toBe(200);
  return res.json as {
    user_code: string;
    device_code: string;
    interval: number;
    expires_in: number;
    verification_uri: string;
    message: string;
  };
}

const poll = (device_code: string, grant_type = "urn:ietf:params:oauth:grant-type:device_code", client = OMNIA_PUBLIC_CLIENT_NONPROD) =>
  token({ grant_type, client_id: client, device_code, scope: USER_SCOPE, client_info: "1" });

function expectEntraError(res: { status: number; json: Record<string, unknown> }, status: number, error: string, code: number) {
  expect(res.status).toBe(status);
  expect(res.json).toMatchObject({ error, error_codes: [code] });
  expect(String(res.json.error_description)).toMatch(new RegExp(`^AADSTS${code}: `));
  expect(res.json.trace_id).toMatch(/^[0-9a-f-]{36}$/);
  expect(res.json.correlation_id).toBeTruthy();
  expect(res.json.timestamp).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
}

beforeAll(async () => {
  emu = await startEntraEmulator({ deviceCodeIntervalSeconds: 1 });
  tenantBase = `${emu.url}/${emu.tenantId}`;
});
afterAll(async () => {
  await emu?.stop();
});
afterEach(async () => {
  emu.clearFaults();
  emu.setSettings({ tokenLifetimeSeconds: 3600, deviceCodeLifetimeSeconds: 900, enforcePollingInterval: false });
});

describe("as a container runs it", () => {
  it("writes the CA to caFile and serves /_emulator on a plain admin port", async () => {
    const dir = mkdtempSync(join(tmpdir(), "entra-ca-"));
    const caFile = join(dir, "ca.pem");
    const other = await startEntraEmulator({ caFile, adminPort: 0, tlsHostnames: ["entra"] });
    try {
      expect(readFileSync(caFile, "utf8")).toBe(other.caPem);
      const health = await fetch(`${other.adminUrl}/_emulator/health`);
      expect(await health.json()).toEqual({ ok: true });
      expect((await fetch(`${other.adminUrl}/common/discovery/instance`)).status).toBe(404);
      const cert = new X509Certificate((await call(`${other.url}/_emulator/ca.pem`, other.caPem)).text);
      expect(cert.subject).toContain("Meridian Entra Emulator CA");
    } finally {
      await other.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("metadata", () => {
  it("the tenant's OpenID configuration names this host's endpoints and the tenant's issuer", async () => {
    const res = await call(`${tenantBase}/v2.0/.well-known/openid-configuration`, emu.caPem);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      issuer: emu.issuer(),
      token_endpoint: `${tenantBase}/oauth2/v2.0/token`,
      jwks_uri: emu.jwksUrl(),
      authorization_endpoint: `${tenantBase}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${tenantBase}/oauth2/v2.0/devicecode`,
      id_token_signing_alg_values_supported: ["RS256"],
    });
  });

  it("a verifier that knows only the metadata URL finds the keys and checks iss and aud (as the Omnia emulator will)", async () => {
    const meta = (await call(`${tenantBase}/v2.0/.well-known/openid-configuration`, emu.caPem)).json;
    const t = await token({ grant_type: "client_credentials", client_id: clientId, client_secret: secret, scope: SCOPE });
    const { payload } = await jwtVerify(t.json.access_token, await keySet(meta.jwks_uri, emu.caPem), {
      issuer: meta.issuer,
      audience: [OMNIA_RESOURCE_NONPROD, `api://${OMNIA_RESOURCE_NONPROD}`],
      algorithms: meta.id_token_signing_alg_values_supported,
    });
    expect(payload.tid).toBe(emu.tenantId);
  });

  it("common publishes the {tenantid} issuer placeholder, as Entra does", async () => {
    const res = await call(`${emu.url}/common/v2.0/.well-known/openid-configuration`, emu.caPem);
    expect(res.json.issuer).toBe(`${emu.url}/{tenantid}/v2.0`);
    expect(res.json.token_endpoint).toBe(`${emu.url}/common/oauth2/v2.0/token`);
  });

  it("the JWKS holds RSA signing keys with kid", async () => {
    const res = await call(emu.jwksUrl(), emu.caPem);
    expect(res.json.keys.length).toBeGreaterThanOrEqual(1);
    expect(res.json.keys[0]).toMatchObject({ kty: "RSA", use: "sig", alg: "RS256", e: "AQAB" });
    expect(Buffer.from(res.json.keys[0].n, "base64url").length).toBe(256);
    expect(res.json.keys[0].kid).toBeTruthy();
  });

  it("instance discovery answers for the authority's own host", async () => {
    const authz = encodeURIComponent(`${tenantBase}/oauth2/v2.0/authorize`);
    const res = await call(`${emu.url}/common/discovery/instance?api-version=1.1&authorization_endpoint=${authz}`, emu.caPem);
    const host = new URL(emu.url).host;
    expect(res.json).toMatchObject({
      tenant_discovery_endpoint: `${tenantBase}/v2.0/.well-known/openid-configuration`,
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    });
  });

  it("the issuer follows the Host the client used (MSAL refuses an issuer on another host)", async () => {
    const res = await call(`${tenantBase.replace("127.0.0.1", "localhost")}/v2.0/.well-known/openid-configuration`, emu.caPem);
    expect(res.json.issuer).toBe(emu.issuer().replace("127.0.0.1", "localhost"));
  });

  it("a listed tenant set refuses another tenant with AADSTS90002", async () => {
    const other = await startEntraEmulator({
      tenants: ["11111111-1111-4111-8111-111111111111"],
      tenantId: "11111111-1111-4111-8111-111111111111",
    });
    try {
      const res = await call(`${other.url}/22222222-2222-4222-8222-222222222222/v2.0/.well-known/openid-configuration`, other.caPem);
      expectEntraError(res, 400, "invalid_request", 90002);
    } finally {
      await other.stop();
    }
  });
});

describe("client credentials", () => {
  it("answers token_type, expires_in, ext_expires_in and a no-store access token; client_secret_basic works too", async () => {
    const basic = Buffer.from(`${clientId}:${encodeURIComponent(secret)}`).toString("base64");
    const res = await token({ grant_type: "client_credentials", scope: SCOPE }, { authorization: `Basic ${basic}` });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ token_type: "Bearer", expires_in: 3600, ext_expires_in: 3600 });
    expect(res.json.refresh_token).toBeUndefined();
    expect(res.headers["cache-control"]).toContain("no-store");
    expect(decodeJwt(res.json.access_token)).toMatchObject({ aud: OMNIA_RESOURCE_NONPROD, roles: ["Timeseries.Read"] });
  });

  it("the prod resource gives the prod GUID as aud; common issues for the home tenant", async () => {
    const res = await call(`${emu.url}/common/oauth2/v2.0/token`, emu.caPem, {
      form: { grant_type: "client_credentials", client_id: clientId, client_secret: secret, scope: `${OMNIA_RESOURCE_PROD}/.default` },
    });
    expect(decodeJwt(res.json.access_token)).toMatchObject({ aud: OMNIA_RESOURCE_PROD, tid: emu.tenantId, iss: emu.issuer() });
  });

  it("wrong secret: 401 invalid_client AADSTS7000215, correlation_id echoes client-request-id", async () => {
    const res = await token(
      { grant_type: "client_credentials", client_id: clientId, client_secret: "nope", scope: SCOPE },
      { "client-request-id": "req-42" },
    );
    expectEntraError(res, 401, "invalid_client", 7000215);
    expect(res.json.correlation_id).toBe("req-42");
  });

  it("no credential for a confidential client: 401 invalid_client AADSTS7000218", async () => {
    expectEntraError(await token({ grant_type: "client_credentials", client_id: clientId, scope: SCOPE }), 401, "invalid_client", 7000218);
  });

  it("a public client cannot use client credentials", async () => {
    expectEntraError(
      await token({ grant_type: "client_credentials", client_id: OMNIA_PUBLIC_CLIENT_NONPROD, scope: SCOPE }),
      401,
      "invalid_client",
      7000218,
    );
  });

  it("unknown resource: invalid_resource AADSTS500011; missing scope: AADSTS900144; unknown grant: AADSTS70003", async () => {
    const unknown = await token({
      grant_type: "client_credentials",
      client_id: clientId,
      client_secret: secret,
      scope: "99999999-9999-4999-8999-999999999999/.default",
    });
    expectEntraError(unknown, 400, "invalid_resource", 500011);
    expectEntraError(
      await token({ grant_type: "client_credentials", client_id: clientId, client_secret: secret }),
      400,
      "invalid_request",
      900144,
    );
    expectEntraError(
      await token({ grant_type: "password", client_id: clientId, client_secret: secret, scope: SCOPE }),
      400,
      "unsupported_grant_type",
      70003,
    );
  });

  it("an application without a grant on the resource gets a token without roles (the API then refuses it)", async () => {
    emu.registerApplication({ clientId: "ungranted-app", secrets: ["ungranted-secret-1"] });
    const res = await token({
      grant_type: "client_credentials",
      client_id: "ungranted-app",
      client_secret: "ungranted-secret-1",
      scope: SCOPE,
    });
    expect(res.status).toBe(200);
    expect(decodeJwt(res.json.access_token).roles).toBeUndefined();
  });

  it("a resource registered with audience uri gets aud api://GUID (the other form a verifier must accept)", async () => {
    const other = await startEntraEmulator({
      resources: [{ appId: OMNIA_RESOURCE_NONPROD, audience: "uri", appRoles: ["Timeseries.Read"] }],
    });
    try {
      const res = await call(`${other.url}/${other.tenantId}/oauth2/v2.0/token`, other.caPem, {
        form: { grant_type: "client_credentials", client_id: clientId, client_secret: secret, scope: SCOPE },
      });
      expect(decodeJwt(res.json.access_token).aud).toBe(`api://${OMNIA_RESOURCE_NONPROD}`);
    } finally {
      await other.stop();
    }
  });

  it("GET on the token endpoint is refused; a body over 64 KiB is 413", async () => {
    expect((await call(`${tenantBase}/oauth2/v2.0/token`, emu.caPem)).status).toBe(405);
    const big = await call(`${tenantBase}/oauth2/v2.0/token`, emu.caPem, {
      body: "a".repeat(70 * 1024),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(big.status).toBe(413);
  });
});

describe("device code", () => {
  it("devicecode answers user_code, device_code, verification_uri, expires_in, interval, message", async () => {
    const dc = await deviceCode();
    expect(dc.user_code).toMatch(/^[A-Z2-9]{9}$/);
    expect(dc).toMatchObject({ expires_in: 900, interval: 1, verification_uri: `${emu.url}/devicelogin` });
    expect(dc.message).toContain(dc.user_code);
  });

  it("pending → authorization_pending AADSTS70016; approved → tokens; redeemed again → invalid_grant", async () => {
    const dc = await deviceCode();
    expectEntraError(await poll(dc.device_code), 400, "authorization_pending", 70016);
    expect((await admin(`device-codes/${dc.user_code}/approve`)).status).toBe(200);
    const ok = await poll(dc.device_code);
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ token_type: "Bearer", scope: USER_SCOPE });
    expect(ok.json.refresh_token).toBeTruthy();
    const clientInfo = JSON.parse(Buffer.from(ok.json.client_info, "base64url").toString());
    const id = decodeJwt(ok.json.id_token);
    expect(id).toMatchObject({
      aud: OMNIA_PUBLIC_CLIENT_NONPROD,
      iss: emu.issuer(),
      preferred_username: DEFAULTS.user.username,
      tid: emu.tenantId,
    });
    expect(clientInfo).toEqual({ uid: id.oid, utid: emu.tenantId });
    const at = await jwtVerify(ok.json.access_token, await keySet(emu.jwksUrl(), emu.caPem), {
      issuer: emu.issuer(),
      audience: OMNIA_RESOURCE_NONPROD,
    });
    expect(at.payload).toMatchObject({ scp: "user_impersonation", oid: id.oid, azp: OMNIA_PUBLIC_CLIENT_NONPROD });
    expect((await poll(dc.device_code)).json.error).toBe("invalid_grant");
  });

  it("MSAL's short grant_type=device_code is the same grant as the URN", async () => {
    const dc = await deviceCode();
    await admin(`device-codes/${dc.user_code.toLowerCase()}/approve`, "POST", { username: DEFAULTS.user.username });
    expect((await poll(dc.device_code, "device_code")).status).toBe(200);
  });

  it("an expired device code answers expired_token AADSTS70019, and the admin cannot approve it", async () => {
    emu.setSettings({ deviceCodeLifetimeSeconds: 1 });
    const dc = await deviceCode();
    await new Promise((r) => setTimeout(r, 1100));
    expectEntraError(await poll(dc.device_code), 400, "expired_token", 70019);
    expect((await admin(`device-codes/${dc.user_code}/approve`)).status).toBe(409);
  });

  it("declined → authorization_declined; unknown device code → bad_verification_code AADSTS70018", async () => {
    const dc = await deviceCode();
    await admin(`device-codes/${dc.user_code}/decline`);
    expect((await poll(dc.device_code)).json.error).toBe("authorization_declined");
    expectEntraError(await poll("not-a-device-code"), 400, "bad_verification_code", 70018);
  });

  it("a device code is redeemed only by the client it was issued to", async () => {
    const dc = await deviceCode();
    await admin(`device-codes/${dc.user_code}/approve`);
    expect((await poll(dc.device_code, undefined, OMNIA_PUBLIC_CLIENT_PROD)).json.error).toBe("invalid_grant");
  });

  it("polling faster than the interval answers slow_down when enforced", async () => {
    emu.setSettings({ enforcePollingInterval: true });
    const dc = await deviceCode();
    expect((await poll(dc.device_code)).json.error).toBe("authorization_pending");
    expect((await poll(dc.device_code)).json.error).toBe("slow_down");
  });

  it("a delegated permission the API does not expose is invalid_scope; one the client was not granted is AADSTS65001", async () => {
    const bad = await call(`${tenantBase}/oauth2/v2.0/devicecode`, emu.caPem, {
      form: { client_id: OMNIA_PUBLIC_CLIENT_NONPROD, scope: `${OMNIA_RESOURCE_NONPROD}/Timeseries.Admin openid` },
    });
    expectEntraError(bad, 400, "invalid_scope", 70011);
    const noConsent = await call(`${tenantBase}/oauth2/v2.0/devicecode`, emu.caPem, {
      form: { client_id: OMNIA_PUBLIC_CLIENT_NONPROD, scope: `${OMNIA_RESOURCE_PROD}/user_impersonation openid` },
    });
    expectEntraError(noConsent, 400, "invalid_grant", 65001);
  });

  it("the admin lists device codes with their status", async () => {
    const dc = await deviceCode();
    const list = await admin("device-codes", "GET");
    expect(list.json).toEqual(
      expect.arrayContaining([expect.objectContaining({ userCode: dc.user_code, status: "pending", expired: false })]),
    );
    expect((await admin("device-codes/NOSUCHCODE/approve")).status).toBe(404);
  });
});

describe("refresh token", () => {
  async function userTokens() {
    const dc = await deviceCode();
    await admin(`device-codes/${dc.user_code}/approve`);
    return (await poll(dc.device_code)).json as { refresh_token: string; access_token: string };
  }

  it("a refresh token gives a new access token and a new refresh token", async () => {
    const first = await userTokens();
    const res = await token({
      grant_type: "refresh_token",
      client_id: OMNIA_PUBLIC_CLIENT_NONPROD,
      refresh_token: first.refresh_token,
      scope: USER_SCOPE,
    });
    expect(res.status).toBe(200);
    expect(res.json.refresh_token).toBeTruthy();
    expect(res.json.refresh_token).not.toBe(first.refresh_token);
    expect(decodeJwt(res.json.access_token)).toMatchObject({ scp: "user_impersonation", oid: decodeJwt(first.access_token).oid });
  });

  it("revoked → invalid_grant AADSTS50173; unknown → AADSTS9002313; another client's → AADSTS700005", async () => {
    const first = await userTokens();
    const other = await token({
      grant_type: "refresh_token",
      client_id: OMNIA_PUBLIC_CLIENT_PROD,
      refresh_token: first.refresh_token,
      scope: `${OMNIA_RESOURCE_PROD}/user_impersonation`,
    });
    expectEntraError(other, 400, "invalid_grant", 700005);
    expect((await admin("refresh-tokens/revoke")).json.revoked).toBeGreaterThanOrEqual(1);
    const revoked = await token({
      grant_type: "refresh_token",
      client_id: OMNIA_PUBLIC_CLIENT_NONPROD,
      refresh_token: first.refresh_token,
      scope: USER_SCOPE,
    });
    expectEntraError(revoked, 400, "invalid_grant", 50173);
    const unknown = await token({
      grant_type: "refresh_token",
      client_id: OMNIA_PUBLIC_CLIENT_NONPROD,
      refresh_token: "0.bogus",
      scope: USER_SCOPE,
    });
    expectEntraError(unknown, 400, "invalid_grant", 9002313);
  });
});

describe("admin and faults", () => {
  it("counts tokens per client and grant", async () => {
    await token({ grant_type: "client_credentials", client_id: clientId, client_secret: secret, scope: SCOPE });
    const counters = (await admin("counters", "GET")).json;
    expect(counters.tokensIssued[clientId].client_credentials).toBeGreaterThanOrEqual(1);
    expect(counters.tokensIssued[OMNIA_PUBLIC_CLIENT_NONPROD].device_code).toBeGreaterThanOrEqual(1);
  });

  it("PUT settings changes the lifetime of tokens issued from then on, and refuses out-of-bounds values naming the field", async () => {
    expect((await admin("settings", "PUT", { tokenLifetimeSeconds: 30 })).json.tokenLifetimeSeconds).toBe(30);
    const res = await token({ grant_type: "client_credentials", client_id: clientId, client_secret: secret, scope: SCOPE });
    expect(res.json.expires_in).toBe(30);
    const t = decodeJwt(res.json.access_token);
    expect(t.exp! - t.iat!).toBe(30);
    const bad = await admin("settings", "PUT", { tokenLifetimeSeconds: 0 });
    expect(bad.status).toBe(400);
    expect(bad.json.field).toBe("tokenLifetimeSeconds");
  });

  it("keys/rotate publishes a new signing kid", async () => {
    const res = await admin("keys/rotate");
    const t = await token({ grant_type: "client_credentials", client_id: clientId, client_secret: secret, scope: SCOPE });
    const header = JSON.parse(Buffer.from(t.json.access_token.split(".")[0], "base64url").toString());
    expect(header.kid).toBe(res.json.kid);
    const jwks = await call(emu.jwksUrl(), emu.caPem);
    expect(jwks.json.keys.map((k: { kid: string }) => k.kid)).toContain(res.json.kid);
  });

  it("a 429 fault answers Retry-After and Entra's error body, then the endpoint works again", async () => {
    expect((await admin("faults", "POST", { status: 429, count: 1, retryAfterSeconds: 7 })).status).toBe(200);
    const limited = await token({ grant_type: "client_credentials", client_id: clientId, client_secret: secret, scope: SCOPE });
    expect(limited.status).toBe(429);
    expect(limited.headers["retry-after"]).toBe("7");
    expect(limited.json).toMatchObject({ error: "temporarily_unavailable" });
    expect(limited.json.error_codes).toHaveLength(1);
    expect((await token({ grant_type: "client_credentials", client_id: clientId, client_secret: secret, scope: SCOPE })).status).toBe(200);
  });

  it("latency applies to the identity endpoints but never to the admin surface", async () => {
    // A latency far longer than a loaded machine's stalls, so "not delayed" needs no tight bound; the admin call
    // leaves the one delayed request to the identity endpoint that follows.
    await admin("faults", "POST", { latencyMs: 4000, latencyCount: 1 });
    const t0 = performance.now();
    expect((await admin("health", "GET")).status).toBe(200);
    expect(performance.now() - t0).toBeLessThan(3000);
    const t1 = performance.now();
    await call(emu.jwksUrl(), emu.caPem);
    expect(performance.now() - t1).toBeGreaterThanOrEqual(3990);
  });

  it("the CA is served at /_emulator/ca.pem and state hides secrets", async () => {
    const ca = await call(`${emu.url}/_emulator/ca.pem`, emu.caPem);
    expect(ca.text).toBe(emu.caPem);
    const state = await admin("state", "GET");
    expect(state.text).not.toContain(secret);
    expect(state.json.applications.find((a: { clientId: string }) => a.clientId === clientId).secrets).toBe(1);
  });
});
