import type { AccessToken, TokenCredential } from "@azure/identity";
import { json, type RecordingServer, type Reply, startRecordingServer, until, zeroBody } from "@meridian/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OmniaClient, type OmniaClientOptions } from "./client.js";
import {
  OmniaBadRequestError,
  OmniaCollectLimitError,
  OmniaConflictError,
  OmniaError,
  OmniaForbiddenError,
  OmniaNotFoundError,
  OmniaProtocolError,
  OmniaResponseTooLargeError,
  OmniaServerError,
  OmniaThrottledError,
  OmniaUnauthorizedError,
  OmniaValidationError,
} from "./errors.js";
import { encodeCompactDatapoints } from "./protobuf.js";

const BASE = "/plant/timeseries/v1.7";
const ID = "00000000-0000-0000-0000-000000000001";
const GOLDEN =
  "0a590a2430303030303030302d303030302d303030302d303030302d30303030303030303030303110011a0474696d651a0576616c75651a06737461747573220a0880d1e583e7a99efc1722091100000020f3d16e40220318c001";
const FAST = { initialMs: 1, maxMs: 5, multiplier: 2, jitter: 0 };

/** A credential that hands out `t1`, `t2`, … and counts its calls. */
function countingCredential(): TokenCredential & { calls: number; scopes: string[] } {
  const cred = {
    calls: 0,
    scopes: [] as string[],
    async getToken(scope: string | string[]): Promise<AccessToken> {
      cred.calls++;
      cred.scopes.push(String(scope));
      return { token: `t${cred.calls}`, expiresOnTimestamp: Date.now() + 3_600_000 };
    },
  };
  return cred;
}

const ok = (body: unknown) => json(200, body);
const protobufReply = (bytes: Uint8Array, type = "application/protobuf"): Reply => ({
  status: 200,
  headers: { "content-type": type },
  stream: [bytes],
});
const errorReply = (status: number, message: string, headers?: Record<string, string>) =>
  json(status, { statusCode: status, message, traceId: "trace-1" }, headers);

let server: RecordingServer;
let cred: ReturnType<typeof countingCredential>;

function client(extra: Partial<OmniaClientOptions> = {}): OmniaClient {
  return new OmniaClient({ environment: "test", baseUrl: `${server.url}${BASE}`, credential: cred, backoff: FAST, ...extra });
}

function reply(...replies: Reply[]) {
  let i = 0;
  server.handler = () => replies[Math.min(i++, replies.length - 1)]!;
}

function lastUrl(): URL {
  return new URL(server.requests.at(-1)!.path, server.url);
}

beforeEach(async () => {
  server = await startRecordingServer(() => ok({ data: { items: [] } }));
  cred = countingCredential();
});
afterEach(async () => {
  await server.close();
});

