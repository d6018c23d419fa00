import { create, type MessageInitShape, toJson } from "@bufbuild/protobuf";
import { durationMs, timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { type Route, RouteSchema, RouteState } from "@meridian/contracts/meridian/route/v1/route_pb";
import { PipelineCountersSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { captureLogger, type NatsServerHandle, startNatsServer, until } from "@meridian/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Bus, STREAMS } from "./bus.js";
import { consumerBacklog, DurableConsumer, routeConsumerName } from "./consumer.js";
import { routeBucket } from "./mesh.js";
import {
  countFailure,
  drainThroughOf,
  pipelineCounters,
  type RouteSink,
  type RouteSinkCounters,
  RouteSinks,
  type RouteSinksOptions,
  routeConsumer,
} from "./route-sinks.js";
import { telemetryFilterSubject } from "./subjects.js";

const logs = captureLogger();
const logger = logs.logger;

function event(connection: string, i: number): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${connection}-${i}`,
    source: { platform: Platform.API, connection, device: "d" },
    observedTime: timestampNow(),
    points: [{ name: "n", value: { case: "intValue", value: BigInt(i) } }],
  });
}

describe("RouteSinks: the routes bucket turned into running sinks, against a real nats-server", () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  /** Event ids each route's sinks delivered, in order, over all the sinks the route had. */
  const delivered = new Map<string, string[]>();
  /** Routes whose platform is "down": deliveries fail and stay on the bus. */
  const down = new Set<string>();
  const managers: RouteSinks<TestSink>[] = [];

  /** A sink as the services write theirs: a durable consumer per route, acking what it delivered. */
  class TestSink implements RouteSink {
    readonly counters: RouteSinkCounters = { received: 0, delivered: 0, skipped: 0, failed: 0 };
    readonly consumer: DurableConsumer;
    readonly drainThrough: number | undefined;
    private readonly ac = new AbortController();
    private running: Promise<void> | undefined;
    stopped = false;

    constructor(readonly route: Route) {
      this.drainThrough = route.state === RouteState.DRAINING ? Number(route.drain?.lastSequence ?? 0n) : undefined;
      this.consumer = new DurableConsumer(bus, {
        durable: routeConsumerName(route.id, Platform.OMF),
        existingOnly: this.drainThrough !== undefined,
        filterSubject: telemetryFilterSubject(route.source),
        logger,
        // A message a stopped sink had pulled but not handled waits out the ack wait before it comes again.
        ackWaitMs: 1000,
        backoff: { initialMs: 50, maxMs: 200, multiplier: 2, jitter: 0 },
      });
    }

    start(): void {
      this.running ??= this.consumer.run(async (d) => {
        if (this.drainThrough !== undefined && d.streamSequence > this.drainThrough) return;
        this.counters.received += d.batch.events.length;
        if (down.has(this.route.id)) {
          this.counters.failed++;
          this.counters.lastError = "platform down";
          this.counters.lastErrorTime = new Date();
          throw new Error("platform down");
        }
        delivered.set(this.route.id, [...(delivered.get(this.route.id) ?? []), ...d.batch.events.map((e) => e.id)]);
        this.counters.delivered += d.batch.events.length;
      }, this.ac.signal);
    }

    async stop(): Promise<void> {
      this.stopped = true;
      this.ac.abort(new Error("stopping"));
      await this.running;
    }
  }

  const manager = (extra: Partial<RouteSinksOptions<TestSink>> = {}) => {
    const m = new RouteSinks<TestSink>({ bus, platform: Platform.OMF, logger, create: (r) => new TestSink(r), ...extra });
    managers.push(m);
    m.start();
    return m;
  };
  const route = (id: string, connection: string, extra: Omit<MessageInitShape<typeof RouteSchema>, "id" | "$typeName"> = {}) =>
    create(RouteSchema, {
      id,
      source: { platform: Platform.API, connection },
      sink: { platform: Platform.OMF, target: "eds" },
      state: RouteState.ACTIVE,
      ...extra,
    });
  const put = (r: Route) => routeBucket(bus).put(r.id, r);
  const sinkOf = (m: RouteSinks<TestSink>, id: string) => m.list().find((s) => s.route.id === id);
  const publish = async (connection: string, from: number, to: number) => {
    for (let i = from; i < to; i++) await bus.publishEvents([event(connection, i)]);
  };
  const ids = (connection: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${connection}-${from + i}`);

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = Bus.connect({ servers: nats.url, name: "route-sinks-test", logger });
    await bus.ready;
  });
  afterEach(async () => {
    await Promise.all(managers.splice(0).map((m) => m.stop()));
    for (const key of await routeBucket(bus).keys()) await routeBucket(bus).delete(key);
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.stop();
  });

  it("runs a sink for each enabled route of its platform with a target, and none for others", async () => {
    await put(route("mine", "line-mine"));
    await put(route("other-platform", "line-x", { sink: { platform: Platform.OMNIA, target: "f" } }));
    await put(route("no-target", "line-x", { sink: { platform: Platform.OMF, target: "" } }));
    await put(route("disabled", "line-x", { disabled: true }));
    const m = manager({ describe: (s) => ({ endpoint: s.route.sink?.target }) });
    await until(() => sinkOf(m, "mine") !== undefined, { timeoutMs: 5_000, what: "the sink started" });
    await until(async () => (await consumerBacklog(bus, "omf-mine")) !== undefined, { timeoutMs: 5_000, what: "its consumer" });
    await publish("line-mine", 0, 3);
    await until(() => delivered.get("mine")?.length === 3, { timeoutMs: 5_000, what: "3 delivered" });
    await new Promise((r) => setTimeout(r, 300));
    expect(m.list().map((s) => s.route.id)).toEqual(["mine"]);
    expect(logs.lines.some((l) => l.msg === "route sink started" && l.route === "mine" && l.endpoint === "eds")).toBe(true);
    const [c] = m.counters();
    expect(c).toMatchObject({ name: "mine", received: 3n, delivered: 3n, skipped: 0n, failed: 0n, lastError: "" });
    expect(c?.lastErrorTime).toBeUndefined();
  });

  it("restarts a sink when the source, the target or the service's fingerprint changes, not when anything else does", async () => {
    await put(route("change", "line-change", { options: { a: "1" } }));
    const m = manager({ fingerprint: (r) => JSON.stringify(r.options) });
    await until(() => sinkOf(m, "change") !== undefined, { timeoutMs: 5_000, what: "the sink started" });
    const first = sinkOf(m, "change")!;
    await put(route("change", "line-change", { options: { a: "1" }, displayName: "renamed" }));
    await new Promise((r) => setTimeout(r, 500));
    expect(sinkOf(m, "change")).toBe(first);
    expect(first.stopped).toBe(false);

    await put(route("change", "line-change", { options: { a: "2" } }));
    await until(() => sinkOf(m, "change") !== first, { timeoutMs: 5_000, what: "restarted on an option" });
    expect(first.stopped).toBe(true);
    const second = sinkOf(m, "change")!;
    expect(second.route.options).toEqual({ a: "2" });

    await put(route("change", "line-change", { options: { a: "2" }, sink: { platform: Platform.OMF, target: "eds-2" } }));
    await until(() => sinkOf(m, "change") !== second, { timeoutMs: 5_000, what: "restarted on the target" });
    const third = sinkOf(m, "change")!;
    await put(route("change", "line-other", { options: { a: "2" }, sink: { platform: Platform.OMF, target: "eds-2" } }));
    await until(() => sinkOf(m, "change") !== third, { timeoutMs: 5_000, what: "restarted on the source" });
    expect(sinkOf(m, "change")?.route.source?.connection).toBe("line-other");
  });

  it("stops the sink of a disabled route or one that leaves the platform, keeping its consumer; starts it again when enabled", async () => {
    const r = route("toggle", "line-toggle");
    await put(r);
    const m = manager();
    await until(() => sinkOf(m, "toggle") !== undefined, { timeoutMs: 5_000, what: "the sink started" });
    const first = sinkOf(m, "toggle")!;
    await until(async () => (await consumerBacklog(bus, "omf-toggle")) !== undefined, { timeoutMs: 5_000, what: "its consumer" });
    await put(route("toggle", "line-toggle", { disabled: true }));
    await until(() => sinkOf(m, "toggle") === undefined, { timeoutMs: 5_000, what: "the sink stopped" });
    expect(first.stopped).toBe(true);
    // Held while the route is off: what comes meanwhile is delivered once it is back on.
    await publish("line-toggle", 0, 2);
    expect(await consumerBacklog(bus, "omf-toggle")).toMatchObject({ pending: 2 });
    await put(r);
    await until(() => delivered.get("toggle")?.length === 2, { timeoutMs: 5_000, what: "delivered after enabling" });
    await put(route("toggle", "line-toggle", { sink: { platform: Platform.OMNIA, target: "eds" } }));
    await until(() => sinkOf(m, "toggle") === undefined, { timeoutMs: 5_000, what: "the sink stopped" });
    expect(await consumerBacklog(bus, "omf-toggle")).toBeDefined();
  });

  it("a route gone from the bucket (purged) stops its sink and takes its left-over consumer with it", async () => {
    await put(route("purged", "line-purged"));
    const m = manager();
    await until(async () => (await consumerBacklog(bus, "omf-purged")) !== undefined, { timeoutMs: 5_000, what: "its consumer" });
    const sink = sinkOf(m, "purged")!;
    down.add("purged");
    await publish("line-purged", 0, 2);
    await routeBucket(bus).delete("purged");
    await until(async () => (await consumerBacklog(bus, "omf-purged")) === undefined, { timeoutMs: 5_000, what: "consumer deleted" });
    expect(sink.stopped).toBe(true);
    expect(m.list()).toEqual([]);
    expect(logs.lines.some((l) => l.msg === "route deleted: its durable consumer deleted" && l.route === "purged")).toBe(true);
  });

  for (const listDrained of [false, true])
    it(`a DRAINING route (disabled too) delivers its backlog up to the delete, then its consumer is deleted; listDrained ${listDrained}`, async () => {
      const id = `drain-${listDrained}`;
      const line = `line-${id}`;
      const r = route(id, line);
      await put(r);
      const m = manager({ listDrained });
      await until(async () => (await consumerBacklog(bus, `omf-${id}`)) !== undefined, { timeoutMs: 5_000, what: "its consumer" });
      down.add(id);
      await publish(line, 0, 5);
      await until(async () => (await consumerBacklog(bus, `omf-${id}`))?.ackPending === 5, { timeoutMs: 5_000, what: "5 held" });
      const lastSequence = (await bus.jsm().streams.info(STREAMS.telemetry)).state.last_seq;
      await put(route(id, line, { disabled: true, state: RouteState.DRAINING, drain: { lastSequence: BigInt(lastSequence) } }));
      // Published after the delete: not the route's backlog.
      await publish(line, 5, 8);
      await new Promise((r) => setTimeout(r, 1500));
      expect(await consumerBacklog(bus, `omf-${id}`)).toBeDefined();
      expect(sinkOf(m, id)?.drainThrough).toBe(lastSequence);
      down.delete(id);
      await until(async () => (await consumerBacklog(bus, `omf-${id}`)) === undefined, { timeoutMs: 10_000, what: "consumer deleted" });
      // Redeliveries come in any order; each once, and nothing published after the delete.
      expect([...(delivered.get(id) ?? [])].sort()).toEqual(ids(line, 0, 5));
      expect(
        logs.lines.some((l) => l.route === id && l.msg === "route drained: its backlog is delivered and its durable consumer deleted"),
      ).toBe(true);
      expect(m.list().map((s) => s.route.id)).toEqual(listDrained ? [id] : []);
      expect(m.counters().map((c) => c.name)).toEqual(listDrained ? [id] : []);
      // Seen again unchanged (a restart of the watch): not drained twice, the consumer not made again.
      await put(route(id, line, { disabled: true, state: RouteState.DRAINING, drain: { lastSequence: BigInt(lastSequence) } }));
      await new Promise((r) => setTimeout(r, 500));
      expect(await consumerBacklog(bus, `omf-${id}`)).toBeUndefined();
    }, 20_000);

  it("a failing sink's counters carry its last error", async () => {
    await put(route("failing", "line-failing"));
    const m = manager();
    await until(async () => (await consumerBacklog(bus, "omf-failing")) !== undefined, { timeoutMs: 5_000, what: "its consumer" });
    down.add("failing");
    await publish("line-failing", 0, 1);
    await until(() => (m.counters()[0]?.failed ?? 0n) > 0n, { timeoutMs: 5_000, what: "a failure counted" });
    const [c] = m.counters();
    expect(c?.lastError).toBe("platform down");
    expect(c?.lastErrorTime).toBeDefined();
  });

  it("a sink whose platform is down reports as lag at least its oldest unacknowledged message's age after bus.checkBacklog(); 0s once delivered", async () => {
    await put(route("lagging", "line-lagging"));
    const m = manager();
    await until(async () => (await consumerBacklog(bus, "omf-lagging")) !== undefined, { timeoutMs: 5_000, what: "its consumer" });
    down.add("lagging");
    const publishing = Date.now();
    await publish("line-lagging", 0, 2);
    const published = Date.now();
    await until(() => (m.counters()[0]?.failed ?? 0n) > 0n, { timeoutMs: 5_000, what: "a failure counted" });
    await new Promise((r) => setTimeout(r, 1200));
    const checking = Date.now();
    await bus.checkBacklog();
    const checked = Date.now();
    const lag = m.counters()[0]?.lag;
    expect(lag).toBeDefined();
    // The first message's age at the check: stored between `publishing` and `published`, checked between `checking` and `checked`.
    expect(durationMs(lag!)).toBeGreaterThanOrEqual(checking - published);
    expect(durationMs(lag!)).toBeGreaterThanOrEqual(1000);
    expect(durationMs(lag!)).toBeLessThanOrEqual(checked - publishing);
    expect(m.backlogOf(m.list()[0]!)).toMatchObject({ consumer: "omf-lagging", oldestUnackedAgeMs: durationMs(lag!) });

    down.delete("lagging");
    await until(() => delivered.get("lagging")?.length === 2, { timeoutMs: 5_000, what: "both delivered" });
    await until(
      async () => {
        await bus.checkBacklog();
        const after = m.counters()[0]?.lag;
        return after !== undefined && durationMs(after) === 0;
      },
      { timeoutMs: 5_000, what: "lag 0s once nothing waits" },
    );
  });

  it("stop() stops every sink, and route changes after it are not applied", async () => {
    await put(route("stop-a", "line-stop-a"));
    await put(route("stop-b", "line-stop-b"));
    const m = manager();
    await until(() => m.list().length === 2, { timeoutMs: 5_000, what: "two sinks" });
    const sinks = m.list();
    await m.stop();
    expect(sinks.every((s) => s.stopped)).toBe(true);
    expect(m.list()).toEqual([]);
    await put(route("stop-c", "line-stop-c"));
    await new Promise((r) => setTimeout(r, 300));
    expect(m.list()).toEqual([]);
  });

  it("watches the routes again after NATS restarts", async () => {
    await put(route("restart", "line-restart"));
    const m = manager();
    await until(() => sinkOf(m, "restart") !== undefined, { timeoutMs: 5_000, what: "the sink started" });
    await nats.restart("SIGKILL");
    await bus.ready;
    await until(() => bus.connected, { timeoutMs: 15_000, what: "reconnected" });
    await put(route("restart-2", "line-restart-2"));
    await until(() => sinkOf(m, "restart-2") !== undefined, { timeoutMs: 20_000, what: "a route put after the restart seen" });
  }, 40_000);
});

