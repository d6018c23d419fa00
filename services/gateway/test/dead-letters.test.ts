/**
 * DeadLetterService through the gateway's Connect API, against a real nats-server. The platform sinks are stood in for
 * by their routes' real DurableConsumers (routeConsumer, as every sink service runs them): one refuses "poisoned"
 * events with a PermanentError, as a sink does for a 400 its endpoint will always give, until it is "fixed".
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  Bus,
  PermanentError,
  REPLAY_HEADERS,
  routeConsumer,
  SCHEMA_HEADER,
  STREAMS,
  TELEMETRY_BATCH_SCHEMA,
  telemetrySubject,
} from "@meridian/bus";
import { DeadLetterService, ReplayOutcome, ReplayState } from "@meridian/contracts/meridian/deadletter/v1/dead_letter_service_pb";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import {
  captureLogger,
  codeOf,
  type NatsServerHandle,
  startForTest,
  startNatsServer,
  TEST_KEYS,
  testCredential,
  testLogger,
  until,
} from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayConfig } from "../src/config.js";
import { type Gateway, startGateway } from "../src/service.js";

const logs = captureLogger({ service: "gateway" });
let nats: NatsServerHandle;
let gw: Gateway;
let bus: Bus;
let routes: ReturnType<typeof createClient<typeof RouteService>>;
let dlq: ReturnType<typeof createClient<typeof DeadLetterService>>;

const client = (key: string) =>
  createClient(
    DeadLetterService,
    createConnectTransport({ interceptors: [testCredential(key)], baseUrl: gw.service.url, httpVersion: "1.1" }),
  );

function event(connection: string, id: string, value = 1): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id,
    source: { platform: Platform.API, connection, device: "boiler" },
    observedTime: timestampFromDate(new Date()),
    points: [{ name: "temperature", unit: "degC", value: { case: "doubleValue", value } }],
  });
}

/** A route's sink: delivers every event not in `poison` (recording it), refuses the others for good. */
interface Sink {
  delivered: string[];
  poison: Set<string>;
  stop(): Promise<void>;
}
const sinks: Sink[] = [];

async function startSink(route: Route, platform: Platform): Promise<Sink> {
  const consumer = routeConsumer(bus, route, platform, { logger: testLogger() });
  await consumer.declare();
  const ac = new AbortController();
  const sink: Sink = {
    delivered: [],
    poison: new Set(),
    stop: async () => {
      ac.abort();
      await running;
    },
  };
  const running = consumer.run(async (d) => {
    for (const e of d.batch.events) {
      if (sink.poison.has(e.id))
        throw new PermanentError("400 Bad Request: type 'Boiler' has no property 'temperature'", `{"id":"${e.id}"}`);
    }
    sink.delivered.push(...d.batch.events.map((e) => e.id));
  }, ac.signal);
  sinks.push(sink);
  return sink;
}

async function createRoute(id: string, connection: string, platform: Platform): Promise<Route> {
  return (await routes.createRoute({ route: { id, source: { connection }, sink: { platform, target: "t" } } })).route!;
}

/** The sequence of the dead letter of `eventId`, once the sink has given up on it. */
async function deadLetterOf(consumer: string, eventId: string): Promise<bigint> {
  let seq: bigint | undefined;
  await until(async () => {
    const page = await dlq.listDeadLetters({ filter: { consumer }, pageSize: 500 });
    for (const l of page.deadLetters) {
      const got = await dlq.getDeadLetter({ sequence: l.sequence });
      if (got.batch?.events[0]?.id === eventId) seq = l.sequence;
    }
    return seq !== undefined;
  });
  return seq!;
}

const telemetryLastSeq = async () => (await bus.jsm().streams.info(STREAMS.telemetry)).state.last_seq;

let line: Sink;
let other: Sink;

