import { fromBinary } from "@bufbuild/protobuf";
import { Bus, DEAD_LETTER_HEADERS, STREAMS } from "@meridian/bus";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type NatsServerHandle, startNatsServer, testLogger, until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OciNotAuthenticatedError, OciUnavailableError } from "../platform/errors.js";
import type { DataApiClient, DataQuery, DataSet, JsonObject } from "../platform/types.js";
import { type CursorRecord, CursorStore } from "./cursors.js";
import type { SourceDataSet } from "./mapping.js";
import { TwinPoller, type TwinPollerOptions } from "./source.js";
import type { StoredTwin } from "./store.js";

const logger = testLogger();
let nats: NatsServerHandle;
let bus: Bus;
const FAST = { initialMs: 10, maxMs: 50, multiplier: 2, jitter: 0 };

beforeAll(async () => {
  nats = await startNatsServer();
  bus = Bus.connect({ servers: nats.url, name: "source-test", logger });
  await bus.ready;
});

afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

/** ORDS as the source reads it: rows per data set, the q filter the source sends, limit and hasMore; faults queued. */
class FakeOrds implements DataApiClient {
  readonly rows = new Map<DataSet, JsonObject[]>();
  readonly queries: Array<{ dataSet: DataSet; query: DataQuery }> = [];
  faults: Error[] = [];
  gets = 0;

  add(dataSet: DataSet, row: JsonObject): void {
    const list = this.rows.get(dataSet) ?? [];
    list.push({ id: list.length + 1, ...row });
    this.rows.set(dataSet, list);
  }

  async query(
    dataSet: DataSet,
    query: DataQuery,
  ): Promise<{ items: JsonObject[]; hasMore: boolean; limit: number; offset: number; count: number }> {
    this.queries.push({ dataSet, query });
    const fault = this.faults.shift();
    if (fault) throw fault;
    const limit = query.limit ?? 25;
    let rows = (this.rows.get(dataSet) ?? []).filter((r) => r["digital_twin_instance_id"] === query.digitalTwinInstanceId);
    for (const f of query.filter ?? []) {
      const [[field, cond]] = Object.entries(f) as [[string, JsonObject]];
      if ("$gt" in cond) rows = rows.filter((r) => (r[field] as number) > (cond["$gt"] as number));
      if ("$gte" in cond) {
        const at = Date.parse((cond["$gte"] as JsonObject)["$date"] as string);
        rows = rows.filter((r) => Date.parse(r[field] as string) >= at);
      }
    }
    rows.sort((a, b) => (a["id"] as number) - (b["id"] as number));
    if (query.orderBy?.["id"] === "desc") rows.reverse();
    const items = rows.slice(0, limit).map((r) => {
      const { content: _content, ...listed } = r;
      return dataSet === "historizedData" ? r : listed;
    });
    return { items, hasMore: rows.length > limit, limit, offset: 0, count: items.length };
  }

  async get(dataSet: DataSet, id: number): Promise<JsonObject> {
    this.gets++;
    const row = (this.rows.get(dataSet) ?? []).find((r) => r["id"] === id);
    if (!row) throw new Error(`no row ${id}`);
    return row;
  }
}

let seq = 0;
function twinOf(source: StoredTwin["source"]): StoredTwin {
  seq++;
  return {
    key: `t${seq}`,
    iotDomainId: `ocid1.iotdomain.oc1.test.d${seq}`,
    kind: "default-adapter",
    instanceId: `ocid1.iotdigitaltwininstance.oc1.test.i${seq}`,
    externalKey: `dev-${seq}`,
    specHash: "h",
    createTime: new Date().toISOString(),
    ...(source ? { source } : {}),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "123Z");
}

/** Every event the bus stores for the twin's device, from now on. */
function collect(twin: StoredTwin): { events: TelemetryEvent[]; stop(): void } {
  const ac = new AbortController();
  const events: TelemetryEvent[] = [];
  void (async () => {
    for await (const e of bus.subscribe({ platform: Platform.OCI_IOT, connection: twin.iotDomainId }, { signal: ac.signal }))
      events.push(e);
  })().catch(() => {});
  return { events, stop: () => ac.abort() };
}

