/**
 * The stock @azure/identity credentials against the emulator, configured as omnia-reader will be: the emulator's URL
 * as `authorityHost`, `disableInstanceDiscovery: true` (MSAL's instance discovery asks login.microsoftonline.com,
 * whatever the authority), and the emulator's CA through the HTTP pipeline's `tlsOptions: { ca }`.
 */
import { ClientCertificateCredential, ClientSecretCredential, DeviceCodeCredential, type DeviceCodeInfo } from "@azure/identity";
import { createTestPki } from "@meridian/emulator-kit";
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  DEFAULTS,
  OMNIA_PUBLIC_CLIENT_NONPROD,
  OMNIA_RESOURCE_NONPROD,
  type RunningEntraEmulator,
  startEntraEmulator,
} from "../src/index.js";
import { call, keySet } from "./helpers.js";

const SCOPE = `${OMNIA_RESOURCE_NONPROD}/.default`;
const { clientId, secret } = DEFAULTS.confidentialClient;

let emu: RunningEntraEmulator;

/** Everything a client changes to use the emulator instead of Entra. */
function options() {
  return { authorityHost: emu.url, disableInstanceDiscovery: true, tlsOptions: { ca: emu.caPem } };
}

/** Approves through the admin HTTP surface, as the compose stack or an operator would. */
async function approve(info: DeviceCodeInfo): Promise<void> {
  const res = await call(`${emu.url}/_emulator/device-codes/${info.userCode}/approve`, emu.caPem, { method: "POST", body: "{}" });
  if (res.status !== 200) throw new Error(`approve answered ${res.status} ${res.text}`);
}

beforeAll(async () => {
  emu = await startEntraEmulator({ deviceCodeIntervalSeconds: 1 });
});
afterAll(async () => {
  await emu?.stop();
});
afterEach(() => {
  emu.setSettings({ tokenLifetimeSeconds: DEFAULTS.tokenLifetimeSeconds });
  emu.clearFaults();
});

describe("ClientSecretCredential", () => {
  it("gets an app token the JWKS verifies: aud the resource GUID, iss of the tenant, roles, azp", async () => {
    const token = await new ClientSecretCredential(emu.tenantId, clientId, secret, options()).getToken(SCOPE);
    expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3000_000);
    const { payload, protectedHeader } = await jwtVerify(token.token, await keySet(emu.jwksUrl(), emu.caPem), {
      issuer: emu.issuer(),
      audience: OMNIA_RESOURCE_NONPROD,
    });
    expect(protectedHeader).toMatchObject({ alg: "RS256", typ: "JWT" });
    expect(protectedHeader.kid).toBeTruthy();
    expect(payload).toMatchObject({
      tid: emu.tenantId,
      azp: clientId,
      appid: clientId,
      roles: ["Timeseries.Read"],
      ver: "2.0",
      azpacr: "1",
      idtyp: "app",
    });
    expect(payload.scp).toBeUndefined();
    expect(payload.exp! - payload.iat!).toBe(DEFAULTS.tokenLifetimeSeconds);
  });

  it("a wrong secret fails with Entra's invalid_client AADSTS7000215", async () => {
    const cred = new ClientSecretCredential(emu.tenantId, clientId, "not-the-secret", options());
    // MSAL formats Entra's body: "invalid_client: Error(s): 7000215 - Timestamp: ... - Description: AADSTS7000215: ...".
    await expect(cred.getToken(SCOPE)).rejects.toThrow(
      /invalid_client: Error\(s\): 7000215 - Timestamp: .* - Description: AADSTS7000215: Invalid client secret/,
    );
    expect(emu.counters().errors.invalid_client).toBeGreaterThanOrEqual(1);
  });

  it("an unknown client id fails with unauthorized_client AADSTS700016", async () => {
    const cred = new ClientSecretCredential(emu.tenantId, "00000000-0000-4000-8000-000000000001", secret, options());
    await expect(cred.getToken(SCOPE)).rejects.toThrow(/AADSTS700016/);
  });

  it("a scope without /.default fails with invalid_scope AADSTS1002012", async () => {
    const cred = new ClientSecretCredential(emu.tenantId, clientId, secret, options());
    await expect(cred.getToken(`${OMNIA_RESOURCE_NONPROD}/user_impersonation`)).rejects.toThrow(/AADSTS1002012/);
  });

  it("the api://GUID form of the scope gives the same GUID audience", async () => {
    const token = await new ClientSecretCredential(emu.tenantId, clientId, secret, options()).getToken(
      `api://${OMNIA_RESOURCE_NONPROD}/.default`,
    );
    expect(decodeJwt(token.token).aud).toBe(OMNIA_RESOURCE_NONPROD);
  });

  it("a 503 once is retried by the library's pipeline and the token still comes", async () => {
    emu.setFault({ status: 503, count: 1, path: `/${emu.tenantId}/oauth2` });
    const token = await new ClientSecretCredential(emu.tenantId, clientId, secret, options()).getToken(SCOPE);
    expect(decodeJwt(token.token).aud).toBe(OMNIA_RESOURCE_NONPROD);
    expect(emu.counters().faults).toBeGreaterThanOrEqual(1);
  });

  it("an expired token is detected by the verifier (lifetime 2 s)", async () => {
    emu.setSettings({ tokenLifetimeSeconds: 2 });
    const token = await new ClientSecretCredential(emu.tenantId, clientId, secret, options()).getToken(SCOPE);
    const keys = await keySet(emu.jwksUrl(), emu.caPem);
    const { payload } = await jwtVerify(token.token, keys, { issuer: emu.issuer(), audience: OMNIA_RESOURCE_NONPROD });
    expect(payload.exp! - payload.iat!).toBe(2);
    await new Promise((r) => setTimeout(r, payload.exp! * 1000 - Date.now() + 50));
    await expect(jwtVerify(token.token, keys, { issuer: emu.issuer(), audience: OMNIA_RESOURCE_NONPROD })).rejects.toBeInstanceOf(
      joseErrors.JWTExpired,
    );
  });
});

