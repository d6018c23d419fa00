/**
 * The backlog check of durable consumers against a real nats-server, on a stream small enough (max_msgs) that its
 * limit discards what a stuck sink has not acknowledged within a few publishes.
 */
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Platform, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { captureLogger, type NatsServerHandle, startNatsServer, until } from "@meridian/testing";
import { DiscardPolicy, RetentionPolicy, StorageType } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Bus } from "../src/bus.js";
import { encodeBatch, makeBatch } from "../src/codec.js";
import { DurableConsumer } from "../src/consumer.js";
import { serviceStatusBucket, startStatusReporter } from "../src/mesh.js";

const STREAM = "TINY";
/** The stream keeps this many messages; older ones are discarded (as TELEMETRY does at its age or size limit). */
const MAX_MSGS = 6;

describe("backlog of durable consumers", () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  const logs = captureLogger();
  let n = 0;

  const publish = async (subject: string, count: number) => {
    for (let i = 0; i < count; i++) {
      const id = `m${n++}`;
      const event = create(TelemetryEventSchema, {
        id,
        source: { platform: Platform.API, connection: "c", device: "d" },
        observedTime: timestampNow(),
        points: [{ name: "v", value: { case: "doubleValue", value: i } }],
      });
      await bus.js().publish(subject, encodeBatch(makeBatch(id, [event])));
    }
  };

  /** A sink on `filter` whose handler answers with `outcome`; returns the stop function once its consumer exists. */
  const sink = async (durable: string, filter: string, outcome: "ack" | "fail") => {
    const consumer = new DurableConsumer(bus, {
      durable,
      stream: STREAM,
      filterSubject: filter,
      maxAckPending: 2,
      logger: logs.logger,
      // A failed delivery comes back only after a minute: within the test it stays unacknowledged.
      backoff: { initialMs: 60_000, maxMs: 60_000, multiplier: 1, jitter: 0 },
    });
    const ac = new AbortController();
    const handled: string[] = [];
    const running = consumer.run(async (d) => {
      handled.push(d.batch.id);
      if (outcome === "fail") throw new Error("sink down");
    }, ac.signal);
    await until(
      async () =>
        (await bus
          .jsm()
          .consumers.info(STREAM, durable)
          .catch(() => undefined)) !== undefined,
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    return {
      handled,
      stop: async () => {
        ac.abort();
        await running;
      },
    };
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = Bus.connect({
      servers: nats.url,
      name: "backlog-test",
      logger: logs.logger,
      backlogAgeWarnMs: 300,
      // The test checks when it wants (checkBacklog); the timer would race it.
      backlogCheckIntervalMs: 3600_000,
    });
    await bus.ready;
    await bus.jsm().streams.add({
      name: STREAM,
      subjects: ["tiny.>"],
      retention: RetentionPolicy.Limits,
      storage: StorageType.Memory,
      discard: DiscardPolicy.Old,
      max_msgs: MAX_MSGS,
    });
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.stop();
  });

  it("warns when a stuck sink's backlog is older than the limit, and when the stream discards what it had not acknowledged", async () => {
    const stuck = await sink("stuck", "tiny.stuck", "fail");
    await publish("tiny.stuck", 5);
    await until(() => stuck.handled.length === 2, { timeoutMs: 10_000, intervalMs: 20 });
    await new Promise((r) => setTimeout(r, 400));

    await bus.checkBacklog();
    const before = bus.backlog().find((b) => b.consumer === "stuck")!;
    expect(before).toMatchObject({ pending: 3, ackPending: 2, discards: 0 });
    expect(before.oldestUnackedAgeMs).toBeGreaterThan(300);
    expect(bus.warnings()).toEqual([expect.objectContaining({ kind: "backlog_age", subject: "stuck" })]);
    expect(logs.lines.some((l) => l.consumer === "stuck" && l.msg === "consumer backlog older than BACKLOG_AGE_WARN_SECONDS")).toBe(true);

    // Other subjects fill the stream: its limit discards the five stuck messages, delivered or not.
    await publish("tiny.other", MAX_MSGS);
    await bus.checkBacklog();
    const after = bus.backlog().find((b) => b.consumer === "stuck")!;
    expect(after.discards).toBe(1);
    expect(after.lastDiscardAt).toBeInstanceOf(Date);
    expect(bus.warnings()).toContainEqual(expect.objectContaining({ kind: "discarded_unacknowledged", subject: "stuck" }));
    const warn = logs.lines.find((l) => l.consumer === "stuck" && String(l.msg).startsWith("the stream discarded messages"));
    expect(warn).toMatchObject({ level: 40, stream: STREAM, oldestUndeliveredSeq: expect.any(Number) });
    // Nothing left to deliver: the backlog warning clears, the discard stays reported.
    expect(after.oldestUnackedAgeMs).toBe(0);
    expect(bus.warnings().map((w) => w.kind)).toEqual(["discarded_unacknowledged"]);
    await stuck.stop();
  });

  it("a sink whose stream is still cutting into its backlog is reported; one that acked everything is not", async () => {
    const behind = await sink("behind", "tiny.behind", "fail");
    const healthy = await sink("healthy", "tiny.healthy", "ack");
    await publish("tiny.healthy", 1);
    await until(() => healthy.handled.length === 1, { timeoutMs: 10_000, intervalMs: 20 });
    await publish("tiny.behind", 4);
    await until(() => behind.handled.length === 2, { timeoutMs: 10_000, intervalMs: 20 });
    await bus.checkBacklog();
    // Three more: the stream drops the oldest (the healthy sink's acknowledged one, the behind sink's first two).
    await publish("tiny.behind", 3);
    await bus.checkBacklog();
    const byName = Object.fromEntries(bus.backlog().map((b) => [b.consumer, b]));
    expect(byName.behind?.discards).toBe(1);
    expect(byName.healthy?.discards).toBe(0);
    expect(bus.warnings().filter((w) => w.subject === "healthy")).toEqual([]);
    await behind.stop();
    await healthy.stop();
    // A stopped consumer is no longer watched.
    expect(bus.backlog().map((b) => b.consumer)).not.toContain("behind");
  });

  it("the status report carries the warnings", async () => {
    const stuck = await sink("reported", "tiny.reported", "fail");
    await publish("tiny.reported", 3);
    await until(() => stuck.handled.length === 2, { timeoutMs: 10_000, intervalMs: 20 });
    await new Promise((r) => setTimeout(r, 400));
    await bus.checkBacklog();
    const ac = new AbortController();
    startStatusReporter(bus, { service: "backlog-test", instance: "i1", version: "0", signal: ac.signal, collect: async () => ({}) });
    const status = serviceStatusBucket(bus);
    await until(async () => ((await status.get("backlog-test.i1"))?.warnings.length ?? 0) > 0, { timeoutMs: 10_000, intervalMs: 100 });
    const report = await status.get("backlog-test.i1");
    expect(report?.warnings).toContainEqual(expect.objectContaining({ kind: "backlog_age", subject: "reported" }));
    expect(report?.warnings[0]?.message).toContain("BACKLOG_AGE_WARN_SECONDS");
    ac.abort();
    await stuck.stop();
  });
});
