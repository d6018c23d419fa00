import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Bus,
  consumerBacklog,
  DEAD_LETTER_HEADERS,
  deadLetterSubject,
  routeBucket,
  STREAMS,
  serviceStatusBucket,
} from "@meridian/bus";
import { EndpointKind } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { RunningOmfEmulator } from "@meridian/emulator-omf";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { OmfSender } from "../src/service.js";
import {
  apiClient,
  getJson,
  type NatsServerHandle,
  PIPELINE_ENV,
  setFaults,
  startPipelineStack,
  startSender,
  TEST_BACKOFF,
  until,
} from "./harness.js";

/**
 * Bus → omf-sender → emulator, through a real nats-server and the emulator's HTTP surface. The outage is the
 * issue's 30 s; `OMF_TEST_OUTAGE_MS=8000 npx vitest run services/omf-sender/test/pipeline.test.ts` shortens it
 * while working on the pipeline.
 */
const OUTAGE_MS = Number(process.env.OMF_TEST_OUTAGE_MS || 30_000);

let nats: NatsServerHandle;
let emu: RunningOmfEmulator;
let sender: OmfSender;
let bus: Bus;
let endpointsFile: string;

/** Fields a test overrides, in protobuf-es init form (plain objects, no $typeName). */
type EventInit = Exclude<MessageInitShape<typeof TelemetryEventSchema>, TelemetryEvent>;

function event(connection: string, device: string, i: number, base: number, extra: EventInit = {}): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id: `${connection}:${device}:${i}`,
    source: { platform: Platform.API, connection, device },
    observedTime: timestampFromDate(new Date(base + i * 1000)),
    points: [
      { name: "temperature", value: { case: "doubleValue", value: 20 + i / 4 } },
      { name: "count", value: { case: "intValue", value: BigInt(i) } },
      { name: "running", value: { case: "boolValue", value: i % 2 === 0 } },
      { name: "state", value: { case: "stringValue", value: `s-${i}` } },
    ],
    ...extra,
  });
}

async function putRoute(id: string, connection: string, target: string, options: Record<string, string> = {}) {
  await routeBucket(bus).put(
    id,
    create(RouteSchema, { id, source: { connection }, sink: { platform: Platform.OMF, target }, options: { lingerMs: "50", ...options } }),
  );
  // A new route's consumer starts at the next event: publish once omf-sender has made it.
  await until(async () => (await consumerBacklog(bus, `omf-${id}`)) !== undefined, { timeoutMs: 10_000, what: `consumer of route ${id}` });
}

async function publish(events: TelemetryEvent[], per = 50) {
  for (let i = 0; i < events.length; i += per) await bus.publishEvents(events.slice(i, i + per));
}

type Container = { id: string; typeid: string; valueCount: number; values: Array<Record<string, unknown>>; points?: string[] };
async function containers(scope: "pi" | "eds", connection: string): Promise<Container[]> {
  const s = await getJson(`${emu.url}/_emulator/state?scope=${scope}`);
  return Object.values(s.body.scopes[scope].containers as Record<string, Container>).filter((c) => c.id.startsWith(`api.${connection}.`));
}
async function valueCount(scope: "pi" | "eds", connection: string): Promise<number> {
  return (await containers(scope, connection)).reduce((n, c) => n + c.valueCount, 0);
}

const faults = (body: object | null) => setFaults(emu, body);

beforeAll(async () => {
  ({ nats, emu, sender, bus, endpointsFile } = await startPipelineStack());
});
afterAll(async () => {
  await sender?.stop();
  await bus?.close();
  await emu?.stop();
  await nats?.stop();
});

