import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import {
  type PublishRequest,
  PublishRequestSchema,
  TelemetryService,
} from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { TEST_KEYS } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsonRequestReader } from "../src/json-request.js";
import { startTestService, type TestService } from "./harness.js";

/** Reads only `{"events":[{"id":"…"}, …]}`; leaves anything else to protobuf-es. Counts the bodies it read. */
let readByHand = 0;
const idsOnlyReader: JsonRequestReader = {
  method: TelemetryService.method.publish,
  read(json, keys) {
    if (typeof json !== "object" || json === null || Object.keys(json).join() !== "events") return undefined;
    keys.count++;
    const list = (json as { events: unknown }).events;
    if (!Array.isArray(list)) return undefined;
    const events: PublishRequest["events"] = [];
    for (const e of list) {
      if (typeof e !== "object" || e === null || Object.keys(e).join() !== "id" || typeof e.id !== "string") return undefined;
      keys.count++;
      events.push({ $typeName: "meridian.telemetry.v1.TelemetryEvent", id: e.id, points: [], attributes: {} });
    }
    readByHand++;
    return { $typeName: "meridian.telemetry.v1.PublishRequest", events };
  },
};

/** Publish answers with the ids it got; ids pick failures, as a handler's own errors would be. */
function routes(router: ConnectRouter) {
  router.service(TelemetryService, {
    async publish(req) {
      const first = req.events[0];
      if (first?.id === "bug") throw new Error("a bug with a secret: hunter2");
      if (first?.id === "refused") throw new ConnectError("refused by the handler", Code.FailedPrecondition);
      if (first?.id === "slow") await new Promise((r) => setTimeout(r, 500));
      return { eventIds: req.events.map((e) => e.id), storedMessages: req.events.reduce((n, e) => n + e.points.length, 0) };
    },
  });
}

let plain: TestService;
let withReader: TestService;
beforeAll(async () => {
  const readMaxBytes = 64 * 1024;
  plain = await startTestService({ routes, readMaxBytes });
  withReader = await startTestService({ routes, readMaxBytes, jsonRequestReaders: [idsOnlyReader] });
});
afterAll(async () => {
  await Promise.all([plain?.stop(), withReader?.stop()]);
});

interface Sent {
  body: string | Uint8Array;
  headers?: Record<string, string>;
}

const JSON_HEADERS = { "content-type": "application/json", authorization: `Bearer ${TEST_KEYS.admin}` };

/** What a client sees of an answer: status, the protocol's headers, the body. */
async function answer(svc: TestService, sent: Sent) {
  const res = await fetch(`${svc.url}/meridian.telemetry.v1.TelemetryService/Publish`, {
    method: "POST",
    headers: { ...JSON_HEADERS, ...sent.headers },
    body: sent.body,
  });
  const body = Buffer.from(await res.arrayBuffer());
  const headers: Record<string, string | null> = {};
  for (const name of ["content-type", "content-encoding", "content-length"]) headers[name] = res.headers.get(name);
  // fetch undoes gzip itself: the text is the decoded body either way.
  return { status: res.status, headers, body: body.toString("utf8") };
}

const ids = (n: number) => JSON.stringify({ events: Array.from({ length: n }, (_, i) => ({ id: `event-${i}` })) });

const cases: Record<string, Sent> = {
  "a body the reader reads": { body: ids(3) },
  "a body the reader leaves to protobuf-es": { body: JSON.stringify({ events: [{ id: "a", points: [{ name: "p", boolValue: true }] }] }) },
  "unknown fields (ignored by protobuf-es)": { body: JSON.stringify({ events: [{ id: "a" }], extra: 1 }) },
  "malformed JSON": { body: '{"events":[{"id":"a"}' },
  "a duplicate key, which JSON.parse would merge": { body: '{"events":[{"id":"a","id":"b"}]}' },
  "a duplicate key in a later event": { body: '{"events":[{"id":"a"},{"id":"b", "id":"c"}]}' },
  "a duplicate key at the top": { body: '{"events":[{"id":"a"}],"events":[{"id":"b"}]}' },
  "a duplicate key written with an escape": { body: '{"events":[{"id":"a","\\u0069d":"b"}]}' },
  "a value of the wrong type": { body: '{"events":"none"}' },
  "not UTF-8": { body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) },
  "gzip-compressed": { body: gzipSync(ids(2)), headers: { "content-encoding": "gzip" } },
  "an answer large enough to compress": { body: ids(200), headers: { "accept-encoding": "gzip" } },
  "an unsupported content-encoding": { body: ids(1), headers: { "content-encoding": "lz77" } },
  "over readMaxBytes": { body: ids(4000) },
  "no credential": { body: ids(1), headers: { authorization: "" } },
  "a bad credential": { body: ids(1), headers: { authorization: "Bearer not-a-key" } },
  "a bad connect-timeout-ms": { body: ids(1), headers: { "connect-timeout-ms": "soon" } },
  "a deadline the handler overruns": { body: JSON.stringify({ events: [{ id: "slow" }] }), headers: { "connect-timeout-ms": "50" } },
  "the handler's own error": { body: JSON.stringify({ events: [{ id: "refused" }] }) },
  "a bug in the handler": { body: JSON.stringify({ events: [{ id: "bug" }] }) },
  "an empty body": { body: "" },
  "JSON with a charset": { body: ids(1), headers: { "content-type": "application/json; charset=utf-8" } },
  "binary protobuf (not this path)": {
    body: toBinary(PublishRequestSchema, create(PublishRequestSchema, { events: [{ id: "bin" }] })),
    headers: { "content-type": "application/proto" },
  },
  "Connect streaming JSON (not this path)": { body: ids(1), headers: { "content-type": "application/connect+json" } },
};

describe("a JSON request reader on a unary method", () => {
  for (const [name, sent] of Object.entries(cases)) {
    it(`answers exactly as connect-es does without it: ${name}`, async () => {
      const want = await answer(plain, sent);
      const got = await answer(withReader, sent);
      expect(got).toEqual(want);
    });
  }

  it("is used for the bodies it reads, and the rest still work", async () => {
    const before = readByHand;
    const res = await answer(withReader, { body: ids(3) });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ eventIds: ["event-0", "event-1", "event-2"] });
    expect(readByHand).toBe(before + 1);
    // Left to protobuf-es: the answer counts the point the reader never saw.
    const left = await answer(withReader, cases["a body the reader leaves to protobuf-es"]!);
    expect(JSON.parse(left.body)).toEqual({ eventIds: ["a"], storedMessages: 1 });
    expect(readByHand).toBe(before + 1);
    // A duplicate key is never taken from the reader (JSON.parse kept only the last value): protobuf-es refuses it.
    const duplicate = await answer(withReader, cases["a duplicate key, which JSON.parse would merge"]!);
    expect(duplicate.status).toBe(400);
    expect(JSON.parse(duplicate.body)).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/duplicate/) });
  });

  it("stops the start when its method is not registered", async () => {
    await expect(
      startTestService({ routes: (router) => router.service(RouteService, {}), jsonRequestReaders: [idsOnlyReader] }),
    ).rejects.toThrow(/jsonRequestReaders: meridian.telemetry.v1.TelemetryService.Publish is not a registered unary method/);
  });
});