describe("request shapes", () => {
  it("every call carries the bearer token, Content-Type JSON and the Accept asked for; the token is for <resource>/.default", async () => {
    await client()
      .getTimeseries(ID)
      .catch(() => {});
    const r = server.requests[0]!;
    expect(r.headers.authorization).toBe("Bearer t1");
    expect(r.headers["content-type"]).toBe("application/json");
    expect(r.headers.accept).toBe("application/json");
    expect(cred.scopes[0]).toBe("32f2a909-8a98-4eb8-b22d-1208d9350cb0/.default");
    server.handler = () => protobufReply(Buffer.from(GOLDEN, "hex"));
    await client({ resourceId: "api://emulator" }).getDatapoints(ID, {}, { format: "protobuf" });
    expect(server.requests.at(-1)!.headers.accept).toBe("application/protobuf");
    expect(cred.scopes.at(-1)).toBe("api://emulator/.default");
  });

  it("GET /{id}/data: exact query names, repeated status keys, lowercase booleans, 7-digit UTC times", async () => {
    await client().getDatapoints(ID, {
      startTime: "2022-01-01T01:00:00+01:00",
      endTime: new Date("2022-01-02T00:00:00Z"),
      status: [192, 0],
      includeOutsidePoints: true,
      limit: 5000,
      continuationToken: "tok",
      federationSource: "DataLake",
      debug: false,
    });
    const url = lastUrl();
    expect(server.requests[0]!.method).toBe("GET");
    expect(url.pathname).toBe(`${BASE}/${ID}/data`);
    expect([...url.searchParams]).toEqual([
      ["startTime", "2022-01-01T00:00:00.0000000Z"],
      ["endTime", "2022-01-02T00:00:00.0000000Z"],
      ["status", "192"],
      ["status", "0"],
      ["includeOutsidePoints", "true"],
      ["limit", "5000"],
      ["continuationToken", "tok"],
      ["federationSource", "DataLake"],
      ["debug", "false"],
    ]);
  });

  it("aggregates send aggregateFunction repeated (query's singular name) and every other parameter", async () => {
    await client().getAggregates(ID, {
      aggregateFunctions: ["avg", "min", "max", "sum", "stddev", "count", "first", "last"],
      processingInterval: "15m",
      fill: "none",
      alignToCache: true,
      limit: 10,
    });
    const url = lastUrl();
    expect(url.pathname).toBe(`${BASE}/${ID}/data/aggregates`);
    expect(url.searchParams.getAll("aggregateFunction")).toEqual(["avg", "min", "max", "sum", "stddev", "count", "first", "last"]);
    expect(url.searchParams.get("processingInterval")).toBe("15m");
    expect(url.searchParams.get("fill")).toBe("none");
    expect(url.searchParams.get("alignToCache")).toBe("true");
  });

  it("each operation's method and path", async () => {
    const c = client();
    const ts = { id: ID, name: "n", facility: "JSV" };
    server.handler = (req) => {
      if (req.method === "GET" && req.path.includes("/facets/")) return ok({ data: { items: [] } });
      return ok({ data: { items: [ts] } });
    };
    const calls: [() => Promise<unknown>, string, string][] = [
      [() => c.listTimeseries({ facility: "JSV", limit: 10 }), "GET", `${BASE}?facility=JSV&limit=10`],
      [() => c.searchTimeseries({ name: "*test*", source: "IMS" }), "GET", `${BASE}/search?name=*test*&source=IMS`],
      [() => c.searchTimeseries({ query: "ASGB.17IIC1030*", source: "IMS" }), "GET", `${BASE}/search/ASGB.17IIC1030*?source=IMS`],
      [() => c.getTimeseries(ID), "GET", `${BASE}/${ID}`],
      [() => c.createTimeseries({ name: "n", facility: "JSV" }), "POST", BASE],
      [() => c.patchTimeseries(ID, { unit: "bar" }), "PATCH", `${BASE}/${ID}`],
      [() => c.putTimeseries(ID, { name: "n", facility: "JSV" }), "PUT", `${BASE}/${ID}`],
      [() => c.deleteTimeseries(ID), "DELETE", `${BASE}/${ID}`],
      [() => c.getOrAddTimeseries([{ name: "n", facility: "JSV" }]), "POST", `${BASE}/getoradd`],
      [() => c.getFacilities({ source: "IMS" }), "GET", `${BASE}/facets/facility?source=IMS`],
      [() => c.getSources({ facility: "JSV" }), "GET", `${BASE}/facets/source?facility=JSV`],
      [() => c.getHistory(ID), "GET", `${BASE}/${ID}/history`],
      [
        () => c.getDatapointsByName({ name: "A/B", facility: "JSV", terminal: "t" }),
        "GET",
        `${BASE}/query/data?name=A%2FB&facility=JSV&terminal=t`,
      ],
      [
        () => c.getFirstDatapoint(ID, { afterTime: "2022-01-01" }),
        "GET",
        `${BASE}/${ID}/data/first?afterTime=2022-01-01T00%3A00%3A00.0000000Z`,
      ],
      [() => c.getLatestDatapoint(ID, { status: [192] }), "GET", `${BASE}/${ID}/data/latest?status=192`],
      [() => c.getFirstDatapoints([{ id: ID }], { federationSource: "IMS" }), "POST", `${BASE}/query/data/first?federationSource=IMS`],
      [() => c.getLatestDatapoints([{ id: ID }]), "POST", `${BASE}/query/data/latest`],
      [() => c.queryDatapoints([{ id: ID }], { alignToCache: false }), "POST", `${BASE}/query/data?alignToCache=false`],
      [
        () => c.writeDatapoints(ID, [{ time: "2022-01-01T00:00:00Z", value: 1, status: 192 }], { async: true }),
        "POST",
        `${BASE}/${ID}/data?async=true`,
      ],
      [() => c.writeMultipleDatapoints([{ id: ID, datapoints: [{ time: 0n, value: 1, status: 192 }] }]), "POST", `${BASE}/data`],
      [
        () => c.deleteDatapoints(ID, { startTime: "2022-01-01", endTime: "2022-01-02" }),
        "DELETE",
        `${BASE}/${ID}/data?startTime=2022-01-01T00%3A00%3A00.0000000Z&endTime=2022-01-02T00%3A00%3A00.0000000Z`,
      ],
      [() => c.listStreamingSubscriptions(), "GET", `${BASE}/streaming/subscriptions`],
      [() => c.createStreamingSubscriptions([ID]), "POST", `${BASE}/streaming/subscriptions`],
      [() => c.deleteStreamingSubscription(ID), "DELETE", `${BASE}/streaming/subscriptions/${ID}`],
      [() => c.setStreamingDestination("Endpoint=sb://x/;SharedAccessKey=k"), "POST", `${BASE}/streaming/destination`],
    ];
    for (const [call, method, path] of calls) {
      await call();
      const r = server.requests.at(-1)!;
      expect(`${r.method} ${r.path}`).toBe(`${method} ${path}`);
    }
  });

  it("bodies: multi-query items use the body's names (statusFilter, aggregateFunctions); writes {datapoints} and {items}", async () => {
    await client().queryDatapoints([
      { id: "a", startTime: "2022-01-01", limit: 10, statusFilter: [192], includeOutsidePoints: true },
      { id: "b", aggregateFunctions: ["avg", "count"], processingInterval: "1h", fill: null },
    ]);
    expect(JSON.parse(server.requests.at(-1)!.text)).toEqual([
      { id: "a", startTime: "2022-01-01T00:00:00.0000000Z", limit: 10, statusFilter: [192], includeOutsidePoints: true },
      { id: "b", fill: null, aggregateFunctions: ["avg", "count"], processingInterval: "1h" },
    ]);
    await client().writeDatapoints(ID, [{ time: "2022-01-01T00:00:00.5Z", value: 2.5, status: 192 }]);
    expect(JSON.parse(server.requests.at(-1)!.text)).toEqual({
      datapoints: [{ time: "2022-01-01T00:00:00.5000000Z", value: 2.5, status: 192 }],
    });
    await client().writeMultipleDatapoints([{ id: "x", datapoints: [{ time: 1_000_000_000n, value: 1, status: 0 }] }]);
    expect(JSON.parse(server.requests.at(-1)!.text)).toEqual({
      items: [{ id: "x", datapoints: [{ time: "1970-01-01T00:00:01.0000000Z", value: 1, status: 0 }] }],
    });
    await client().createStreamingSubscriptions(["a", "b"]);
    expect(JSON.parse(server.requests.at(-1)!.text)).toEqual([{ id: "a" }, { id: "b" }]);
    await client().setStreamingDestination("Endpoint=sb://hub/;SharedAccessKey=k");
    expect(JSON.parse(server.requests.at(-1)!.text)).toEqual({ connectionString: "Endpoint=sb://hub/;SharedAccessKey=k" });
  });

  it("an id with a slash stays one path segment", async () => {
    await client()
      .getTimeseries("a/b")
      .catch(() => {});
    expect(server.requests.at(-1)!.path).toBe(`${BASE}/a%2Fb`);
  });
});