beforeAll(async () => {
  nats = await startNatsServer();
  gw = await startForTest(startGateway, gatewayConfig, { NATS_URL: nats.url }, {}, logs.logger);
  bus = Bus.connect({ servers: nats.url, name: "dead-letters-test", logger: testLogger() });
  await bus.ready;
  routes = createClient(
    RouteService,
    createConnectTransport({ interceptors: [testCredential()], baseUrl: gw.service.url, httpVersion: "1.1" }),
  );
  dlq = client(TEST_KEYS.admin);
  // Two routes on the same source: OMF's sink refuses the poisoned events, IoT Central's delivers everything.
  line = await startSink(await createRoute("line-1", "plant", Platform.OMF), Platform.OMF);
  other = await startSink(await createRoute("other", "plant", Platform.IOT_CENTRAL), Platform.IOT_CENTRAL);
});
afterAll(async () => {
  for (const s of sinks) await s.stop();
  await gw?.stop();
  await bus?.close();
  await nats?.stop();
});

describe("a poisoned message", () => {
  let seq: bigint;

  it("is dead-lettered by the sink, listed with its reason, and got with its payload, headers and batch", async () => {
    line.poison.add("poison-1");
    await bus.publishEvents([event("plant", "poison-1", 42)]);
    await bus.publishEvents([event("plant", "fine-1")]);
    await until(() => line.delivered.includes("fine-1") && other.delivered.includes("fine-1"));
    seq = await deadLetterOf("omf-line-1", "poison-1");

    const listed = await dlq.listDeadLetters({ filter: { routeId: "line-1", reasonContains: "NO PROPERTY" } });
    expect(listed.deadLetters.map((l) => l.sequence)).toEqual([seq]);
    const l = listed.deadLetters[0]!;
    expect(l).toMatchObject({
      consumer: "omf-line-1",
      routeId: "line-1",
      reason: "400 Bad Request: type 'Boiler' has no property 'temperature'",
      detail: '{"id":"poison-1"}',
      originalSubject: telemetrySubject({ platform: Platform.API, connection: "plant", device: "boiler" }),
      deliveries: 1,
    });
    expect(l.originalSequence).toBeGreaterThan(0n);
    expect(l.replay).toBeUndefined();
    expect(listed.nextPageToken).toBe("");
    // Filters that do not match it.
    expect((await dlq.listDeadLetters({ filter: { routeId: "other" } })).deadLetters).toEqual([]);
    expect((await dlq.listDeadLetters({ filter: { reasonContains: "timeout" } })).deadLetters).toEqual([]);
    expect((await dlq.listDeadLetters({ filter: { until: timestampFromDate(new Date(Date.now() - 60_000)) } })).deadLetters).toEqual([]);

    const got = await dlq.getDeadLetter({ sequence: seq });
    expect(got.deadLetter?.sequence).toBe(seq);
    expect(got.batch?.events.map((e) => e.id)).toEqual(["poison-1"]);
    expect(got.batch?.events[0]?.points[0]?.value).toEqual({ case: "doubleValue", value: 42 });
    expect(got.payload.length).toBe(l.sizeBytes);
    expect(got.headers).toMatchObject({
      "Meridian-Dead-Letter-Reason": l.reason,
      "Meridian-Consumer": "omf-line-1",
      "Meridian-Original-Subject": l.originalSubject,
      [SCHEMA_HEADER]: TELEMETRY_BATCH_SCHEMA,
    });
  });

  it("replayed once the endpoint is fixed, is delivered exactly once by its own sink and not by the other route's", async () => {
    line.poison.clear();
    const before = await telemetryLastSeq();
    const res = await dlq.replayDeadLetters({ sequences: [seq] });
    expect(res.results).toHaveLength(1);
    const r = res.results[0]!;
    expect(r.outcome).toBe(ReplayOutcome.REPLAYED);
    expect(r.replay).toMatchObject({ consumer: "omf-line-1", routeId: "line-1", caller: "test-admin" });
    expect(r.replay?.subject).toBe(telemetrySubject({ platform: Platform.API, connection: "plant", device: "boiler" }));
    expect(r.replay?.sequence).toBe(BigInt(before + 1));
    const stored = await bus.jsm().streams.getMessage(STREAMS.telemetry, { seq: before + 1 });
    expect(stored.header.get(REPLAY_HEADERS.consumer)).toBe("omf-line-1");
    expect(stored.header.get(REPLAY_HEADERS.of)).toBe(String(seq));

    // A later event both sinks deliver: once it is through, so is anything published before it.
    await bus.publishEvents([event("plant", "fine-2")]);
    await until(() => line.delivered.includes("fine-2") && other.delivered.includes("fine-2"));
    expect(line.delivered.filter((id) => id === "poison-1")).toHaveLength(1);
    expect(line.delivered.indexOf("poison-1")).toBeLessThan(line.delivered.indexOf("fine-2"));
    // The other route's sink delivered the original when it was published, and skipped the replay.
    expect(other.delivered.filter((id) => id === "poison-1")).toHaveLength(1);

    const listed = await dlq.listDeadLetters({ filter: { consumer: "omf-line-1", state: ReplayState.REPLAYED } });
    expect(listed.deadLetters.map((l) => l.sequence)).toEqual([seq]);
    expect(listed.deadLetters[0]?.replay?.sequence).toBe(BigInt(before + 1));
    expect((await dlq.listDeadLetters({ filter: { consumer: "omf-line-1", state: ReplayState.PENDING } })).deadLetters).toEqual([]);
  });

  it("replayed a second time answers ALREADY_REPLAYED with the first replay, and nothing is published", async () => {
    const before = await telemetryLastSeq();
    const first = (await dlq.getDeadLetter({ sequence: seq })).deadLetter?.replay;
    const res = await dlq.replayDeadLetters({ sequences: [seq] });
    expect(res.results[0]?.outcome).toBe(ReplayOutcome.ALREADY_REPLAYED);
    expect(res.results[0]?.replay).toEqual(first);
    expect(await telemetryLastSeq()).toBe(before);
    // Also to another route: a dead letter is replayed once.
    expect((await dlq.replayDeadLetters({ sequences: [seq], routeId: "other" })).results[0]?.outcome).toBe(ReplayOutcome.ALREADY_REPLAYED);
    expect(await telemetryLastSeq()).toBe(before);
    expect(line.delivered.filter((id) => id === "poison-1")).toHaveLength(1);
  });

  it("replayed to a chosen route is delivered by that route's sink only", async () => {
    line.poison.add("poison-2");
    await bus.publishEvents([event("plant", "poison-2")]);
    const s = await deadLetterOf("omf-line-1", "poison-2");
    const otherBefore = other.delivered.filter((id) => id === "poison-2").length;
    expect(otherBefore).toBe(1);
    const res = await dlq.replayDeadLetters({ sequences: [s], routeId: "other" });
    expect(res.results[0]).toMatchObject({ outcome: ReplayOutcome.REPLAYED, replay: { consumer: "iotc-other", routeId: "other" } });
    await bus.publishEvents([event("plant", "fine-3")]);
    await until(() => line.delivered.includes("fine-3") && other.delivered.includes("fine-3"));
    expect(other.delivered.filter((id) => id === "poison-2")).toHaveLength(2);
    expect(line.delivered).not.toContain("poison-2");
  });
});

