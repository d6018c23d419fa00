import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Bus, consumerBacklog, routeBucket, STREAMS } from "@meridian/bus";
import { RouteDrainSchema, RouteSchema, RouteState } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, Quality, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type NatsServerHandle, startForTest, startNatsServer, testLogger, until } from "@meridian/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { omniaReaderConfig } from "../src/config.js";
import { startOmniaReader } from "../src/service.js";
import { FakeOmnia } from "./harness.js";

let nats: NatsServerHandle;
let bus: Bus;
const logger = testLogger();

beforeAll(async () => {
  nats = await startNatsServer();
  bus = Bus.connect({ servers: nats.url, name: "test-publisher", logger });
  await bus.ready;
});

afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

it("a route into Omnia writes N events exactly once across an Omnia outage and a 429, into series found or created by name at its facility", async () => {
  const omnia = new FakeOmnia();
  const existing = omnia.addSeries({ name: "pump-1.pressure", facility: "JSV", unit: "bar" });
  const svc = await startForTest(
    startOmniaReader,
    omniaReaderConfig,
    { NATS_URL: nats.url, INSTANCE_ID: "sink" },
    {
      api: omnia.api,
      redeliveryBackoff: { initialMs: 50, maxMs: 200, multiplier: 2, jitter: 0 },
    },
  );
  try {
    await routeBucket(bus).put(
      "line-into-omnia",
      create(RouteSchema, {
        id: "line-into-omnia",
        source: { platform: Platform.API, connection: "line" },
        sink: { platform: Platform.OMNIA, target: "JSV" },
      }),
    );
    await until(async () => (await consumerBacklog(bus, "omnia-line-into-omnia")) !== undefined, {
      timeoutMs: 10_000,
      what: "the route's consumer",
    });
    omnia.writeFaults = ["503", "503", "429", "503"];
    const N = 200;
    const t0 = Date.UTC(2026, 10, 1);
    for (let batch = 0; batch < 4; batch++) {
      const events = Array.from({ length: N / 4 }, (_, j) => {
        const i = batch * (N / 4) + j;
        return create(TelemetryEventSchema, {
          id: `e-${i}`,
          source: { platform: Platform.API, connection: "line", device: i % 2 === 0 ? "pump-1" : "pump-2" },
          observedTime: timestampFromMs(t0 + i * 1000),
          points: [
            { name: "pressure", unit: "bar", value: { case: "doubleValue", value: i }, quality: i % 5 === 0 ? Quality.BAD : Quality.GOOD },
            { name: "label", value: { case: "stringValue", value: "not a number" } },
          ],
        });
      });
      await bus.publishEvents(events);
    }
    await until(() => omnia.writes.size >= N, { timeoutMs: 20_000, what: `${N} points written` });
    await new Promise((r) => setTimeout(r, 500));
    expect(omnia.writeFaults).toHaveLength(0);
    expect(omnia.writes.size).toBe(N);
    expect([...omnia.writes.values()].every((n) => n === 1)).toBe(true);
    const created = [...omnia.series.values()].find((s) => s.name === "pump-2.pressure");
    expect(created).toMatchObject({ facility: "JSV", unit: "bar" });
    expect(omnia.points.get(existing.id)?.size).toBe(N / 2);
    const bad = omnia.points.get(existing.id)?.get(BigInt(t0) * 1_000_000n);
    expect(bad).toMatchObject({ value: 0, status: 0 });
    await until(async () => (await consumerBacklog(bus, "omnia-line-into-omnia"))?.ackPending === 0, {
      timeoutMs: 5000,
      what: "everything acknowledged",
    });
    const counters = svc.sinks.list()[0]!.counters;
    expect(counters.delivered).toBe(N);
    expect(counters.skipped).toBe(N);
  } finally {
    await svc.stop();
  }
});

it("a route deleted without purge delivers its backlog into Omnia, then its consumer is deleted", async () => {
  const omnia = new FakeOmnia();
  const svc = await startForTest(
    startOmniaReader,
    omniaReaderConfig,
    { NATS_URL: nats.url, INSTANCE_ID: "drain" },
    {
      api: omnia.api,
      redeliveryBackoff: { initialMs: 50, maxMs: 200, multiplier: 2, jitter: 0 },
    },
  );
  try {
    const route = create(RouteSchema, {
      id: "draining",
      source: { platform: Platform.API, connection: "drain-line" },
      sink: { platform: Platform.OMNIA, target: "SNA" },
    });
    await routeBucket(bus).put("draining", route);
    await until(async () => (await consumerBacklog(bus, "omnia-draining")) !== undefined, {
      timeoutMs: 10_000,
      what: "the route's consumer",
    });
    // Omnia is down while the route is deleted: its backlog waits on the bus.
    omnia.writeFaults = Array.from({ length: 10 }, () => "503" as const);
    const events = Array.from({ length: 20 }, (_, i) =>
      create(TelemetryEventSchema, {
        id: `d-${i}`,
        source: { platform: Platform.API, connection: "drain-line", device: "valve-1" },
        observedTime: timestampFromMs(Date.UTC(2026, 0, 1) + i * 1000),
        points: [{ name: "position", value: { case: "doubleValue", value: i } }],
      }),
    );
    await bus.publishEvents(events.slice(0, 10));
    await bus.publishEvents(events.slice(10));
    const lastSequence = (await bus.jsm().streams.info(STREAMS.telemetry)).state.last_seq;
    await routeBucket(bus).put(
      "draining",
      create(RouteSchema, {
        id: route.id,
        source: route.source,
        sink: route.sink,
        state: RouteState.DRAINING,
        drain: create(RouteDrainSchema, { lastSequence: BigInt(lastSequence) }),
      }),
    );
    await until(async () => (await consumerBacklog(bus, "omnia-draining")) === undefined, {
      timeoutMs: 20_000,
      what: "the drained consumer deleted",
    });
    expect(omnia.writes.size).toBe(20);
    expect([...omnia.writes.values()].every((n) => n === 1)).toBe(true);
  } finally {
    await svc.stop();
  }
});