describe("answers", () => {
  it("JSON datapoints (the README's sample) with exact times", async () => {
    server.handler = () =>
      ok({
        data: { items: [{ id: ID, datapoints: [{ time: "2021-02-01T09:54:05.4200000Z", value: -0.000286102294921875, status: 192 }] }] },
        continuationToken: null,
      });
    const page = await client().getDatapoints(ID);
    expect(page).toEqual({
      items: [
        {
          id: ID,
          datapoints: [
            { time: "2021-02-01T09:54:05.4200000Z", timeNs: 1_612_173_245_420_000_000n, value: -0.000286102294921875, status: 192 },
          ],
        },
      ],
    });
  });

  it("protobuf datapoints: the golden bytes, under each of the three protobuf media types", async () => {
    for (const type of ["application/protobuf", "application/x-protobuf", "application/x-google-protobuf"]) {
      server.handler = () => protobufReply(Buffer.from(GOLDEN, "hex"), type);
      const page = await client().getDatapoints(ID, {}, { format: "protobuf" });
      expect(page.items).toEqual([
        {
          id: ID,
          totalCount: 1n,
          datapoints: [
            { time: "2024-09-25T11:30:34.8980000Z", timeNs: 1_727_263_834_898_000_000n, value: 246.56092834472656, status: 192 },
          ],
        },
      ]);
      expect(page.continuationToken).toBeUndefined();
    }
  });

  it("protobuf asked, JSON answered (a gateway that ignores Accept): read as JSON — both readings", async () => {
    server.handler = () => ok({ data: { items: [{ id: ID, datapoints: [{ time: "2021-02-01T09:54:05.42Z", value: 1, status: 192 }] }] } });
    const page = await client({ protobufMediaType: "application/x-protobuf" }).getDatapoints(ID, {}, { format: "protobuf" });
    expect(server.requests[0]!.headers.accept).toBe("application/x-protobuf");
    expect(page.items[0]?.datapoints[0]?.timeNs).toBe(1_612_173_245_420_000_000n);
  });

  it("aggregates in JSON and protobuf; first/latest give the one point or undefined", async () => {
    server.handler = () =>
      ok({ data: { items: [{ id: ID, datapoints: [{ time: "2022-01-01T00:00:00.0000000Z", avg: 1.5, count: 4, max: 3 }] }] } });
    const page = await client().getAggregates(ID, { aggregateFunctions: ["avg", "count", "max"] });
    expect(page.items[0]?.aggregates).toEqual([
      { time: "2022-01-01T00:00:00.0000000Z", timeNs: 1_640_995_200_000_000_000n, avg: 1.5, count: 4, max: 3 },
    ]);
    server.handler = () =>
      protobufReply(
        encodeCompactDatapoints({
          data: [
            {
              id: ID,
              totalCount: 1n,
              fields: ["time", "avg"],
              values: [
                { case: "int64", value: 5n },
                { case: "double", value: 2 },
              ],
            },
          ],
          continuationToken: "more",
        }),
      );
    const pb = await client().getAggregates(ID, { aggregateFunctions: ["avg"] }, { format: "protobuf" });
    expect(pb).toEqual({
      items: [{ id: ID, totalCount: 1n, aggregates: [{ time: "1970-01-01T00:00:00.000000005Z", timeNs: 5n, avg: 2 }] }],
      continuationToken: "more",
    });
    server.handler = () => ok({ data: { items: [{ id: ID, datapoints: [] }] } });
    expect(await client().getLatestDatapoint(ID)).toBeUndefined();
    server.handler = () => ok({ data: { items: [{ id: ID, datapoints: [{ time: "2022-01-01T00:00:00Z", value: 7, status: 192 }] }] } });
    expect((await client().getFirstDatapoint(ID))?.value).toBe(7);
  });

  it("a multi-query's items are raw or aggregates as their request item asked, in JSON and protobuf", async () => {
    server.handler = () =>
      ok({
        data: {
          items: [
            { id: "b", datapoints: [{ time: "2022-01-01T00:00:00Z", avg: 2 }] },
            { id: "a", datapoints: [{ time: "2022-01-01T00:00:00Z", value: 1, status: 192 }] },
          ],
        },
      });
    const page = await client().queryDatapoints([{ id: "a" }, { id: "b", aggregateFunctions: ["avg"] }]);
    expect(page.items.map((i) => [i.id, i.kind])).toEqual([
      ["b", "aggregates"],
      ["a", "raw"],
    ]);
    server.handler = () =>
      protobufReply(
        encodeCompactDatapoints({
          data: [
            {
              id: "a",
              totalCount: 1n,
              fields: ["time", "value", "status"],
              values: [
                { case: "int64", value: 1n },
                { case: "double", value: 1 },
                { case: "uint32", value: 192 },
              ],
            },
            {
              id: "b",
              totalCount: 1n,
              fields: ["time", "avg"],
              values: [
                { case: "int64", value: 1n },
                { case: "double", value: 3 },
              ],
            },
          ],
          continuationToken: "",
        }),
      );
    const pb = await client().queryDatapoints([{ id: "a" }, { id: "b", aggregateFunctions: ["avg"] }], {}, { format: "protobuf" });
    expect(pb.items[0]).toMatchObject({ kind: "raw", id: "a", datapoints: [{ value: 1, status: 192 }] });
    expect(pb.items[1]).toMatchObject({ kind: "aggregates", id: "b", aggregates: [{ avg: 3 }] });
  });

  it("metadata, facets, history and subscriptions come out of data.items", async () => {
    const ts = { id: ID, name: "n", facility: "JSV", standardUnit: "bar", metadata: { k: "v" } };
    server.handler = () => ok({ data: { items: [ts] }, count: 1, continuationToken: "c2" });
    expect(await client().listTimeseries()).toEqual({ items: [ts], count: 1, continuationToken: "c2" });
    expect(await client().getTimeseries(ID)).toEqual(ts);
    server.handler = () => ok({ data: { items: [{ facility: "SNA", count: 123 }] } });
    expect(await client().getFacilities()).toEqual([{ facility: "SNA", count: 123 }]);
    server.handler = () => ok({ data: { items: [{ changedBy: "x", changedTime: "t", changes: { unit: {} } }] } });
    expect(await client().getHistory(ID)).toHaveLength(1);
    server.handler = () => ok({ data: { items: [{ id: ID, customerId: "c" }] } });
    expect(await client().listStreamingSubscriptions()).toEqual([{ id: ID, customerId: "c" }]);
  });

  it("writes: 202 with async is accepted only; 200 committed; the message model is kept", async () => {
    server.handler = () => json(202, { statusCode: 202, message: "Accepted", traceId: "t" });
    expect(await client().writeDatapoints(ID, [{ time: 0n, value: 1, status: 192 }], { async: true })).toEqual({
      statusCode: 202,
      message: "Accepted",
      traceId: "t",
      httpStatus: 202,
      accepted: true,
    });
    server.handler = () => json(200, "");
    expect(await client().writeDatapoints(ID, [{ time: 0n, value: 1, status: 192 }])).toEqual({ httpStatus: 200, accepted: false });
  });

  it("an answer over maxResponseBytes is not read", async () => {
    server.handler = () => ok({ data: { items: [], pad: "x".repeat(10_000) } });
    await expect(client({ maxResponseBytes: 2048 }).listTimeseries()).rejects.toBeInstanceOf(OmniaResponseTooLargeError);
  });

  it("a protobuf answer over maxResponseBytes is not read either (the stream is cut, not buffered)", async () => {
    const { stream, produced } = zeroBody(64 * 1024 * 1024);
    server.handler = () => ({ status: 200, headers: { "content-type": "application/x-protobuf" }, stream });
    await expect(client({ maxResponseBytes: 1024 * 1024 }).getDatapoints(ID, {}, { format: "protobuf" })).rejects.toBeInstanceOf(
      OmniaResponseTooLargeError,
    );
    await until(() => produced.ended);
    expect(produced.bytes).toBeLessThan(16 * 1024 * 1024);
  });

  it("JSON times in any accepted spelling come out in Omnia's 7 digits", async () => {
    server.handler = () =>
      ok({ data: { items: [{ id: ID, datapoints: [{ time: "2021-02-01T10:54:05.42+01:00", value: 1, status: 192 }] }] } });
    const page = await client().getDatapoints(ID);
    expect(page.items[0]?.datapoints[0]?.time).toBe("2021-02-01T09:54:05.4200000Z");
  });

  it("a body that is neither JSON nor protobuf is a protocol error", async () => {
    server.handler = () => ({ status: 200, headers: { "content-type": "text/html" }, body: "<html>" });
    await expect(client().listTimeseries()).rejects.toBeInstanceOf(OmniaProtocolError);
  });
});