describe("replays refused", () => {
  it("a source's dead letter, a route gone, a route whose source does not match, an unknown route or sequence", async () => {
    await createRoute("elsewhere", "another-plant", Platform.OMF);
    const source = await bus.publishDeadLetter({ consumer: "idigi", data: new Uint8Array([1, 2, 3]), reason: "not a push block" });
    const subject = telemetrySubject({ platform: Platform.API, connection: "plant", device: "boiler" });
    const gone = await bus.publishDeadLetter({
      consumer: "omf-gone",
      data: new Uint8Array([]),
      reason: "refused",
      original: { subject, sequence: 1, deliveries: 1 },
    });
    const before = await telemetryLastSeq();
    const res = await dlq.replayDeadLetters({ sequences: [BigInt(source.seq), BigInt(gone.seq), 999_999n] });
    expect(res.results.map((r) => [r.sequence, r.outcome])).toEqual([
      [BigInt(source.seq), ReplayOutcome.REFUSED],
      [BigInt(gone.seq), ReplayOutcome.REFUSED],
      [999_999n, ReplayOutcome.NOT_FOUND],
    ]);
    expect(res.results[0]?.message).toMatch(/source/);
    expect(res.results[1]?.message).toContain('route "gone"');
    expect(res.results[1]?.message).toContain("route_id");

    const toElsewhere = await dlq.replayDeadLetters({ sequences: [BigInt(gone.seq)], routeId: "elsewhere" });
    expect(toElsewhere.results[0]?.outcome).toBe(ReplayOutcome.REFUSED);
    expect(toElsewhere.results[0]?.message).toContain("does not match");
    const toNowhere = await dlq.replayDeadLetters({ sequences: [BigInt(gone.seq)], routeId: "nowhere" });
    expect(toNowhere.results[0]).toMatchObject({ outcome: ReplayOutcome.REFUSED, message: 'route "nowhere" not found' });
    expect(await telemetryLastSeq()).toBe(before);
    // Nothing refused is recorded as replayed.
    expect((await dlq.getDeadLetter({ sequence: BigInt(gone.seq) })).deadLetter?.replay).toBeUndefined();
  });

  it("a route without a running sink (no consumer yet) is refused", async () => {
    await createRoute("idle", "plant", Platform.OCI_IOT);
    const subject = telemetrySubject({ platform: Platform.API, connection: "plant", device: "boiler" });
    const l = await bus.publishDeadLetter({
      consumer: "omf-line-1",
      data: new Uint8Array([]),
      reason: "x",
      original: { subject, sequence: 1, deliveries: 1 },
    });
    const res = await dlq.replayDeadLetters({ sequences: [BigInt(l.seq)], routeId: "idle" });
    expect(res.results[0]?.outcome).toBe(ReplayOutcome.REFUSED);
    expect(res.results[0]?.message).toContain("oci-idle");
    await dlq.purgeDeadLetters({ sequences: [BigInt(l.seq)] });
  });
});

