import { generateKeyPairSync, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { json, type RecordedRequest, type RecordingServer, type Reply, startRecordingServer, TEST_CA_PATH } from "@meridian/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDigitalTwinsClient, listAll } from "./digital-twins.js";
import {
  OciConflictError,
  type OciError,
  OciInvalidArgumentError,
  OciNotAuthenticatedError,
  OciNotFoundError,
  OciThrottledError,
  OciTimeoutError,
  OciUnavailableError,
} from "./errors.js";
import type { DigitalTwinsClient, OciClientOptions } from "./types.js";

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const PEM = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const AUTH = {
  kind: "api_key_inline" as const,
  tenancy: "ocid1.tenancy.oc1..t",
  user: "ocid1.user.oc1..u",
  fingerprint: "aa:bb:cc",
  privateKeyPem: PEM,
};
const DOMAIN = "ocid1.iotdomain.oc1.eu-frankfurt-1.d1";
const INSTANCE = "ocid1.iotdigitaltwininstance.oc1.eu-frankfurt-1.i1";
const T = "2026-11-30T10:00:00.123Z";

const model = (id: string) => ({
  id,
  iotDomainId: DOMAIN,
  specUri: "dtmi:m5;1",
  displayName: "dtmi:m5;1",
  lifecycleState: "ACTIVE",
  timeCreated: T,
});
const instance = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  iotDomainId: DOMAIN,
  displayName: "dev",
  externalKey: "dev-1",
  connectivityType: "DIRECT",
  lifecycleState: "ACTIVE",
  timeCreated: T,
  ...extra,
});
const ociError = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  json(status, { code, message }, { "opc-request-id": "req-1", ...headers });

