import {
  type AccessToken,
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  DeviceCodeCredential,
  ManagedIdentityCredential,
  type TokenCredential,
  WorkloadIdentityCredential,
} from "@azure/identity";
import { describe, expect, it } from "vitest";
import { createCredential, TokenSource } from "./auth.js";
import { EQUINOR_TENANT_ID, resolveEnvironment } from "./environments.js";
import { OmniaAuthError, OmniaConfigError } from "./errors.js";

describe("environments", () => {
  it("dev, test and prod: base URLs, resource ids (scope <GUID>/.default) and public client ids of the notes", () => {
    expect(resolveEnvironment({ environment: "dev" })).toEqual({
      name: "dev",
      version: "1.7",
      baseUrl: "https://api-dev.gateway.equinor.com/plant/timeseries/v1.7",
      resourceId: "32f2a909-8a98-4eb8-b22d-1208d9350cb0",
      scope: "32f2a909-8a98-4eb8-b22d-1208d9350cb0/.default",
      publicClientId: "675bd975-260f-498e-82cd-65f67b34fe7d",
      authorityHost: "https://login.microsoftonline.com",
      tenantId: EQUINOR_TENANT_ID,
    });
    const test = resolveEnvironment({ environment: "test" });
    expect(test.baseUrl).toBe("https://api-test.gateway.equinor.com/plant/timeseries/v1.7");
    expect(test.resourceId).toBe("32f2a909-8a98-4eb8-b22d-1208d9350cb0");
    const prod = resolveEnvironment({ environment: "prod" });
    expect(prod.baseUrl).toBe("https://api.gateway.equinor.com/plant/timeseries/v1.7");
    expect(prod.scope).toBe("141369bd-3dca-4b55-825b-56ad4a69b1fc/.default");
    expect(prod.publicClientId).toBe("67da184b-6bde-43fd-a155-30ed4ff162d2");
    expect(resolveEnvironment({ environment: "prod", version: "1.6" }).baseUrl).toMatch(/\/v1\.6$/);
  });

  it("overrides: base URL (trailing slash dropped), authority host, resource id and tenant — emulators and sovereign clouds", () => {
    const env = resolveEnvironment({
      environment: "prod",
      baseUrl: "http://127.0.0.1:9000/plant/timeseries/v1.7/",
      authorityHost: "https://login.microsoftonline.us/",
      resourceId: "api://omnia-emulator",
      tenantId: "contoso.onmicrosoft.com",
    });
    expect(env.baseUrl).toBe("http://127.0.0.1:9000/plant/timeseries/v1.7");
    expect(env.authorityHost).toBe("https://login.microsoftonline.us");
    expect(env.scope).toBe("api://omnia-emulator/.default");
    expect(env.tenantId).toBe("contoso.onmicrosoft.com");
  });

  it("refuses plain http off loopback (a bearer token would travel in clear), non-URLs and unknown environments, naming each field", () => {
    try {
      resolveEnvironment({ environment: "test", baseUrl: "http://omnia.example.com", authorityHost: "nope" });
      expect.fail("accepted");
    } catch (err) {
      expect(err).toBeInstanceOf(OmniaConfigError);
      expect((err as OmniaConfigError).problems).toEqual([
        "baseUrl: plain http only on loopback (a token would travel in clear)",
        "authorityHost: not a URL",
      ]);
    }
    expect(() => resolveEnvironment({ environment: "staging" as never })).toThrow(/environment: must be dev, test or prod/);
  });
});

describe("credentials", () => {
  const env = resolveEnvironment({ environment: "test" });

  it("each mode makes its @azure/identity credential", () => {
    expect(createCredential({ mode: "clientSecret", clientId: "c", clientSecret: "s" }, env)).toBeInstanceOf(ClientSecretCredential);
    expect(createCredential({ mode: "clientCertificate", clientId: "c", certificatePath: "/x.pem" }, env)).toBeInstanceOf(
      ClientCertificateCredential,
    );
    expect(createCredential({ mode: "deviceCode" }, env)).toBeInstanceOf(DeviceCodeCredential);
    expect(createCredential({ mode: "default" }, env)).toBeInstanceOf(DefaultAzureCredential);
    expect(createCredential({ mode: "managedIdentity", clientId: "mi" }, env)).toBeInstanceOf(ManagedIdentityCredential);
    expect(
      createCredential({ mode: "workloadIdentity", tenantId: EQUINOR_TENANT_ID, clientId: "c", tokenFilePath: "/var/run/token" }, env),
    ).toBeInstanceOf(WorkloadIdentityCredential);
    const own: TokenCredential = { getToken: async () => null };
    expect(createCredential({ mode: "credential", credential: own }, env)).toBe(own);
  });

  it("a missing secret or certificate is a config error that quotes no secret", () => {
    expect(() => createCredential({ mode: "clientSecret", clientId: "c", clientSecret: "" }, env)).toThrow(/auth\.clientSecret: required/);
    expect(() => createCredential({ mode: "clientCertificate", clientId: "c" }, env)).toThrow(/certificatePath/);
    expect(() => createCredential({ mode: "nope" } as never, env)).toThrow(OmniaConfigError);
  });
});

describe("TokenSource", () => {
  function credential(lifetimeMs: number) {
    const calls: number[] = [];
    const cred: TokenCredential = {
      getToken: async (): Promise<AccessToken> => {
        calls.push(calls.length);
        return { token: `t${calls.length}`, expiresOnTimestamp: now + lifetimeMs };
      },
    };
    return { cred, calls };
  }
  let now = 1_000_000;

  it("reuses a token until 5 minutes before it expires, then asks again; invalidate() asks again at once", async () => {
    const { cred, calls } = credential(3_600_000);
    const source = new TokenSource(cred, "r/.default", () => now);
    expect(await source.get()).toBe("t1");
    now += 3_000_000;
    expect(await source.get()).toBe("t1");
    now += 400_000; // inside the last 5 minutes
    expect(await source.get()).toBe("t2");
    source.invalidate();
    expect(await source.get()).toBe("t3");
    expect(calls).toHaveLength(3);
  });

  it("callers waiting at the same time share one token request (one device code prompt, not one per request)", async () => {
    let release!: () => void;
    let asked = 0;
    const cred: TokenCredential = {
      getToken: () =>
        new Promise((resolve) => {
          asked++;
          release = () => resolve({ token: "slow", expiresOnTimestamp: Date.now() + 3_600_000 });
        }),
    };
    const source = new TokenSource(cred, "r/.default");
    const a = source.get();
    const b = source.get();
    const ac = new AbortController();
    const c = source.get(ac.signal);
    ac.abort(new Error("caller gave up"));
    await expect(c).rejects.toThrow("caller gave up");
    release();
    expect(await Promise.all([a, b])).toEqual(["slow", "slow"]);
    expect(asked).toBe(1);
  });

  it("a failing credential is OmniaAuthError naming the scope", async () => {
    const source = new TokenSource({ getToken: async () => null }, "r/.default");
    await expect(source.get()).rejects.toThrow(OmniaAuthError);
    await expect(source.get()).rejects.toThrow(/no token for r\/\.default/);
  });
});