describe("purge", () => {
  const put = async (consumer: string, reason: string) =>
    BigInt(
      (
        await bus.publishDeadLetter({
          consumer,
          data: new TextEncoder().encode(reason),
          reason,
          original: { subject: "telemetry.v1.api.purge.d", sequence: 1, deliveries: 1 },
        })
      ).seq,
    );

  it("by sequences removes those the stream holds and counts only them", async () => {
    const a = await put("omf-p", "purge me");
    const b = await put("omf-p", "keep me");
    expect((await dlq.purgeDeadLetters({ sequences: [a, 888_888n] })).purged).toBe(1n);
    expect((await codeOf(dlq.getDeadLetter({ sequence: a }))).code).toBe(Code.NotFound);
    expect((await dlq.getDeadLetter({ sequence: b })).deadLetter?.reason).toBe("keep me");
  });

  it("by filter removes what it matches, by reason or by consumer; a replayed dead letter's record goes with it", async () => {
    const x = await put("omf-q", "Bad Type");
    const y = await put("omf-q", "other");
    const z = await put("oci-q", "bad type again");
    expect((await dlq.purgeDeadLetters({ filter: { reasonContains: "bad type" } })).purged).toBe(2n);
    expect((await codeOf(dlq.getDeadLetter({ sequence: x }))).code).toBe(Code.NotFound);
    expect((await codeOf(dlq.getDeadLetter({ sequence: z }))).code).toBe(Code.NotFound);
    expect((await dlq.purgeDeadLetters({ filter: { consumer: "omf-q" } })).purged).toBe(1n);
    expect((await codeOf(dlq.getDeadLetter({ sequence: y }))).code).toBe(Code.NotFound);
  });

  it("an empty filter is refused unless all is set; all empties the stream", async () => {
    const err = await codeOf(dlq.purgeDeadLetters({}));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toContain("filter");
    await put("omf-r", "one");
    expect((await dlq.purgeDeadLetters({ all: true })).purged).toBeGreaterThan(0n);
    expect((await dlq.listDeadLetters({})).deadLetters).toEqual([]);
  });
});

