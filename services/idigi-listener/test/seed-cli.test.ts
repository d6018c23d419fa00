/**
 * The iDigi seed's remaining gaps, through the API and the TCP push protocol against the emulator: Base64 payloads,
 * raw payloads and the seed CLI's create → watch → Ctrl-C delete, ConnectResponse refusals by class, and the v1 ack
 * option read back.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Bus, jsonCodec, KvBucket, routeBucket, serviceStatusBucket } from "@meridian/bus";
import {
  Compression,
  IdigiListenerService,
  PayloadFormat,
  SessionState,
  type WatchEventsRequestSchema,
  type WatchEventsResponse,
} from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type IdigiEmulator, type IdigiEmulatorOptions, startIdigiEmulator } from "@meridian/emulator-idigi";
import {
  codeOf,
  expectExactlyOnce,
  type NatsServerHandle,
  startNatsServer,
  TEST_KEYS,
  testCredential,
  testIdentitiesFile,
  testLogger,
  until,
} from "@meridian/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { idigiListenerConfig } from "../src/config.js";
import { LEASES_BUCKET, SESSIONS_BUCKET } from "../src/pipeline/manager.js";
import { type IdigiListener, startIdigiListener } from "../src/service.js";
import { admin, collect, emulatorSessions } from "./harness.js";

type WatchInit = MessageInitShape<typeof WatchEventsRequestSchema>;

const logger = testLogger();
const FAST_RECONNECT = { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0 };

let nats: NatsServerHandle;
let reader: Bus;
const emulators: IdigiEmulator[] = [];
const listeners: IdigiListener[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  reader = Bus.connect({ servers: nats.url, name: "test-reader", logger });
  await reader.ready;
});

afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.stop()));
  await Promise.all(emulators.splice(0).map((e) => e.stop()));
  for (const name of [SESSIONS_BUCKET, LEASES_BUCKET]) {
    const bucket = new KvBucket(reader, name, jsonCodec());
    for (const key of await bucket.keys()) await bucket.delete(key);
  }
});

afterAll(async () => {
  await reader?.close();
  await nats?.stop();
});

async function emulator(options: IdigiEmulatorOptions = {}): Promise<IdigiEmulator> {
  const e = await startIdigiEmulator({ tls: false, devices: { devices: 3 }, ...options });
  emulators.push(e);
  return e;
}

async function listener(emu: IdigiEmulator, over: Record<string, string> = {}): Promise<IdigiListener> {
  const config = idigiListenerConfig.parse({
    PORT: "0",
    NATS_URL: nats.url,
    IDIGI_URL: emu.httpUrl,
    IDIGI_PUSH_PORT: String(emu.pushPort),
    IDIGI_USERNAME: "emulator",
    IDIGI_PASSWORD: "emulator",
    IDIGI_ALLOW_INSECURE: "true",
    INSTANCE_ID: "test",
    AUTH_IDENTITIES_FILE: testIdentitiesFile(),
    ...over,
  });
  const l = await startIdigiListener(config, logger, {
    installSignalHandlers: false,
    reconnectBackoff: FAST_RECONNECT,
    startWaitMs: 5_000,
    failedRetryMs: 60_000,
    statusIntervalMs: 200,
  });
  listeners.push(l);
  await l.bus.ready;
  return l;
}

const clientFor = (l: IdigiListener, key: string = TEST_KEYS.admin) =>
  createClient(
    IdigiListenerService,
    createConnectTransport({ interceptors: [testCredential(key)], baseUrl: l.service.url, httpVersion: "1.1" }),
  );

/** What an event says, without what names the monitor it came through. */
function content(e: TelemetryEvent) {
  return {
    device: e.source?.device,
    observed: e.observedTime?.seconds,
    observedNanos: e.observedTime?.nanos,
    points: e.points.map((p) => ({ name: p.name, value: p.value, unit: p.unit })),
    attributes: e.attributes,
  };
}

