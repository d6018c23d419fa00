import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { durationMs, type Timestamp, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { Bus, type ConsumerBacklog, consumerBacklog, routeBucket } from "@meridian/bus";
import { RouteSchema, RouteState } from "@meridian/contracts/meridian/route/v1/route_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { Platform, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { RunningOmfEmulator } from "@meridian/emulator-omf";
import { type Gateway, gatewayConfig, startGateway } from "@meridian/gateway";
import { type CapturedLogs, captureLogger, codeOf, startForTest, testTransport } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OmfSender } from "../src/service.js";
import { getJson, logger, type NatsServerHandle, startEmulator, startNatsServer, startSender, until } from "./harness.js";

/**
 * The route lifecycle end to end: routes made and deleted through the gateway's RouteService, delivered by omf-sender
 * into the OMF emulator (EDS), over a real nats-server.
 */
const BACKOFF = { initialMs: 200, maxMs: 1_000, multiplier: 2, jitter: 0.2 };
/** The emulator speaks plain http on 127.0.0.1: what a lab permits, and these tests are one. */
const ENV = { OMF_ACK_WAIT_MS: "3000", OMF_LINGER_MS: "50", OMF_ALLOW_INSECURE_ENDPOINTS: "true", OMF_ALLOWED_HOSTS: "127.0.0.1" };

let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let sender: OmfSender;
let senderLogs: CapturedLogs;
let gw: Gateway;
let bus: Bus;
let endpointsFile: string;
let routes: ReturnType<typeof createClient<typeof RouteService>>;

async function startOmf(): Promise<void> {
  senderLogs = captureLogger({ service: "omf-sender" });
  sender = await startSender(nats, { ...ENV, OMF_ENDPOINTS_FILE: endpointsFile }, { redeliveryBackoff: BACKOFF }, senderLogs.logger);
}

beforeAll(async () => {
  nats = await startNatsServer();
  emu = await startEmulator();
  endpointsFile = join(mkdtempSync(join(tmpdir(), "omf-routes-")), "endpoints.json");
  writeFileSync(endpointsFile, JSON.stringify([{ id: "eds", kind: "eds", url: emu.url }]));
  await startOmf();
  gw = await startForTest(startGateway, gatewayConfig, { NATS_URL: nats.url }, {}, logger);
  routes = createClient(RouteService, testTransport(gw.service.url));
  bus = Bus.connect({ servers: nats.url, name: "routes-test", logger });
  await bus.ready;
});
afterAll(async () => {
  await sender?.stop();
  await gw?.stop();
  await bus?.close();
  await emu?.stop();
  await nats?.stop();
});

/** One event per bus message, `count` of them from index `from`, each at its own second (its own OMF index). */
async function publish(connection: string, from: number, count: number): Promise<void> {
  const base = Date.UTC(2026, 9, 1);
  for (let i = from; i < from + count; i++) {
    const e = create(TelemetryEventSchema, {
      id: `${connection}:${i}`,
      source: { platform: Platform.API, connection, device: `d${i % 3}` },
      observedTime: timestampFromDate(new Date(base + i * 1000)),
      points: [{ name: "count", value: { case: "intValue", value: BigInt(i) } }],
    });
    await bus.publishEvents([e]);
  }
}

/** The `count` values EDS holds for a connection, sorted. */
async function delivered(connection: string): Promise<number[]> {
  const s = await getJson(`${emu.url}/_emulator/state?scope=eds`);
  const containers = Object.values(s.body.scopes.eds?.containers ?? {}) as Array<{ id: string; values: Array<{ count: number }> }>;
  return containers
    .filter((c) => c.id.startsWith(`api.${connection}.`))
    .flatMap((c) => c.values.map((v) => v.count))
    .sort((a, b) => a - b);
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
const held = (b: ConsumerBacklog | undefined) => (b ? b.pending + b.ackPending : 0);

type RouteInit = { startTime?: Timestamp };

/** Creates the route through the gateway and waits for omf-sender's consumer: a new route starts at new events. */
async function createRoute(id: string, connection: string, extra: RouteInit = {}) {
  const res = await routes.createRoute({
    route: { id, source: { connection }, sink: { platform: Platform.OMF, target: "eds" }, options: { lingerMs: "50" }, ...extra },
  });
  await until(async () => (await consumerBacklog(bus, `omf-${id}`)) !== undefined, { timeoutMs: 10_000, what: `consumer of ${id}` });
  return res.route!;
}

/** Holds the endpoint down (503) until the returned function is called. */
function endpointDown(): () => void {
  emu.setFault({ status: 503, profile: "eds" });
  return () => emu.clearFaults();
}

describe("route start position, through the gateway into EDS", () => {
  it("a route created after 20 events were published delivers none of them, only what comes after", async () => {
    await publish("line-new", 0, 20);
    await createRoute("new-only", "line-new");
    await publish("line-new", 20, 5);
    await until(async () => (await delivered("line-new")).length >= 5, { timeoutMs: 15_000, what: "5 values" });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await delivered("line-new")).toEqual(range(20, 5));
  });

  it("a route with a start_time delivers from there: what was stored before it is not, what was stored after it is", async () => {
    await publish("line-start", 0, 10);
    await new Promise((r) => setTimeout(r, 100));
    const startTime = timestampFromDate(new Date());
    await new Promise((r) => setTimeout(r, 100));
    await publish("line-start", 10, 6);
    const route = await createRoute("from-time", "line-start", { startTime });
    expect(route.startTime).toEqual(startTime);
    await until(async () => (await delivered("line-start")).length >= 6, { timeoutMs: 15_000, what: "6 values" });
    await publish("line-start", 16, 2);
    await until(async () => (await delivered("line-start")).length >= 8, { timeoutMs: 15_000, what: "8 values" });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await delivered("line-start")).toEqual(range(10, 8));
  });

  it("a route re-read (omf-sender restart) keeps its consumer's position: nothing is delivered twice or skipped", async () => {
    await createRoute("re-read", "line-reread");
    await publish("line-reread", 0, 6);
    await until(async () => (await delivered("line-reread")).length >= 6, { timeoutMs: 15_000, what: "6 values" });
    await until(async () => held(await consumerBacklog(bus, "omf-re-read")) === 0, { timeoutMs: 10_000, what: "all acked" });
    await sender.stop();
    await publish("line-reread", 6, 4);
    await startOmf();
    await until(async () => (await delivered("line-reread")).length >= 10, { timeoutMs: 15_000, what: "10 values" });
    const counters = (await sender.pipelines.counters()).find((p) => p.name === "re-read");
    expect(counters?.received).toBe(4n);
    expect(await delivered("line-reread")).toEqual(range(0, 10));
  });
});

