import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createGzip } from "node:zlib";
import { MAX_RETRY_AFTER_MS } from "@meridian/retry";
import { json, type RecordingServer, type Reply, startRecordingServer, until, zeroBody } from "@meridian/testing";
import { XMLParser } from "fast-xml-parser";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_MAX_RESPONSE_BYTES } from "./config.js";
import {
  IdigiAuthError,
  IdigiBadRequestError,
  IdigiConfigError,
  IdigiError,
  IdigiNetworkError,
  IdigiNotFoundError,
  IdigiResponseTooLargeError,
  IdigiServerError,
  IdigiUnexpectedResponseError,
} from "./errors.js";
import { createMonitorApi, LegacyMonitorApi, type MonitorApiRetry, splitTopicList, V1MonitorApi } from "./monitor-api.js";

// Bodies from shared/protocols/idigi.md §1.5, §1.6 and §4.
const CREATE_XML = `<?xml version="1.0" encoding="ISO-8859-1"?>
<result>
  <location>Monitor/178008</location>
</result>`;
const LIST_ONE = `{"resultTotalRows":"1","requestedStartRow":"0","resultSize":"1","requestedSize":"1000",
 "remainingSize":"0","items":[{"monId":"178007","cstId":"7603",
 "monTopic":"DeviceCore,FileDataCore,FileData,DataPoint","monTransportType":"tcp",
 "monFormatType":"json","monBatchSize":"1","monCompression":"zlib","monStatus":"INACTIVE",
 "monBatchDuration":"10"}]}`;
const LIST_EMPTY = `{"resultTotalRows":"0","requestedStartRow":"0","resultSize":"0","requestedSize":"1000","remainingSize":"0","items":[]}`;

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  contentType: string | undefined;
  body: string;
}
type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let server: Server;
let base: string;
let seen: Seen[] = [];
let handler: Handler = (_q, res) => res.writeHead(500).end();

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
    });
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, contentType: req.headers["content-type"], body });
      handler(req, res, body);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  seen = [];
});

const opts = () => ({
  baseUrl: base,
  username: "jfocht",
  password: "digidev",
  backoff: { initialMs: 1, maxMs: 2, multiplier: 2, jitter: 0 },
});
const BASIC = `Basic ${Buffer.from("jfocht:digidev").toString("base64")}`;