describe("what the client must configure", () => {
  it("without the emulator's CA the credential cannot read the metadata (endpoints_resolution_error)", async () => {
    const cred = new ClientSecretCredential(emu.tenantId, clientId, secret, { authorityHost: emu.url, disableInstanceDiscovery: true });
    await expect(cred.getToken(SCOPE)).rejects.toThrow(/endpoints_resolution_error/);
  });

  it("AZURE_AUTHORITY_HOST is not needed when authorityHost is given; the trailing slash does not matter", async () => {
    const token = await new ClientSecretCredential(emu.tenantId, clientId, secret, { ...options(), authorityHost: `${emu.url}/` }).getToken(
      SCOPE,
    );
    expect(decodeJwt(token.token).iss).toBe(emu.issuer());
  });
});

describe("ClientCertificateCredential", () => {
  const client = createTestPki({ caName: "Meridian test client", hosts: ["omnia-reader"] });
  const certClientId = "0b7f3c2e-5a1d-4e8f-9c6b-2d4a8e1f7c30";

  beforeAll(() => {
    emu.registerApplication({
      clientId: certClientId,
      certificates: [client.certPem],
      grants: { [OMNIA_RESOURCE_NONPROD]: { roles: ["Timeseries.Read"] } },
    });
  });

  it("gets a token with a client assertion signed by the registered certificate", async () => {
    const cred = new ClientCertificateCredential(
      emu.tenantId,
      certClientId,
      { certificate: `${client.keyPem}${client.certPem}` },
      options(),
    );
    const token = await cred.getToken(SCOPE);
    const { payload } = await jwtVerify(token.token, await keySet(emu.jwksUrl(), emu.caPem), {
      issuer: emu.issuer(),
      audience: OMNIA_RESOURCE_NONPROD,
    });
    expect(payload).toMatchObject({ azp: certClientId, azpacr: "2", roles: ["Timeseries.Read"] });
    expect(emu.counters().tokensIssued[certClientId]).toEqual({ client_credentials: 1 });
  });

  it("sendCertificateChain (x5c in the assertion) works the same", async () => {
    const cred = new ClientCertificateCredential(
      emu.tenantId,
      certClientId,
      { certificate: `${client.keyPem}${client.certPem}` },
      { ...options(), sendCertificateChain: true },
    );
    expect(decodeJwt((await cred.getToken(SCOPE)).token)).toMatchObject({ azp: certClientId, azpacr: "2" });
  });

  it("a certificate the application does not have is refused (AADSTS700027)", async () => {
    const other = createTestPki({ caName: "Meridian unregistered client" });
    const cred = new ClientCertificateCredential(emu.tenantId, certClientId, { certificate: `${other.keyPem}${other.certPem}` }, options());
    await expect(cred.getToken(SCOPE)).rejects.toThrow(/AADSTS700027/);
  });
});

