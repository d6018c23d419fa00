import { json, type RecordedRequest, type RecordingServer, type Reply, startRecordingServer } from "@meridian/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildQ, createDataApiClient, dataAccessOf, TokenSource } from "./data-api.js";
import { OciInvalidArgumentError, OciNotAuthenticatedError, OciNotFoundError, OciThrottledError, OciUnavailableError } from "./errors.js";
import { createAgent, exchange } from "./transport.js";
import type { DataAccessCredentials, DataApiClient, IotDomain } from "./types.js";

const DOMAIN: IotDomain = {
  id: "ocid1.iotdomain.oc1..d1",
  iotDomainGroupId: "ocid1.iotdomaingroup.oc1..g1",
  displayName: "d",
  lifecycleState: "ACTIVE",
  deviceHost: "dshort.device.iot.eu-frankfurt-1.oci.oraclecloud.com",
  dbAllowedIdentityDomainHost: "idcs-1.identity.oraclecloud.com",
  dataHost: "gshort.data.iot.eu-frankfurt-1.oci.oraclecloud.com",
  domainShortId: "dshort",
  groupShortId: "gshort",
};
const CREDENTIALS: DataAccessCredentials = { clientId: "app-id", clientSecret: "app-s3cret", username: "reader", password: "pa55:word&x" };
const INSTANCE = "ocid1.iotdigitaltwininstance.oc1..i1";
const envelope = (items: unknown[], extra: Record<string, unknown> = {}) =>
  json(200, { items, hasMore: false, limit: 25, offset: 0, count: items.length, links: [], ...extra });

let server: RecordingServer;
let client: DataApiClient;
let tokens: number;
let ords: (req: RecordedRequest) => Reply;

const tokenRequests = () => server.requests.filter((r) => r.path === "/oauth2/v1/token");
const dataRequests = () => server.requests.filter((r) => r.path.startsWith("/ords/"));

beforeEach(async () => {
  tokens = 0;
  ords = () => envelope([]);
  server = await startRecordingServer((req) => {
    if (req.path === "/oauth2/v1/token") {
      tokens++;
      return json(200, { access_token: `tok-${tokens}`, token_type: "Bearer", expires_in: 3600 });
    }
    return ords(req);
  });
  client = createDataApiClient(DOMAIN, CREDENTIALS, { auth: { kind: "instance_principal" }, dataUrl: server.url, identityUrl: server.url });
});

afterEach(async () => {
  await client.close?.();
  await server.close();
});