/** Whether the emulator (the platform) still has the monitor. */
async function exists(emu: IdigiEmulator, id: string): Promise<boolean> {
  const res = await fetch(`${emu.httpUrl}/ws/Monitor/${id}.json`, {
    headers: { Authorization: `Basic ${Buffer.from("emulator:emulator").toString("base64")}` },
  });
  return res.status === 200;
}

/** A WatchEvents stream read in the background; `leave()` cancels it as a Ctrl-C would. */
function watch(l: IdigiListener, req: WatchInit, key?: string) {
  const answers: WatchEventsResponse[] = [];
  const ac = new AbortController();
  let error: unknown;
  const done = (async () => {
    try {
      for await (const a of clientFor(l, key).watchEvents(req, { signal: ac.signal })) answers.push(a);
    } catch (err) {
      if (!ac.signal.aborted) error = err;
    }
  })();
  return {
    answers,
    events: () => answers.filter((a) => a.event),
    failure: async () => {
      await done;
      return error;
    },
    async leave() {
      ac.abort();
      await done;
    },
  };
}

describe("Base64 PublishMessage payloads ([I] 'may be compressed & Base64 encoded')", () => {
  const N = 12;

  /** Two monitors (none, zlib) get the same emitted events; both sessions' events as they reach the bus. */
  async function run(options: IdigiEmulatorOptions, firstMonitorId: number) {
    const emu = await emulator({ ...options, firstMonitorId });
    const l = await listener(emu);
    const client = clientFor(l);
    const out: Record<string, TelemetryEvent[]> = {};
    const ids: Record<string, string> = {};
    for (const [name, compression] of [
      ["none", Compression.NONE],
      ["zlib", Compression.ZLIB],
    ] as const) {
      const { monitor, session } = await client.createMonitor({
        topics: ["DataPoint", "DeviceCore"],
        compression,
        batchSize: 5,
        batchDurationSeconds: 0,
        startSession: true,
      });
      expect(session!.state).toBe(SessionState.CONNECTED);
      ids[name] = monitor!.id;
    }
    const since = new Date();
    const buses = Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, collect(reader, id, since)]));
    // Without a monitor id the emulator sends each event to every monitor subscribed: both get the same records.
    await admin(emu, "emit", { topic: "DataPoint", count: N });
    await admin(emu, "emit", { topic: "DeviceCore", count: 2 });
    for (const [name, bus] of Object.entries(buses)) {
      out[name] = await bus.exactly(N + 2);
      expectExactlyOnce(out[name]!, N + 2);
    }
    const blocks = emu.state().monitors.map((m) => ({ id: String(m.id), compressed: m.recentBlocks.some((b) => b.compressed) }));
    return { out, blocks, ids };
  }

  it("Base64 blocks, zlib and not, with the compression byte set or not (both readings), decode to the same events as plain ones", async () => {
    const plain = await run({}, 2001);
    const flagged = await run({ base64Payloads: true }, 3001);
    const unflagged = await run({ base64Payloads: true, base64CompressionByte: false }, 4001);
    // The wire really differed: zlib blocks flagged compressed except where the byte stays 0.
    expect(plain.blocks.find((b) => b.id === plain.ids.zlib)!.compressed).toBe(true);
    expect(flagged.blocks.find((b) => b.id === flagged.ids.zlib)!.compressed).toBe(true);
    expect(unflagged.blocks.find((b) => b.id === unflagged.ids.zlib)!.compressed).toBe(false);
    const reference = plain.out.none!.map(content);
    expect(reference.filter((e) => e.points.length === 1)).toHaveLength(N);
    for (const r of [plain, flagged, unflagged]) {
      expect(r.out.none!.map(content)).toEqual(reference);
      expect(r.out.zlib!.map(content)).toEqual(reference);
    }
    // Nothing was dead-lettered or failed.
    for (const l of listeners) for (const m of l.sessions.monitorCounters()) expect(m.counters.failedBatches).toBe(0);
  });
});