describe("paging", () => {
  it("the async iterator follows continuationToken to the end; collect gathers every point", async () => {
    server.handler = (req) => {
      const token = new URL(req.path, server.url).searchParams.get("continuationToken");
      const n = token === null ? 0 : Number(token);
      return ok({
        data: { items: [{ id: ID, datapoints: [{ time: `2022-01-01T00:00:0${n}Z`, value: n, status: 192 }] }] },
        continuationToken: n < 2 ? String(n + 1) : null,
      });
    };
    const pages = [];
    for await (const page of client().datapointPages(ID, { limit: 1 })) pages.push(page);
    expect(pages.map((p) => p.items[0]?.datapoints[0]?.value)).toEqual([0, 1, 2]);
    expect(server.requests.map((r) => new URL(r.path, server.url).searchParams.get("continuationToken"))).toEqual([null, "1", "2"]);
    expect(server.requests.every((r) => new URL(r.path, server.url).searchParams.get("limit") === "1")).toBe(true);
    const all = await client().collectDatapoints(ID, { limit: 1 });
    expect(all.map((p) => p.value)).toEqual([0, 1, 2]);
  });

  it("collect stops at its bound with OmniaCollectLimitError", async () => {
    let n = 0;
    server.handler = () => ok({ data: { items: [{ id: "x", name: "n", facility: "f" }] }, continuationToken: `c${++n}` });
    await expect(client().collectTimeseries({}, { maxItems: 3 })).rejects.toBeInstanceOf(OmniaCollectLimitError);
    expect(server.requests.length).toBe(4);
    await expect(client().collectTimeseries({ search: true }, { maxPages: 2 })).rejects.toThrow(/more than 2 pages/);
    expect(server.requests.at(-1)!.path).toMatch(/\/search\?continuationToken=/);
  });

  it("a token that comes back twice ends the paging with a protocol error (no endless loop)", async () => {
    server.handler = () => ok({ data: { items: [] }, continuationToken: "same" });
    await expect(client().collectTimeseries({})).rejects.toThrow(/same continuationToken twice/);
    expect(server.requests.length).toBe(2);
  });

  it("multi-query pages by the overall token (query parameter, same items) — protobuf's only way", async () => {
    let n = 0;
    server.handler = () => ok({ data: { items: [{ id: "a", datapoints: [] }] }, continuationToken: n++ === 0 ? "next" : null });
    const pages = [];
    for await (const p of client().multiQueryPages([{ id: "a" }, { id: "b" }])) pages.push(p);
    expect(pages).toHaveLength(2);
    expect(lastUrl().searchParams.get("continuationToken")).toBe("next");
    expect(JSON.parse(server.requests[1]!.text)).toEqual([{ id: "a" }, { id: "b" }]);
  });

  it("multi-query pages by per-item tokens when only the JSON items carry one (unverified reading: asks again for just those items)", async () => {
    let n = 0;
    server.handler = () =>
      n++ === 0
        ? ok({
            data: {
              items: [
                { id: "a", datapoints: [], continuationToken: "ta" },
                { id: "b", datapoints: [] },
              ],
            },
          })
        : ok({ data: { items: [{ id: "a", datapoints: [] }] } });
    const pages = [];
    for await (const p of client().multiQueryPages([{ id: "a", limit: 5 }, { id: "b" }])) pages.push(p);
    expect(pages).toHaveLength(2);
    expect(JSON.parse(server.requests[1]!.text)).toEqual([{ id: "a", limit: 5, continuationToken: "ta" }]);
    expect(lastUrl().searchParams.has("continuationToken")).toBe(false);
  });
});