describe("a route's consumer (routeConsumer, drainThroughOf) and DurableConsumer.runParallel, against a real nats-server", () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  beforeAll(async () => {
    nats = await startNatsServer();
    bus = Bus.connect({ servers: nats.url, name: "route-consumer-test", logger });
    await bus.ready;
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.stop();
  });
  const route = (id: string, connection: string, extra: Omit<MessageInitShape<typeof RouteSchema>, "id" | "$typeName"> = {}) =>
    create(RouteSchema, {
      id,
      source: { platform: Platform.API, connection },
      sink: { platform: Platform.OCI_IOT, target: "t" },
      ...extra,
    });

  it("drainThroughOf: a DRAINING route's last sequence, undefined for any other", () => {
    expect(drainThroughOf(route("a", "c", { state: RouteState.ACTIVE }))).toBeUndefined();
    expect(drainThroughOf(route("a", "c", { state: RouteState.DRAINING, drain: { lastSequence: 42n } }))).toBe(42);
    expect(drainThroughOf(route("a", "c", { state: RouteState.DRAINING }))).toBe(0);
  });

  it("pipelineCounters: lag from the last backlog check, unset without one or before its first check; pending as given", () => {
    const c: RouteSinkCounters = { received: 5, delivered: 3, skipped: 1, failed: 1 };
    const state = { consumer: "omf-r", stream: STREAMS.telemetry, oldestUnackedAgeMs: 42_250, pending: 2, ackPending: 1, discards: 0 };
    expect(pipelineCounters("r", c).lag).toBeUndefined();
    expect(pipelineCounters("r", c, { backlog: state }).lag).toBeUndefined();
    const checked = pipelineCounters("r", c, { pending: 3, backlog: { ...state, checkedAt: new Date() } });
    expect(checked).toMatchObject({ name: "r", received: 5n, delivered: 3n, skipped: 1n, failed: 1n, pending: 3n });
    expect(durationMs(checked.lag!)).toBe(42_250);
    expect(toJson(PipelineCountersSchema, checked)).toMatchObject({ lag: "42.250s" });
    const idle = pipelineCounters("r", c, { backlog: { ...state, oldestUnackedAgeMs: 0, checkedAt: new Date() } });
    expect(toJson(PipelineCountersSchema, idle)).toMatchObject({ lag: "0s" });
    // A service that does not ask its consumer gets pending from the check: undelivered and unacknowledged.
    expect(pipelineCounters("r", c, { backlog: { ...state, checkedAt: new Date() } }).pending).toBe(3n);
    expect(pipelineCounters("r", c, { backlog: state }).pending).toBe(0n);
  });

  it("countFailure: one more failure, with its message and time as the last error", () => {
    const c: RouteSinkCounters = { received: 1, delivered: 1, skipped: 0, failed: 2 };
    const at = new Date(1000);
    countFailure(c, new Error("down"), at);
    expect(c).toEqual({ received: 1, delivered: 1, skipped: 0, failed: 3, lastError: "down", lastErrorTime: at });
    countFailure(c, "not an error");
    expect(c).toMatchObject({ failed: 4, lastError: "not an error" });
  });

  it("routeConsumer: named for the route and sink platform, on the route's source, from its start_time", async () => {
    await bus.publishEvents([event("rc-start", 0), event("rc-other", 0)]);
    await new Promise((r) => setTimeout(r, 20));
    const from = new Date();
    await bus.publishEvents([event("rc-start", 1), event("rc-other", 1)]);
    const c = routeConsumer(bus, route("rc1", "rc-start", { startTime: timestampFromDate(from) }), Platform.OCI_IOT, {
      logger,
      ackWaitMs: 5000,
      backoff: undefined,
    });
    expect(c.name).toBe(routeConsumerName("rc1", Platform.OCI_IOT));
    const ac = new AbortController();
    const seen: string[] = [];
    const running = c.runParallel(async (d) => void seen.push(...d.batch.events.map((e) => e.id)), ac.signal, { maxInFlight: 2 });
    await until(() => seen.length >= 1, { timeoutMs: 5000, what: "the event after start_time" });
    await new Promise((r) => setTimeout(r, 200));
    ac.abort();
    await running;
    expect(seen).toEqual(["rc-start-1"]);
    expect(await consumerBacklog(bus, c.name)).toMatchObject({ pending: 0, ackPending: 0 });
  });

  it("routeConsumer: without a start_time, from the route's create_time: what was published before its sink got to the route is delivered", async () => {
    await bus.publishEvents([event("rc-created", 0)]);
    await new Promise((r) => setTimeout(r, 20));
    const created = new Date();
    // Published after CreateRoute answered, before the sink service has made the route's consumer.
    await bus.publishEvents([event("rc-created", 1), event("rc-created", 2)]);
    const c = routeConsumer(bus, route("rc5", "rc-created", { createTime: timestampFromDate(created) }), Platform.OCI_IOT, {
      logger,
      ackWaitMs: 5000,
      backoff: undefined,
    });
    const ac = new AbortController();
    const seen: string[] = [];
    const running = c.runParallel(async (d) => void seen.push(...d.batch.events.map((e) => e.id)), ac.signal, { maxInFlight: 2 });
    await until(() => seen.length >= 2, { timeoutMs: 5000, what: "the events published after create_time" });
    await bus.publishEvents([event("rc-created", 3)]);
    await until(() => seen.length >= 3, { timeoutMs: 5000, what: "the next event" });
    await new Promise((r) => setTimeout(r, 200));
    ac.abort();
    await running;
    expect(seen).toEqual(["rc-created-1", "rc-created-2", "rc-created-3"]);
  });

  it("routeConsumer: a device route gets only its device's events out of several-devices messages; others are acked unseen", async () => {
    const at = (device: string, i: number) =>
      create(TelemetryEventSchema, {
        id: `${device}-${i}`,
        source: { platform: Platform.API, connection: "rc-dev", device },
        observedTime: timestampNow(),
      });
    const c = routeConsumer(
      bus,
      route("rc4", "rc-dev", { source: { platform: Platform.API, connection: "rc-dev", device: "pump" } }),
      Platform.OCI_IOT,
      {
        logger,
        ackWaitMs: 5000,
        backoff: undefined,
      },
    );
    await c.declare();
    await bus.publishEvents([at("pump", 0), at("fan", 0), at("pump", 1), at("fan", 1)]); // one message on rc-dev.~
    await bus.publishEvents([at("fan", 2), at("valve", 2)]); // several devices, none of them the route's
    await bus.publishEvents([at("fan", 3)]); // another device's own subject
    await bus.publishEvents([at("pump", 4)]); // the device's own subject
    const ac = new AbortController();
    const seen: string[][] = [];
    const running = c.runParallel(async (d) => void seen.push(d.batch.events.map((e) => e.id)), ac.signal, { maxInFlight: 2 });
    await until(() => seen.length >= 2, { timeoutMs: 5000, what: "the pump's events" });
    await until(async () => (await consumerBacklog(bus, c.name))?.ackPending === 0, { timeoutMs: 5000, what: "every message acked" });
    ac.abort();
    await running;
    expect(seen).toEqual([["pump-0", "pump-1"], ["pump-4"]]);
    expect(await consumerBacklog(bus, c.name)).toMatchObject({ pending: 0, ackPending: 0 });
  });

  it("routeConsumer: a DRAINING route's consumer is never created; its deliveries end at once", async () => {
    const c = routeConsumer(bus, route("rc2", "rc-drain", { state: RouteState.DRAINING, drain: { lastSequence: 1n } }), Platform.OCI_IOT, {
      logger,
    });
    await c.runParallel(async () => {}, new AbortController().signal, { maxInFlight: 1 });
    expect(await consumerBacklog(bus, c.name)).toBeUndefined();
  });

  it("runParallel: at most maxInFlight at once, a slow one kept from redelivery, batched acks all reach the server, failures redelivered", async () => {
    const c = routeConsumer(bus, route("rc3", "rc-par"), Platform.OCI_IOT, {
      logger,
      ackWaitMs: 1000,
      backoff: { initialMs: 20, maxMs: 20, multiplier: 1, jitter: 0 },
    });
    await c.declare();
    for (let i = 0; i < 6; i++) await bus.publishEvents([event("rc-par", i)]);
    const ac = new AbortController();
    let now = 0;
    let most = 0;
    const deliveries = new Map<string, number[]>();
    const handled: string[] = [];
    let failOnce = true;
    const running = c.runParallel(
      async (d) => {
        const id = d.batch.events[0]!.id;
        deliveries.set(id, [...(deliveries.get(id) ?? []), d.deliveryCount]);
        now++;
        most = Math.max(most, now);
        try {
          // Longer than the ack wait: only the working() sweep keeps the server from redelivering it meanwhile.
          await new Promise((r) => setTimeout(r, id === "rc-par-0" ? 2500 : 100));
          if (id === "rc-par-5" && failOnce) {
            failOnce = false;
            throw new Error("transient");
          }
          handled.push(id);
        } finally {
          now--;
        }
      },
      ac.signal,
      { maxInFlight: 3, batchAcks: true },
    );
    await until(() => handled.length === 6, { timeoutMs: 10_000, what: "6 handled" });
    await until(async () => (await consumerBacklog(bus, c.name))?.ackPending === 0, { timeoutMs: 5000, what: "the acks on the server" });
    ac.abort();
    await running;
    expect(most).toBe(3);
    expect(deliveries.get("rc-par-0")).toEqual([1]);
    expect(deliveries.get("rc-par-5")).toEqual([1, 2]);
    expect(new Set(handled).size).toBe(6);
    expect(await consumerBacklog(bus, c.name)).toMatchObject({ pending: 0, ackPending: 0 });
  });
  it("runParallel with batchAcks: every ack reaches the server, the last ones made as the run stops included (nothing redelivered)", async () => {
    const c = routeConsumer(bus, route("rc4", "rc-batch"), Platform.OCI_IOT, { logger, ackWaitMs: 1000 });
    await c.declare();
    for (let i = 0; i < 20; i++) await bus.publishEvents([event("rc-batch", i)]);
    const ac = new AbortController();
    const seen: string[] = [];
    const running = c.runParallel(
      async (d) => {
        seen.push(d.batch.events[0]!.id);
        // The last one stops the run in the same turn its handler resolves: its ack is still queued when the run ends.
        if (seen.length === 20) ac.abort();
      },
      ac.signal,
      { maxInFlight: 8, batchAcks: true },
    );
    await running;
    expect(seen).toHaveLength(20);
    await until(async () => (await consumerBacklog(bus, c.name))?.ackPending === 0, { timeoutMs: 5000, what: "every ack on the server" });
    // Past the ack wait: an ack lost at the stop would have brought its message back.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await consumerBacklog(bus, c.name)).toMatchObject({ pending: 0, ackPending: 0 });
  });
});