describe("WatchEvents: raw payloads and the seed CLI's create → watch → Ctrl-C delete", () => {
  it("create_monitor + raw_payloads (XML, zlib, batch 1 as the seed's defaults): each record as the platform sent it, then the monitor is deleted when the watcher leaves", async () => {
    const emu = await emulator();
    const l = await listener(emu);
    const w = watch(l, {
      createMonitor: {
        topics: ["DataPoint"],
        format: PayloadFormat.XML,
        compression: Compression.GZIP,
        batchSize: 1,
        batchDurationSeconds: 0,
        replaceExisting: true,
      },
      rawPayloads: true,
      deleteMonitorOnLeave: true,
    });
    await until(() => w.answers.length >= 1, { timeoutMs: 10_000, what: "the first answer: the monitor created" });
    const first = w.answers[0]!;
    expect(first.event).toBeUndefined();
    const id = first.monitor!.id;
    expect(first.session!.state).toBe(SessionState.CONNECTED);
    expect(await exists(emu, id)).toBe(true);
    await admin(emu, "emit", { monitorId: Number(id), count: 3 });
    await until(() => w.events().length >= 3, { timeoutMs: 10_000, what: "3 events watched" });
    for (const a of w.events()) {
      expect(a.rawFormat).toBe(PayloadFormat.XML);
      // A whole block of one Msg, as the seed's callback got it (after inflate): prolog, Document, one Msg.
      expect(a.rawPayload).toMatch(/^<\?xml [^>]*\?><Document><Msg [^>]*>.*<\/Msg><\/Document>$/s);
      expect(a.rawPayload.match(/<Msg /g)).toHaveLength(1);
      expect(a.rawPayload).toContain(`topic="${a.event!.attributes["idigi.topic"]}"`);
      expect(a.rawPayload).toContain(`<streamId>${a.event!.attributes["idigi.stream_id"]}</streamId>`);
      expect(a.event!.raw).toBeUndefined();
    }
    await w.leave();
    await until(async () => !(await exists(emu, id)), { timeoutMs: 5_000, what: "the monitor deleted at the platform" });
    expect((await clientFor(l).listSessions({})).sessions.map((s) => s.monitorId)).not.toContain(id);
    await until(async () => (await emulatorSessions(emu, id)).length === 0, { timeoutMs: 5_000, what: "the push session closed" });
  });

  it("JSON blocks of several Msgs: each record's raw payload is that Msg alone in a Document", async () => {
    const emu = await emulator();
    const l = await listener(emu);
    const w = watch(l, {
      createMonitor: { topics: ["DataPoint"], batchSize: 4, batchDurationSeconds: 0 },
      rawPayloads: true,
      deleteMonitorOnLeave: true,
    });
    await until(() => w.answers.length >= 1, { timeoutMs: 10_000, what: "the monitor created" });
    const id = w.answers[0]!.monitor!.id;
    await admin(emu, "emit", { monitorId: Number(id), count: 8 });
    await until(() => w.events().length >= 8, { timeoutMs: 10_000, what: "8 events watched" });
    for (const a of w.events()) {
      expect(a.rawFormat).toBe(PayloadFormat.JSON);
      const msg = (JSON.parse(a.rawPayload) as { Document: { Msg: Record<string, unknown> } }).Document.Msg;
      expect(Array.isArray(msg)).toBe(false);
      expect(msg["topic"]).toBe(a.event!.attributes["idigi.topic"]);
      expect((msg["DataPoint"] as Record<string, unknown>)["streamId"]).toBe(a.event!.attributes["idigi.stream_id"]);
    }
    await w.leave();
    await until(async () => !(await exists(emu, id)), { timeoutMs: 5_000, what: "the monitor deleted" });
  });

  it("the monitor stays when another watcher watches it or a route names it; without delete_monitor_on_leave it stays too", async () => {
    const emu = await emulator();
    const l = await listener(emu);
    const request = { createMonitor: { topics: ["DataPoint"], batchSize: 1, batchDurationSeconds: 0 }, deleteMonitorOnLeave: true };

    // Another watcher.
    const creator = watch(l, request);
    await until(() => creator.answers.length >= 1, { timeoutMs: 10_000, what: "created" });
    const a = creator.answers[0]!.monitor!.id;
    const other = watch(l, { monitorId: a });
    // The second watch follows events from when its stream is set up, which the test cannot see: emit until both have one.
    await until(
      async () => {
        if (other.events().length >= 1 && creator.events().length >= 1) return true;
        await admin(emu, "emit", { monitorId: Number(a), count: 1 });
        return false;
      },
      { timeoutMs: 20_000, intervalMs: 500, what: "both watching" },
    );
    await creator.leave();
    await new Promise((r) => setTimeout(r, 500));
    expect(await exists(emu, a)).toBe(true);
    // The other watcher did not create it: its leaving deletes nothing either.
    await other.leave();
    await new Promise((r) => setTimeout(r, 300));
    expect(await exists(emu, a)).toBe(true);

    // A route that names it.
    const routed = watch(l, request);
    await until(() => routed.answers.length >= 1, { timeoutMs: 10_000, what: "created" });
    const b = routed.answers[0]!.monitor!.id;
    const routes = routeBucket(reader);
    await routes.put(
      "idigi-to-omf",
      create(RouteSchema, {
        id: "idigi-to-omf",
        source: { platform: Platform.IDIGI, connection: b },
        sink: { platform: Platform.OMF, target: "pi" },
      }),
    );
    try {
      await routed.leave();
      await new Promise((r) => setTimeout(r, 500));
      expect(await exists(emu, b)).toBe(true);
    } finally {
      await routes.delete("idigi-to-omf");
    }

    // Not asked.
    const plain = watch(l, { createMonitor: request.createMonitor });
    await until(() => plain.answers.length >= 1, { timeoutMs: 10_000, what: "created" });
    const c = plain.answers[0]!.monitor!.id;
    await plain.leave();
    await new Promise((r) => setTimeout(r, 300));
    expect(await exists(emu, c)).toBe(true);
  });

  it("what is refused: delete_monitor_on_leave of a monitor the watcher did not create, create_monitor without platform:admin, raw_payloads of a session that keeps none", async () => {
    const emu = await emulator();
    const l = await listener(emu);
    const client = clientFor(l);
    const { monitor } = await client.createMonitor({ topics: ["DataPoint"], startSession: true });
    const first = async (req: WatchInit, key?: string) => {
      for await (const _ of clientFor(l, key).watchEvents(req)) break;
    };
    const r1 = await codeOf(first({ monitorId: monitor!.id, deleteMonitorOnLeave: true }));
    expect(r1.code).toBe(Code.InvalidArgument);
    expect(r1.message).toContain("delete_monitor_on_leave");
    const r2 = await codeOf(first({ createMonitor: { topics: ["DataPoint"] } }, TEST_KEYS["telemetry:read"]));
    expect(r2.code).toBe(Code.PermissionDenied);
    expect((await client.listMonitors({})).monitors).toHaveLength(1);
    const r3 = await codeOf(first({ monitorId: monitor!.id, rawPayloads: true }));
    expect(r3.code).toBe(Code.FailedPrecondition);
    expect(r3.message).toContain("IDIGI_INCLUDE_RAW");
    const r4 = await codeOf(first({ monitorId: "1", createMonitor: { topics: ["DataPoint"] } }));
    expect(r4.code).toBe(Code.InvalidArgument);
    expect(r4.message).toContain("monitor_id");
  });

  it("IDIGI_INCLUDE_RAW=true: raw payloads of any monitor's session", async () => {
    const emu = await emulator();
    const l = await listener(emu, { IDIGI_INCLUDE_RAW: "true" });
    const { monitor } = await clientFor(l).createMonitor({
      topics: ["DeviceCore"],
      batchSize: 1,
      batchDurationSeconds: 0,
      startSession: true,
    });
    const w = watch(l, { monitorId: monitor!.id, rawPayloads: true });
    await new Promise((r) => setTimeout(r, 300));
    await admin(emu, "emit", { monitorId: Number(monitor!.id), count: 2 });
    await until(() => w.events().length >= 2, { timeoutMs: 10_000, what: "2 events" });
    for (const a of w.events()) {
      const msg = (JSON.parse(a.rawPayload) as { Document: { Msg: Record<string, unknown> } }).Document.Msg;
      expect(msg["DeviceCore"]).toBeDefined();
      expect(msg["topic"]).toBe(a.event!.attributes["idigi.topic"]);
    }
    await w.leave();
    expect(await exists(emu, monitor!.id)).toBe(true);
  });
});