describe("LegacyMonitorApi (/ws/Monitor)", () => {
  it("creates: POSTs a <Monitor> document with every option and reads the id from Location", async () => {
    handler = (_q, res) => res.writeHead(201, { Location: "Monitor/178008", "Content-Type": "text/xml" }).end(CREATE_XML);
    const api = new LegacyMonitorApi(opts());
    const mon = await api.create({
      topics: ["DeviceCore", "FileDataCore[C,U]"],
      format: "json",
      batchSize: 1,
      batchDurationSec: 0,
      compression: "gzip",
      ackOption: "explicit",
      autoReplayOnConnect: true,
      description: "a <b> & c",
    });
    expect(mon).toMatchObject({ id: "178008", compression: "zlib", transport: "tcp", ackOption: "explicit", autoReplayOnConnect: true });
    const req = seen[0]!;
    expect(req.method).toBe("POST");
    expect(req.url).toBe("/ws/Monitor");
    expect(req.auth).toBe(BASIC);
    expect(req.contentType).toMatch(/xml/);
    const doc = new XMLParser({ parseTagValue: false }).parse(req.body) as { Monitor: Record<string, string> };
    expect(doc.Monitor).toEqual({
      monTopic: "DeviceCore,FileDataCore[C,U]",
      monTransportType: "tcp",
      monFormatType: "json",
      monBatchSize: "1",
      monBatchDuration: "0", // python-devicecloud drops this field; we always send it when given
      monCompression: "gzip",
      monAckOption: "explicit",
      monAutoReplayOnConnect: "true",
      monDescription: "a <b> & c",
    });
    expect(req.body.startsWith("<Monitor>")).toBe(true);
  });

  it("creates: reads the id from the body's <location> when there is no Location header (python-devicecloud's reading)", async () => {
    handler = (_q, res) => res.writeHead(201, { "Content-Type": "text/xml" }).end(CREATE_XML);
    expect((await new LegacyMonitorApi(opts()).create({ topics: ["DeviceCore"] })).id).toBe("178008");
  });

  it("creates: an absolute Location URL works too; no id at all is an IdigiUnexpectedResponseError", async () => {
    handler = (_q, res) => res.writeHead(201, { Location: "https://remotemanager.digi.com/ws/Monitor/42" }).end();
    expect((await new LegacyMonitorApi(opts()).create({ topics: ["DeviceCore"] })).id).toBe("42");
    handler = (_q, res) => res.writeHead(201).end("<result/>");
    await expect(new LegacyMonitorApi(opts()).create({ topics: ["DeviceCore"] })).rejects.toBeInstanceOf(IdigiUnexpectedResponseError);
  });

  it("create is not retried on a 500 (not idempotent)", async () => {
    handler = (_q, res) => res.writeHead(500).end("<error>boom</error>");
    await expect(new LegacyMonitorApi(opts()).create({ topics: ["DeviceCore"] })).rejects.toBeInstanceOf(IdigiServerError);
    expect(seen).toHaveLength(1);
  });

  it("rejects a bad spec before calling the server", async () => {
    await expect(new LegacyMonitorApi(opts()).create({ topics: [] })).rejects.toBeInstanceOf(IdigiConfigError);
    await expect(new LegacyMonitorApi(opts()).create({ topics: ["A,B"] })).rejects.toThrow(/topics\[0\]/);
    expect(seen).toHaveLength(0);
  });

  it("lists: sends the condition, reads the string-valued envelope into typed monitors", async () => {
    handler = (_q, res) => res.writeHead(200, { "Content-Type": "application/json" }).end(LIST_ONE);
    const list = await new LegacyMonitorApi(opts()).list({ topics: ["DeviceCore", "FileData"], transport: "tcp" });
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      id: "178007",
      customerId: "7603",
      topics: ["DeviceCore", "FileDataCore", "FileData", "DataPoint"],
      transport: "tcp",
      format: "json",
      batchSize: 1,
      batchDurationSec: 10,
      compression: "zlib",
      status: "INACTIVE",
    });
    const url = new URL(seen[0]!.url, base);
    expect(url.pathname).toBe("/ws/Monitor/.json");
    expect(url.searchParams.get("condition")).toBe("monTopic='DeviceCore,FileData' and monTransportType='tcp'");
    expect(url.searchParams.get("start")).toBe("0");
    expect(url.searchParams.get("size")).toBe("1000");
  });

  it("splits monTopic on top-level commas only ([I] operation filters contain commas)", async () => {
    expect(splitTopicList("DeviceCore[U],FileDataCore[C,U], DataPoint/dev1/*")).toEqual([
      "DeviceCore[U]",
      "FileDataCore[C,U]",
      "DataPoint/dev1/*",
    ]);
    handler = (_q, res) =>
      res
        .writeHead(200)
        .end(JSON.stringify({ resultSize: "1", remainingSize: "0", items: [{ monId: "1", monTopic: "DeviceCore[U],FileDataCore[C,U]" }] }));
    expect((await new LegacyMonitorApi(opts()).list())[0]!.topics).toEqual(["DeviceCore[U]", "FileDataCore[C,U]"]);
  });

  it("lists: follows remainingSize across pages; an empty result is []", async () => {
    const item = (id: string) => ({ monId: id, monTopic: "DeviceCore", monTransportType: "tcp", monCompression: "gzip" });
    handler = (req, res) => {
      const start = Number(new URL(req.url!, base).searchParams.get("start"));
      const pages = [
        { resultSize: "2", remainingSize: "1", items: [item("1"), item("2")] },
        { resultSize: "1", remainingSize: "0", items: [item("3")] },
      ];
      res.writeHead(200).end(JSON.stringify(pages[start === 0 ? 0 : 1]));
    };
    const list = await new LegacyMonitorApi({ ...opts(), pageSize: 2 }).list();
    expect(list.map((m) => m.id)).toEqual(["1", "2", "3"]);
    expect(list[0]!.compression).toBe("zlib");
    expect(seen.map((s) => new URL(s.url, base).searchParams.get("start"))).toEqual(["0", "2"]);
    handler = (_q, res) => res.writeHead(200).end(LIST_EMPTY);
    expect(await new LegacyMonitorApi(opts()).list()).toEqual([]);
  });

  it("gets one monitor (items[0]); empty items or 404 → IdigiNotFoundError", async () => {
    handler = (_q, res) => res.writeHead(200).end(LIST_ONE);
    const m = await new LegacyMonitorApi(opts()).get(178007);
    expect(m.id).toBe("178007");
    expect(seen[0]!.url).toBe("/ws/Monitor/178007");
    handler = (_q, res) => res.writeHead(200).end(LIST_EMPTY);
    await expect(new LegacyMonitorApi(opts()).get("1")).rejects.toBeInstanceOf(IdigiNotFoundError);
    handler = (_q, res) => res.writeHead(404).end();
    await expect(new LegacyMonitorApi(opts()).get("1")).rejects.toBeInstanceOf(IdigiNotFoundError);
  });

  it("gets one monitor served as XML instead of JSON (unpinned in the notes: both readings)", async () => {
    handler = (_q, res) =>
      res
        .writeHead(200, { "Content-Type": "text/xml" })
        .end(
          `<?xml version="1.0" encoding="ISO-8859-1"?><result resultTotalRows="1" requestedStartRow="0" resultSize="1" requestedSize="1000" remainingSize="0"><Monitor><monId>178007</monId><cstId>7603</cstId><monTopic>DeviceCore</monTopic><monTransportType>tcp</monTransportType><monAutoReplayOnConnect>true</monAutoReplayOnConnect><monStatus>SUSPENDED</monStatus></Monitor></result>`,
        );
    const m = await new LegacyMonitorApi(opts()).get("178007");
    expect(m).toMatchObject({ id: "178007", topics: ["DeviceCore"], autoReplayOnConnect: true, status: "SUSPENDED" });
  });

  it("refuses a non-numeric id without calling the server (no path injection)", async () => {
    await expect(new LegacyMonitorApi(opts()).delete("1/../../x")).rejects.toBeInstanceOf(IdigiConfigError);
    expect(seen).toHaveLength(0);
  });

  it("deletes with DELETE /ws/Monitor/{id} (200)", async () => {
    handler = (_q, res) => res.writeHead(200).end();
    await new LegacyMonitorApi(opts()).delete("178008");
    expect(seen[0]).toMatchObject({ method: "DELETE", url: "/ws/Monitor/178008", auth: BASIC });
  });

  it("maps 401/403 to IdigiAuthError, 400 to IdigiBadRequestError with the server's message", async () => {
    handler = (_q, res) => res.writeHead(401).end("Unauthorized");
    await expect(new LegacyMonitorApi(opts()).list()).rejects.toBeInstanceOf(IdigiAuthError);
    handler = (_q, res) => res.writeHead(403).end();
    await expect(new LegacyMonitorApi(opts()).list()).rejects.toBeInstanceOf(IdigiAuthError);
    handler = (_q, res) =>
      res.writeHead(400, { "Content-Type": "text/xml" }).end(`<result><error>Invalid monTransportType: carrier pigeon</error></result>`);
    const err = await new LegacyMonitorApi(opts()).create({ topics: ["DeviceCore"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdigiBadRequestError);
    expect((err as IdigiBadRequestError).retryable).toBe(false);
    expect((err as IdigiBadRequestError).serverMessage).toBe("Invalid monTransportType: carrier pigeon");
    expect(seen.every((s) => s.auth === BASIC)).toBe(true);
  });

  it("retries idempotent calls on 5xx and honours Retry-After", async () => {
    let n = 0;
    handler = (_q, res) => (n++ < 2 ? res.writeHead(503, { "Retry-After": "0" }).end("busy") : res.writeHead(200).end(LIST_EMPTY));
    expect(await new LegacyMonitorApi(opts()).list()).toEqual([]);
    expect(seen).toHaveLength(3);
    n = -10;
    seen = [];
    const err = await new LegacyMonitorApi({ ...opts(), maxAttempts: 2 }).list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdigiServerError);
    expect(err).toBeInstanceOf(IdigiError);
    expect((err as IdigiServerError).retryable).toBe(true);
    expect((err as IdigiServerError).retryAfterMs).toBe(0);
    expect(seen).toHaveLength(2);
  });

  it("turns connection failures into a retryable IdigiNetworkError", async () => {
    const dead = createServer();
    dead.listen(0, "127.0.0.1");
    await once(dead, "listening");
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const err = await new LegacyMonitorApi({ ...opts(), baseUrl: `http://127.0.0.1:${port}`, maxAttempts: 2 })
      .list()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdigiNetworkError);
    expect(err).toBeInstanceOf(IdigiError);
    expect((err as IdigiNetworkError).retryable).toBe(true);
    expect((err as Error).message).not.toContain("digidev");
  });

  it("times out slow servers as IdigiNetworkError", async () => {
    handler = () => {}; // never answers
    const err = await new LegacyMonitorApi({ ...opts(), timeoutMs: 50, maxAttempts: 1 }).list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdigiNetworkError);
    expect((err as Error).message).toMatch(/timed out/);
  });
});