describe("a route's lag, through the gateway's GetStatus", () => {
  /** The route's pipeline as omf-sender last reported it, read through the gateway. */
  const reported = async (id: string) => {
    const res = await createClient(StatusService, testTransport(gw.service.url)).getStatus({});
    return res.services.filter((s) => s.service === "omf-sender").flatMap((s) => s.pipelines.filter((p) => p.name === id))[0];
  };

  it("while the endpoint is down the route's lag is at least its oldest message's age (also on /metrics), and 0s once it is delivered", async () => {
    await createRoute("lagging", "line-lag");
    const up = endpointDown();
    try {
      const published = Date.now();
      await publish("line-lag", 0, 3);
      await new Promise((r) => setTimeout(r, 1500));
      const checking = Date.now();
      await sender.bus.checkBacklog();
      // Status reports go out every 5 s; the gateway answers from the last one, which may still hold the lag of the
      // consumer's first check (a second after it started, before this one): wait for a report of this check.
      let lagMs = 0;
      await until(
        async () => {
          const lag = (await reported("lagging"))?.lag;
          lagMs = lag ? durationMs(lag) : 0;
          return lagMs >= checking - published;
        },
        { timeoutMs: 15_000, what: `a lag of at least ${checking - published} ms in GetStatus` },
      );
      expect(lagMs).toBeGreaterThanOrEqual(checking - published);
      const metrics = await (await fetch(`${sender.service.url}/metrics`)).text();
      const series = /^meridian_pipeline_lag_seconds\{pipeline="lagging"\} ([\d.]+)$/m.exec(metrics);
      expect(Number(series?.[1])).toBeGreaterThanOrEqual(1.5);
      expect(await delivered("line-lag")).toEqual([]);
    } finally {
      up();
    }
    await until(async () => (await delivered("line-lag")).length >= 3, { timeoutMs: 20_000, what: "the backlog in EDS" });
    await until(
      async () => {
        await sender.bus.checkBacklog();
        const lag = (await reported("lagging"))?.lag;
        return lag !== undefined && durationMs(lag) === 0;
      },
      { timeoutMs: 20_000, what: "lag 0s in GetStatus" },
    );
  }, 60_000);
});