describe("data access", () => {
  it("derives the data endpoint, token endpoint and scope from the domain as manage-dt does", () => {
    expect(dataAccessOf(DOMAIN, {})).toEqual({
      dataEndpoint: "https://gshort.data.iot.eu-frankfurt-1.oci.oraclecloud.com/ords/dshort/20250531",
      tokenEndpoint: "https://idcs-1.identity.oraclecloud.com/oauth2/v1/token",
      scope: "/gshort/iot/dshort",
    });
    expect(dataAccessOf(DOMAIN, { dataUrl: "http://127.0.0.1:1", identityUrl: "http://127.0.0.1:2" })).toMatchObject({
      dataEndpoint: "http://127.0.0.1:1/ords/dshort/20250531",
      tokenEndpoint: "http://127.0.0.1:2/oauth2/v1/token",
    });
  });

  it("refuses a domain whose data access is not configured, saying so", () => {
    const { dbAllowedIdentityDomainHost: _, ...unconfigured } = DOMAIN;
    const err = (() => {
      try {
        createDataApiClient(unconfigured, CREDENTIALS, { auth: { kind: "instance_principal" } });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(OciInvalidArgumentError);
    expect(err).toMatchObject({ field: "iotDomain.dbAllowedIdentityDomainHost" });
    expect((err as Error).message).toContain("ORDS data access has not been configured");
  });

  it("refuses missing credentials", () => {
    expect(() =>
      createDataApiClient(DOMAIN, { ...CREDENTIALS, password: "" }, { auth: { kind: "instance_principal" }, dataUrl: server.url }),
    ).toThrow(expect.objectContaining({ field: "credentials.password" }));
  });
});

describe("query", () => {
  it("asks the identity domain for a password-grant token with the domain's scope, then queries ORDS with it", async () => {
    ords = () =>
      envelope(
        [
          {
            id: 7,
            digital_twin_instance_id: INSTANCE,
            content_path: "humidity",
            value: 56.1,
            time_observed: "2026-11-30T10:00:00.123456Z",
          },
          {
            id: 8,
            digital_twin_instance_id: INSTANCE,
            content_path: "pressure",
            value: 1012.2,
            time_observed: "2026-11-30T10:00:00.123456Z",
          },
        ],
        { hasMore: true, limit: 2, offset: 0, count: 2 },
      );
    const page = await client.query("historizedData", {
      digitalTwinInstanceId: INSTANCE,
      filter: [{ id: { $gt: 6 } }],
      orderBy: { id: "asc" },
      limit: 2,
    });
    expect(page).toEqual({
      items: [
        { id: 7, digital_twin_instance_id: INSTANCE, content_path: "humidity", value: 56.1, time_observed: "2026-11-30T10:00:00.123456Z" },
        {
          id: 8,
          digital_twin_instance_id: INSTANCE,
          content_path: "pressure",
          value: 1012.2,
          time_observed: "2026-11-30T10:00:00.123456Z",
        },
      ],
      hasMore: true,
      limit: 2,
      offset: 0,
      count: 2,
    });

    const [tokenReq] = tokenRequests();
    expect(tokenReq?.method).toBe("POST");
    expect(tokenReq?.headers.authorization).toBe(`Basic ${Buffer.from("app-id:app-s3cret").toString("base64")}`);
    expect(tokenReq?.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(Object.fromEntries(new URLSearchParams(tokenReq!.text))).toEqual({
      grant_type: "password",
      username: "reader",
      password: "pa55:word&x",
      scope: "/gshort/iot/dshort",
    });

    const [dataReq] = dataRequests();
    const url = new URL(dataReq!.path, server.url);
    expect(dataReq?.method).toBe("GET");
    expect(url.pathname).toBe("/ords/dshort/20250531/historizedData");
    expect(dataReq?.headers.authorization).toBe("Bearer tok-1");
    expect(JSON.parse(url.searchParams.get("q")!)).toEqual({
      $and: [{ digital_twin_instance_id: INSTANCE }, { id: { $gt: 6 } }],
      $orderby: { id: "asc" },
    });
    expect(url.searchParams.get("limit")).toBe("2");
    expect(url.searchParams.get("offset")).toBe("0");
  });

  it("builds q exactly as the source pipeline polls", () => {
    expect(JSON.stringify(buildQ({ digitalTwinInstanceId: INSTANCE, filter: [{ id: { $gt: 41 } }], orderBy: { id: "asc" } }))).toBe(
      `{"$and":[{"digital_twin_instance_id":"${INSTANCE}"},{"id":{"$gt":41}}],"$orderby":{"id":"asc"}}`,
    );
    expect(buildQ({})).toBeUndefined();
    expect(buildQ({ orderBy: { time_observed: "desc" } })).toEqual({ $orderby: { time_observed: "desc" } });
  });

  it("defaults limit 25 and offset 0, sends no q for an unfiltered query, and fills missing envelope fields", async () => {
    ords = () => json(200, { items: [{ id: 1 }] });
    const page = await client.query("rawData", {});
    expect(page).toEqual({ items: [{ id: 1 }], hasMore: false, limit: 25, offset: 0, count: 1 });
    const url = new URL(dataRequests()[0]!.path, server.url);
    expect(url.searchParams.has("q")).toBe(false);
    expect(url.searchParams.get("limit")).toBe("25");
  });

  it("refuses a limit outside 1..500, a negative offset and an unknown data set before sending", async () => {
    await expect(client.query("rawData", { limit: 0 })).rejects.toMatchObject({ field: "limit" });
    await expect(client.query("rawData", { limit: 501 })).rejects.toMatchObject({ field: "limit" });
    await expect(client.query("rawData", { offset: -1 })).rejects.toMatchObject({ field: "offset" });
    await expect(client.query("bogus" as "rawData", {})).rejects.toMatchObject({ field: "dataSet" });
    await expect(client.query("rawData", { orderBy: { id: "up" as "asc" } })).rejects.toMatchObject({ field: "orderBy.id" });
    expect(server.requests).toHaveLength(0);
  });

  it("reads one row with get()", async () => {
    ords = () => json(200, { id: 12, endpoint: "iot/v1/telemetry", content: { humidity: 56.1 } });
    expect(await client.get("rawData", 12)).toEqual({ id: 12, endpoint: "iot/v1/telemetry", content: { humidity: 56.1 } });
    expect(dataRequests()[0]?.path).toBe("/ords/dshort/20250531/rawData/12");
    await expect(client.get("rawData", -3)).rejects.toMatchObject({ field: "id" });
    await expect(client.get("snapshotData" as "rawData", 1)).rejects.toMatchObject({ field: "dataSet" });
  });

  it("maps ORDS errors: 404 → OciNotFoundError, 400 → OciInvalidArgumentError on q, 429 with Retry-After, 5xx", async () => {
    ords = () => json(404, { code: "NotFound", message: "no such row" });
    await expect(client.get("rejectedData", 99)).rejects.toMatchObject({ name: "OciNotFoundError", resource: "rejectedData/99" });
    ords = () => json(400, { code: "BadRequest", message: "The filter is malformed" });
    const bad = await client.query("rawData", { filter: [{ $bogus: 1 }] }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OciInvalidArgumentError);
    expect(bad).toMatchObject({ field: "q", status: 400 });
    ords = () => json(429, { code: "TooManyRequests", message: "slow" }, { "retry-after": "3" });
    const slow = await client.query("rawData", {}).catch((e: unknown) => e);
    expect(slow).toBeInstanceOf(OciThrottledError);
    expect(slow).toMatchObject({ retryAfterMs: 3000 });
    ords = () => json(503, { code: "ServiceUnavailable", message: "down" });
    await expect(client.query("rawData", {})).rejects.toBeInstanceOf(OciUnavailableError);
    ords = () => ({ reset: true });
    await expect(client.query("rawData", {})).rejects.toMatchObject({ name: "OciUnavailableError", retryable: true });
    expect(OciNotFoundError).toBeDefined();
  });

  it("takes an answer that is not ORDS's envelope for a malformed response", async () => {
    ords = () => json(200, { rows: [] });
    await expect(client.query("rawData", {})).rejects.toMatchObject({ code: "MalformedResponse" });
  });
});

describe("token", () => {
  it("is fetched once for concurrent callers and reused while fresh", async () => {
    await Promise.all(Array.from({ length: 5 }, () => client.query("rawData", {})));
    await client.query("historizedData", {});
    expect(tokenRequests()).toHaveLength(1);
    expect(dataRequests()).toHaveLength(6);
  });

  it("is renewed once when ORDS answers 401, and the query is sent again", async () => {
    ords = (req) =>
      req.headers.authorization === "Bearer tok-1" ? json(401, { code: "Unauthorized", message: "expired" }) : envelope([{ id: 1 }]);
    const page = await client.query("rawData", {});
    expect(page.items).toEqual([{ id: 1 }]);
    expect(tokenRequests()).toHaveLength(2);
    expect(dataRequests().map((r) => r.headers.authorization)).toEqual(["Bearer tok-1", "Bearer tok-2"]);
  });

  it("gives OciNotAuthenticatedError when ORDS refuses the renewed token too", async () => {
    ords = () => json(401, { code: "Unauthorized", message: "wrong scope" });
    await expect(client.query("rawData", {})).rejects.toBeInstanceOf(OciNotAuthenticatedError);
    expect(tokenRequests()).toHaveLength(2);
    expect(dataRequests()).toHaveLength(2);
  });

  it("reports the identity domain refusing the credentials without quoting them", async () => {
    server.handler = () => json(401, { error: "invalid_client", error_description: "Client authentication failed" });
    const err = await client.query("rawData", {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciNotAuthenticatedError);
    expect(err).toMatchObject({ code: "invalid_client", status: 401 });
    for (const secret of ["app-s3cret", "pa55:word&x"]) expect((err as Error).message).not.toContain(secret);
  });

  it("is renewed TOKEN_GRACE_MS (60 s) before it expires, and at half its life when it lives under 2 minutes", async () => {
    let now = 1_000_000;
    let expiresIn = 3600;
    server.handler = () => {
      tokens++;
      return json(200, { access_token: `t${tokens}`, expires_in: expiresIn });
    };
    const agent = createAgent(undefined);
    const source = new TokenSource(
      dataAccessOf(DOMAIN, { dataUrl: server.url, identityUrl: server.url }),
      CREDENTIALS,
      exchange,
      { timeoutMs: 5000, agent },
      () => now,
    );
    expect(await source.get()).toBe("t1");
    now += 3600_000 - 60_001;
    expect(await source.get()).toBe("t1");
    now += 1;
    expect(await source.get()).toBe("t2");
    expiresIn = 60;
    now += 3600_000;
    expect(await source.get()).toBe("t3");
    now += 29_999;
    expect(await source.get()).toBe("t3");
    now += 1;
    expect(await source.get()).toBe("t4");
    await agent.close();
  });

  it("lets a caller's abort end its own wait only", async () => {
    server.handler = () => ({ delayMs: 200, reply: json(200, { access_token: "slow", expires_in: 3600 }) });
    const agent = createAgent(undefined);
    const source = new TokenSource(dataAccessOf(DOMAIN, { dataUrl: server.url, identityUrl: server.url }), CREDENTIALS, exchange, {
      timeoutMs: 5000,
      agent,
    });
    const abort = new AbortController();
    const first = source.get(abort.signal);
    const second = source.get();
    abort.abort(new Error("caller gone"));
    await expect(first).rejects.toThrow("caller gone");
    await expect(second).resolves.toBe("slow");
    expect(server.requests).toHaveLength(1);
    await agent.close();
  });
});