/** The OCI signature of a recorded request, checked against the test key as OCI checks it (draft-cavage). */
function verifySignature(req: RecordedRequest): { keyId: string; headers: string[] } {
  const auth = String(req.headers.authorization);
  const params = Object.fromEntries([...auth.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  const names = String(params.headers).split(" ");
  const lines = names.map((name) =>
    name === "(request-target)"
      ? `(request-target): ${req.method.toLowerCase()} ${req.path}`
      : `${name.toLowerCase()}: ${req.headers[name.toLowerCase()]}`,
  );
  const ok = verify("sha256", Buffer.from(lines.join("\n")), publicKey, Buffer.from(String(params.signature), "base64"));
  expect(ok, `signature over ${names.join(" ")}`).toBe(true);
  return { keyId: String(params.keyId), headers: names };
}

let server: RecordingServer;
let client: DigitalTwinsClient;

function reply(...replies: Reply[]) {
  let i = 0;
  server.handler = () => replies[Math.min(i++, replies.length - 1)]!;
}

function make(extra: Partial<OciClientOptions> = {}): DigitalTwinsClient {
  return createDigitalTwinsClient({ auth: AUTH, endpoint: server.url, retry: { maxAttempts: 3, maxDelayMs: 10 }, ...extra });
}

beforeEach(async () => {
  server = await startRecordingServer(() => json(500, {}));
  client = make();
});

afterEach(async () => {
  await client.close?.();
  await server.close();
});

describe("requests", () => {
  it("creates a model with the spec, retry token and freeform tags, signed with the API key", async () => {
    reply(json(200, { ...model("ocid1.iotdigitaltwinmodel.oc1..m1"), freeformTags: { "meridian-twin": "k1" } }, { etag: "e1" }));
    const created = await client.createModel(
      { iotDomainId: DOMAIN, spec: { "@id": "dtmi:m5;1", "@type": "Interface" }, displayName: "dtmi:m5;1" },
      { retryToken: "meridian-k1-model-abc", freeformTags: { "meridian-twin": "k1" } },
    );
    const [req] = server.requests;
    expect(req?.method).toBe("POST");
    expect(req?.path).toBe("/20250531/digitalTwinModels");
    expect(req?.headers["opc-retry-token"]).toBe("meridian-k1-model-abc");
    expect(JSON.parse(req!.text)).toEqual({
      iotDomainId: DOMAIN,
      spec: { "@id": "dtmi:m5;1", "@type": "Interface" },
      displayName: "dtmi:m5;1",
      freeformTags: { "meridian-twin": "k1" },
    });
    const sig = verifySignature(req!);
    expect(sig.keyId).toBe("ocid1.tenancy.oc1..t/ocid1.user.oc1..u/aa:bb:cc");
    expect(sig.headers.map((h) => h.toLowerCase())).toEqual(
      expect.arrayContaining(["(request-target)", "host", "x-date", "x-content-sha256", "content-length"]),
    );
    expect(created.timeCreated).toBeInstanceOf(Date);
    expect(created.timeCreated.toISOString()).toBe(T);
    expect(created.freeformTags).toEqual({ "meridian-twin": "k1" });
  });

  it("lists one page with nextPage, encoding values the SDK would send raw; listAll walks the pages", async () => {
    let n = 0;
    server.handler = () => {
      n++;
      return json(200, { items: [instance(`ocid1.i.${n}`)] }, n < 3 ? { "opc-next-page": `p${n}+/=` } : {});
    };
    const first = await client.listInstances(DOMAIN, { displayName: "a b&c", lifecycleState: "ACTIVE", limit: 1 });
    expect(first.nextPage).toBe("p1+/=");
    expect(first.items[0]?.timeCreated).toBeInstanceOf(Date);
    const sent = new URL(server.requests[0]!.path, server.url);
    expect(sent.pathname).toBe("/20250531/digitalTwinInstances");
    expect(sent.search).toContain("displayName=a%20b%26c&");
    expect(Object.fromEntries(sent.searchParams)).toEqual({
      iotDomainId: DOMAIN,
      displayName: "a b&c",
      limit: "1",
      lifecycleState: "ACTIVE",
    });
    verifySignature(server.requests[0]!);

    const all = await listAll((page) => client.listInstances(DOMAIN, { ...(page ? { page } : {}) }));
    expect(all.map((i) => i.id)).toEqual(["ocid1.i.2", "ocid1.i.3"]);
    expect(server.requests[2]?.path).toContain("page=p2%2B%2F%3D");
  });

  it("listAll stops when OCI repeats a page token, and past maxItems", async () => {
    reply(json(200, { items: [instance("a")] }, { "opc-next-page": "same" }));
    await expect(listAll((page) => client.listInstances(DOMAIN, { ...(page ? { page } : {}) }))).rejects.toMatchObject({
      code: "PagingLoop",
    });
    await expect(listAll((page) => client.listInstances(DOMAIN, { ...(page ? { page } : {}) }), { maxItems: 1 })).rejects.toMatchObject({
      code: "TooManyItems",
    });
  });

  it("sends if-match on delete and update", async () => {
    reply({ status: 204 });
    await client.deleteInstance(INSTANCE, { ifMatch: "etag-7" });
    expect(server.requests[0]).toMatchObject({ method: "DELETE", path: `/20250531/digitalTwinInstances/${INSTANCE}` });
    expect(server.requests[0]?.headers["if-match"]).toBe("etag-7");
    verifySignature(server.requests[0]!);

    reply(json(200, instance(INSTANCE, { displayName: "renamed" })));
    const updated = await client.updateInstance(INSTANCE, { displayName: "renamed" }, { ifMatch: "etag-8" });
    expect(updated.displayName).toBe("renamed");
    expect(server.requests[1]?.method).toBe("PUT");
    expect(server.requests[1]?.headers["if-match"]).toBe("etag-8");
    expect(JSON.parse(server.requests[1]!.text)).toEqual({ displayName: "renamed" });
  });

  it("reads the IoT domain and its group, deriving the short ids as manage-dt does", async () => {
    server.handler = (req) =>
      req.path.startsWith("/20250531/iotDomains/")
        ? json(200, {
            id: DOMAIN,
            iotDomainGroupId: "ocid1.iotdomaingroup.oc1..g1",
            compartmentId: "c",
            displayName: "d",
            deviceHost: "dshort.device.iot.eu-frankfurt-1.oci.oraclecloud.com",
            dbAllowedIdentityDomainHost: "idcs-1.identity.oraclecloud.com",
            lifecycleState: "ACTIVE",
            timeCreated: T,
          })
        : json(200, {
            id: "ocid1.iotdomaingroup.oc1..g1",
            compartmentId: "c",
            type: "STANDARD",
            displayName: "g",
            dataHost: "gshort.data.iot.eu-frankfurt-1.oci.oraclecloud.com",
            lifecycleState: "ACTIVE",
            timeCreated: T,
          });
    const domain = await client.getIotDomain(DOMAIN);
    expect(server.requests.map((r) => r.path)).toEqual([
      `/20250531/iotDomains/${DOMAIN}`,
      "/20250531/iotDomainGroups/ocid1.iotdomaingroup.oc1..g1",
    ]);
    expect(domain).toEqual({
      id: DOMAIN,
      iotDomainGroupId: "ocid1.iotdomaingroup.oc1..g1",
      displayName: "d",
      lifecycleState: "ACTIVE",
      deviceHost: "dshort.device.iot.eu-frankfurt-1.oci.oraclecloud.com",
      dbAllowedIdentityDomainHost: "idcs-1.identity.oraclecloud.com",
      dataHost: "gshort.data.iot.eu-frankfurt-1.oci.oraclecloud.com",
      domainShortId: "dshort",
      groupShortId: "gshort",
    });
  });

  it("reads the model spec and the instance content as OCI sends them", async () => {
    reply(json(200, { "@id": "dtmi:m5;1", contents: [] }));
    expect(await client.getModelSpec("ocid1.m")).toEqual({ "@id": "dtmi:m5;1", contents: [] });
    reply(json(200, { humidity: 73, count: 2 }));
    expect(await client.getInstanceContent(INSTANCE, { includeMetadata: true })).toEqual({ humidity: 73, count: 2 });
    expect(server.requests[1]?.path).toBe(`/20250531/digitalTwinInstances/${INSTANCE}/content?shouldIncludeMetadata=true`);
  });

  it("refuses bad input before sending", async () => {
    await expect(client.listInstances(DOMAIN, { limit: 0 })).rejects.toMatchObject({ name: "OciInvalidArgumentError", field: "limit" });
    await expect(client.getInstance("a/b")).rejects.toMatchObject({ field: "id" });
    await expect(client.createInstance({ iotDomainId: DOMAIN, displayName: "x" }, { retryToken: "x".repeat(65) })).rejects.toMatchObject({
      field: "retryToken",
    });
    await expect(client.createAdapter({ iotDomainId: DOMAIN })).rejects.toMatchObject({ field: "digitalTwinModelId" });
    expect(server.requests).toHaveLength(0);
  });
});

describe("errors", () => {
  it("maps 404 to OciNotFoundError naming the OCID, with OCI's code and opc-request-id", async () => {
    reply(ociError(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found."));
    const err = await client.getInstance(INSTANCE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciNotFoundError);
    expect(err).toMatchObject({ resource: INSTANCE, status: 404, code: "NotAuthorizedOrNotFound", requestId: "req-1", retryable: false });
    expect(server.requests).toHaveLength(1);
  });

  it("maps 401 to OciNotAuthenticatedError", async () => {
    reply(ociError(401, "NotAuthenticated", "The required information to complete authentication was not provided."));
    await expect(client.getModel("ocid1.m")).rejects.toBeInstanceOf(OciNotAuthenticatedError);
  });

  it("maps 409 Conflict (not retried) and 412 (code NoEtagMatch) to OciConflictError", async () => {
    reply(ociError(409, "Conflict", "model is used by an adapter"));
    const conflict = await client.deleteModel("ocid1.m").catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(OciConflictError);
    expect(conflict).toMatchObject({ code: "Conflict", retryable: false });
    expect(server.requests).toHaveLength(1);

    reply(ociError(412, "NoEtagMatch", "etag mismatch"));
    const stale = await client.deleteInstance(INSTANCE, { ifMatch: "old" }).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(OciConflictError);
    expect(stale).toMatchObject({ status: 412, code: "NoEtagMatch" });
  });

  it("retries 409 IncorrectState as the SDK does, marking the retries, and succeeds", async () => {
    reply(ociError(409, "IncorrectState", "busy"), json(200, instance(INSTANCE)));
    const got = await client.getInstance(INSTANCE);
    expect(got.id).toBe(INSTANCE);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]?.headers["opc-client-retries"]).toBe("true");
    verifySignature(server.requests[1]!);
  });

  it("gives up on IncorrectState after retry.maxAttempts with a retryable OciConflictError", async () => {
    reply(ociError(409, "IncorrectState", "busy"));
    const err = await client.getInstance(INSTANCE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciConflictError);
    expect(err).toMatchObject({ code: "IncorrectState", retryable: true });
    expect(server.requests).toHaveLength(3);
  });

  it("maps 429 to OciThrottledError with Retry-After", async () => {
    client = make({ retry: { maxAttempts: 1 } });
    reply(ociError(429, "TooManyRequests", "slow down", { "retry-after": "7" }));
    const err = await client.getInstance(INSTANCE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciThrottledError);
    expect(err).toMatchObject({ retryAfterMs: 7000, retryable: true });
  });

  it("maps 5xx to OciUnavailableError after the bounded retries", async () => {
    reply(ociError(503, "ServiceUnavailable", "down"));
    const err = await client.getInstance(INSTANCE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciUnavailableError);
    expect(err).toMatchObject({ status: 503, retryable: true });
    expect(server.requests).toHaveLength(3);
  });

  it("maps 400 to OciInvalidArgumentError with the field OCI's message names", async () => {
    reply(ociError(400, "InvalidParameter", "spec.contents[2].schema: unknown schema 'dobule'"));
    const err = await client.createModel({ iotDomainId: DOMAIN, spec: { "@id": "dtmi:x;1" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciInvalidArgumentError);
    expect(err).toMatchObject({ field: "spec.contents[2].schema", status: 400, code: "InvalidParameter" });
    expect(server.requests).toHaveLength(1);

    reply(ociError(400, "MissingParameter", "Missing parameter: iotDomainId"));
    await expect(client.listModels(DOMAIN)).rejects.toMatchObject({ field: "iotDomainId" });
    reply(ociError(400, "InvalidParameter", "The request is malformed."));
    await expect(client.listModels(DOMAIN)).rejects.toMatchObject({ field: "request" });
  });

  it("maps a refused connection to OciUnavailableError with the socket's code", async () => {
    const closed = await startRecordingServer(() => json(200, {}));
    const url = closed.url;
    await closed.close();
    client = createDigitalTwinsClient({ auth: AUTH, endpoint: url, retry: { maxAttempts: 2, maxDelayMs: 10 } });
    const err = await client.getInstance(INSTANCE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciUnavailableError);
    expect(err).toMatchObject({ code: "ECONNREFUSED", retryable: true });
    expect((err as Error).message).toContain("after 2 attempts");
  });

  it("ends an attempt that gets no answer within timeoutMs (OciUnavailableError code Timeout)", async () => {
    client = make({ timeoutMs: 1000, retry: { maxAttempts: 1 } });
    reply({ hang: true });
    const started = Date.now();
    const err = await client.getInstance(INSTANCE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciUnavailableError);
    expect(err).toMatchObject({ code: "Timeout" });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("bounds the retry in time: no new attempt after retry.maxTotalMs", async () => {
    client = make({ retry: { maxAttempts: 10, maxDelayMs: 200, maxTotalMs: 300 } });
    reply(ociError(500, "InternalServerError", "boom"));
    const err = await client.getInstance(INSTANCE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciUnavailableError);
    expect(server.requests.length).toBeGreaterThan(1);
    expect(server.requests.length).toBeLessThan(10);
  });

  it("has no circuit breaker: calls go through after a run of failures", async () => {
    client = make({ retry: { maxAttempts: 1 } });
    reply(ociError(500, "InternalServerError", "boom"));
    for (let i = 0; i < 15; i++) await expect(client.getInstance(INSTANCE)).rejects.toBeInstanceOf(OciUnavailableError);
    reply(json(200, instance(INSTANCE)));
    await expect(client.getInstance(INSTANCE)).resolves.toMatchObject({ id: INSTANCE });
    expect(server.requests).toHaveLength(16);
  });
});

describe("waitFor", () => {
  it("takes a 404 for DELETED", async () => {
    reply(ociError(404, "NotAuthorizedOrNotFound", "gone"));
    await client.waitFor("instance", INSTANCE, "DELETED");
  });

  it("polls until the state, then gives up with OciTimeoutError", async () => {
    reply(json(200, instance(INSTANCE)), json(200, instance(INSTANCE, { lifecycleState: "DELETED" })));
    await client.waitFor("instance", INSTANCE, "DELETED", 5000);
    expect(server.requests).toHaveLength(2);

    reply(json(200, model("ocid1.m")));
    const err = await client.waitFor("model", "ocid1.m", "DELETED", 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciTimeoutError);
    expect((err as Error).message).toContain("last seen: ACTIVE");
  });

  it("stops at once on a lasting error", async () => {
    reply(ociError(404, "NotAuthorizedOrNotFound", "gone"));
    await expect(client.waitFor("adapter", "ocid1.a", "ACTIVE", 5000)).rejects.toBeInstanceOf(OciNotFoundError);
  });
});

describe("TLS and options", () => {
  it("trusts caPem beside the system's roots, and refuses the same server without it", async () => {
    const tls = await startRecordingServer(() => json(200, instance(INSTANCE)), { tls: true });
    try {
      const caPem = readFileSync(TEST_CA_PATH, "utf8");
      const trusted = createDigitalTwinsClient({ auth: AUTH, endpoint: tls.url, caPem });
      await expect(trusted.getInstance(INSTANCE)).resolves.toMatchObject({ id: INSTANCE });
      await trusted.close?.();
      const untrusted = createDigitalTwinsClient({ auth: AUTH, endpoint: tls.url, retry: { maxAttempts: 1 } });
      const err = await untrusted.getInstance(INSTANCE).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OciUnavailableError);
      expect((err as OciError).code).toMatch(/CERT|SELF_SIGNED|UNABLE/);
      await untrusted.close?.();
    } finally {
      await tls.close();
    }
  });

  it("refuses options out of bounds and a client with no region and no endpoint", () => {
    expect(() => createDigitalTwinsClient({ auth: AUTH, timeoutMs: 10 })).toThrow(OciInvalidArgumentError);
    expect(() => createDigitalTwinsClient({ auth: AUTH, endpoint: `${server.url}/20250531` })).toThrow(/without \/20250531/);
    expect(() => createDigitalTwinsClient({ auth: AUTH, retry: { maxAttempts: 0 } })).toThrow(/retry.maxAttempts/);
    expect(() => createDigitalTwinsClient({ auth: AUTH })).toThrow(expect.objectContaining({ field: "region" }));
  });

  it("uses the region's endpoint when no endpoint is given", () => {
    expect(() => createDigitalTwinsClient({ auth: AUTH, region: "eu-frankfurt-1" })).not.toThrow();
  });
});
