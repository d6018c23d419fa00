import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { consumerBacklog, routeBucket, routeConsumerName } from "@meridian/bus";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { until } from "@meridian/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { OciPipelines } from "../src/pipeline/manager.js";
import type { StoredTwin } from "../src/pipeline/store.js";
import type { JsonObject } from "../src/platform/types.js";
import { deadLetters, makeTwin, type PipelineWorld, pipelines, startPipelineWorld } from "./pipelines.js";

let w: PipelineWorld;
let p: OciPipelines;
let running: Promise<void>;

beforeAll(async () => {
  w = await startPipelineWorld();
  p = pipelines(w);
  running = p.run();
});

afterAll(async () => {
  await p?.stop();
  await running;
  await w?.stop();
});

async function routeInto(id: string, connection: string, options: Record<string, string> = {}, target = "default"): Promise<void> {
  await routeBucket(w.bus).put(
    id,
    create(RouteSchema, { id, source: { platform: Platform.API, connection }, sink: { platform: Platform.OCI_IOT, target }, options }),
  );
  await until(async () => (await consumerBacklog(w.bus, routeConsumerName(id, Platform.OCI_IOT))) !== undefined, {
    timeoutMs: 10_000,
    what: `route ${id}'s consumer`,
  });
}

const T0 = Date.UTC(2026, 10, 30, 12);

function events(connection: string, device: string, from: number, n: number): TelemetryEvent[] {
  return Array.from({ length: n }, (_, j) =>
    create(TelemetryEventSchema, {
      id: `${connection}-${device}-${from + j}`,
      source: { platform: Platform.API, connection, device },
      observedTime: timestampFromMs(T0 + (from + j) * 1000),
      points: [
        { name: "humidity", value: { case: "doubleValue", value: 40 + (from + j) / 10 } },
        { name: "count", value: { case: "intValue", value: BigInt(from + j) } },
      ],
    }),
  );
}

/** The twin's historized rows in ORDS, read through the data API as the service reads them. */
async function historized(twin: StoredTwin): Promise<JsonObject[]> {
  const api = await w.domains.dataApi(twin.iotDomainId);
  const out: JsonObject[] = [];
  for (let after = 0; ; ) {
    const page = await api.query("historizedData", {
      digitalTwinInstanceId: twin.instanceId,
      filter: [{ id: { $gt: after } }],
      orderBy: { id: "asc" },
      limit: 500,
    });
    out.push(...page.items);
    if (!page.hasMore || page.items.length === 0) return out;
    after = page.items.at(-1)!["id"] as number;
  }
}

it("a route into a twin: bus events → the device endpoint as the twin's device → historized rows in ORDS at their observed times", async () => {
  const twin = await makeTwin(w, "sink-m5", undefined, "m5-secret");
  await routeInto("into-m5", "plant-1", { twin: "{device}" });
  const N = 20;
  for (let i = 0; i < N; i += 5) await w.bus.publishEvents(events("plant-1", "sink-m5", i, 5));
  await until(async () => (await historized(twin)).length >= 2 * N, { timeoutMs: 20_000, what: `${2 * N} historized rows` });
  const rows = await historized(twin);
  expect(rows).toHaveLength(2 * N);
  const counts = rows.filter((r) => r["content_path"] === "count");
  expect(counts.map((r) => r["value"]).sort((a, b) => (a as number) - (b as number))).toEqual(Array.from({ length: N }, (_, i) => i));
  const third = counts.find((r) => r["value"] === 3)!;
  expect(Date.parse(third["time_observed"] as string)).toBe(T0 + 3000);
  await until(async () => (await consumerBacklog(w.bus, "oci-into-m5"))?.ackPending === 0, { timeoutMs: 5000, what: "all acknowledged" });
  expect(p.sinks.list().find((s) => s.route.id === "into-m5")!.counters).toMatchObject({ received: N, delivered: N, failed: 0 });
  expect(await deadLetters(w.bus, "into-m5")).toEqual([]);
});

it("the device endpoint down for a while: nothing is lost, the route catches up once it is back", async () => {
  const twin = await makeTwin(w, "sink-outage", undefined, "outage-secret");
  await routeInto("into-outage", "plant-2");
  w.emulator.setFault({ target: "device", status: 503 });
  const N = 30;
  for (let i = 0; i < N; i += 10) await w.bus.publishEvents(events("plant-2", "sink-outage", i, 10));
  await until(() => (p.sinks.list().find((s) => s.route.id === "into-outage")?.counters.failed ?? 0) >= 3, {
    timeoutMs: 10_000,
    what: "posts refused while the endpoint is down",
  });
  expect(await historized(twin)).toHaveLength(0);
  w.emulator.clearFaults();
  await until(async () => (await historized(twin)).length >= 2 * N, { timeoutMs: 30_000, what: "caught up" });
  await until(async () => (await consumerBacklog(w.bus, "oci-into-outage"))?.ackPending === 0, {
    timeoutMs: 10_000,
    what: "all acknowledged",
  });
  const counts = (await historized(twin)).filter((r) => r["content_path"] === "count").map((r) => r["value"] as number);
  // Each event once: the injected 503s answered before OCI took anything.
  expect(counts.sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
  expect(await deadLetters(w.bus, "into-outage")).toEqual([]);
});

it("an unknown twin and a twin without a device secret are dead letters naming the twin; the route's other twins go on", async () => {
  const known = await makeTwin(w, "sink-known", undefined, "known-secret");
  await makeTwin(w, "sink-nosecret");
  await routeInto("into-mixed", "plant-3");
  await w.bus.publishEvents(events("plant-3", "sink-unknown", 0, 1));
  await w.bus.publishEvents(events("plant-3", "sink-nosecret", 0, 1));
  await w.bus.publishEvents(events("plant-3", "sink-known", 0, 2));
  await until(async () => (await deadLetters(w.bus, "into-mixed")).length >= 2, { timeoutMs: 10_000, what: "2 dead letters" });
  expect(await deadLetters(w.bus, "into-mixed")).toEqual([
    expect.stringMatching(/^twin sink-unknown \(template "\{device\}" for api\/plant-3\/sink-unknown\) is not a twin of oci-twin-manager$/),
    expect.stringMatching(/^twin sink-nosecret has no device secret/),
  ]);
  await until(async () => (await historized(known)).length >= 4, { timeoutMs: 10_000, what: "the known twin's rows" });
});