describe("limits and bad input", () => {
  it("501 sequences is invalid_argument naming sequences (replay and purge)", async () => {
    const many = Array.from({ length: 501 }, (_, i) => BigInt(i + 1));
    for (const call of [dlq.replayDeadLetters({ sequences: many }), dlq.purgeDeadLetters({ sequences: many })]) {
      const err = await codeOf(call);
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.message).toContain("sequences: 501 sequences; at most 500 per call");
    }
  });

  it("no sequence, a zero or repeated one, a bad page size, token, filter or route id name their field", async () => {
    const cases: Array<[Promise<unknown>, string]> = [
      [dlq.replayDeadLetters({}), "sequences: required"],
      [dlq.replayDeadLetters({ sequences: [0n] }), "sequences[0]: must be a dead letter's sequence"],
      [dlq.replayDeadLetters({ sequences: [5n, 5n] }), "sequences[1]: duplicate of sequences[0]"],
      [dlq.replayDeadLetters({ sequences: [5n], routeId: "Bad Id" }), "route_id: must be"],
      [dlq.getDeadLetter({}), "sequence: required"],
      [dlq.listDeadLetters({ pageSize: 501 }), "page_size: at most 500"],
      [dlq.listDeadLetters({ pageToken: "abc" }), "page_token: not a token"],
      [dlq.listDeadLetters({ filter: { consumer: "c".repeat(257) } }), "filter.consumer: longer than 256 characters"],
      [dlq.listDeadLetters({ filter: { reasonContains: "r".repeat(257) } }), "filter.reason_contains: longer than 256"],
      [
        dlq.listDeadLetters({ filter: { since: timestampFromDate(new Date(2000)), until: timestampFromDate(new Date(1000)) } }),
        "filter.until: must be after since",
      ],
      [dlq.purgeDeadLetters({ sequences: [1n], all: true }), "sequences: either sequences or a filter"],
      [dlq.purgeDeadLetters({ all: true, filter: { consumer: "x" } }), "all: all purges every dead letter"],
    ];
    for (const [call, message] of cases) {
      const err = await codeOf(call);
      expect(err.code, message).toBe(Code.InvalidArgument);
      expect(err.message).toContain(message);
    }
  });

  it("a page holds page_size matches and a token to the rest", async () => {
    for (let i = 0; i < 5; i++) await bus.publishDeadLetter({ consumer: "omf-page", data: new Uint8Array([i]), reason: `r${i}` });
    const first = await dlq.listDeadLetters({ filter: { consumer: "omf-page" }, pageSize: 3 });
    expect(first.deadLetters.map((l) => l.reason)).toEqual(["r0", "r1", "r2"]);
    expect(first.nextPageToken).not.toBe("");
    const second = await dlq.listDeadLetters({ filter: { consumer: "omf-page" }, pageSize: 3, pageToken: first.nextPageToken });
    expect(second.deadLetters.map((l) => l.reason)).toEqual(["r3", "r4"]);
    expect(second.nextPageToken).toBe("");
    expect(second.scanned).toBe(2n);
  });
});

describe("roles", () => {
  it("deadletters:read may list and get but not replay or purge (permission_denied)", async () => {
    const reader = client(TEST_KEYS["deadletters:read"]);
    const page = await reader.listDeadLetters({ filter: { consumer: "omf-page" } });
    expect(page.deadLetters.length).toBe(5);
    await reader.getDeadLetter({ sequence: page.deadLetters[0]!.sequence });
    expect((await codeOf(reader.replayDeadLetters({ sequences: [page.deadLetters[0]!.sequence] }))).code).toBe(Code.PermissionDenied);
    expect((await codeOf(reader.purgeDeadLetters({ all: true }))).code).toBe(Code.PermissionDenied);
    const admin = client(TEST_KEYS["deadletters:admin"]);
    expect((await admin.purgeDeadLetters({ filter: { consumer: "omf-page" } })).purged).toBe(5n);
  });

  it("a telemetry reader may not list dead letters", async () => {
    expect((await codeOf(client(TEST_KEYS["telemetry:read"]).listDeadLetters({}))).code).toBe(Code.PermissionDenied);
  });

  it("the replay bucket keeps records as long as the DEADLETTER stream keeps dead letters", async () => {
    const info = await bus.jsm().streams.info("KV_deadletter_replays");
    expect(info.config.max_age).toBe((await bus.jsm().streams.info(STREAMS.deadLetter)).config.max_age);
  });
});
