/**
 * Dead letters against a real nats-server: a poisoned message dead-lettered by a sink's DurableConsumer, read back,
 * replayed for that consumer only (another consumer on the same subject and live telemetry skip it), pages and
 * filters, deletes and purges.
 */
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { captureLogger, type NatsServerHandle, startNatsServer, until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Bus } from "../src/bus.js";
import { SCHEMA_HEADER, TELEMETRY_BATCH_SCHEMA } from "../src/codec.js";
import { type Delivery, DurableConsumer, parseRouteConsumerName, routeConsumerName } from "../src/consumer.js";
import { REPLAY_HEADERS } from "../src/dead-letter.js";
import { DeadLetters } from "../src/dead-letters.js";
import { PermanentError } from "../src/errors.js";
import { subjectMatches, telemetryFilterSubject, telemetrySubject } from "../src/subjects.js";

let nats: NatsServerHandle;
let bus: Bus;
let letters: DeadLetters;
const logs = captureLogger();

function event(connection: string, id: string): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id,
    source: { platform: Platform.API, connection, device: "d" },
    observedTime: timestampNow(),
    points: [{ name: "v", value: { case: "doubleValue", value: 1 } }],
  });
}

/** A sink's consumer on `connection` that dead-letters the events whose id is in `poison`, and records what it delivered. */
async function sink(durable: string, connection: string, poison: Set<string>) {
  const consumer = new DurableConsumer(bus, { durable, filterSubject: telemetryFilterSubject({ connection }), logger: logs.logger });
  await consumer.declare();
  const delivered: Array<{ id: string; seq: number }> = [];
  const ac = new AbortController();
  const running = consumer.run(async (d: Delivery) => {
    const id = d.batch.events[0]?.id ?? "";
    if (poison.has(id)) throw new PermanentError("400 Bad Request: the endpoint refuses this", `{"error":"bad ${id}"}`);
    delivered.push({ id, seq: d.streamSequence });
  }, ac.signal);
  return {
    delivered,
    stop: async () => {
      ac.abort();
      await running;
    },
  };
}

beforeAll(async () => {
  nats = await startNatsServer();
  bus = Bus.connect({ servers: nats.url, name: "dead-letters-test", logger: logs.logger });
  await bus.ready;
  letters = new DeadLetters(bus);
});
afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

describe("route consumer names and subjects", () => {
  it("a route consumer's name gives back its route and platform; other names give nothing", () => {
    expect(parseRouteConsumerName(routeConsumerName("line-1", Platform.OMF))).toEqual({ routeId: "line-1", sinkPlatform: Platform.OMF });
    expect(parseRouteConsumerName("oci-a-b")).toEqual({ routeId: "a-b", sinkPlatform: Platform.OCI_IOT });
    expect(parseRouteConsumerName("idigi")).toBeUndefined();
    expect(parseRouteConsumerName("unknown-x")).toBeUndefined();
    expect(parseRouteConsumerName("nope-x")).toBeUndefined();
    expect(parseRouteConsumerName("omf-")).toBeUndefined();
  });

  it("subject matching follows NATS wildcards", () => {
    expect(subjectMatches("telemetry.v1.*.c.*", "telemetry.v1.api.c.d")).toBe(true);
    expect(subjectMatches("telemetry.v1.*.c.*", "telemetry.v1.api.x.d")).toBe(false);
    expect(subjectMatches("telemetry.v1.>", "telemetry.v1.api.x.d")).toBe(true);
    expect(subjectMatches("telemetry.v1.>", "telemetry.v1")).toBe(false);
    expect(subjectMatches("telemetry.v1.*.c", "telemetry.v1.api.c.d")).toBe(false);
  });
});

describe("replay", () => {
  it("a replay named for consumer X is delivered by X once and acked unseen by Y on the same subject; subscribe skips it", async () => {
    const poison = new Set(["p1"]);
    const x = await sink("omf-rx", "rc", poison);
    const y = await sink("iotc-ry", "rc", new Set());
    const live: string[] = [];
    const liveAc = new AbortController();
    const liveRun = (async () => {
      for await (const e of bus.subscribe({ connection: "rc" }, { signal: liveAc.signal })) live.push(e.id);
    })();
    await new Promise((r) => setTimeout(r, 200));
    await bus.publishEvents([event("rc", "p1")]);
    await bus.publishEvents([event("rc", "ok1")]);
    await until(() => x.delivered.length === 1 && y.delivered.length === 2 && live.length === 2);
    await until(async () => (await letters.page({ consumer: "omf-rx", limit: 10, maxScanned: 100 })).letters.length === 1);
    const page = await letters.page({ consumer: "omf-rx", limit: 10, maxScanned: 100 });
    const letter = page.letters[0]!;
    expect(letter.reason).toBe("400 Bad Request: the endpoint refuses this");
    expect(letter.detail).toBe('{"error":"bad p1"}');
    expect(letter.original?.subject).toBe(telemetrySubject({ platform: Platform.API, connection: "rc", device: "d" }));
    expect(letter.headers[SCHEMA_HEADER]).toBe(TELEMETRY_BATCH_SCHEMA);
    expect(page.next).toBeUndefined();

    poison.clear();
    const first = await letters.replay(letter, "omf-rx");
    expect(first.duplicate).toBe(false);
    const again = await letters.replay(letter, "omf-rx");
    expect(again).toEqual({ ...first, duplicate: true });
    await bus.publishEvents([event("rc", "after")]);
    await until(() => x.delivered.length === 3 && y.delivered.length === 3 && live.length === 3);
    expect(x.delivered.map((d) => d.id)).toEqual(["ok1", "p1", "after"]);
    expect(x.delivered[1]!.seq).toBe(first.seq);
    expect(y.delivered.map((d) => d.id)).toEqual(["p1", "ok1", "after"]);
    expect(live).toEqual(["p1", "ok1", "after"]);
    // Y acknowledged the replay it skipped: nothing waits for it.
    await until(async () => (await bus.jsm().consumers.info("TELEMETRY", "iotc-ry")).num_ack_pending === 0);
    expect((await bus.jsm().consumers.info("TELEMETRY", "iotc-ry")).num_pending).toBe(0);
    const stored = await bus.jsm().streams.getMessage("TELEMETRY", { seq: first.seq });
    expect(stored.header.get(REPLAY_HEADERS.consumer)).toBe("omf-rx");
    expect(stored.header.get(REPLAY_HEADERS.of)).toBe(String(letter.sequence));
    expect(stored.header.get(SCHEMA_HEADER)).toBe(TELEMETRY_BATCH_SCHEMA);
    liveAc.abort();
    await liveRun;
    await x.stop();
    await y.stop();
  });

  it("a source's dead letter (no original subject) cannot be replayed", async () => {
    const { seq } = await bus.publishDeadLetter({ consumer: "idigi", data: new Uint8Array([1, 2]), reason: "not a block" });
    const letter = (await letters.get(seq))!;
    expect(letter.original).toBeUndefined();
    expect(letter.consumer).toBe("idigi");
    await expect(letters.replay(letter, "omf-x")).rejects.toThrow(/no telemetry subject/);
  });
});

