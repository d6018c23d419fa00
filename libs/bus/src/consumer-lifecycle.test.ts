import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type NatsServerHandle, startNatsServer, testLogger, until } from "@meridian/testing";
import { AckPolicy, DeliverPolicy } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Bus, STREAMS } from "./bus.js";
import { consumerBacklog, DurableConsumer, deleteConsumer, deliveredThrough, routeConsumerName } from "./consumer.js";
import { telemetryFilterSubject } from "./subjects.js";

const logger = testLogger();

function event(connection: string, i: number): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${connection}-${i}`,
    source: { platform: Platform.API, connection, device: `d${i % 3}` },
    observedTime: timestampNow(),
    points: [{ name: "n", value: { case: "intValue", value: BigInt(i) } }],
  });
}

describe("DurableConsumer start position and lifecycle, against a real nats-server", () => {
  let nats: NatsServerHandle;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = Bus.connect({ servers: nats.url, name: "consumer-lifecycle-test", logger });
    await bus.ready;
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.stop();
  });

  const publish = async (connection: string, from: number, to: number) => {
    for (let i = from; i < to; i++) await bus.publishEvents([event(connection, i)]);
  };
  const consumer = (connection: string, extra: Partial<ConstructorParameters<typeof DurableConsumer>[1]> = {}) =>
    new DurableConsumer(bus, { durable: connection, filterSubject: telemetryFilterSubject({ connection }), logger, ...extra });
  /** Reads and acks until `count` events came, then stops; returns their ids. */
  const take = async (c: DurableConsumer, count: number): Promise<string[]> => {
    const ac = new AbortController();
    const got: string[] = [];
    for await (const d of c.deliveries(ac.signal)) {
      got.push(...d.batch.events.map((e) => e.id));
      d.ack();
      if (got.length >= count) break;
    }
    ac.abort();
    return got;
  };

  it("a new consumer starts at the next message published: nothing already on the stream is delivered", async () => {
    await publish("start-new", 0, 10);
    const c = consumer("start-new");
    expect(await c.declare()).toBe(true);
    expect(await c.backlog()).toMatchObject({ pending: 0, ackPending: 0 });
    await publish("start-new", 10, 13);
    expect(await take(c, 3)).toEqual(["start-new-10", "start-new-11", "start-new-12"]);
    expect((await bus.jsm().consumers.info(STREAMS.telemetry, "start-new")).config.deliver_policy).toBe(DeliverPolicy.New);
  });

  it("a consumer with a start time starts at the first message stored at or after it", async () => {
    await publish("start-time", 0, 5);
    await new Promise((r) => setTimeout(r, 50));
    const from = new Date();
    await new Promise((r) => setTimeout(r, 50));
    await publish("start-time", 5, 8);
    const c = consumer("start-time", { startTime: from });
    await c.declare();
    expect(await c.backlog()).toMatchObject({ pending: 3 });
    expect(await take(c, 3)).toEqual(["start-time-5", "start-time-6", "start-time-7"]);
  });

  it("declaring an existing consumer again keeps its position, whatever start it is given (and one made by DeliverPolicy.All)", async () => {
    // As the code before start positions created every route's consumer: from the start of the stream.
    await bus.jsm().consumers.add(STREAMS.telemetry, {
      durable_name: "start-kept",
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: telemetryFilterSubject({ connection: "start-kept" }),
    });
    await publish("start-kept", 0, 6);
    // A short ack wait: what the reader fetched beyond the 4 it acked comes back within a second.
    const ackWaitMs = 1000;
    expect(await take(consumer("start-kept", { ackWaitMs }), 4)).toEqual(["start-kept-0", "start-kept-1", "start-kept-2", "start-kept-3"]);
    // A restart (no start), a route re-read with a start time, new settings: none fails, none moves the consumer.
    for (const extra of [{ ackWaitMs }, { ackWaitMs, startTime: new Date(0) }, { ackWaitMs, startTime: new Date(), maxAckPending: 77 }]) {
      expect(await consumer("start-kept", extra).declare()).toBe(true);
    }
    const info = await bus.jsm().consumers.info(STREAMS.telemetry, "start-kept");
    expect(info.config.deliver_policy).toBe(DeliverPolicy.All);
    expect(info.config.max_ack_pending).toBe(77);
    expect(info.ack_floor.stream_seq).toBe(info.delivered.stream_seq - 2);
    expect(info.num_pending + info.num_ack_pending).toBe(2);
    expect(await take(consumer("start-kept", { ackWaitMs }), 2)).toEqual(["start-kept-4", "start-kept-5"]);
  });

  it("a consumer made at a start time, which nats-server 2.9.10 refuses to change, is used as it is by a sink with other settings", async () => {
    await publish("start-fixed", 0, 2);
    await new Promise((r) => setTimeout(r, 50));
    const from = new Date();
    await new Promise((r) => setTimeout(r, 50));
    await publish("start-fixed", 2, 4);
    expect(await consumer("start-fixed", { startTime: from }).declare()).toBe(true);
    // Another ack wait and max ack pending: an update the server refuses ("start time can not be updated") on 2.9.10.
    const later = consumer("start-fixed", { startTime: from, ackWaitMs: 7_000, maxAckPending: 5 });
    expect(await later.declare()).toBe(true);
    expect(await take(later, 2)).toEqual(["start-fixed-2", "start-fixed-3"]);
  });

  it("startSequence makes a consumer at that stream sequence (its filter can be changed later)", async () => {
    await publish("start-seq", 0, 3);
    const at = (await bus.jsm().streams.info(STREAMS.telemetry)).state.last_seq + 1;
    await publish("start-seq", 3, 5);
    const c = consumer("start-seq", { startSequence: at, startTime: new Date(0) });
    expect(await c.declare()).toBe(true);
    const info = await bus.jsm().consumers.info(STREAMS.telemetry, "start-seq");
    expect(info.config).toMatchObject({ deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: at });
    expect(await take(c, 2)).toEqual(["start-seq-3", "start-seq-4"]);
    expect(await consumer("start-seq", { startSequence: at, maxAckPending: 9 }).declare()).toBe(true);
    expect((await bus.jsm().consumers.info(STREAMS.telemetry, "start-seq")).config.max_ack_pending).toBe(9);
  });

  it("existingOnly never creates the consumer, and its deliveries end once the consumer is deleted (no re-declare)", async () => {
    const absent = consumer("only-existing", { existingOnly: true });
    expect(await absent.declare()).toBe(false);
    const ended = await absent.deliveries(new AbortController().signal)[Symbol.asyncIterator]().next();
    expect(ended.done).toBe(true);
    expect(await absent.backlog()).toBeUndefined();

    await consumer("only-existing").declare();
    await publish("only-existing", 0, 2);
    const draining = consumer("only-existing", { existingOnly: true });
    const ac = new AbortController();
    const got: string[] = [];
    const reading = (async () => {
      for await (const d of draining.deliveries(ac.signal)) {
        got.push(d.batch.events[0]!.id);
        d.ack();
      }
      return "ended";
    })();
    await until(() => got.length === 2, { timeoutMs: 10_000, what: "two deliveries" });
    await deleteConsumer(bus, "only-existing");
    const result = await Promise.race([reading, new Promise((r) => setTimeout(() => r("still running"), 10_000))]);
    ac.abort();
    expect(result).toBe("ended");
    expect(await consumerBacklog(bus, "only-existing")).toBeUndefined();
  });

  it("pending() counts what the consumer holds, and none once it is deleted (no error, no NaN for a status)", async () => {
    const c = consumer("pending-gone");
    await c.declare();
    await publish("pending-gone", 0, 4);
    expect(await c.pending()).toEqual({ pending: 4, ackPending: 0 });
    await bus.jsm().consumers.delete(STREAMS.telemetry, "pending-gone");
    expect(await c.pending()).toEqual({ pending: 0, ackPending: 0 });
  });

  it("deleteConsumer reports what the consumer held (undelivered and unacknowledged); undefined when there was none", async () => {
    const c = consumer("held");
    await c.declare();
    await publish("held", 0, 5);
    expect(await c.backlog()).toMatchObject({ pending: 5, ackPending: 0 });
    // One delivered and never acknowledged: counted too. (Once delivery has started, nats-server 2.9 only estimates
    // num_pending of a wildcard filter, by a message or two; num_ack_pending is exact.)
    expect(await (await bus.js().consumers.get(STREAMS.telemetry, "held")).next({ expires: 5_000 })).not.toBeNull();
    const held = await deleteConsumer(bus, "held");
    expect(held?.ackPending).toBe(1);
    expect(held?.pending).toBeGreaterThanOrEqual(4);
    expect(await deleteConsumer(bus, "held")).toBeUndefined();
  });

  it("deliveredThrough: done once nothing is in flight and what is left (if anything) came after the sequence", async () => {
    expect(deliveredThrough({ pending: 0, ackPending: 0, deliveredSequence: 3 }, 10)).toBe(true);
    expect(deliveredThrough({ pending: 2, ackPending: 0, deliveredSequence: 3 }, 10)).toBe(false);
    expect(deliveredThrough({ pending: 2, ackPending: 0, deliveredSequence: 11 }, 10)).toBe(true);
    expect(deliveredThrough({ pending: 0, ackPending: 1, deliveredSequence: 11 }, 10)).toBe(false);
  });

  it("routeConsumerName: the sink platform's token and the route id", () => {
    expect(routeConsumerName("idigi-to-pi", Platform.OMF)).toBe("omf-idigi-to-pi");
  });

  // nats-server before its clustered de-dupe fix (2025) can store one publish twice across a stream leader election
  // despite its Nats-Msg-Id. A short duplicate window makes this single node do the same.
  it("a publish stored twice (same Nats-Msg-Id, two sequences) reaches the handler once; the copy is acknowledged", async () => {
    const connection = "twin";
    const durable = "twin-sink";
    const before = (await bus.jsm().streams.info(STREAMS.telemetry)).config;
    const seen: string[] = [];
    const ac = new AbortController();
    const consumer = new DurableConsumer(bus, {
      durable,
      filterSubject: telemetryFilterSubject({ platform: Platform.API, connection }),
      logger,
      startTime: new Date(),
    });
    const running = consumer.run(async (d) => {
      for (const e of d.batch.events) seen.push(e.id);
    }, ac.signal);
    const events = [event(connection, 1), event(connection, 2)];
    await bus.jsm().streams.update(STREAMS.telemetry, { ...before, duplicate_window: 200_000_000 });
    try {
      expect(await bus.publishEvents(events, "same-publish")).toEqual({ stored: 1, duplicates: 0 });
      await until(() => seen.length === 2, { what: "the first copy handled" });
      await new Promise((r) => setTimeout(r, 400));
      expect(await bus.publishEvents(events, "same-publish")).toEqual({ stored: 1, duplicates: 0 });
    } finally {
      await bus.jsm().streams.update(STREAMS.telemetry, { ...before });
    }
    await until(
      async () => (await consumerBacklog(bus, durable))?.ackPending === 0 && (await consumerBacklog(bus, durable))?.pending === 0,
      {
        what: "the copy acknowledged",
      },
    );
    ac.abort();
    await running;
    expect(seen).toEqual([`${connection}-1`, `${connection}-2`]);
  });
});