function poller(twin: StoredTwin, ords: FakeOrds, extra: Partial<TwinPollerOptions> = {}): TwinPoller {
  return new TwinPoller({
    twin,
    bus,
    dataApi: async () => ords,
    cursors: new CursorStore(bus),
    logger,
    pageRows: 3,
    pollMs: 60_000,
    readBackoff: FAST,
    readAttempts: 4,
    publishBackoff: FAST,
    ...extra,
  });
}

function historize(ords: FakeOrds, twin: StoredTwin, observations: number, t0 = Date.now() - 60_000): void {
  for (let i = 0; i < observations; i++)
    for (const path of ["humidity", "pressure"])
      ords.add("historizedData", {
        digital_twin_instance_id: twin.instanceId,
        content_path: path,
        value: i + (path === "pressure" ? 1000 : 0),
        time_observed: iso(t0 + i * 1000),
      });
}

describe("TwinPoller", () => {
  it("publishes every historized observation once, page by page, and keeps the last row in the cursor", async () => {
    const twin = twinOf({ historized: true, raw: false, rejected: false, startTime: new Date(0).toISOString() });
    const ords = new FakeOrds();
    historize(ords, twin, 5);
    const seen = collect(twin);
    const p = poller(twin, ords);
    await p.pollOnce();
    await until(() => seen.events.length >= 5, { timeoutMs: 5000, what: "5 events" });
    seen.stop();
    expect(seen.events.map((e) => e.points.map((x) => x.value.value))).toEqual([
      [0, 1000],
      [1, 1001],
      [2, 1002],
      [3, 1003],
      [4, 1004],
    ]);
    expect(seen.events[0]!.source).toMatchObject({ platform: Platform.OCI_IOT, connection: twin.iotDomainId, device: twin.externalKey });
    // A page of 3 rows ends inside an observation: that observation is read whole from the next page.
    const afters = ords.queries.map((q) => (q.query.filter?.[0] as { id?: { $gt: number } } | undefined)?.id?.$gt);
    expect(afters).toEqual([undefined, 2, 4, 6, 8]);
    expect(await new CursorStore(bus).get(twin.key, "historizedData", twin.instanceId)).toMatchObject({ lastRowId: 10 });
    expect(p.counters).toMatchObject({ received: 10, delivered: 5, skipped: 0, failed: 0 });
    expect(p.pending).toBe(0);
  });

  it("the first read starts at the source's start time (time field of the data set); later reads follow the cursor", async () => {
    const start = Date.now() - 10_000;
    const twin = twinOf({ historized: true, raw: false, rejected: false, startTime: new Date(start).toISOString() });
    const ords = new FakeOrds();
    historize(ords, twin, 2, start - 5000);
    historize(ords, twin, 2, start + 1000);
    const p = poller(twin, ords, { pageRows: 500 });
    await p.pollOnce();
    expect(ords.queries[0]!.query.filter).toEqual([{ time_observed: { $gte: { $date: new Date(start).toISOString() } } }]);
    expect(ords.queries[0]!.query).toMatchObject({ digitalTwinInstanceId: twin.instanceId, orderBy: { id: "asc" }, limit: 500 });
    expect(p.counters.delivered).toBe(2);
    await p.pollOnce();
    expect(ords.queries[1]!.query.filter).toEqual([{ id: { $gt: 8 } }]);
  });

  it("without a start time the first read is after the highest row id ORDS holds; a row observed earlier that arrives later is published", async () => {
    const twin = twinOf({ historized: true, raw: false, rejected: false });
    const ords = new FakeOrds();
    const t0 = Date.now() - 3_600_000;
    historize(ords, twin, 2, t0);
    const p = poller(twin, ords);
    await p.pollOnce();
    expect(ords.queries[0]!.query).toEqual({ digitalTwinInstanceId: twin.instanceId, orderBy: { id: "desc" }, limit: 1 });
    expect(await new CursorStore(bus).get(twin.key, "historizedData", twin.instanceId)).toMatchObject({ lastRowId: 4 });
    expect(p.counters.received).toBe(0);
    // Observed before the source was enabled (a device clock behind), stored by ORDS after.
    historize(ords, twin, 1, t0 - 60_000);
    await p.pollOnce();
    expect(ords.queries.at(-1)!.query.filter).toEqual([{ id: { $gt: 4 } }]);
    expect(p.counters).toMatchObject({ received: 2, delivered: 1 });
    expect(await new CursorStore(bus).get(twin.key, "historizedData", twin.instanceId)).toMatchObject({ lastRowId: 6 });
  });

  it("without a start time and no row yet, the first cursor is after id 0", async () => {
    const twin = twinOf({ historized: false, raw: true, rejected: false });
    const ords = new FakeOrds();
    const p = poller(twin, ords);
    await p.pollOnce();
    expect(await new CursorStore(bus).get(twin.key, "rawData", twin.instanceId)).toMatchObject({ lastRowId: 0 });
    ords.add("rawData", { digital_twin_instance_id: twin.instanceId, time_received: iso(0), content: { a: 1 } });
    await p.pollOnce();
    expect(p.counters).toMatchObject({ received: 1, delivered: 1 });
  });

  it("a stop between publish and cursor reads the page again; the bus stores each event once", async () => {
    const twin = twinOf({ historized: true, raw: false, rejected: false, startTime: new Date(0).toISOString() });
    const ords = new FakeOrds();
    historize(ords, twin, 3);
    const seen = collect(twin);
    // The cursor write never succeeds (a bus that takes publishes but not this KV write), then the poller stops.
    class StuckCursors extends CursorStore {
      override async put(key: string, ds: SourceDataSet, r: CursorRecord): Promise<void> {
        if (r.lastRowId !== undefined) throw new Error("cursor write lost");
        return super.put(key, ds, r);
      }
    }
    const first = poller(twin, ords, { cursors: new StuckCursors(bus), pageRows: 500 });
    first.start();
    await until(() => seen.events.length >= 3, { timeoutMs: 5000, what: "first publish" });
    await first.stop();
    expect((await new CursorStore(bus).get(twin.key, "historizedData", twin.instanceId))?.lastRowId).toBeUndefined();
    historize(ords, twin, 1, Date.now());
    const second = poller(twin, ords, { pageRows: 500 });
    await second.pollOnce();
    await until(() => seen.events.length >= 4, { timeoutMs: 5000, what: "the new observation" });
    await new Promise((r) => setTimeout(r, 300));
    seen.stop();
    expect(seen.events.map((e) => e.id)).toEqual([1, 3, 5, 7].map((id) => `oci:${twin.iotDomainId}:historizedData:${id}`));
    expect(second.counters).toMatchObject({ delivered: 1, skipped: 3 });
  });

  it("an ORDS outage is retried with backoff and no row is skipped; past the attempts the poll fails and the next goes on from the cursor", async () => {
    const twin = twinOf({ historized: true, raw: false, rejected: false, startTime: new Date(0).toISOString() });
    const ords = new FakeOrds();
    historize(ords, twin, 2);
    ords.faults = [new OciUnavailableError("500"), new OciUnavailableError("503")];
    const p = poller(twin, ords, { pageRows: 500 });
    await p.pollOnce();
    expect(p.counters.delivered).toBe(2);
    historize(ords, twin, 2, Date.now());
    ords.faults = Array.from({ length: 4 }, () => new OciUnavailableError("down"));
    await expect(p.pollOnce()).rejects.toThrow("down");
    await p.pollOnce();
    expect(p.counters.delivered).toBe(4);
    expect(await new CursorStore(bus).get(twin.key, "historizedData", twin.instanceId)).toMatchObject({ lastRowId: 8 });
  });

  it("a 401 is tried once more (the data client renews its token on it); a second one fails the poll", async () => {
    const twin = twinOf({ historized: true, raw: false, rejected: false, startTime: new Date(0).toISOString() });
    const ords = new FakeOrds();
    historize(ords, twin, 1);
    ords.faults = [new OciNotAuthenticatedError("expired")];
    const p = poller(twin, ords);
    await p.pollOnce();
    expect(p.counters.delivered).toBe(1);
    ords.faults = [new OciNotAuthenticatedError("expired"), new OciNotAuthenticatedError("refused")];
    await expect(p.pollOnce()).rejects.toThrow("refused");
  });

  it("raw and rejected rows with their content (read per row), rejected with its reason", async () => {
    const twin = twinOf({ historized: false, raw: true, rejected: true, startTime: new Date(0).toISOString() });
    const ords = new FakeOrds();
    const t = iso(Date.now() - 1000);
    for (let i = 0; i < 4; i++)
      ords.add("rawData", {
        digital_twin_instance_id: twin.instanceId,
        endpoint: "iot/v1/telemetry",
        content_type: "application/json",
        time_received: t,
        content: { count: i },
      });
    ords.add("rejectedData", {
      digital_twin_instance_id: twin.instanceId,
      endpoint: "iot/v1/other",
      content_type: "application/json",
      time_received: t,
      reason_code: 500,
      reason_message: "Normalization output is empty",
      content: { foo: "bar" },
    });
    const seen = collect(twin);
    const p = poller(twin, ords);
    await p.pollOnce();
    await until(() => seen.events.length >= 5, { timeoutMs: 5000, what: "5 events" });
    seen.stop();
    expect(ords.gets).toBe(5);
    expect(seen.events.map((e) => [e.attributes["data_set"], e.points[0]?.value.value])).toEqual([
      ["rawData", 0],
      ["rawData", 1],
      ["rawData", 2],
      ["rawData", 3],
      ["rejectedData", "bar"],
    ]);
    expect(seen.events[4]!.attributes).toMatchObject({ reason_code: "500", reason_message: "Normalization output is empty" });
  });

  it("a row whose event can never fit the bus's max_payload is dead-lettered without its points, and the cursor goes past it", async () => {
    const twin = twinOf({ historized: false, raw: true, rejected: false, startTime: new Date(0).toISOString() });
    const ords = new FakeOrds();
    const t = iso(Date.now() - 1000);
    const row = { digital_twin_instance_id: twin.instanceId, endpoint: "iot/v1/blob", content_type: "application/json", time_received: t };
    ords.add("rawData", { ...row, content: { blob: "x".repeat(2 * 1024 * 1024) } });
    ords.add("rawData", { ...row, content: { small: 1 } });
    const seen = collect(twin);
    const p = poller(twin, ords);
    await p.pollOnce();
    await until(() => seen.events.length >= 1, { timeoutMs: 5000, what: "the small row" });
    seen.stop();
    expect(seen.events.map((e) => e.id)).toEqual([`oci:${twin.iotDomainId}:rawData:2`]);
    expect(await new CursorStore(bus).get(twin.key, "rawData", twin.instanceId)).toMatchObject({ lastRowId: 2 });
    const jsm = bus.jsm();
    const m = await jsm.streams.getMessage(STREAMS.deadLetter, { last_by_subj: "deadletter.v1.oci-twin-manager" });
    expect(m.header.get(DEAD_LETTER_HEADERS.reason)).toMatch(
      new RegExp(`event oci:.*:rawData:1 \\(rows 1..1 of twin ${twin.key}\\) is larger than`),
    );
    expect(fromBinary(TelemetryEventSchema, m.data)).toMatchObject({ id: `oci:${twin.iotDomainId}:rawData:1`, points: [] });
  });

  it("stops at once, in the middle of a retried read", async () => {
    const twin = twinOf({ historized: true, raw: false, rejected: false });
    const ords = new FakeOrds();
    ords.faults = Array.from({ length: 100 }, () => new OciUnavailableError("down"));
    const p = poller(twin, ords, { readBackoff: { initialMs: 10_000, maxMs: 10_000, multiplier: 1, jitter: 0 } });
    p.start();
    await until(() => ords.queries.length > 0, { timeoutMs: 5000 });
    const t0 = Date.now();
    await p.stop();
    expect(Date.now() - t0).toBeLessThan(5000); // the backoff is 10 s; 5 s leaves room for a loaded machine
  });
});