describe("ConnectResponse refusals by class", () => {
  it("a refusal with a 4xx code nobody guessed (422) is handled as its class: permission_denied naming the status, not recorded, no reconnect loop", async () => {
    const emu = await emulator();
    const l = await listener(emu);
    const client = clientFor(l);
    const { monitor } = await client.createMonitor({ topics: ["Alarm"] });
    const id = monitor!.id;
    await admin(emu, "faults", { type: "refuseConnect", status: 422, monitorId: Number(id), times: 1000 });
    const r = await codeOf(client.startSession({ monitorId: id }));
    expect(r.code).toBe(Code.PermissionDenied);
    expect(r.message).toContain("status 422");
    expect(r.message).toContain(`monitor ${id}`);
    expect(await l.sessions.bucket.get(id)).toBeUndefined();
    // Final: the listener does not try again on its own.
    const before = emu.state().monitors.find((m) => String(m.id) === id);
    await new Promise((res) => setTimeout(res, 700));
    expect(emu.state().monitors.find((m) => String(m.id) === id)).toEqual(before);
    expect(l.sessions.has(id)).toBe(false);
    // A 5xx is the other class: retried until the platform takes the session.
    await admin(emu, "faults", undefined, "DELETE");
    await admin(emu, "faults", { type: "refuseConnect", status: 599, monitorId: Number(id), times: 2 });
    const started = await client.startSession({ monitorId: id });
    expect([SessionState.CONNECTED, SessionState.DISCONNECTED, SessionState.CONNECTING]).toContain(started.session!.state);
    await until(async () => (await client.listSessions({})).sessions.find((s) => s.monitorId === id)?.state === SessionState.CONNECTED, {
      timeoutMs: 5_000,
      what: "connected after two 599 refusals",
    });
  });
});

