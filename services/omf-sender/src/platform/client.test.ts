import { retry } from "@meridian/retry";
import { json, type RecordedRequest, type RecordingServer, type Reply, startRecordingServer, TEST_CA_PATH } from "@meridian/testing";
import { afterEach, describe, expect, it } from "vitest";
import { OmfClient, sendToEndpoints } from "./client.js";
import type { OmfEndpointInput } from "./config.js";
import {
  OmfAuthError,
  OmfConflictError,
  OmfError,
  OmfInvalidMessageError,
  OmfServerError,
  OmfThrottledError,
  OmfTlsError,
} from "./errors.js";
import { containerMessage, dataMessage, type OmfContainerData, type OmfMessage, typeMessage } from "./messages.js";
import { CDS_ACCEPTED, FIRST_CONTAINER, FIRST_DYNAMIC_TYPE, PI_413, PI_PARTIAL_409 } from "./testdata/bodies.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function server(handler: (req: RecordedRequest) => Reply | Promise<Reply>, tls = false): Promise<RecordingServer> {
  const s = await startRecordingServer(handler, { tls });
  cleanups.push(() => s.close());
  return s;
}

function client(input: OmfEndpointInput, options?: ConstructorParameters<typeof OmfClient>[1]): OmfClient {
  // The version is set, so the requests counted are the sends alone (an unset one is probed first: version tests).
  const c = new OmfClient({ omfVersion: "1.2", ...input } as OmfEndpointInput, options);
  cleanups.push(() => c.close());
  return c;
}

const PASSWORD = "pä55:word";
const SECRET = "client-secret-value";
const sampleData = (n = 1): OmfMessage =>
  dataMessage([
    {
      containerid: "FirstContainer",
      values: Array.from({ length: n }, (_, i) => ({
        Timestamp: `2021-04-14T12:00:${String(i % 60).padStart(2, "0")}.123456Z`,
        IntegerProperty: i,
      })),
    },
  ]);

const piInput = (url: string, extra: Partial<OmfEndpointInput> = {}): OmfEndpointInput =>
  ({
    kind: "pi",
    name: "pi",
    url: `${url}/piwebapi`,
    username: "DOMAIN\\omf",
    password: PASSWORD,
    caPemPath: TEST_CA_PATH,
    ...extra,
  }) as OmfEndpointInput;

const omfHeaderValues = (r: RecordedRequest) => ({
  messagetype: r.headers["messagetype"],
  messageformat: r.headers["messageformat"],
  omfversion: r.headers["omfversion"],
  action: r.headers["action"],
  compression: r.headers["compression"],
  "x-requested-with": r.headers["x-requested-with"],
  "content-type": r.headers["content-type"],
});