describe("DeviceCodeCredential", () => {
  it("gets a delegated token once the user code is approved through the admin surface", async () => {
    const prompts: DeviceCodeInfo[] = [];
    const cred = new DeviceCodeCredential({
      ...options(),
      tenantId: emu.tenantId,
      clientId: OMNIA_PUBLIC_CLIENT_NONPROD,
      userPromptCallback: (info) => {
        prompts.push(info);
        // Approve after the first poll has been answered authorization_pending.
        setTimeout(() => void approve(info), 1200);
      },
    });
    const pendingBefore = emu.counters().errors.authorization_pending ?? 0;
    const token = await cred.getToken(SCOPE);
    expect(prompts).toHaveLength(1);
    expect(prompts[0]!.verificationUri).toBe(`${emu.url}/devicelogin`);
    expect(prompts[0]!.message).toContain(prompts[0]!.userCode);
    expect(emu.counters().errors.authorization_pending ?? 0).toBeGreaterThan(pendingBefore);
    const { payload } = await jwtVerify(token.token, await keySet(emu.jwksUrl(), emu.caPem), {
      issuer: emu.issuer(),
      audience: OMNIA_RESOURCE_NONPROD,
    });
    expect(payload).toMatchObject({
      scp: "user_impersonation",
      preferred_username: DEFAULTS.user.username,
      azp: OMNIA_PUBLIC_CLIENT_NONPROD,
      azpacr: "0",
      tid: emu.tenantId,
    });
    expect(payload.roles).toBeUndefined();
  });

  it("a second getToken after the access token is due refreshes with the refresh token, without a new prompt", async () => {
    // Lifetime under MSAL's 5-minute renewal margin: every later getToken goes to the refresh grant.
    emu.setSettings({ tokenLifetimeSeconds: 120 });
    const prompts: DeviceCodeInfo[] = [];
    const cred = new DeviceCodeCredential({
      ...options(),
      tenantId: emu.tenantId,
      clientId: OMNIA_PUBLIC_CLIENT_NONPROD,
      userPromptCallback: (info) => {
        prompts.push(info);
        void approve(info);
      },
    });
    const before = { ...emu.counters().tokensIssued[OMNIA_PUBLIC_CLIENT_NONPROD] };
    const first = await cred.getToken(SCOPE);
    const second = await cred.getToken(SCOPE);
    expect(prompts).toHaveLength(1);
    expect(second.token).not.toBe(first.token);
    const after = emu.counters().tokensIssued[OMNIA_PUBLIC_CLIENT_NONPROD]!;
    expect((after.device_code ?? 0) - (before.device_code ?? 0)).toBe(1);
    expect((after.refresh_token ?? 0) - (before.refresh_token ?? 0)).toBe(1);
    expect(decodeJwt(second.token)).toMatchObject({ scp: "user_impersonation", aud: OMNIA_RESOURCE_NONPROD });
  });
});

describe("signing key rotation", () => {
  it("a token signed before a rotation still verifies (old key kept); after dropPrevious it no longer does", async () => {
    const cred = () => new ClientSecretCredential(emu.tenantId, clientId, secret, options());
    const before = await cred().getToken(SCOPE);
    const kid = await emu.rotateSigningKey();
    const after = await cred().getToken(SCOPE);
    expect(decodeProtectedHeader(after.token).kid).toBe(kid);
    expect(decodeProtectedHeader(before.token).kid).not.toBe(kid);
    const keys = await keySet(emu.jwksUrl(), emu.caPem);
    await jwtVerify(before.token, keys, { issuer: emu.issuer() });
    await jwtVerify(after.token, keys, { issuer: emu.issuer() });
    await emu.rotateSigningKey(true);
    const fresh = await keySet(emu.jwksUrl(), emu.caPem);
    await expect(jwtVerify(before.token, fresh, { issuer: emu.issuer() })).rejects.toBeInstanceOf(joseErrors.JWKSNoMatchingKey);
  });
});