describe("V1MonitorApi (/ws/v1/monitors/inventory)", () => {
  const echo = {
    id: 1234,
    customer_id: 7603,
    type: "tcp",
    topics: ["DataPoint/*/cl1/cval"],
    format: "json",
    batch_size: 100,
    batch_duration: 10,
    compression: "none",
    persistent: true,
    status: "inactive",
  };

  it("creates with a JSON body and returns the echoed monitor", async () => {
    handler = (_q, res) => res.writeHead(201, { "Content-Type": "application/json" }).end(JSON.stringify(echo));
    const api = createMonitorApi({ ...opts(), flavor: "v1" });
    expect(api).toBeInstanceOf(V1MonitorApi);
    const m = await api.create({
      topics: ["DataPoint/*/cl1/cval"],
      format: "json",
      batchSize: 100,
      batchDurationSec: 10,
      autoReplayOnConnect: true,
    });
    expect(m).toMatchObject({ id: "1234", customerId: "7603", status: "INACTIVE", autoReplayOnConnect: true, compression: "none" });
    expect(seen[0]!.url).toBe("/ws/v1/monitors/inventory");
    expect(JSON.parse(seen[0]!.body)).toEqual({
      type: "tcp",
      topics: ["DataPoint/*/cl1/cval"],
      format: "json",
      batch_size: 100,
      batch_duration: 10,
      persistent: true,
    });
  });

  it("lists ([I] envelope: `list` with a cursor, or `items`) and filters client-side", async () => {
    handler = (req, res) => {
      const cursor = new URL(req.url!, base).searchParams.get("cursor");
      if (!cursor) res.writeHead(200).end(JSON.stringify({ count: 1, size: 1, cursor: "abc", list: [echo] }));
      else res.writeHead(200).end(JSON.stringify({ count: 1, size: 1, items: [{ ...echo, id: 5, type: "http", topics: ["DeviceCore"] }] }));
    };
    const all = await new V1MonitorApi(opts()).list();
    expect(all.map((m) => m.id)).toEqual(["1234", "5"]);
    expect((await new V1MonitorApi(opts()).list({ transport: "tcp" })).map((m) => m.id)).toEqual(["1234"]);
  });

  it("gets and deletes by id; 404 → IdigiNotFoundError", async () => {
    handler = (_q, res) => res.writeHead(200).end(JSON.stringify(echo));
    expect((await new V1MonitorApi(opts()).get(1234)).topics).toEqual(["DataPoint/*/cl1/cval"]);
    handler = (_q, res) => res.writeHead(204).end();
    await new V1MonitorApi(opts()).delete(1234);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      "GET /ws/v1/monitors/inventory/1234",
      "DELETE /ws/v1/monitors/inventory/1234",
    ]);
    handler = (_q, res) => res.writeHead(404).end(JSON.stringify({ error_message: "no such monitor" }));
    await expect(new V1MonitorApi(opts()).delete(9)).rejects.toBeInstanceOf(IdigiNotFoundError);
  });

  it("reports the JSON error message of a 400", async () => {
    handler = (_q, res) => res.writeHead(400).end(JSON.stringify({ error_message: "Invalid topic" }));
    const err = await new V1MonitorApi(opts()).create({ topics: ["X"] }).catch((e: unknown) => e);
    expect((err as IdigiBadRequestError).serverMessage).toBe("Invalid topic");
  });
});