describe("PI Web API", () => {
  it.each(["1.0", "1.1", "1.2"] as const)(
    "POSTs OMF %s with the OMF headers, X-Requested-With and Basic auth over verified TLS",
    async (version) => {
      const s = await server(() => json(200, ""), true);
      const c = client(piInput(s.url, { omfVersion: version, compression: false }));
      const message =
        version === "1.0"
          ? typeMessage([{ ...FIRST_DYNAMIC_TYPE, properties: { Timestamp: FIRST_DYNAMIC_TYPE.properties.Timestamp } }])
          : typeMessage([FIRST_DYNAMIC_TYPE]);
      const result = await c.send(message);
      expect(result).toMatchObject({ ok: true, status: 200 });
      const [r] = s.requests;
      expect(r?.method).toBe("POST");
      expect(r?.path).toBe("/piwebapi/omf");
      expect(omfHeaderValues(r!)).toEqual({
        messagetype: "type",
        messageformat: "JSON",
        omfversion: version,
        action: "create",
        compression: undefined,
        "x-requested-with": "XMLHttpRequest",
        "content-type": "application/json",
      });
      expect(r?.headers.authorization).toBe(`Basic ${Buffer.from(`DOMAIN\\omf:${PASSWORD}`, "utf8").toString("base64")}`);
      expect(JSON.parse(r!.text)).toEqual(message.body);
      const names = r!.rawHeaderNames.map((n) => n.toLowerCase());
      expect(new Set(names).size).toBe(names.length); // PI rejects duplicate OMF headers (2002)
    },
  );

  it("gzips the body when compression is on (default) and says so", async () => {
    const s = await server(() => json(202, ""), true);
    const c = client(piInput(s.url));
    await c.send(containerMessage([FIRST_CONTAINER], "delete"));
    const [r] = s.requests;
    expect(r?.headers["compression"]).toBe("gzip");
    expect(r?.headers["action"]).toBe("delete");
    expect(r?.raw.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(JSON.parse(r!.text)).toEqual([FIRST_CONTAINER]);
  });

  it("rejects a self-signed certificate unless its CA is given or verification is off", async () => {
    const s = await server(() => json(200, ""), true);
    const strict = client(piInput(s.url, { caPemPath: undefined }));
    const tls = await strict.send(sampleData()).catch((e: unknown) => e);
    expect(tls).toBeInstanceOf(OmfTlsError);
    expect((tls as OmfTlsError).retryable).toBe(false);
    const off = client(piInput(s.url, { caPemPath: undefined, verifySsl: false }));
    await expect(off.send(sampleData())).resolves.toMatchObject({ ok: true });
    const pathStyle = client(piInput(s.url, { caPemPath: undefined, verifySsl: TEST_CA_PATH }));
    await expect(pathStyle.send(sampleData())).resolves.toMatchObject({ ok: true });
  });

  it("surfaces the per-message report of a 409 as OmfConflictError with the parsed body", async () => {
    const s = await server(() => json(409, PI_PARTIAL_409), true);
    const c = client(piInput(s.url));
    const err = await c.send(typeMessage([FIRST_DYNAMIC_TYPE, FIRST_DYNAMIC_TYPE])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmfConflictError);
    expect((err as OmfConflictError).result?.messages.find((m) => m.status === 409)?.index).toBe(1);
    expect((err as Error).message).not.toContain(PASSWORD);
  });

  it("401 is an auth error, not retried, and the error never contains the password", async () => {
    const s = await server(() => json(401, "", { "www-authenticate": "Basic" }), true);
    const c = client(piInput(s.url));
    const err = await c.send(sampleData()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmfAuthError);
    expect(s.requests).toHaveLength(1);
    expect(JSON.stringify(err)).not.toContain(PASSWORD);
    expect(String(err)).not.toContain(PASSWORD);
  });

  it("refuses locally what PI cannot take (type update), sending nothing", async () => {
    const s = await server(() => json(200, ""), true);
    const c = client(piInput(s.url));
    await expect(c.send(typeMessage([FIRST_DYNAMIC_TYPE], "update"))).rejects.toBeInstanceOf(OmfInvalidMessageError);
    expect(s.requests).toHaveLength(0);
  });
});

interface FakeAdh {
  s: RecordingServer;
  tokenRequests: URLSearchParams[];
  discoveryRequests: number;
  omfAuth: (string | undefined)[];
  revoked: Set<string>;
  expiresIn: number;
  tokenEndpoint?: string;
  tokenReply?: Reply;
}

async function fakeAdh(expiresIn = 3600): Promise<FakeAdh> {
  const state: FakeAdh = { s: undefined as never, tokenRequests: [], discoveryRequests: 0, omfAuth: [], revoked: new Set(), expiresIn };
  state.s = await server((r) => {
    if (r.method === "GET" && r.path === "/identity/.well-known/openid-configuration") {
      state.discoveryRequests++;
      return json(200, {
        issuer: `${state.s.url}/identity`,
        token_endpoint: state.tokenEndpoint ?? `${state.s.url}/identity/connect/token`,
      });
    }
    if (r.method === "POST" && r.path === "/identity/connect/token") {
      state.tokenRequests.push(new URLSearchParams(r.text));
      if (state.tokenReply) return state.tokenReply;
      return json(200, { access_token: `tok-${state.tokenRequests.length}`, expires_in: state.expiresIn, token_type: "Bearer" });
    }
    if (r.method === "POST" && r.path === "/api/v1/tenants/tenant-1/namespaces/ns-1/omf") {
      state.omfAuth.push(r.headers.authorization);
      const token = r.headers.authorization?.replace(/^Bearer /, "");
      if (!token?.startsWith("tok-") || state.revoked.has(token)) return json(401, "");
      return json(202, CDS_ACCEPTED);
    }
    return json(404, "");
  }, true);
  return state;
}

const adhInput = (url: string): OmfEndpointInput => ({
  kind: "adh",
  name: "adh",
  url,
  tenantId: "tenant-1",
  namespaceId: "ns-1",
  clientId: "client-1",
  clientSecret: SECRET,
  caPemPath: TEST_CA_PATH,
});

describe("AVEVA Data Hub", () => {
  it("discovers the token endpoint, sends client credentials and Bearer, and caches the token", async () => {
    const adh = await fakeAdh();
    const c = client(adhInput(adh.s.url));
    const r1 = await c.send(typeMessage([FIRST_DYNAMIC_TYPE]));
    await c.send(containerMessage([FIRST_CONTAINER]));
    expect(r1).toMatchObject({ ok: true, status: 202, operationId: CDS_ACCEPTED["Operation-Id"] });
    expect(adh.discoveryRequests).toBe(1);
    expect(adh.tokenRequests).toHaveLength(1);
    expect(Object.fromEntries(adh.tokenRequests[0]!)).toEqual({
      client_id: "client-1",
      client_secret: SECRET,
      grant_type: "client_credentials",
    });
    expect(adh.omfAuth).toEqual(["Bearer tok-1", "Bearer tok-1"]);
    const omf = adh.s.requests.filter((r) => r.path.endsWith("/omf"));
    expect(omf[0]?.headers["x-requested-with"]).toBeUndefined();
    expect(omf[0]?.headers["omfversion"]).toBe("1.2");
    expect(adh.s.requests[0]?.headers.accept).toBe("application/json");
  });

  it("refreshes before expiry: 5 min early for long tokens, at half-life for short ones", async () => {
    let now = 1_000_000;
    const adh = await fakeAdh(3600);
    const c = client(adhInput(adh.s.url), { now: () => now });
    await c.send(sampleData());
    now += 3300_000 - 1;
    await c.send(sampleData());
    expect(adh.tokenRequests).toHaveLength(1);
    now += 1;
    await c.send(sampleData());
    expect(adh.tokenRequests).toHaveLength(2);
    expect(adh.omfAuth.at(-1)).toBe("Bearer tok-2");

    adh.expiresIn = 60;
    now += 3300_000; // tok-2 due for refresh → tok-3 lives 60 s, refreshed after 30 s
    await c.send(sampleData());
    expect(adh.omfAuth.at(-1)).toBe("Bearer tok-3");
    now += 29_999;
    await c.send(sampleData());
    expect(adh.omfAuth.at(-1)).toBe("Bearer tok-3");
    now += 1;
    await c.send(sampleData());
    expect(adh.omfAuth.at(-1)).toBe("Bearer tok-4");
    expect(adh.discoveryRequests).toBe(1);
  });

  it("on 401 fetches a new token and retries exactly once", async () => {
    const adh = await fakeAdh();
    const c = client(adhInput(adh.s.url));
    await c.send(sampleData());
    adh.revoked.add("tok-1");
    await expect(c.send(sampleData())).resolves.toMatchObject({ ok: true });
    expect(adh.omfAuth).toEqual(["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]);

    adh.revoked.add("tok-2");
    adh.revoked.add("tok-3");
    const err = await c.send(sampleData()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmfAuthError);
    expect(adh.omfAuth.slice(3)).toEqual(["Bearer tok-2", "Bearer tok-3"]);
  });

  it("concurrent sends share one token request", async () => {
    const adh = await fakeAdh();
    const c = client(adhInput(adh.s.url));
    await Promise.all(Array.from({ length: 5 }, () => c.send(sampleData())));
    expect(adh.tokenRequests).toHaveLength(1);
    expect(adh.discoveryRequests).toBe(1);
  });

  it("refuses a discovered token endpoint outside the resource, without sending the secret", async () => {
    const adh = await fakeAdh();
    adh.tokenEndpoint = "https://evil.example.com/identity/connect/token";
    const c = client(adhInput(adh.s.url));
    const err = await c.send(sampleData()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmfAuthError);
    expect((err as Error).message).toMatch(/token_endpoint is not under the resource URL/);
    expect(adh.tokenRequests).toHaveLength(0);
  });

  it("turns rejected client credentials into OmfAuthError without echoing the secret", async () => {
    const adh = await fakeAdh();
    adh.tokenReply = json(400, { error: "invalid_client", error_description: `bad secret ${SECRET}` });
    const c = client(adhInput(adh.s.url));
    const err = await c.send(sampleData()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmfAuthError);
    expect((err as Error).message).toBe("token request at adh: HTTP 400 invalid_client");
    expect(adh.omfAuth).toHaveLength(0);
  });

  it("a token endpoint outage is retryable", async () => {
    const adh = await fakeAdh();
    adh.tokenReply = json(503, "");
    const c = client(adhInput(adh.s.url));
    await expect(c.send(sampleData())).rejects.toBeInstanceOf(OmfServerError);
  });
});

describe("Edge Data Store", () => {
  it("POSTs to the default tenant/namespace without any Authorization header", async () => {
    const s = await server(() => json(202, CDS_ACCEPTED));
    const c = client({ kind: "eds", url: s.url, omfVersion: "1.1" });
    await c.send(sampleData());
    const [r] = s.requests;
    expect(r?.path).toBe("/api/v1/tenants/default/namespaces/default/omf");
    expect(r?.headers.authorization).toBeUndefined();
    expect(r?.headers["x-requested-with"]).toBeUndefined();
    expect(omfHeaderValues(r!)).toMatchObject({ messagetype: "data", omfversion: "1.1", compression: "gzip" });
    expect(JSON.parse(r!.text)).toEqual(sampleData().body);
  });
});

describe("transport failures and throttling", () => {
  const eds = (url: string, extra: object = {}) => client({ kind: "eds", url, compression: false, ...extra } as OmfEndpointInput);

  it("a request that outlives timeoutMs is an OmfServerError (timeout)", async () => {
    const s = await server(() => ({ hang: true }));
    const c = eds(s.url, { timeoutMs: 150 });
    const started = Date.now();
    const err = await c.send(sampleData()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmfServerError);
    expect((err as OmfServerError).code).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("a connection reset or refused connection is a retryable OmfServerError", async () => {
    const s = await server(() => ({ reset: true }));
    const err = await eds(s.url)
      .send(sampleData())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmfServerError);
    expect(err).toBeInstanceOf(OmfError);
    expect((err as OmfServerError).retryable).toBe(true);
    const closed = await startRecordingServer(() => json(200, ""));
    await closed.close();
    const refused = await eds(closed.url)
      .send(sampleData())
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OmfServerError);
    expect((refused as OmfServerError).code).toBe("ECONNREFUSED");
  });

  it("429 and 503 with Retry-After are OmfThrottledError carrying the delay", async () => {
    let status = 429;
    const s = await server(() => json(status, "", { "retry-after": "2" }));
    const c = eds(s.url);
    const e429 = await c.send(sampleData()).catch((e: unknown) => e);
    expect(e429).toBeInstanceOf(OmfThrottledError);
    expect((e429 as OmfThrottledError).retryAfterMs).toBe(2000);
    status = 503;
    const e503 = await c.send(sampleData()).catch((e: unknown) => e);
    expect(e503).toBeInstanceOf(OmfThrottledError);
  });

  it("the caller's abort is rethrown as is, not classified", async () => {
    const s = await server(() => ({ hang: true }));
    const controller = new AbortController();
    const pending = eds(s.url).send(sampleData(), { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const err = await pending.catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(OmfError);
    expect(err).not.toBeInstanceOf(OmfServerError);
    expect((err as Error).name).toBe("AbortError");
  });

  it("works with @meridian/retry: server errors are retried until success", async () => {
    let n = 0;
    const s = await server(() => (++n < 3 ? json(503, "") : json(202, CDS_ACCEPTED)));
    const c = eds(s.url);
    const result = await retry(() => c.send(sampleData()), { policy: { initialMs: 1, maxMs: 5, multiplier: 2, jitter: 0 } });
    expect(result.ok).toBe(true);
    expect(s.requests).toHaveLength(3);
  });
});

describe("batching on the wire", () => {
  it("sendBatched keeps every request body within maxBodyBytes and delivers all values in order (unverified: limit pre- or post-gzip; the pre-gzip budget satisfies both)", async () => {
    const s = await server(() => json(202, CDS_ACCEPTED));
    const c = client({ kind: "eds", url: s.url, maxBodyBytes: 1024, maxValuesPerRequest: 1000 });
    const message = sampleData(100);
    const results = await c.sendBatched(message);
    expect(results.length).toBeGreaterThan(1);
    expect(s.requests).toHaveLength(results.length);
    for (const r of s.requests) expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(1024);
    const received = s.requests.flatMap((r) => (JSON.parse(r.text) as OmfContainerData[]).flatMap((i) => i.values));
    expect(received).toEqual((message.body[0] as OmfContainerData).values);
  });

  it("sendSplittingOn413 halves until the endpoint accepts, delivering each value once", async () => {
    const s = await server((r) => {
      const values = (JSON.parse(r.text) as OmfContainerData[]).reduce((n, i) => n + i.values.length, 0);
      return values > 3 ? json(413, PI_413) : json(200, "");
    }, true);
    const c = client(piInput(s.url));
    const message = sampleData(10);
    const results = await c.sendSplittingOn413(message);
    const accepted = s.requests.filter((_, i) => i > 0).map((r) => JSON.parse(r.text) as OmfContainerData[]);
    expect(results.every((r) => r.ok)).toBe(true);
    const delivered = s.requests
      .map((r) => JSON.parse(r.text) as OmfContainerData[])
      .filter((b) => b.reduce((n, i) => n + i.values.length, 0) <= 3)
      .flatMap((b) => b.flatMap((i) => i.values));
    expect(delivered).toEqual((message.body[0] as OmfContainerData).values);
    expect(accepted.length).toBeGreaterThan(1);
  });
});

describe("sendToEndpoints", () => {
  it("sends to every endpoint in parallel and reports each outcome in order", async () => {
    // A barrier: nobody answers until all three requests have arrived, so a sequential sender would time out.
    let arrived = 0;
    let release: () => void = () => {};
    const all = new Promise<void>((r) => {
      release = r;
    });
    const gate = async (reply: Reply): Promise<Reply> => {
      if (++arrived === 3) release();
      await Promise.race([all, new Promise((r) => setTimeout(r, 2000))]);
      return arrived >= 3 ? reply : json(500, "not parallel");
    };
    const piServer = await server(() => gate(json(200, "")), true);
    const edsServer = await server(() => gate(json(202, CDS_ACCEPTED)));
    const badServer = await server(() => gate(json(409, PI_PARTIAL_409)), true);
    const clients = [
      client(piInput(piServer.url, { name: "pi-main" })),
      client({ kind: "eds", name: "edge", url: edsServer.url }),
      client(piInput(badServer.url, { name: "pi-dr" })),
    ];
    const outcomes = await sendToEndpoints(clients, sampleData());
    expect(outcomes.map((o) => [o.endpoint, o.kind, o.ok])).toEqual([
      ["pi-main", "pi", true],
      ["edge", "eds", true],
      ["pi-dr", "pi", false],
    ]);
    const failed = outcomes[2];
    expect(failed && !failed.ok && failed.error).toBeInstanceOf(OmfConflictError);
  });
});