describe("the v1 API's ack option, read back", () => {
  it("not confirmed (the v1 API ignores ack_option): warned in CreateMonitor, ListSessions and the monitor's status line", async () => {
    const emu = await emulator({ v1AckOption: "unknown" });
    const l = await listener(emu, { IDIGI_API: "v1" });
    const client = clientFor(l);
    const res = await client.createMonitor({ topics: ["DataPoint"], batchSize: 1, batchDurationSeconds: 0, startSession: true });
    expect(res.warnings).toHaveLength(1);
    expect(res.warnings[0]).toContain("did not confirm explicit acks");
    const id = res.monitor!.id;
    const listed = (await client.listSessions({})).sessions.find((s) => s.monitorId === id)!;
    expect(listed.warnings).toEqual(res.warnings);
    const status = serviceStatusBucket(reader);
    await until(
      async () => (await status.get("idigi-listener.test"))?.pipelines.find((p) => p.name === `monitor-${id}`)?.lastError !== undefined,
      {
        timeoutMs: 5_000,
        what: "the monitor's status",
      },
    );
    expect((await status.get("idigi-listener.test"))!.pipelines.find((p) => p.name === `monitor-${id}`)!.lastError).toContain(
      "did not confirm explicit acks",
    );
  });

  it("confirmed (the v1 API keeps ack_option): no warning", async () => {
    const emu = await emulator();
    const l = await listener(emu, { IDIGI_API: "v1" });
    const client = clientFor(l);
    const res = await client.createMonitor({ topics: ["DataPoint"], startSession: true });
    expect(res.warnings).toEqual([]);
    expect(res.monitor!.ackOption).toBe(1);
    expect((await client.listSessions({})).sessions.find((s) => s.monitorId === res.monitor!.id)!.warnings).toEqual([]);
  });

  it("asked off: warned on the legacy API too (documented, and off)", async () => {
    const emu = await emulator();
    const l = await listener(emu);
    const res = await clientFor(l).createMonitor({ topics: ["DataPoint"], ackOption: 2 });
    expect(res.warnings[0]).toContain("acks are off");
  });
});