describe("pages, filters, delete and purge", () => {
  const seqs: number[] = [];
  beforeAll(async () => {
    await letters.purge();
    for (let i = 0; i < 12; i++) {
      const consumer = i % 3 === 0 ? "omf-a" : i % 3 === 1 ? "oci-a" : "omf-b";
      const r = await bus.publishDeadLetter({
        consumer,
        data: new TextEncoder().encode(`m${i}`),
        reason: i === 7 ? "Schema REJECTED" : "refused",
        original: { subject: "telemetry.v1.api.c.d", sequence: 100 + i, deliveries: 1 },
      });
      seqs.push(r.seq);
    }
  });

  it("pages follow each other in stream order until next is empty", async () => {
    const seen: number[] = [];
    let from: number | undefined;
    let pages = 0;
    do {
      const p = await letters.page({ fromSequence: from, limit: 5, maxScanned: 10_000 });
      seen.push(...p.letters.map((l) => l.sequence));
      from = p.next;
      pages++;
    } while (from !== undefined);
    expect(seen).toEqual(seqs);
    expect(pages).toBe(3);
  });

  it("a consumer filter reads only that consumer's subject; a match function filters what is read", async () => {
    const a = await letters.page({ consumer: "omf-a", limit: 100, maxScanned: 100 });
    expect(a.letters.map((l) => l.sequence)).toEqual([0, 3, 6, 9].map((i) => seqs[i]));
    expect(a.scanned).toBe(4);
    const rejected = await letters.page({ limit: 100, maxScanned: 100, match: (l) => /rejected/i.test(l.reason) });
    expect(rejected.letters.map((l) => l.sequence)).toEqual([seqs[7]]);
    expect(rejected.scanned).toBe(12);
    expect(rejected.next).toBeUndefined();
  });

  it("maxScanned ends a sparse page with a next position; until ends the reading", async () => {
    const sparse = await letters.page({ limit: 100, maxScanned: 5, match: (l) => /rejected/i.test(l.reason) });
    expect(sparse.letters).toEqual([]);
    expect(sparse.scanned).toBe(5);
    expect(sparse.next).toBe(seqs[5]);
    const t = (await letters.get(seqs[2]!))!.time;
    const bounded = await letters.page({ limit: 100, maxScanned: 100, until: new Date(t.getTime() + 1) });
    expect(bounded.letters.length).toBeGreaterThanOrEqual(3);
    expect(bounded.next).toBeUndefined();
    const since = await letters.page({ limit: 100, maxScanned: 100, since: new Date(Date.now() + 60_000) });
    expect(since).toEqual({ letters: [], scanned: 0, next: undefined });
  });

  it("a page from past the end is empty; get of an unknown sequence is undefined", async () => {
    expect(await letters.page({ fromSequence: seqs.at(-1)! + 1, limit: 10, maxScanned: 10 })).toEqual({
      letters: [],
      scanned: 0,
      next: undefined,
    });
    expect(await letters.get(seqs.at(-1)! + 1000)).toBeUndefined();
  });

  it("delete removes one (false the second time); purge by consumer removes only that consumer's", async () => {
    expect(await letters.delete(seqs[0]!)).toBe(true);
    expect(await letters.delete(seqs[0]!)).toBe(false);
    expect(await letters.delete(seqs.at(-1)! + 1000)).toBe(false);
    expect(await letters.get(seqs[0]!)).toBeUndefined();
    expect(await letters.purge("oci-a")).toBe(4);
    const rest = await letters.page({ limit: 100, maxScanned: 100 });
    expect(rest.letters.map((l) => l.consumer).sort()).toEqual([...Array(3).fill("omf-a"), ...Array(4).fill("omf-b")]);
    expect(await letters.purge()).toBe(7);
  });
});
