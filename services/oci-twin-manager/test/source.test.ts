import { Platform, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { until } from "@meridian/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { StoredTwin } from "../src/pipeline/store.js";
import { makeTwin, type PipelineWorld, pipelines, startPipelineWorld } from "./pipelines.js";

let w: PipelineWorld;

beforeAll(async () => {
  w = await startPipelineWorld();
});

afterAll(async () => {
  await w?.stop();
});

/** Every event the bus stores from the twin's device from now on (a duplicate the bus dropped is not seen). */
function collect(twin: StoredTwin): { events: TelemetryEvent[]; stop(): void } {
  const ac = new AbortController();
  const events: TelemetryEvent[] = [];
  void (async () => {
    for await (const e of w.bus.subscribe(
      { platform: Platform.OCI_IOT, connection: twin.iotDomainId, device: twin.externalKey ?? "" },
      { signal: ac.signal },
    ))
      events.push(e);
  })().catch(() => {});
  return { events, stop: () => ac.abort() };
}

/** M5-like messages as the device, each observed at its own time (epoch µs in `time`, as the adapter reads it). */
function send(twin: StoredTwin, from: number, n: number, t0: number): void {
  for (let i = from; i < from + n; i++)
    w.emulator.ingest(twin.externalKey!, { humidity: 40 + i / 10, count: i, time: (t0 + i * 1000) * 1000 });
}

it("every historized row reaches the bus once, across a stop between publish and cursor, a restart and an ORDS outage", async () => {
  const twin = await makeTwin(w, "src-once", { historized: true, raw: false, rejected: false, startTime: new Date(0).toISOString() });
  const seen = collect(twin);
  const t0 = Date.now() - 3_600_000;
  send(twin, 0, 10, t0);

  // First run: the bus takes the first page's events (7 rows: 3 whole observations, the 4th waits for the next page),
  // the cursor write never gets through; then the pipelines stop.
  const first = pipelines(w);
  const put = first.cursors.put.bind(first.cursors);
  first.cursors.put = async (key, dataSet, record) => {
    if (record.lastRowId !== undefined) throw new Error("cursor write lost");
    return put(key, dataSet, record);
  };
  const running = first.run();
  await until(() => seen.events.length >= 3, { timeoutMs: 15_000, what: "the first page's observations on the bus" });
  await new Promise((r) => setTimeout(r, 300));
  await first.stop();
  await running;
  expect(seen.events).toHaveLength(3);
  expect((await first.cursors.get(twin.key, "historizedData", twin.instanceId))?.lastRowId).toBeUndefined();

  // Meanwhile more data, and ORDS answers 500 for a while.
  send(twin, 10, 15, t0);
  w.emulator.setFault({ target: "data", status: 500 });
  const second = pipelines(w);
  const again = second.run();
  await until(() => (second.poller(twin.key)?.counters.failed ?? 0) >= 1, { timeoutMs: 15_000, what: "a poll failed on ORDS" });
  expect(seen.events.length).toBe(3);
  w.emulator.clearFaults();
  await until(() => seen.events.length >= 25, { timeoutMs: 20_000, what: "25 observations on the bus" });
  await until(async () => (await second.cursors.get(twin.key, "historizedData", twin.instanceId))?.lastRowId === 50, {
    timeoutMs: 10_000,
    what: "the cursor at the last row",
  });
  await new Promise((r) => setTimeout(r, 500));
  // The first page read again: its 3 events were on the bus already, which dropped them.
  expect(second.poller(twin.key)!.counters).toMatchObject({ delivered: 22, skipped: 3, received: 50 });
  expect(second.counters().find((c) => c.name === `twin-${twin.key}`)).toMatchObject({ delivered: 22n, pending: 0n });
  await second.stop();
  await again;
  seen.stop();

  const counts = seen.events.map((e) => e.points.find((p) => p.name === "count")?.value);
  expect(counts.map((v) => v?.value)).toEqual(Array.from({ length: 25 }, (_, i) => BigInt(i)));
  // The model says count is an integer: int64 points; humidity stays a double.
  expect(counts.every((v) => v?.case === "intValue")).toBe(true);
  expect(seen.events[3]!.points.find((p) => p.name === "humidity")?.value).toEqual({ case: "doubleValue", value: 40.3 });
  expect(seen.events[3]!.observedTime).toMatchObject({ seconds: BigInt(Math.floor((t0 + 3000) / 1000)) });
  expect(new Set(seen.events.map((e) => e.id)).size).toBe(25);
  expect(seen.events[0]!.source).toMatchObject({ platform: Platform.OCI_IOT, connection: twin.iotDomainId, device: twin.externalKey });
});

it("rejected rows are published with their reason when the source asks for them, and a source turned off stops", async () => {
  const twin = await makeTwin(w, "src-rejected", { historized: false, raw: false, rejected: true });
  const seen = collect(twin);
  const p = pipelines(w);
  const running = p.run();
  await until(() => p.poller(twin.key) !== undefined, { timeoutMs: 10_000, what: "the twin's poller" });
  // Read from when the source was enabled: wait for its first read, then send what no content of the model takes.
  await until(() => (p.poller(twin.key)?.counters.polls ?? 0) >= 1, { timeoutMs: 10_000, what: "a first poll" });
  w.emulator.ingest(twin.externalKey!, { unknown: "field" });
  w.emulator.ingest(twin.externalKey!, { humidity: 50, count: 1 });
  await until(() => seen.events.length >= 1, { timeoutMs: 10_000, what: "the rejected row on the bus" });
  expect(seen.events[0]!.attributes).toMatchObject({
    data_set: "rejectedData",
    reason_code: "500",
    reason_message: "Normalization output is empty",
    endpoint: expect.any(String),
  });
  expect(seen.events[0]!.points.map((x) => [x.name, x.value.value])).toEqual([["unknown", "field"]]);

  // Turned off: the poller goes at once.
  await w.store.put({ ...twin, source: { historized: false, raw: false, rejected: false } });
  await until(() => p.poller(twin.key) === undefined, { timeoutMs: 5000, what: "the poller stopped" });
  w.emulator.ingest(twin.externalKey!, { another: "one" });
  await new Promise((r) => setTimeout(r, 800));
  expect(seen.events).toHaveLength(1);
  // A deleted twin's cursors go with it.
  expect((await p.cursors.of(twin.key)).size).toBe(1);
  await w.store.delete(twin.key);
  await until(async () => (await p.cursors.of(twin.key)).size === 0, { timeoutMs: 5000, what: "the cursors deleted" });
  await p.stop();
  await running;
  seen.stop();
});

it("a source enabled without a start time skips the rows ORDS held then; a row observed an hour ago but historized after reaches the bus once", async () => {
  const twin = await makeTwin(w, "src-late");
  const seen = collect(twin);
  const old = Date.now() - 3_600_000;
  // Stored before the source is enabled: not published.
  w.emulator.ingest(twin.externalKey!, { humidity: 41, count: 1, time: old * 1000 });
  const p = pipelines(w);
  const running = p.run();
  await w.store.put({ ...twin, source: { historized: true, raw: false, rejected: false } });
  await until(() => (p.poller(twin.key)?.counters.polls ?? 0) >= 1, { timeoutMs: 10_000, what: "a first poll" });
  expect((await p.cursors.get(twin.key, "historizedData", twin.instanceId))?.lastRowId).toBeGreaterThan(0);

  // A device whose clock is an hour behind: its observation is older than the source, and arrives after it.
  w.emulator.ingest(twin.externalKey!, { humidity: 42, count: 2, time: (old + 1000) * 1000 });
  await until(() => seen.events.length >= 1, { timeoutMs: 10_000, what: "the late row on the bus" });
  const polls = p.poller(twin.key)!.counters.polls;
  await until(() => p.poller(twin.key)!.counters.polls >= polls + 3, { timeoutMs: 10_000, what: "three more polls" });
  await p.stop();
  await running;
  seen.stop();
  expect(seen.events).toHaveLength(1);
  expect(seen.events[0]!.points.find((x) => x.name === "count")?.value).toEqual({ case: "intValue", value: 2n });
  expect(seen.events[0]!.observedTime).toMatchObject({ seconds: BigInt(Math.floor((old + 1000) / 1000)) });
});