describe("errors", () => {
  const cases: [number, new (...a: never[]) => OmniaError][] = [
    [400, OmniaBadRequestError],
    [403, OmniaForbiddenError],
    [404, OmniaNotFoundError],
    [500, OmniaServerError],
  ];
  for (const [status, cls] of cases) {
    it(`${status} → ${cls.name} with the platform's message and traceId, not retried`, async () => {
      server.handler = () => errorReply(status, status === 400 ? "Facility not found." : "nope");
      const err = await client()
        .getTimeseries(ID)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(cls);
      expect(err).toBeInstanceOf(OmniaError);
      expect((err as OmniaError).status).toBe(status);
      expect((err as OmniaError).traceId).toBe("trace-1");
      expect((err as OmniaError).platformMessage).toBe(status === 400 ? "Facility not found." : "nope");
      expect((err as Error).message).toContain(`GET /${ID}: HTTP ${status}`);
      expect(server.requests.length).toBe(1);
    });
  }

  it("401 drops the token and tries once more with a fresh one; a second 401 is OmniaUnauthorizedError", async () => {
    reply(errorReply(401, "expired"), ok({ data: { items: [] } }));
    await client().listTimeseries();
    expect(server.requests.map((r) => r.headers.authorization)).toEqual(["Bearer t1", "Bearer t2"]);
    server.requests.length = 0;
    server.handler = () => errorReply(401, "bad audience");
    const c = client();
    const err = await c.listTimeseries().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmniaUnauthorizedError);
    expect(server.requests.length).toBe(2);
  });

  it("a token is reused across requests (the credential is not asked each time)", async () => {
    const c = client();
    await c.listTimeseries();
    await c.listTimeseries();
    expect(cred.calls).toBe(1);
  });

  it("a credential that fails is OmniaAuthError naming the scope, with no request sent", async () => {
    const failing: TokenCredential = {
      getToken: async () => {
        throw new Error("AADSTS7000215: Invalid client secret provided.");
      },
    };
    const err = await client({ credential: failing })
      .listTimeseries()
      .catch((e: unknown) => e);
    expect((err as Error).name).toBe("OmniaAuthError");
    expect((err as Error).message).toContain("32f2a909-8a98-4eb8-b22d-1208d9350cb0/.default");
    expect(server.requests.length).toBe(0);
  });

  it("a 502 with an empty or non-JSON body: retried 3 times, then the raw body quoted", async () => {
    server.handler = () => ({ status: 502, headers: { "content-type": "text/plain" }, body: "blah" });
    const err = await client()
      .getDatapoints(ID)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmniaServerError);
    expect((err as OmniaError).platformMessage).toBe("Could not load response, raw response: 'blah'");
    expect(server.requests.length).toBe(3);
    server.handler = () => ({ status: 502, body: "" });
    const empty = await client()
      .getDatapoints(ID)
      .catch((e: unknown) => e);
    expect((empty as OmniaError).platformMessage).toBe("Could not load response, raw response: ''");
    expect(server.requests.length).toBe(6);
  });

  for (const status of [408, 425, 429, 502, 503, 504]) {
    it(`${status} is retried (python's retry set) and then succeeds`, async () => {
      reply(errorReply(status, "later"), ok({ data: { items: [] } }));
      await client().getDatapoints(ID);
      expect(server.requests.length).toBe(2);
    });
  }

  it("429 waits the Retry-After (seconds) before the next try; OmniaThrottledError carries retryAfter", async () => {
    reply(errorReply(429, "slow down", { "retry-after": "1" }), ok({ data: { items: [] } }));
    const retries: number[] = [];
    const t0 = Date.now();
    await client({ onRetry: (e) => retries.push(e.delayMs) }).getDatapoints(ID);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(retries).toEqual([1000]);
    server.handler = () => errorReply(429, "slow down", { "retry-after": "2" });
    const err = await client({ maxAttempts: 1 })
      .getDatapoints(ID)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmniaThrottledError);
    expect((err as OmniaThrottledError).retryAfter).toBe(2000);
    expect((err as OmniaThrottledError).retryable).toBe(true);
  });

  it("a Retry-After of hours is cut to the cap and the asked wait kept", async () => {
    server.handler = () => errorReply(503, "maintenance", { "retry-after": "36000" });
    const err = await client({ maxAttempts: 1 })
      .getDatapoints(ID)
      .catch((e: unknown) => e);
    expect((err as OmniaServerError).retryAfterMs).toBe(300_000);
    expect((err as OmniaServerError).retryAfterRequestedMs).toBe(36_000_000);
  });

  it("409 on a create is OmniaConflictError and never retried; on a read it is retried as the python client does (retryConflict: false turns it off)", async () => {
    server.handler = () => errorReply(409, "Attempt to store timeseries 'n' from 'JSV' which already exists");
    const err = await client()
      .createTimeseries({ name: "n", facility: "JSV" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmniaConflictError);
    expect((err as OmniaError).platformMessage).toContain("already exists");
    expect(server.requests.length).toBe(1);
    await client()
      .getDatapoints(ID)
      .catch(() => {});
    expect(server.requests.length).toBe(4);
    await client({ retryConflict: false })
      .getDatapoints(ID)
      .catch(() => {});
    expect(server.requests.length).toBe(5);
  });

  it("a timeout is a retryable OmniaServerError; the caller's abort ends retries with its reason", async () => {
    server.handler = () => ({ hang: true });
    const err = await client({ timeoutMs: 1000, maxAttempts: 2 })
      .getDatapoints(ID)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmniaServerError);
    expect((err as OmniaServerError).code).toBe("timeout");
    expect(server.requests.length).toBe(2);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("stopping")), 50);
    await expect(client().getDatapoints(ID, {}, { signal: ac.signal })).rejects.toThrow("stopping");
  });

  it("a reset connection is retried", async () => {
    reply({ reset: true }, ok({ data: { items: [] } }));
    await client().getDatapoints(ID);
    expect(server.requests.length).toBe(2);
  });
});