describe("deleting a route, through the gateway", () => {
  it("with a backlog while the endpoint is down: the route drains, the backlog lands once the endpoint is back (nothing lost), then the consumer and the route are gone", async () => {
    await createRoute("drain", "line-drain");
    const up = endpointDown();
    try {
      await publish("line-drain", 0, 30);
      await until(async () => held(await consumerBacklog(bus, "omf-drain")) === 30, { timeoutMs: 10_000, what: "30 held" });
      const { route } = await routes.deleteRoute({ id: "drain" });
      expect(route?.state).toBe(RouteState.DRAINING);
      expect(route?.drain?.pending).toBe(30n);
      // Published after the delete: not the route's backlog, never delivered.
      await publish("line-drain", 100, 5);
      const listed = (await routes.listRoutes({})).routes.find((r) => r.id === "drain");
      expect(listed?.state).toBe(RouteState.DRAINING);
      expect(listed?.drain?.pending).toBeGreaterThanOrEqual(30n);
      expect(
        (
          await codeOf(
            routes.createRoute({ route: { id: "drain", source: { connection: "x" }, sink: { platform: Platform.OMF, target: "eds" } } }),
          )
        ).code,
      ).toBe(Code.FailedPrecondition);
      await new Promise((r) => setTimeout(r, 1500));
      expect(await delivered("line-drain")).toEqual([]);
    } finally {
      up();
    }
    await until(async () => (await delivered("line-drain")).length >= 30, { timeoutMs: 20_000, what: "the backlog in EDS" });
    await until(async () => (await consumerBacklog(bus, "omf-drain")) === undefined, { timeoutMs: 10_000, what: "consumer deleted" });
    await until(async () => !(await routes.listRoutes({})).routes.some((r) => r.id === "drain"), { timeoutMs: 10_000, what: "route gone" });
    await new Promise((r) => setTimeout(r, 1000));
    expect(await delivered("line-drain")).toEqual(range(0, 30));
    expect(
      senderLogs.lines.some(
        (l) => l.route === "drain" && l.msg === "route drained: its backlog is delivered and its durable consumer deleted",
      ),
    ).toBe(true);
    // The id is free again, and a new route under it starts at new events.
    await createRoute("drain", "line-drain");
    expect(held(await consumerBacklog(bus, "omf-drain"))).toBe(0);
  }, 60_000);

  it("a disabled route that is deleted drains too", async () => {
    const route = await createRoute("drain-off", "line-off");
    const up = endpointDown();
    try {
      await publish("line-off", 0, 4);
      await until(async () => held(await consumerBacklog(bus, "omf-drain-off")) === 4, { timeoutMs: 10_000, what: "4 held" });
      // Disabled (as the routes file or an operator might), then deleted.
      await routeBucket(bus).put("drain-off", create(RouteSchema, { ...route, disabled: true }));
      await until(() => !sender.pipelines.list().some((p) => p.route.id === "drain-off"), { timeoutMs: 5_000, what: "pipeline stopped" });
      expect((await routes.deleteRoute({ id: "drain-off" })).route?.state).toBe(RouteState.DRAINING);
    } finally {
      up();
    }
    await until(async () => (await delivered("line-off")).length >= 4, { timeoutMs: 20_000, what: "the backlog in EDS" });
    await until(async () => (await consumerBacklog(bus, "omf-drain-off")) === undefined, { timeoutMs: 10_000, what: "consumer deleted" });
  }, 60_000);

  it("purge drops the backlog and reports how many messages were dropped; nothing of it lands when the endpoint is back", async () => {
    await createRoute("purge", "line-purge");
    const up = endpointDown();
    try {
      await publish("line-purge", 0, 12);
      // All 12 delivered to the pipeline and failed (held unacknowledged): the count is exact then.
      await until(async () => (await consumerBacklog(bus, "omf-purge"))?.ackPending === 12, { timeoutMs: 10_000, what: "12 in flight" });
      const res = await routes.deleteRoute({ id: "purge", purge: true });
      expect(res.dropped).toBe(12n);
      expect(res.route).toBeUndefined();
      await until(() => !sender.pipelines.list().some((p) => p.route.id === "purge"), { timeoutMs: 5_000, what: "pipeline stopped" });
    } finally {
      up();
    }
    await until(async () => (await consumerBacklog(bus, "omf-purge")) === undefined, { timeoutMs: 10_000, what: "consumer gone" });
    expect((await codeOf(routes.getRoute({ id: "purge" }))).code).toBe(Code.NotFound);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await delivered("line-purge")).toEqual([]);
  }, 60_000);

  it("omf-sender restarted during the drain: the new instance carries it on from the bus, delivers the backlog, and drops the consumer", async () => {
    await createRoute("drain-rs", "line-drain-rs");
    const up = endpointDown();
    try {
      await publish("line-drain-rs", 0, 20);
      await until(async () => held(await consumerBacklog(bus, "omf-drain-rs")) === 20, { timeoutMs: 10_000, what: "20 held" });
      expect((await routes.deleteRoute({ id: "drain-rs" })).route?.state).toBe(RouteState.DRAINING);
      await sender.stop();
      // Still held on the bus (nats-server 2.9 may count a message more in num_pending once delivery has started).
      expect(held(await consumerBacklog(bus, "omf-drain-rs"))).toBeGreaterThanOrEqual(20);
    } finally {
      up();
    }
    await startOmf();
    await until(async () => (await delivered("line-drain-rs")).length >= 20, { timeoutMs: 20_000, what: "the backlog in EDS" });
    await until(async () => (await consumerBacklog(bus, "omf-drain-rs")) === undefined, { timeoutMs: 10_000, what: "consumer deleted" });
    await until(async () => (await codeOf(routes.getRoute({ id: "drain-rs" }))).code === Code.NotFound, {
      timeoutMs: 10_000,
      what: "route gone",
    });
    expect(await delivered("line-drain-rs")).toEqual(range(0, 20));
    expect(
      senderLogs.lines.some(
        (l) => l.route === "drain-rs" && l.msg === "route drained: its backlog is delivered and its durable consumer deleted",
      ),
    ).toBe(true);
  }, 60_000);
});