describe("pipeline: bus → omf-sender → PI / EDS", () => {
  it("events land in PI with the right values and observed-time timestamps; types and containers sent once", async () => {
    await putRoute("to-pi", "line-pi", "pi");
    const base = Date.UTC(2026, 0, 1);
    const events = ["press-1", "press-2", "press-3", "press-4"].flatMap((d) =>
      Array.from({ length: 50 }, (_, i) => event("line-pi", d, i, base)),
    );
    await publish(events);
    await until(async () => (await valueCount("pi", "line-pi")) === 200, { timeoutMs: 20_000, what: "200 values in PI" });
    const cs = await containers("pi", "line-pi");
    expect(cs).toHaveLength(4);
    expect(new Set(cs.map((c) => c.typeid)).size).toBe(1);
    const c1 = cs.find((c) => c.id.startsWith("api.line-pi.press-1."))!;
    expect(c1.values).toHaveLength(50);
    expect(c1.values[7]).toEqual({
      Timestamp: new Date(base + 7000).toISOString().replace(".000Z", "Z"),
      temperature: 21.75,
      count: 7,
      running: false,
      state: "s-7",
    });
    // PI points per property, readable through PI Web API's own read-back.
    expect(c1.points?.sort()).toEqual(["count", "running", "state", "temperature"].map((p) => `${c1.id}.${p}`));
    const auth = { authorization: `Basic ${Buffer.from("meridian:meridian").toString("base64")}` };
    const pts = await getJson(`${emu.url}/piwebapi/dataservers?name=MERIDIAN-PI`, auth).then((r) =>
      getJson(`${r.body.Links.Points}?nameFilter=${encodeURIComponent(`${c1.id}.temperature`)}`, auth),
    );
    const v = await getJson(pts.body.Items[0].Links.Value, auth);
    expect(v.body.Value).toBe(20 + 49 / 4);
    // Sub-second precision survives (nanos → RFC 3339 fraction).
    await bus.publishEvents([
      event("line-pi", "press-1", 0, base + 0.5, { id: "frac", observedTime: { seconds: BigInt(base / 1000 + 100), nanos: 123_456_700 } }),
    ]);
    await until(async () => (await valueCount("pi", "line-pi")) === 201, { timeoutMs: 10_000, what: "fraction value" });
    const after = (await containers("pi", "line-pi")).find((c) => c.id === c1.id)!;
    expect(after.values.at(-1)?.Timestamp).toBe(`${new Date(base + 100_000).toISOString().slice(0, 19)}.1234567Z`);

    const status = await apiClient(sender).getEndpointStatus({ id: "pi" });
    expect(status.status?.routes).toEqual(["to-pi"]);
    expect(status.status?.sentEvents).toBe(201n);
    expect(status.status?.failedEvents).toBe(0n);
    const [counters] = (await sender.pipelines.counters()).filter((p) => p.name === "to-pi");
    expect(counters).toMatchObject({ received: 201n, delivered: 201n, failed: 0n, pending: 0n });
    // The same counters reach the service_status bucket (what the gateway's GetStatus shows).
    await until(
      async () => {
        const reports = (await serviceStatusBucket(bus).entries()).map(([, r]) => r).filter((r) => r.service === "omf-sender");
        return reports.some((r) => r.pipelines.some((p) => p.name === "to-pi" && p.delivered === 201n && p.pending === 0n));
      },
      { timeoutMs: 5_000, what: "status report" },
    );
    // Types and containers are remembered in KV, once per endpoint.
    const kv = await bus.js().views.kv("omf_state");
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    expect(keys.filter((k) => k.startsWith("pi.") && k.includes(".t."))).toHaveLength(1);
    expect(keys.filter((k) => k.startsWith("pi.") && k.includes(".c."))).toHaveLength(4);
  });

  // An event published again as a new bus message (past the bus's duplicate window) is not a redelivery: the ledger
  // does not know it, and a receiver that inserts keeps both values. Here PI's update is read as replace (fledge).
  it("an event published again overwrites its value at the same timestamp (PI update read as replace), never a second value", async () => {
    emu.setSettings({ piUpdate: "replace" });
    onTestFinished(() => void emu.setSettings({ piUpdate: "createmode" }));
    await putRoute("again", "line-again", "pi");
    const base = Date.UTC(2026, 6, 1);
    const events = Array.from({ length: 20 }, (_, i) => event("line-again", "d", i, base));
    await bus.publishEvents(events, "first");
    await until(async () => (await valueCount("pi", "line-again")) === 20, { timeoutMs: 10_000, what: "first send" });
    // The same events again (a source that re-sent its batch after the bus's duplicate window).
    await bus.publishEvents(events, "second");
    await until(async () => (await sender.pipelines.counters()).find((p) => p.name === "again")?.delivered === 40n, {
      timeoutMs: 10_000,
      what: "second send",
    });
    const [c] = await containers("pi", "line-again");
    expect(c?.valueCount).toBe(20);
  });

  it("a changed shape gets a new type and container, not a 409", async () => {
    await putRoute("shape", "line-shape", "eds");
    const base = Date.UTC(2026, 1, 1);
    await bus.publishEvents([event("line-shape", "d", 0, base)]);
    await bus.publishEvents([
      event("line-shape", "d", 1, base, { points: [{ name: "temperature", value: { case: "intValue", value: 5n } }] }),
    ]);
    await until(async () => (await valueCount("eds", "line-shape")) === 2, { timeoutMs: 10_000, what: "two shapes" });
    const cs = await containers("eds", "line-shape");
    expect(cs).toHaveLength(2);
    expect(new Set(cs.map((c) => c.typeid)).size).toBe(2);
    // An event without points has nothing to write: acked and counted as skipped, not delivered.
    await bus.publishEvents([event("line-shape", "d", 2, base, { points: [] })]);
    const shape = async () => (await sender.pipelines.counters()).find((p) => p.name === "shape");
    await until(async () => (await shape())?.received === 3n && (await shape())?.pending === 0n, {
      timeoutMs: 10_000,
      what: "third event",
    });
    expect(await shape()).toMatchObject({ received: 3n, delivered: 2n, skipped: 1n, failed: 0n });
    expect(await valueCount("eds", "line-shape")).toBe(2);
  });

  it("a 413 from the endpoint splits the batch and sends the halves", async () => {
    // An endpoint configured above the receiver's real limit (EDS: 192 KiB), uncompressed: the receiver says 413.
    await apiClient(sender).createEndpoint({
      endpoint: { id: "eds-big", kind: EndpointKind.EDS, url: emu.url, disableCompression: true, maxBodyBytes: 8_000_000 },
    });
    await putRoute("big", "line-big", "eds-big", { maxBatchEvents: "3000", lingerMs: "500" });
    const before = (await getJson(`${emu.url}/_emulator/counters`)).body.byStatus?.["413"] ?? 0;
    const base = Date.UTC(2026, 8, 1);
    await publish(
      Array.from({ length: 3000 }, (_, i) => event("line-big", "d", i, base)),
      500,
    );
    await until(async () => (await valueCount("eds", "line-big")) === 3000, { timeoutMs: 20_000, what: "3000 values" });
    const after = (await getJson(`${emu.url}/_emulator/counters`)).body.byStatus?.["413"] ?? 0;
    expect(after).toBeGreaterThan(before);
    // EDS answers 202: the values count once read back, a moment after they are visible.
    await until(async () => (await sender.pipelines.counters()).find((p) => p.name === "big")?.delivered === 3000n, {
      timeoutMs: 10_000,
      what: "3000 delivered",
    });
    const [counters] = (await sender.pipelines.counters()).filter((p) => p.name === "big");
    expect(counters).toMatchObject({ delivered: 3000n, failed: 0n });
  });

  it("a disabled route stops its pipeline; a deleted route also deletes its durable consumer", async () => {
    await putRoute("tmp", "line-tmp", "eds");
    await until(() => sender.pipelines.list().some((p) => p.route.id === "tmp"), { timeoutMs: 5_000, what: "pipeline started" });
    await until(
      async () =>
        (await bus
          .jsm()
          .consumers.info(STREAMS.telemetry, "omf-tmp")
          .catch(() => undefined)) !== undefined,
      { timeoutMs: 5_000, what: "consumer" },
    );
    const route = (await routeBucket(bus).get("tmp"))!;
    await routeBucket(bus).put("tmp", create(RouteSchema, { ...route, disabled: true }));
    await until(() => !sender.pipelines.list().some((p) => p.route.id === "tmp"), { timeoutMs: 5_000, what: "pipeline stopped" });
    expect(await bus.jsm().consumers.info(STREAMS.telemetry, "omf-tmp")).toBeDefined();
    await routeBucket(bus).put("tmp", route);
    await until(() => sender.pipelines.list().some((p) => p.route.id === "tmp"), { timeoutMs: 5_000, what: "pipeline restarted" });
    await routeBucket(bus).delete("tmp");
    await until(
      async () =>
        (await bus
          .jsm()
          .consumers.info(STREAMS.telemetry, "omf-tmp")
          .catch(() => undefined)) === undefined,
      { timeoutMs: 5_000, what: "consumer deleted" },
    );
    expect(sender.pipelines.list().some((p) => p.route.id === "tmp")).toBe(false);
  });

  it("a 400 the endpoint will always give dead-letters that message with the OMF error body; the rest lands", async () => {
    await putRoute("dl", "line-dl", "eds", { intFormat: "int32", lingerMs: "500" });
    const base = Date.UTC(2026, 2, 1);
    await bus.publishEvents([event("line-dl", "ok-1", 0, base)]);
    await bus.publishEvents([
      event("line-dl", "bad", 1, base, { points: [{ name: "count", value: { case: "intValue", value: 2n ** 40n } }] }),
    ]);
    await bus.publishEvents([event("line-dl", "ok-2", 2, base)]);
    const subject = deadLetterSubject("omf-dl");
    await until(
      async () => {
        try {
          await bus.jsm().streams.getMessage(STREAMS.deadLetter, { last_by_subj: subject });
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 15_000, what: "dead letter" },
    );
    const dl = await bus.jsm().streams.getMessage(STREAMS.deadLetter, { last_by_subj: subject });
    expect(dl.header.get(DEAD_LETTER_HEADERS.subject)).toContain(".bad");
    expect(dl.header.get(DEAD_LETTER_HEADERS.reason)).toMatch(/HTTP 400/);
    const detail = JSON.parse(dl.header.get(DEAD_LETTER_HEADERS.detail));
    expect(detail.status).toBe(400);
    expect(JSON.stringify(detail.messages)).toMatch(/outside the allowable range/);
    await until(async () => (await valueCount("eds", "line-dl")) === 2, { timeoutMs: 10_000, what: "good events" });
    // The bad device's container exists (definitions went through), its value did not.
    const withValues = (await containers("eds", "line-dl")).filter((c) => c.valueCount > 0);
    expect(withValues.map((c) => c.id.split(".")[2]).sort()).toEqual(["ok-1", "ok-2"]);
    // EDS answers 202: the good values count once read back.
    await until(async () => (await sender.pipelines.counters()).find((p) => p.name === "dl")?.delivered === 2n, {
      timeoutMs: 10_000,
      what: "2 delivered",
    });
    const [counters] = (await sender.pipelines.counters()).filter((p) => p.name === "dl");
    expect(counters).toMatchObject({ received: 3n, delivered: 2n, failed: 1n });
    expect((await bus.jsm().streams.info(STREAMS.deadLetter)).state.messages).toBe(1);
  });

  it(
    `no loss, no duplicates across an endpoint outage (503 for ${OUTAGE_MS / 1000} s, then 429 + Retry-After)`,
    async () => {
      await putRoute("outage", "line-out", "pi");
      const base = Date.UTC(2026, 3, 1);
      // Definitions first, so the outage hits data.
      await bus.publishEvents([event("line-out", "d0", 0, base)]);
      await until(async () => (await valueCount("pi", "line-out")) === 1, { timeoutMs: 10_000, what: "first value" });
      await faults({ status: 503, profile: "pi" });
      const events = ["d0", "d1", "d2"].flatMap((d) => Array.from({ length: 300 }, (_, i) => event("line-out", d, i + 1, base)));
      const publishing = publish(events, 30);
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      await publishing;
      expect(await valueCount("pi", "line-out")).toBe(1);
      const status = await apiClient(sender).getEndpointStatus({ id: "pi" });
      expect(status.status?.lastError).toMatch(/503/);
      expect(status.status!.pendingMessages + status.status!.bufferedEvents).toBeGreaterThan(0n);
      await faults({ status: 429, retryAfterSeconds: 1, count: 3, profile: "pi" });
      await until(async () => (await valueCount("pi", "line-out")) === 901, { timeoutMs: 30_000, what: "all values after the outage" });
      await new Promise((r) => setTimeout(r, 1000));
      const cs = await containers("pi", "line-out");
      expect(cs.map((c) => c.valueCount).sort()).toEqual([300, 300, 301]);
      for (const c of cs) expect(new Set(c.values.map((v) => v.Timestamp)).size).toBe(c.valueCount);
      const [counters] = (await sender.pipelines.counters()).filter((p) => p.name === "outage");
      expect(counters?.failed).toBe(0n);
      // Nothing was dead-lettered for this route.
      await expect(bus.jsm().streams.getMessage(STREAMS.deadLetter, { last_by_subj: deadLetterSubject("omf-outage") })).rejects.toThrow();
    },
    OUTAGE_MS + 60_000,
  );

  it("no loss, no duplicates across a restart of omf-sender mid-batch", async () => {
    await putRoute("restart", "line-rs", "pi", { maxBatchEvents: "200", maxInflightBatches: "2" });
    const base = Date.UTC(2026, 4, 1);
    await faults({ latencyMs: 700, profile: "pi" });
    const events = ["a", "b"].flatMap((d) => Array.from({ length: 500 }, (_, i) => event("line-rs", d, i, base)));
    await publish(events, 25);
    // Stop while sends are in flight and batches are buffered.
    await until(async () => (await valueCount("pi", "line-rs")) > 0, { timeoutMs: 20_000, what: "first values" });
    expect(await valueCount("pi", "line-rs")).toBeLessThan(1000);
    await sender.stop();
    await faults(null);
    sender = await startSender(nats, { ...PIPELINE_ENV, OMF_ENDPOINTS_FILE: endpointsFile }, { redeliveryBackoff: TEST_BACKOFF });
    let landed = 0;
    try {
      await until(
        async () => {
          landed = await valueCount("pi", "line-rs");
          return landed === 1000;
        },
        {
          timeoutMs: 30_000,
          what: "all values after the restart",
        },
      );
    } catch (err) {
      // Seen once in CI (not reproduced locally): say where it stopped, for the next look.
      const counters = (await sender.pipelines.counters()).filter((p) => p.name === "restart");
      throw new Error(
        `${(err as Error).message}: ${landed} of 1000 values landed; route counters ${JSON.stringify(counters, (_, v) => (typeof v === "bigint" ? String(v) : v))}`,
      );
    }
    await new Promise((r) => setTimeout(r, 4000)); // past the ack wait: nothing comes twice
    const cs = await containers("pi", "line-rs");
    expect(cs.map((c) => c.valueCount)).toEqual([500, 500]);
    for (const c of cs) {
      expect(new Set(c.values.map((v) => v.Timestamp)).size).toBe(500);
      expect(c.values.map((v) => v.count)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    }
  }, 60_000);

  // Closing the bus connection loses the ledger's written record with the ack: the new instance finds the batch noted
  // as being sent and asks PI which of its values it holds (delivery.test.ts has the crash between the record and the
  // ack under every OmfCreateMode). PI in its default OmfCreateMode, Insert: a blind re-send would add second values.
  it("no loss, no duplicates when omf-sender dies after a write and before its ledger record and ack (PI Insert: the new instance reads back what was written)", async () => {
    expect(emu.settings().createMode.pi).toBe("insert");
    await putRoute("crash", "line-crash", "pi", { maxBatchEvents: "100", maxInflightBatches: "1" });
    const base = Date.UTC(2026, 7, 1);
    await faults({ latencyMs: 600, profile: "pi" });
    const events = ["a", "b"].flatMap((d) => Array.from({ length: 300 }, (_, i) => event("line-crash", d, i, base)));
    await publish(events, 25);
    await until(async () => (await valueCount("pi", "line-crash")) > 0, { timeoutMs: 20_000, what: "first values" });
    // Acks can no longer reach NATS, while the sends in flight still land: what a crash after the write looks like.
    await sender.bus.connection().close();
    await new Promise((r) => setTimeout(r, 1000));
    await sender.stop();
    const before = await valueCount("pi", "line-crash");
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(600);
    await faults(null);
    sender = await startSender(nats, { ...PIPELINE_ENV, OMF_ENDPOINTS_FILE: endpointsFile }, { redeliveryBackoff: TEST_BACKOFF });
    await until(async () => (await valueCount("pi", "line-crash")) === 600, { timeoutMs: 30_000, what: "all values after the crash" });
    await until(
      async () => ((await sender.pipelines.counters()).find((p) => p.name === "crash")?.delivered ?? 0n) >= BigInt(600 - before),
      { timeoutMs: 10_000, what: "new instance delivered the rest" },
    );
    const [counters] = (await sender.pipelines.counters()).filter((p) => p.name === "crash");
    // What the old instance wrote and never acknowledged was found at PI, not sent again.
    expect(Number(counters?.delivered)).toBeGreaterThanOrEqual(600 - before);
    expect(sender.pipelines.list().find((p) => p.route.id === "crash")?.counters.foundAtEndpoint).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 4000));
    const cs = await containers("pi", "line-crash");
    expect(cs.map((c) => c.valueCount)).toEqual([300, 300]);
  }, 60_000);

  it.each(["eds", "pi"] as const)(
    "definitions the endpoint lost are sent again (%s: container not defined / not found → type + container, data once more)",
    async (scope) => {
      const route = `lost-${scope}`;
      const line = `line-lost-${scope}`;
      await putRoute(route, line, scope);
      const base = Date.UTC(2026, 5, 1);
      await bus.publishEvents([event(line, "d", 0, base)]);
      await until(async () => (await valueCount(scope, line)) === 1, { timeoutMs: 10_000, what: "first value" });
      await fetch(`${emu.url}/_emulator/reset`, { method: "POST" }); // the endpoint forgets everything
      await bus.publishEvents([event(line, "d", 1, base)]);
      await until(async () => (await valueCount(scope, line)) === 1, { timeoutMs: 10_000, what: "value after reset" });
      const [c] = await containers(scope, line);
      expect(c?.values[0]?.count).toBe(1);
      const [counters] = (await sender.pipelines.counters()).filter((p) => p.name === route);
      expect(counters).toMatchObject({ delivered: 2n, failed: 0n });
    },
  );
});
