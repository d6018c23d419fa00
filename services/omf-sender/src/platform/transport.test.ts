import { createGzip } from "node:zlib";
import { json, type RecordingServer, type Reply, startRecordingServer, TEST_CA_PATH, until, zeroBody } from "@meridian/testing";
import { Agent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { AUTH_MAX_RESPONSE_BYTES } from "./auth.js";
import { OmfClient } from "./client.js";
import type { OmfEndpointInput } from "./config.js";
import { OmfError, OmfResponseTooLargeError } from "./errors.js";
import { dataMessage } from "./messages.js";
import { CDS_ACCEPTED } from "./testdata/bodies.js";
import { httpExchange, MAX_RESPONSE_BYTES } from "./transport.js";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function server(handler: () => Reply, tls = false): Promise<RecordingServer> {
  const s = await startRecordingServer(handler, { tls });
  cleanups.push(() => s.close());
  return s;
}

function client(input: OmfEndpointInput): OmfClient {
  // The version is set, so the requests counted are the sends alone (an unset one is probed first: version tests).
  const c = new OmfClient({ omfVersion: "1.2", ...input } as OmfEndpointInput);
  cleanups.push(() => c.close());
  return c;
}

const data = () => dataMessage([{ containerid: "c", values: [{ Timestamp: "2026-01-01T00:00:00Z", v: 1 }] }]);
const rssMiB = () => Math.round(process.memoryUsage().rss / MiB);

describe("response bodies are read up to a limit", () => {
  it.each([
    ["streamed without a length", {}],
    ["declaring its length", { "content-length": String(GiB) }],
  ])(
    "a 1 GB response (%s) is OmfResponseTooLargeError at MAX_RESPONSE_BYTES, the rest is never read, and the next request works",
    async (how, headers) => {
      let reply: () => Reply = () => ({ status: 202, headers, stream: body.stream });
      const body = zeroBody(GiB);
      const s = await server(() => reply());
      const c = client({ kind: "eds", url: s.url, compression: false });
      const before = rssMiB();
      const err = await c.send(data()).catch((e: unknown) => e);
      const after = rssMiB();
      console.log(
        JSON.stringify({
          test: `omf 1 GB response, ${how}`,
          rssBeforeMiB: before,
          rssAfterMiB: after,
          serverSentMiB: Math.round(body.produced.bytes / MiB),
        }),
      );
      expect(err).toBeInstanceOf(OmfResponseTooLargeError);
      expect(err).toBeInstanceOf(OmfError);
      expect(err).toMatchObject({ limitBytes: MAX_RESPONSE_BYTES, status: 202, retryable: false, endpoint: c.name });
      expect((err as Error).message).toContain(`over ${MAX_RESPONSE_BYTES} bytes`);
      // The client dropped the connection: the server's body ended far short of the gigabyte.
      await until(() => body.produced.ended, { timeoutMs: 10_000, what: "the server's body to end" });
      expect(body.produced.bytes).toBeLessThan(64 * MiB);
      reply = () => json(202, CDS_ACCEPTED);
      await expect(c.send(data())).resolves.toMatchObject({ ok: true, status: 202 });
    },
  );

  it("a gzip bomb (a gigabyte of zeros in about 1 MB) hits the same limit after decompression", async () => {
    const body = zeroBody(GiB);
    const bomb = body.stream.pipe(createGzip());
    // pipe() does not pass the end of the gzip stream back to its source.
    bomb.once("close", () => body.stream.destroy());
    let reply: () => Reply = () => ({ status: 202, headers: { "content-encoding": "gzip" }, stream: bomb });
    const s = await server(() => reply());
    const c = client({ kind: "eds", url: s.url, compression: false });
    const before = rssMiB();
    const err = await c.send(data()).catch((e: unknown) => e);
    const after = rssMiB();
    console.log(
      JSON.stringify({
        test: "omf gzip bomb",
        rssBeforeMiB: before,
        rssAfterMiB: after,
        serverInflatedMiB: Math.round(body.produced.bytes / MiB),
      }),
    );
    expect(err).toBeInstanceOf(OmfResponseTooLargeError);
    expect((err as OmfResponseTooLargeError).limitBytes).toBe(MAX_RESPONSE_BYTES);
    await until(() => body.produced.ended, { timeoutMs: 10_000, what: "the server's body to end" });
    expect(body.produced.bytes).toBeLessThan(64 * MiB);
    reply = () => json(202, CDS_ACCEPTED);
    await expect(c.send(data())).resolves.toMatchObject({ ok: true });
  });

  it("a token endpoint that answers with a gigabyte is OmfResponseTooLargeError at the auth limit; the next token request works", async () => {
    let token: () => Reply = () => ({ status: 200, stream: body.stream });
    const body = zeroBody(GiB);
    const s = await server(() => {
      const last = s.requests.at(-1)!;
      if (last.path === "/identity/connect/token") return token();
      return json(202, CDS_ACCEPTED);
    }, true);
    const c = client({
      kind: "adh",
      name: "adh",
      url: s.url,
      tenantId: "t",
      namespaceId: "n",
      clientId: "id",
      clientSecret: "secret",
      tokenUrl: `${s.url}/identity/connect/token`,
      caPemPath: TEST_CA_PATH,
    });
    const err = await c.send(data()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmfResponseTooLargeError);
    expect(err).toMatchObject({ limitBytes: AUTH_MAX_RESPONSE_BYTES });
    expect((err as Error).message).toMatch(/^token request to adh: response body over 65536 bytes/);
    await until(() => body.produced.ended, { timeoutMs: 10_000, what: "the server's body to end" });
    expect(body.produced.bytes).toBeLessThan(64 * MiB);
    token = () => json(200, { access_token: "tok", expires_in: 3600 });
    await expect(c.send(data())).resolves.toMatchObject({ ok: true });
  });

  it("a body of exactly the limit is read whole; one byte more is the error", async () => {
    const limit = 1000;
    let size = limit;
    const s = await server(() => json(200, "x".repeat(size)));
    const dispatcher = new Agent();
    cleanups.push(() => dispatcher.close());
    const exchange = () =>
      httpExchange({
        method: "GET",
        url: s.url,
        headers: {},
        timeoutMs: 5000,
        dispatcher,
        endpoint: "e",
        what: "GET",
        maxResponseBytes: limit,
      });
    expect((await exchange()).text).toHaveLength(limit);
    size = limit + 1;
    await expect(exchange()).rejects.toBeInstanceOf(OmfResponseTooLargeError);
  });
});
