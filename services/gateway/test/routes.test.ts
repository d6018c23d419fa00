import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { Bus, consumerBacklog, DurableConsumer, deleteConsumer, routeBucket, telemetryFilterSubject } from "@meridian/bus";
import { RouteSchema, RouteState } from "@meridian/contracts/meridian/route/v1/route_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import {
  captureLogger,
  codeOf,
  type NatsServerHandle,
  startForTest,
  startNatsServer,
  testLogger,
  testTransport,
  until,
} from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayConfig } from "../src/config.js";
import { type Gateway, startGateway } from "../src/service.js";

/**
 * The route lifecycle as the gateway keeps it: start positions, drains and purges. The sink is stood in for by its
 * durable consumer (`omf-<route id>`), which is all the gateway reads; omf-sender's own tests run the real sink.
 */
const logs = captureLogger({ service: "gateway" });
let nats: NatsServerHandle;
let gw: Gateway;
let bus: Bus;
let routes: ReturnType<typeof createClient<typeof RouteService>>;

function event(connection: string, i: number): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${connection}-${i}`,
    source: { platform: Platform.API, connection, device: "d" },
    observedTime: timestampFromDate(new Date()),
    points: [{ name: "n", value: { case: "intValue", value: BigInt(i) } }],
  });
}

const omfRoute = (id: string, connection: string, extra: Record<string, unknown> = {}) => ({
  id,
  source: { connection },
  sink: { platform: Platform.OMF, target: "pi" },
  ...extra,
});

/** What a sink does when it first sees a route: its durable consumer, at new messages. */
async function sinkConsumer(routeId: string, connection: string): Promise<DurableConsumer> {
  const c = new DurableConsumer(bus, {
    durable: `omf-${routeId}`,
    filterSubject: telemetryFilterSubject({ connection }),
    logger: testLogger(),
  });
  await c.declare();
  return c;
}

async function publish(connection: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await bus.publishEvents([event(connection, i)]);
}

beforeAll(async () => {
  nats = await startNatsServer();
  gw = await startForTest(startGateway, gatewayConfig, { NATS_URL: nats.url }, {}, logs.logger);
  bus = Bus.connect({ servers: nats.url, name: "routes-test", logger: testLogger() });
  await bus.ready;
  routes = createClient(RouteService, testTransport(gw.service.url));
});
afterAll(async () => {
  await gw?.stop();
  await bus?.close();
  await nats?.stop();
});

describe("route start position", () => {
  it("a route is created active and without a start unless asked; a start_time within the retention is kept", async () => {
    const plain = (await routes.createRoute({ route: omfRoute("start-none", "s-none") })).route!;
    expect(plain.state).toBe(RouteState.ACTIVE);
    expect(plain.startTime).toBeUndefined();
    const at = new Date(Date.now() - 3_600_000);
    const created = (await routes.createRoute({ route: omfRoute("start-hour", "s-hour", { startTime: timestampFromDate(at) }) })).route!;
    expect(timestampDate(created.startTime!).getTime()).toBe(at.getTime());
    expect(timestampDate((await routes.getRoute({ id: "start-hour" })).route!.startTime!).getTime()).toBe(at.getTime());
  });

  it("a start_time older than the telemetry stream keeps events is invalid_argument naming the field and the limit", async () => {
    const old = new Date(Date.now() - 73 * 3_600_000);
    const err = await codeOf(routes.createRoute({ route: omfRoute("start-old", "s-old", { startTime: timestampFromDate(old) }) }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toContain("route.start_time");
    expect(err.message).toContain("older than the telemetry stream keeps events (72 h, TELEMETRY_MAX_AGE_HOURS)");
    expect((await codeOf(routes.getRoute({ id: "start-old" }))).code).toBe(Code.NotFound);
  });

  it("a start_time in the future is invalid_argument", async () => {
    const later = new Date(Date.now() + 3_600_000);
    const err = await codeOf(routes.createRoute({ route: omfRoute("start-later", "s-later", { startTime: timestampFromDate(later) }) }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/route\.start_time: .* is in the future/);
  });

  it("state and drain are the gateway's: a caller cannot create a route that claims to drain", async () => {
    const route = omfRoute("claims-drain", "s-claims", { state: RouteState.DRAINING, drain: { lastSequence: 5n, pending: 9n } });
    const created = (await routes.createRoute({ route })).route!;
    expect(created.state).toBe(RouteState.ACTIVE);
    expect(created.drain).toBeUndefined();
  });

  it("a route stored before route states reads as active", async () => {
    await routeBucket(bus).put("old-record", create(RouteSchema, omfRoute("old-record", "s-old-rec")));
    expect((await routes.getRoute({ id: "old-record" })).route?.state).toBe(RouteState.ACTIVE);
  });
});

describe("deleting a route", () => {
  it("a route no sink consumes is gone at once", async () => {
    await routes.createRoute({ route: omfRoute("no-sink", "d-none") });
    const res = await routes.deleteRoute({ id: "no-sink" });
    expect(res.route).toBeUndefined();
    expect((await codeOf(routes.getRoute({ id: "no-sink" }))).code).toBe(Code.NotFound);
  });

  it("a route whose consumer holds a backlog drains: listed as draining with its pending count, its id refused, gone once the sink drops the consumer", async () => {
    await routes.createRoute({ route: omfRoute("drains", "d-drain") });
    const sink = await sinkConsumer("drains", "d-drain");
    await publish("d-drain", 4);
    const { route } = await routes.deleteRoute({ id: "drains" });
    expect(route?.state).toBe(RouteState.DRAINING);
    expect(route?.drain?.pending).toBe(4n);
    expect(route?.drain?.lastSequence).toBeGreaterThan(0n);
    expect(route?.drain?.deleteTime).toBeDefined();
    // The consumer is kept: nothing of the backlog is lost by the delete.
    expect(await sink.backlog()).toMatchObject({ pending: 4 });

    const listed = (await routes.listRoutes({})).routes.find((r) => r.id === "drains");
    expect(listed).toMatchObject({ state: RouteState.DRAINING, drain: { pending: 4n } });
    expect((await routes.getRoute({ id: "drains" })).route?.drain?.pending).toBe(4n);
    // Re-creating the id is refused, not resumed: a new route must not inherit the old one's events.
    const again = await codeOf(routes.createRoute({ route: omfRoute("drains", "d-drain-new") }));
    expect(again.code).toBe(Code.FailedPrecondition);
    expect(again.message).toMatch(/route "drains" is draining: .* 4 pending message\(s\).*purge/);
    // Deleting it again changes nothing.
    expect((await routes.deleteRoute({ id: "drains" })).route?.state).toBe(RouteState.DRAINING);

    // The sink delivers the two first ones, so two are pending.
    const ac = new AbortController();
    let n = 0;
    for await (const d of sink.deliveries(ac.signal)) {
      d.ack();
      if (++n === 2) break;
    }
    ac.abort();
    await until(async () => (await routes.getRoute({ id: "drains" })).route?.drain?.pending === 2n, {
      timeoutMs: 5_000,
      what: "2 pending",
    });

    // The sink has delivered everything and drops its consumer: the route is gone, and its id free again.
    await deleteConsumer(bus, "omf-drains");
    expect((await routes.listRoutes({})).routes.some((r) => r.id === "drains")).toBe(false);
    expect((await codeOf(routes.getRoute({ id: "drains" }))).code).toBe(Code.NotFound);
    expect((await routes.createRoute({ route: omfRoute("drains", "d-drain-new") })).route?.state).toBe(RouteState.ACTIVE);
  });

  it("the gateway removes a drained route by itself, without anyone reading it", async () => {
    await routes.createRoute({ route: omfRoute("swept", "d-swept") });
    await sinkConsumer("swept", "d-swept");
    await publish("d-swept", 1);
    expect((await routes.deleteRoute({ id: "swept" })).route?.state).toBe(RouteState.DRAINING);
    await deleteConsumer(bus, "omf-swept");
    await until(async () => (await routeBucket(bus).get("swept")) === undefined, { timeoutMs: 15_000, what: "route removed by the sweep" });
    expect(logs.lines.some((l) => l.msg === "route drained and removed" && l.routeId === "swept")).toBe(true);
  });

  it("purge drops the backlog with the consumer, answers how many messages were dropped, and says so in a warn line", async () => {
    await routes.createRoute({ route: omfRoute("purged", "d-purge") });
    await sinkConsumer("purged", "d-purge");
    await publish("d-purge", 7);
    const res = await routes.deleteRoute({ id: "purged", purge: true });
    expect(res.dropped).toBe(7n);
    expect(res.route).toBeUndefined();
    expect(await consumerBacklog(bus, "omf-purged")).toBeUndefined();
    expect((await codeOf(routes.getRoute({ id: "purged" }))).code).toBe(Code.NotFound);
    const line = logs.lines.find((l) => l.msg === "route purged: its undelivered backlog is dropped" && l.routeId === "purged");
    expect(line).toMatchObject({ level: 40, dropped: 7, consumer: "omf-purged", audit: "route.purge" });
  });

  it("purge ends a drain that cannot finish", async () => {
    await routes.createRoute({ route: omfRoute("stuck", "d-stuck") });
    await sinkConsumer("stuck", "d-stuck");
    await publish("d-stuck", 3);
    expect((await routes.deleteRoute({ id: "stuck" })).route?.state).toBe(RouteState.DRAINING);
    expect((await routes.deleteRoute({ id: "stuck", purge: true })).dropped).toBe(3n);
    expect(await consumerBacklog(bus, "omf-stuck")).toBeUndefined();
    expect((await codeOf(routes.getRoute({ id: "stuck" }))).code).toBe(Code.NotFound);
  });
});

describe("the routes file", () => {
  it("leaves a draining route alone and keeps a route's first start_time", async () => {
    const { applyRoutes } = await import("../src/api/routes.js");
    const first = new Date(Date.now() - 60_000);
    const file = (start: Date) => [create(RouteSchema, omfRoute("filed", "f-1", { startTime: timestampFromDate(start) }))];
    expect((await applyRoutes(bus, file(first), testLogger())).created).toEqual(["filed"]);
    // The file's start_time changed later (or is simply old by now): the route keeps the one it was created with.
    expect((await applyRoutes(bus, file(new Date(0)), testLogger())).unchanged).toEqual(["filed"]);
    expect(timestampDate((await routeBucket(bus).get("filed"))!.startTime!).getTime()).toBe(first.getTime());

    await sinkConsumer("filed", "f-1");
    await publish("f-1", 2);
    await routes.deleteRoute({ id: "filed" });
    const result = await applyRoutes(bus, file(first), testLogger());
    expect(result.draining).toEqual(["filed"]);
    expect((await routeBucket(bus).get("filed"))?.state).toBe(RouteState.DRAINING);
  });

  it("changes a route's source as UpdateRoute does; a second source change while the first is pending is held", async () => {
    const { applyRoutes } = await import("../src/api/routes.js");
    const file = (connection: string) => [create(RouteSchema, omfRoute("filed-src", connection))];
    expect((await applyRoutes(bus, file("fs-1"), testLogger())).created).toEqual(["filed-src"]);
    await sinkConsumer("filed-src", "fs-1");
    expect((await applyRoutes(bus, file("fs-2"), testLogger())).updated).toEqual(["filed-src"]);
    const changed = (await routeBucket(bus).get("filed-src"))!;
    expect(changed).toMatchObject({
      revision: 2n,
      source: { connection: "fs-2" },
      sourceChange: { previousSource: { connection: "fs-1" } },
    });
    // No sink here makes the consumer on the new source: the change stays pending, and the next one waits.
    expect((await applyRoutes(bus, file("fs-3"), testLogger())).held).toEqual(["filed-src"]);
    expect((await routeBucket(bus).get("filed-src"))?.source?.connection).toBe("fs-2");
  });
});