describe("validation before sending", () => {
  const cases: [string, (c: OmniaClient) => Promise<unknown>, string][] = [
    ["more than 100 items in a multi-query", (c) => c.queryDatapoints(Array.from({ length: 101 }, (_, i) => ({ id: `s${i}` }))), "items"],
    ["no items in a multi-query", (c) => c.queryDatapoints([]), "items"],
    ["limit 0", (c) => c.getDatapoints(ID, { limit: 0 }), "limit"],
    ["limit over 100 000", (c) => c.getDatapoints(ID, { limit: 100_001 }), "limit"],
    ["a multi item's limit", (c) => c.queryDatapoints([{ id: "a" }, { id: "b", limit: 1.5 }]), "items[1].limit"],
    ["a malformed startTime", (c) => c.getDatapoints(ID, { startTime: "2022-13-01T00:00:00Z" }), "startTime"],
    ["an endTime before startTime", (c) => c.getDatapoints(ID, { startTime: "2022-01-02", endTime: "2022-01-01" }), "endTime"],
    ["a malformed time in a multi item", (c) => c.queryDatapoints([{ id: "a", endTime: "soon" }]), "items[0].endTime"],
    ["an unknown aggregate function", (c) => c.getAggregates(ID, { aggregateFunctions: ["mean" as never] }), "aggregateFunctions[0]"],
    ["no aggregate function", (c) => c.getAggregates(ID, { aggregateFunctions: [] }), "aggregateFunctions"],
    [
      "a bad processingInterval",
      (c) => c.getAggregates(ID, { aggregateFunctions: ["avg"], processingInterval: "fifteen" }),
      "processingInterval",
    ],
    ["an unknown federationSource", (c) => c.getDatapoints(ID, { federationSource: "PI" as never }), "federationSource"],
    ["an empty id", (c) => c.getTimeseries(""), "id"],
    ["a create without facility", (c) => c.createTimeseries({ name: "n" } as never), "item.facility"],
    [
      "18 metadata keys",
      (c) =>
        c.createTimeseries({
          name: "n",
          facility: "f",
          metadata: Object.fromEntries(Array.from({ length: 18 }, (_, i) => [`k${i}`, "v"])),
        }),
      "item.metadata",
    ],
    ["a NaN value in a write", (c) => c.writeDatapoints(ID, [{ time: 0n, value: Number.NaN, status: 192 }]), "datapoints[0].value"],
    [
      "a write's malformed time",
      (c) => c.writeMultipleDatapoints([{ id: "a", datapoints: [{ time: "x", value: 1, status: 192 }] }]),
      "items[0].datapoints[0].time",
    ],
    ["a delete without endTime", (c) => c.deleteDatapoints(ID, { startTime: "2022-01-01" } as never), "endTime"],
    ["a connection string without Endpoint", (c) => c.setStreamingDestination("SharedAccessKey=secret"), "connectionString"],
  ];
  for (const [what, call, field] of cases) {
    it(`${what} → OmniaValidationError naming ${field}, nothing sent`, async () => {
      const err = await call(client()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OmniaValidationError);
      expect((err as OmniaValidationError).field).toBe(field);
      expect(server.requests.length).toBe(0);
    });
  }

  it("100 items in a multi-query is allowed", async () => {
    await client().queryDatapoints(Array.from({ length: 100 }, (_, i) => ({ id: `s${i}` })));
    expect(server.requests.length).toBe(1);
  });

  it("an invalid connection string's error does not quote it (it holds a key)", async () => {
    const err = await client()
      .setStreamingDestination("SharedAccessKey=supersecret")
      .catch((e: unknown) => e);
    expect((err as Error).message).not.toContain("supersecret");
  });
});