describe("limits on what the server sends", () => {
  const GiB = 1024 ** 3;
  const MiB = 1024 ** 2;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    while (cleanups.length > 0) await cleanups.pop()?.();
  });
  async function recording(handler: () => Reply): Promise<RecordingServer> {
    const s = await startRecordingServer(handler);
    cleanups.push(() => s.close());
    return s;
  }
  const api = (url: string, extra: object = {}) => new LegacyMonitorApi({ ...opts(), baseUrl: url, ...extra });
  const rssMiB = () => Math.round(process.memoryUsage().rss / MiB);

  it("a Retry-After of 999999999 s or a date far ahead is cut to the cap; the error keeps what was asked", async () => {
    let header = "999999999";
    const s = await recording(() => json(429, "", { "retry-after": header }));
    const e1 = await api(s.url, { maxAttempts: 1 })
      .list()
      .catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(IdigiServerError);
    expect(e1).toMatchObject({ retryAfterMs: MAX_RETRY_AFTER_MS, retryAfterRequestedMs: 999_999_999_000 });
    header = "Fri, 31 Dec 9999 23:59:59 GMT";
    const e2 = (await api(s.url, { maxAttempts: 1 })
      .list()
      .catch((e: unknown) => e)) as IdigiServerError;
    expect(e2.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
    expect(e2.retryAfterRequestedMs).toBeGreaterThan(MAX_RETRY_AFTER_MS);
    header = "2";
    const e3 = (await api(s.url, { maxAttempts: 1 })
      .list()
      .catch((e: unknown) => e)) as IdigiServerError;
    expect(e3.retryAfterMs).toBe(2000);
    expect(e3.retryAfterRequestedMs).toBeUndefined();
  });

  it("an idempotent call retries after the cap, not after the 31 years asked for, and tells onRetry listeners", async () => {
    let calls = 0;
    const s = await recording(() => (++calls === 1 ? json(503, "busy", { "retry-after": "999999999" }) : json(200, LIST_EMPTY)));
    const client = api(s.url);
    const retried = new Promise<MonitorApiRetry>((resolve) => client.onRetry(resolve));
    // Only the retry's wait is faked: the HTTP exchanges run on real I/O.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const listing = client.list();
    const notice = await retried;
    expect(notice).toMatchObject({ method: "GET", path: "/ws/Monitor/.json", attempt: 1, delayMs: MAX_RETRY_AFTER_MS });
    expect(notice.error).toBeInstanceOf(IdigiServerError);
    await vi.advanceTimersByTimeAsync(MAX_RETRY_AFTER_MS);
    expect(await listing).toEqual([]);
    expect(s.requests).toHaveLength(2);
  });

  it.each([
    ["streamed without a length", {}],
    ["declaring its length", { "content-length": String(GiB) }],
  ])(
    "a 1 GB response (%s) is IdigiResponseTooLargeError at the limit, the rest is never read, and the next call works",
    async (how, headers) => {
      const body = zeroBody(GiB);
      let reply: () => Reply = () => ({ status: 200, headers, stream: body.stream });
      const s = await recording(() => reply());
      const client = api(s.url);
      const before = rssMiB();
      const err = await client.list().catch((e: unknown) => e);
      const after = rssMiB();
      console.log(
        JSON.stringify({
          test: `idigi 1 GB response, ${how}`,
          rssBeforeMiB: before,
          rssAfterMiB: after,
          serverSentMiB: Math.round(body.produced.bytes / MiB),
        }),
      );
      expect(err).toBeInstanceOf(IdigiResponseTooLargeError);
      expect(err).toBeInstanceOf(IdigiError);
      expect(err).toMatchObject({ limitBytes: DEFAULT_MAX_RESPONSE_BYTES, status: 200, retryable: false });
      expect((err as Error).message).toContain(`over ${DEFAULT_MAX_RESPONSE_BYTES} bytes`);
      // Not retried (three attempts would be three gigabytes offered), and the server's body ended far short of it.
      expect(s.requests).toHaveLength(1);
      await until(() => body.produced.ended, { timeoutMs: 10_000, what: "the server's body to end" });
      expect(body.produced.bytes).toBeLessThan(64 * MiB);
      reply = () => json(200, LIST_ONE);
      expect((await client.list()).map((m) => m.id)).toEqual(["178007"]);
    },
  );

  it("a gzip bomb (a gigabyte of zeros in about 1 MB) hits the same limit after decompression", async () => {
    const body = zeroBody(GiB);
    const bomb = body.stream.pipe(createGzip());
    // pipe() does not pass the end of the gzip stream back to its source.
    bomb.once("close", () => body.stream.destroy());
    let reply: () => Reply = () => ({ status: 200, headers: { "content-encoding": "gzip" }, stream: bomb });
    const s = await recording(() => reply());
    const client = api(s.url);
    const before = rssMiB();
    const err = await client.list().catch((e: unknown) => e);
    const after = rssMiB();
    console.log(
      JSON.stringify({
        test: "idigi gzip bomb",
        rssBeforeMiB: before,
        rssAfterMiB: after,
        serverInflatedMiB: Math.round(body.produced.bytes / MiB),
      }),
    );
    expect(err).toBeInstanceOf(IdigiResponseTooLargeError);
    await until(() => body.produced.ended, { timeoutMs: 10_000, what: "the server's body to end" });
    expect(body.produced.bytes).toBeLessThan(64 * MiB);
    reply = () => json(200, LIST_EMPTY);
    expect(await client.list()).toEqual([]);
  });

  it("maxResponseBytes takes 1 KiB to 256 MiB, and a body of exactly the limit is read whole", async () => {
    for (const bad of [1023, 256 * MiB + 1, 1.5, "4096"]) {
      expect(() => api("http://127.0.0.1:1", { maxResponseBytes: bad })).toThrow(/maxResponseBytes/);
    }
    let size = 2048;
    const s = await recording(() => ({ status: 404, body: "x".repeat(size) }));
    const client = api(s.url, { maxResponseBytes: 2048 });
    await expect(client.get(1)).rejects.toBeInstanceOf(IdigiNotFoundError);
    size = 2049;
    await expect(client.get(1)).rejects.toBeInstanceOf(IdigiResponseTooLargeError);
  });
});
