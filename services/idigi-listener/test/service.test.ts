import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { Bus, jsonCodec, KvBucket, serviceStatusBucket } from "@meridian/bus";
import {
  Compression,
  IdigiListenerService,
  PayloadFormat,
  SessionState,
} from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { Platform, type TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type IdigiEmulator, startIdigiEmulator } from "@meridian/emulator-idigi";
import {
  codeOf,
  expectExactlyOnce,
  freePort,
  type NatsServerHandle,
  startNatsServer,
  testCredential,
  testIdentitiesFile,
  testLogger,
  until,
} from "@meridian/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { idigiListenerConfig } from "../src/config.js";
import { LEASES_BUCKET, SESSIONS_BUCKET } from "../src/pipeline/manager.js";
import { type IdigiListener, startIdigiListener } from "../src/service.js";
import { admin, collect, monitorState } from "./harness.js";

const logger = testLogger();
const FAST_RECONNECT = { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0 };

describe("idigi-listener against the emulator and a real nats-server", () => {
  let nats: NatsServerHandle;
  let emu: IdigiEmulator;
  let reader: Bus;
  const listeners: IdigiListener[] = [];

  const config = (over: Record<string, string> = {}) =>
    idigiListenerConfig.parse({
      PORT: "0",
      NATS_URL: nats.url,
      IDIGI_URL: emu.httpUrl,
      IDIGI_PUSH_PORT: String(emu.pushPort),
      IDIGI_USERNAME: "emulator",
      IDIGI_PASSWORD: "emulator",
      // The emulator's REST API is plain http (and most tests push without TLS).
      IDIGI_ALLOW_INSECURE: "true",
      INSTANCE_ID: "test",
      AUTH_IDENTITIES_FILE: testIdentitiesFile(),
      ...over,
    });

  async function startListener(over: Record<string, string> = {}, leaseTtlMs = 3_000): Promise<IdigiListener> {
    const l = await startIdigiListener(config(over), logger, {
      installSignalHandlers: false,
      reconnectBackoff: FAST_RECONNECT,
      startWaitMs: 5_000,
      leaseTtlMs,
      failedRetryMs: 500,
      statusIntervalMs: 200,
    });
    listeners.push(l);
    await l.bus.ready;
    return l;
  }

  const clientFor = (l: IdigiListener) =>
    createClient(
      IdigiListenerService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: l.service.url, httpVersion: "1.1" }),
    );

  beforeAll(async () => {
    nats = await startNatsServer();
    emu = await startIdigiEmulator({ devices: { devices: 3 } });
    reader = Bus.connect({ servers: nats.url, name: "test-reader", logger });
    await reader.ready;
  });

  afterEach(async () => {
    await Promise.all(listeners.splice(0).map((l) => l.stop()));
    await admin(emu, "faults", undefined, "DELETE");
    // Each test starts with no recorded sessions, so a new listener resumes only what its test started.
    for (const name of [SESSIONS_BUCKET, LEASES_BUCKET]) {
      const bucket = new KvBucket(reader, name, jsonCodec());
      for (const key of await bucket.keys()) await bucket.delete(key);
    }
  });

  afterAll(async () => {
    await reader?.close();
    await emu?.stop();
    await nats?.stop();
  });

  it("CreateMonitor with start_session, N emitted DataPoints reach the bus exactly once, typed, then are acked", async () => {
    const l = await startListener();
    const client = clientFor(l);
    const since = new Date();
    const { monitor, session } = await client.createMonitor({
      topics: ["DataPoint"],
      format: PayloadFormat.JSON,
      compression: Compression.ZLIB,
      batchSize: 10,
      batchDurationSeconds: 0,
      startSession: true,
    });
    expect(monitor!.id).toMatch(/^\d+$/);
    expect(monitor!.topics).toEqual(["DataPoint"]);
    expect(session!.state).toBe(SessionState.CONNECTED);
    expect(session!.connection).toMatchObject({ host: "127.0.0.1", port: emu.pushPort, tls: false });

    const bus = collect(reader, monitor!.id, since);
    const N = 250;
    await admin(emu, "emit", { monitorId: Number(monitor!.id), count: N });
    const events = await bus.exactly(N);
    expectExactlyOnce(events, N);
    const e = events[0]!;
    expect(e.source).toMatchObject({ platform: Platform.IDIGI, connection: monitor!.id });
    expect(e.source!.device).toMatch(/^00000000-00000000-00409DFF-FF/);
    expect(e.points[0]!.value.case).toBe("doubleValue");
    expect(["temperature", "humidity", "pressure"]).toContain(e.points[0]!.name);

    await until(async () => (await monitorState(emu, monitor!.id)).eventsAcked === N, { timeoutMs: 10_000, what: "all blocks acked" });
    const { sessions } = await client.listSessions({});
    const s = sessions.find((x) => x.monitorId === monitor!.id)!;
    expect(s.state).toBe(SessionState.CONNECTED);
    expect(s.receivedEvents).toBe(BigInt(N));
    expect(s.deliveredEvents).toBe(BigInt(N));
    expect(s.instance).toBe("test");
    // The session is recorded without secrets.
    const kv = await l.sessions.bucket.get(monitor!.id);
    expect(kv).toMatchObject({ monitorId: monitor!.id, connection: { host: "127.0.0.1", port: emu.pushPort, tls: false } });
    expect(JSON.stringify(kv)).not.toContain("emulator");
    // Per-monitor counters in the service status the gateway aggregates.
    const status = serviceStatusBucket(reader);
    await until(
      async () =>
        (await status.get("idigi-listener.test"))?.pipelines.find((p) => p.name === `monitor-${monitor!.id}`)?.delivered === BigInt(N),
      { timeoutMs: 5_000, what: "status report with the pipeline counters" },
    );
    const p = (await status.get("idigi-listener.test"))!.pipelines.find((x) => x.name === `monitor-${monitor!.id}`)!;
    expect(p).toMatchObject({ received: BigInt(N), delivered: BigInt(N), skipped: 0n, failed: 0n, lastError: "" });
  });

  it("a connection dropped after a block is sent and before it is acked: the replayed block is not published twice", async () => {
    const l = await startListener();
    const client = clientFor(l);
    const since = new Date();
    const { monitor } = await client.createMonitor({
      topics: ["DataPoint", "DeviceCore"],
      batchSize: 10,
      batchDurationSeconds: 0,
      startSession: true,
    });
    const id = monitor!.id;
    const bus = collect(reader, id, since);
    await admin(emu, "faults", { type: "dropAfterBatch", monitorId: Number(id), times: 2 });
    const N = 60;
    await admin(emu, "emit", { monitorId: Number(id), count: N });
    const events = await bus.exactly(N);
    expectExactlyOnce(events, N);
    const st = await monitorState(emu, id);
    expect(st.eventsReplayed).toBeGreaterThan(0);
    await until(async () => (await monitorState(emu, id)).eventsAcked >= N, { timeoutMs: 10_000, what: "all events acked after replay" });
    const { sessions } = await client.listSessions({});
    const s = sessions.find((x) => x.monitorId === id)!;
    expect(s.connections).toBeGreaterThanOrEqual(3);
    // Replayed events were received again and recognised, not delivered again; DeviceCore records (no point) are skipped.
    const pointless = events.filter((e) => e.points.length === 0).length;
    expect(s.deliveredEvents).toBe(BigInt(N - pointless));
    expect(Number(s.duplicateEvents)).toBeGreaterThan(0);
    // DeviceCore events went to the bus as attribute events.
    expect(events.some((e) => e.attributes["idigi.resource"] === "DeviceCore" && e.points.length === 0)).toBe(true);
  });

  it("records that map to no point (DeviceCore) are counted as skipped, not delivered, in the status report", async () => {
    const l = await startListener();
    const client = clientFor(l);
    const since = new Date();
    const { monitor } = await client.createMonitor({
      topics: ["DataPoint", "DeviceCore"],
      batchSize: 10,
      batchDurationSeconds: 0,
      startSession: true,
    });
    const id = monitor!.id;
    const bus = collect(reader, id, since);
    const N = 40;
    await admin(emu, "emit", { monitorId: Number(id), count: N });
    const events = await bus.exactly(N);
    const pointless = events.filter((e) => e.points.length === 0).length;
    expect(pointless).toBeGreaterThan(0);
    expect(pointless).toBeLessThan(N);
    const status = serviceStatusBucket(reader);
    const pipeline = async () => (await status.get("idigi-listener.test"))?.pipelines.find((p) => p.name === `monitor-${id}`);
    await until(async () => (await pipeline())?.received === BigInt(N), { timeoutMs: 5_000, what: "status report of every event" });
    expect(await pipeline()).toMatchObject({
      received: BigInt(N),
      delivered: BigInt(N - pointless),
      skipped: BigInt(pointless),
      failed: 0n,
    });
    // ListSessions adds up the same way.
    const session = (await client.listSessions({})).sessions.find((s) => s.monitorId === id);
    expect(session).toMatchObject({ receivedEvents: BigInt(N), deliveredEvents: BigInt(N - pointless), skippedEvents: BigInt(pointless) });
  });

  it("a restarted listener resumes the session from KV; a block published but never acked before the restart is replayed and stored once", async () => {
    const first = await startListener();
    const { monitor } = await clientFor(first).createMonitor({
      topics: ["DataPoint"],
      format: PayloadFormat.XML,
      compression: Compression.NONE,
      batchSize: 5,
      batchDurationSeconds: 0,
      startSession: true,
    });
    const id = monitor!.id;
    const since = new Date();
    const bus = collect(reader, id, since);
    // The first block is sent, then the connection drops before its ack, and reconnects are refused (503, retryable):
    // the first listener has published the block but the platform still holds it as unacked.
    await admin(emu, "faults", { type: "dropAfterBatch", monitorId: Number(id), times: 1 });
    await admin(emu, "faults", { type: "refuseConnect", status: 503, monitorId: Number(id), times: 1000 });
    await admin(emu, "emit", { monitorId: Number(id), count: 20 });
    await until(() => bus.items.length >= 5, { timeoutMs: 10_000, what: "first block on the bus" });
    await first.stop();
    listeners.splice(listeners.indexOf(first), 1);
    expect((await monitorState(emu, id)).status).toBe("SUSPENDED");
    // Down: the monitor records what happens meanwhile.
    await admin(emu, "emit", { monitorId: Number(id), count: 30 });
    await admin(emu, "faults", undefined, "DELETE");

    const second = await startListener();
    await until(() => second.sessions.has(id), { timeoutMs: 10_000, what: "session resumed" });
    const events = await bus.exactly(50);
    expectExactlyOnce(events, 50);
    await until(async () => (await monitorState(emu, id)).eventsAcked === 50, {
      timeoutMs: 10_000,
      what: "all acked by the second listener",
    });
    expect((await monitorState(emu, id)).eventsReplayed).toBeGreaterThanOrEqual(50);
    const { sessions } = await clientFor(second).listSessions({});
    const s = sessions.find((x) => x.monitorId === id)!;
    expect(s.state).toBe(SessionState.CONNECTED);
    expect(s.receivedEvents).toBe(50n);
  });

  it("two instances: one runs the session (lease in KV), the other takes it over when the first stops, exactly once", async () => {
    const a = await startListener({ INSTANCE_ID: "inst-a" }, 1_500);
    const b = await startListener({ INSTANCE_ID: "inst-b" }, 1_500);
    const { monitor, session } = await clientFor(a).createMonitor({
      topics: ["DataPoint"],
      batchSize: 10,
      batchDurationSeconds: 0,
      startSession: true,
    });
    const id = monitor!.id;
    expect(session!.instance).toBe("inst-a");
    // b sees it recorded, running on a; asking b to start it is answered with where it runs.
    expect((await clientFor(b).startSession({ monitorId: id })).session).toMatchObject({
      state: SessionState.NOT_RUNNING,
      instance: "inst-a",
    });
    await new Promise((r) => setTimeout(r, 1_200));
    expect(b.sessions.has(id)).toBe(false);
    const listed = (await clientFor(b).listSessions({})).sessions.find((s) => s.monitorId === id)!;
    expect(listed).toMatchObject({ state: SessionState.NOT_RUNNING, instance: "inst-a" });

    const bus = collect(reader, id, new Date());
    await admin(emu, "emit", { monitorId: Number(id), count: 20 });
    await until(() => bus.items.length >= 20, { timeoutMs: 10_000, what: "20 events via a" });
    await a.stop();
    listeners.splice(listeners.indexOf(a), 1);
    await until(() => b.sessions.has(id), { timeoutMs: 5_000, what: "b took the session over" });
    await admin(emu, "emit", { monitorId: Number(id), count: 30 });
    expectExactlyOnce(await bus.exactly(50), 50);
    await until(
      async () => (await clientFor(b).listSessions({})).sessions.find((s) => s.monitorId === id)?.state === SessionState.CONNECTED,
      { timeoutMs: 5_000, what: "connected on b" },
    );
    expect((await clientFor(b).listSessions({})).sessions.find((s) => s.monitorId === id)?.instance).toBe("inst-b");

    // StopSession on an instance that does not run it: the one that does stops at its next lease renewal.
    const c = await startListener({ INSTANCE_ID: "inst-c" }, 1_500);
    await clientFor(c).stopSession({ monitorId: id });
    await until(() => !b.sessions.has(id), { timeoutMs: 5_000, what: "b stopped the session" });
    await until(async () => (await b.sessions.leases.get(id)) === undefined, { timeoutMs: 5_000, what: "lease released" });
  });

  it("TLS push session verified against the configured CA; without it the certificate is refused and nothing connects", async () => {
    const tls = { IDIGI_PUSH_TLS: "true", IDIGI_PUSH_PORT: String(emu.pushTlsPort) };
    const l = await startListener({ ...tls, IDIGI_CA_FILE: emu.caPemPath! });
    const since = new Date();
    const { monitor, session } = await clientFor(l).createMonitor({
      topics: ["DataPoint"],
      batchSize: 5,
      batchDurationSeconds: 0,
      startSession: true,
    });
    expect(session).toMatchObject({
      state: SessionState.CONNECTED,
      connection: { tls: true, verifyCertificate: true, port: emu.pushTlsPort },
    });
    const bus = collect(reader, monitor!.id, since);
    await admin(emu, "emit", { monitorId: Number(monitor!.id), count: 12 });
    expectExactlyOnce(await bus.exactly(12), 12);
    await l.stop();
    listeners.splice(listeners.indexOf(l), 1);

    const untrusting = await startIdigiListener(config(tls), logger, {
      installSignalHandlers: false,
      startWaitMs: 1_500,
      reconnectBackoff: FAST_RECONNECT,
    });
    listeners.push(untrusting);
    await untrusting.bus.ready;
    const m2 = (await clientFor(untrusting).createMonitor({ topics: ["DataPoint"], startSession: true })).session!;
    expect(m2.state).toBe(SessionState.DISCONNECTED);
    expect(m2.lastError).toMatch(/certificate/i);
  });

  it("a block that can never be published (over the bus's max payload) is dead-lettered and acked; the rest flows", async () => {
    const l = await startListener({ IDIGI_INCLUDE_RAW: "true" });
    const client = clientFor(l);
    const { monitor } = await client.createMonitor({ topics: ["FileData"], batchSize: 1, batchDurationSeconds: 0, startSession: true });
    const id = monitor!.id;
    const since = new Date();
    const bus = collect(reader, id, since);
    const dead = new Promise<{ detail?: string; reason?: string; monitor?: string; bytes: number }>((resolve) => {
      const sub = reader.connection().subscribe("deadletter.v1.idigi-listener", { max: 1 });
      void (async () => {
        for await (const m of sub)
          resolve({
            detail: m.headers?.get("Meridian-Dead-Letter-Detail"),
            reason: m.headers?.get("Meridian-Dead-Letter-Reason"),
            monitor: m.headers?.get("Meridian-Idigi-Monitor"),
            bytes: m.data.length,
          });
      })();
    });
    // Published as is (no JetStream store needed to see it): a core subscription gets the dead letter too.
    // Too big for the admin API's body limit: emitted in-process.
    emu.emit({ monitorId: Number(id), count: 1, record: { id: { fdName: "big.bin", fdPath: "/db/x/" }, fdData: "A".repeat(1_200_000) } });
    await admin(emu, "emit", { monitorId: Number(id), count: 3 });
    const letter = await dead;
    expect(letter.detail).toMatch(/payload/i);
    // The block as received, with why and from which monitor, for a replay.
    expect(letter.reason).toBe("iDigi block could not be published");
    expect(letter.monitor).toBe(id);
    expect(letter.bytes).toBeGreaterThan(0);
    const events = await bus.exactly(3);
    expectExactlyOnce(events, 3);
    await until(async () => (await monitorState(emu, id)).eventsAcked === 4, { timeoutMs: 10_000, what: "the big block acked too" });
    const s = (await client.listSessions({})).sessions.find((x) => x.monitorId === id)!;
    expect(s.failedBatches).toBe(1n);
    expect(s.lastError).toMatch(/payload/i);
  });

  it("IDIGI_MONITORS_FILE: monitors are created (or reused by topic list) and listened to at start; a bad file stops the start", async () => {
    const dir = mkdtempSync(join(tmpdir(), "idigi-monitors-"));
    const file = join(dir, "monitors.json");
    writeFileSync(
      file,
      JSON.stringify({ monitors: [{ topics: ["AlarmStatus"], batchSize: 5, batchDurationSeconds: 0, format: "PAYLOAD_FORMAT_XML" }] }),
    );
    const first = await startListener({ IDIGI_MONITORS_FILE: file });
    let id = "";
    await until(
      async () => {
        const m = (await clientFor(first).listMonitors({ topics: ["AlarmStatus"] })).monitors[0];
        id = m?.id ?? "";
        return Boolean(m) && first.sessions.has(id);
      },
      { timeoutMs: 10_000, what: "monitor from the file listened to" },
    );
    const bus = collect(reader, id, new Date());
    await admin(emu, "emit", { monitorId: Number(id), count: 10 });
    await until(() => bus.items.length >= 10, { timeoutMs: 10_000, what: "10 events" });
    await first.stop();
    listeners.splice(listeners.indexOf(first), 1);

    const second = await startListener({ IDIGI_MONITORS_FILE: file });
    await until(() => second.sessions.has(id), { timeoutMs: 10_000, what: "same monitor listened to again" });
    await admin(emu, "emit", { monitorId: Number(id), count: 5 });
    expectExactlyOnce(await bus.exactly(15), 15);
    expect((await clientFor(second).listMonitors({ topics: ["AlarmStatus"] })).monitors).toHaveLength(1);

    writeFileSync(file, JSON.stringify({ monitors: [{ topics: ["AlarmStatus"] }, { topics: [], batchSize: 0 }] }));
    await expect(startIdigiListener(config({ IDIGI_MONITORS_FILE: file }), logger, { installSignalHandlers: false })).rejects.toThrow(
      /IDIGI_MONITORS_FILE: .*monitors\[1\]: .*topics: required; batch_size: must be between 1 and 65535/,
    );
  });

  it("the v1 monitor API (IDIGI_API=v1) works the same: create, session, events exactly once, delete", async () => {
    const l = await startListener({ IDIGI_API: "v1" });
    const client = clientFor(l);
    const { monitor, session } = await client.createMonitor({
      topics: ["DataStream"],
      batchSize: 4,
      batchDurationSeconds: 0,
      startSession: true,
    });
    expect(session!.state).toBe(SessionState.CONNECTED);
    expect(monitor).toMatchObject({ topics: ["DataStream"], transport: "tcp" });
    const bus = collect(reader, monitor!.id, new Date());
    await admin(emu, "emit", { monitorId: Number(monitor!.id), count: 9 });
    const events = await bus.exactly(9);
    expectExactlyOnce(events, 9);
    expect(events[0]!.points[0]).toMatchObject({ value: { case: "doubleValue" } });
    expect((await client.listMonitors({})).monitors.some((m) => m.id === monitor!.id && m.autoReplay)).toBe(true);
    await client.deleteMonitor({ monitorId: monitor!.id });
    expect((await codeOf(client.startSession({ monitorId: monitor!.id }))).code).toBe(Code.NotFound);
  });

  it("a resumed session the platform refuses (DISABLED monitor) is FAILED with the reason, and retried until it connects", async () => {
    const first = await startListener();
    const { monitor } = await clientFor(first).createMonitor({ topics: ["Job"], startSession: true });
    const id = monitor!.id;
    await first.stop();
    listeners.splice(listeners.indexOf(first), 1);
    await admin(emu, `monitors/${id}/disable`, {});

    const second = await startListener();
    const stateOf = async () => (await clientFor(second).listSessions({})).sessions.find((s) => s.monitorId === id);
    await until(async () => (await stateOf())?.state === SessionState.FAILED, { timeoutMs: 10_000, what: "session failed" });
    expect((await stateOf())?.lastError).toMatch(/status 400/);
    // Re-enabled at the platform (v1 reset): the next retry connects.
    const auth = `Basic ${Buffer.from("emulator:emulator").toString("base64")}`;
    const res = await fetch(`${emu.httpUrl}/ws/v1/monitors/inventory/${id}/reset`, { method: "POST", headers: { authorization: auth } });
    expect(res.status).toBe(200);
    await until(async () => (await stateOf())?.state === SessionState.CONNECTED, {
      timeoutMs: 10_000,
      what: "session connected after the reset",
    });
  });

  it("while the bus is down nothing is acked; once it is back every event is stored exactly once", async () => {
    // A nats-server of our own, so it can be down for a while and come back with its store.
    const port = await freePort();
    const own = await startNatsServer();
    await own.stop(true);
    const launch = () => {
      const p = spawn(process.env.NATS_SERVER_BIN ?? "nats-server", ["-js", "-sd", own.storeDir, "-a", "127.0.0.1", "-p", String(port)], {
        stdio: "ignore",
      });
      return p;
    };
    let server = launch();
    const url = `nats://127.0.0.1:${port}`;
    const l = await startListener({ NATS_URL: url });
    const ownReader = Bus.connect({ servers: url, name: "own-reader", logger });
    try {
      await ownReader.ready;
      const { monitor } = await clientFor(l).createMonitor({
        topics: ["DataPoint"],
        batchSize: 10,
        batchDurationSeconds: 0,
        startSession: true,
      });
      const id = monitor!.id;
      const before = await monitorState(emu, id);
      server.kill("SIGKILL");
      await until(() => !l.bus.connected, { timeoutMs: 10_000, what: "bus disconnected" });
      await admin(emu, "emit", { monitorId: Number(id), count: 40 });
      await until(async () => (await monitorState(emu, id)).blocksSent > before.blocksSent, {
        timeoutMs: 5_000,
        what: "blocks sent while the bus is down",
      });
      await new Promise((r) => setTimeout(r, 1000));
      const during = await monitorState(emu, id);
      expect(during.eventsAcked).toBe(before.eventsAcked);
      expect(during.unackedBlocks).toBeGreaterThan(0);

      server = launch();
      const since = new Date(Date.now() - 60_000);
      await until(() => ownReader.connected && l.bus.connected, { timeoutMs: 15_000, what: "bus back" });
      const bus = collect(ownReader, id, since);
      const events = await bus.exactly(40);
      expectExactlyOnce(events, 40);
      await until(async () => (await monitorState(emu, id)).eventsAcked === 40, {
        timeoutMs: 10_000,
        what: "acked after the bus came back",
      });
    } finally {
      await l.stop();
      listeners.splice(listeners.indexOf(l), 1);
      await ownReader.close();
      server.kill("SIGKILL");
    }
  });

  it("several sessions at once (one per monitor), each monitor's events on its own connection; WatchEvents streams them", async () => {
    const l = await startListener();
    const client = clientFor(l);
    const a = (await client.createMonitor({ topics: ["DataPoint"], batchSize: 7, batchDurationSeconds: 0, startSession: true })).monitor!;
    const b = (await client.createMonitor({ topics: ["DeviceCore"], batchSize: 3, batchDurationSeconds: 0, startSession: true })).monitor!;
    const grpc = createClient(IdigiListenerService, createGrpcTransport({ interceptors: [testCredential()], baseUrl: l.service.url }));
    const ac = new AbortController();
    const watched: TelemetryEvent[] = [];
    const watching = (async () => {
      try {
        for await (const r of grpc.watchEvents({ monitorId: b.id }, { signal: ac.signal })) watched.push(r.event!);
      } catch {
        /* aborted */
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const since = new Date();
    const busA = collect(reader, a.id, since);
    const busB = collect(reader, b.id, since);
    await Promise.all([
      admin(emu, "emit", { monitorId: Number(a.id), count: 70 }),
      admin(emu, "emit", { monitorId: Number(b.id), count: 30 }),
    ]);
    expectExactlyOnce(await busA.exactly(70), 70);
    expectExactlyOnce(await busB.exactly(30), 30);
    await until(() => watched.length >= 30, { timeoutMs: 10_000, what: "watched events" });
    ac.abort();
    await watching;
    expect(watched.every((e) => e.source?.connection === b.id && e.attributes["idigi.resource"] === "DeviceCore")).toBe(true);
    const { sessions } = await client.listSessions({});
    expect(sessions.filter((s) => [a.id, b.id].includes(s.monitorId)).map((s) => s.state)).toEqual([
      SessionState.CONNECTED,
      SessionState.CONNECTED,
    ]);
  });

  it("StopSession forgets the session; DeleteMonitor removes the monitor; ListMonitors lists what the platform has", async () => {
    const l = await startListener();
    const client = clientFor(l);
    const m = (await client.createMonitor({ topics: ["XbeeCore"], startSession: true })).monitor!;
    expect((await client.listMonitors({ topics: ["XbeeCore"] })).monitors.map((x) => x.id)).toEqual([m.id]);
    await client.stopSession({ monitorId: m.id });
    expect(await l.sessions.bucket.get(m.id)).toBeUndefined();
    expect((await client.listSessions({})).sessions.find((s) => s.monitorId === m.id)).toBeUndefined();
    expect((await codeOf(client.stopSession({ monitorId: m.id }))).code).toBe(Code.NotFound);
    await client.startSession({ monitorId: m.id });
    await client.deleteMonitor({ monitorId: m.id });
    expect(await l.sessions.bucket.get(m.id)).toBeUndefined();
    expect((await client.listMonitors({ topics: ["XbeeCore"] })).monitors).toEqual([]);
    expect((await codeOf(client.deleteMonitor({ monitorId: m.id }))).code).toBe(Code.NotFound);
    // replace_existing: the seed's get → delete → create.
    const first = (await client.createMonitor({ topics: ["Job"] })).monitor!;
    const second = (await client.createMonitor({ topics: ["Job"], replaceExisting: true })).monitor!;
    expect((await client.listMonitors({ topics: ["Job"] })).monitors.map((x) => x.id)).toEqual([second.id]);
    expect(second.id).not.toBe(first.id);
  });

  it("a monitor beyond IDIGI_MAX_MONITORS is resource_exhausted naming the setting, and nothing is created", async () => {
    const probe = await startListener();
    const before = (await clientFor(probe).listMonitors({})).monitors.length;
    const l = await startListener({ IDIGI_MAX_MONITORS: String(before + 1) });
    const client = clientFor(l);
    const { monitor } = await client.createMonitor({ topics: ["DataPoint/quota-1"], batchSize: 1 });
    const refused = await codeOf(client.createMonitor({ topics: ["DataPoint/quota-2"], batchSize: 1 }));
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.message).toContain(`IDIGI_MAX_MONITORS=${before + 1}`);
    expect((await client.listMonitors({})).monitors).toHaveLength(before + 1);
    await client.deleteMonitor({ monitorId: monitor!.id });
  });

  describe("bad input and platform errors", () => {
    let l: IdigiListener;
    let client: ReturnType<typeof clientFor>;
    beforeAll(async () => {
      l = await startIdigiListener(config(), logger, {
        installSignalHandlers: false,
        reconnectBackoff: FAST_RECONNECT,
        startWaitMs: 5_000,
      });
      await l.bus.ready;
      client = clientFor(l);
    });
    afterAll(async () => {
      await l.stop();
    });

    it.each([
      [{ topics: [] }, "topics: required"],
      [{ topics: ["DataPoint,DeviceCore"] }, "topics[0]: one topic per entry"],
      [{ topics: ["DataPoint", ""] }, "topics[1]: must not be empty"],
      [{ topics: ["Data Point"] }, "topics[0]: must not contain whitespace"],
      [{ topics: ["DataPoint", "DataPoint"] }, "topics[1]: duplicate topic"],
      [{ topics: ["[U]"] }, "topics[0]: must look like"],
      [{ topics: ["DataPoint"], batchSize: 0 }, "batch_size: must be between 1 and 65535"],
      [{ topics: ["DataPoint"], batchSize: 70_000 }, "batch_size: must be between 1 and 65535"],
      [{ topics: ["DataPoint"], batchDurationSeconds: 90_000 }, "batch_duration_seconds: must be at most 86400"],
      [{ topics: ["DataPoint"], format: 7 as PayloadFormat }, "format: unknown value 7"],
      [{ topics: ["DataPoint"], compression: 9 as Compression }, "compression: unknown value 9"],
      [{ topics: ["DataPoint"], ackOption: 5 }, "ack_option: unknown value 5"],
    ])("CreateMonitor %j → invalid_argument naming the field", async (req, message) => {
      const r = await codeOf(client.createMonitor(req));
      expect(r.code).toBe(Code.InvalidArgument);
      expect(r.message).toContain(message);
    });

    it("monitor ids: missing or not decimal → invalid_argument; unknown → not_found", async () => {
      for (const call of [
        (monitorId: string) => client.startSession({ monitorId }),
        (monitorId: string) => client.stopSession({ monitorId }),
        (monitorId: string) => client.deleteMonitor({ monitorId }),
      ]) {
        expect(await codeOf(call(""))).toMatchObject({
          code: Code.InvalidArgument,
          message: expect.stringContaining("monitor_id: required"),
        });
        expect(await codeOf(call("12a"))).toMatchObject({
          code: Code.InvalidArgument,
          message: expect.stringContaining("monitor_id: must be"),
        });
        expect((await codeOf(call("99999999"))).code).toBe(Code.NotFound);
      }
      const watch = async (monitorId: string) => {
        for await (const _ of client.watchEvents({ monitorId })) break;
      };
      expect((await codeOf(watch(""))).code).toBe(Code.InvalidArgument);
      expect((await codeOf(watch("99999999"))).code).toBe(Code.NotFound);
      expect((await codeOf(client.listMonitors({ topics: ["a,b"] }))).message).toContain("topics[0]");
    });

    it("bad credentials → unauthenticated with a message naming the settings, never the password", async () => {
      const bad = await startIdigiListener(config({ IDIGI_PASSWORD: "s3cret-wrong" }), logger, { installSignalHandlers: false });
      try {
        const c = clientFor(bad);
        for (const p of [c.createMonitor({ topics: ["DataPoint"] }), c.listMonitors({}), c.startSession({ monitorId: "1001" })]) {
          const r = await codeOf(p);
          expect(r.code).toBe(Code.Unauthenticated);
          expect(r.message).toContain("IDIGI_USERNAME / IDIGI_PASSWORD");
          expect(r.message).not.toContain("s3cret-wrong");
        }
      } finally {
        await bad.stop();
      }
    });

    it("the push server refusing the session (403) → permission_denied, and the session is not recorded", async () => {
      const m = (await client.createMonitor({ topics: ["Alarm"] })).monitor!;
      await admin(emu, "faults", { type: "refuseConnect", status: 403, monitorId: Number(m.id), times: 1 });
      const r = await codeOf(client.startSession({ monitorId: m.id }));
      expect(r.code).toBe(Code.PermissionDenied);
      expect(r.message).toContain(`monitor ${m.id}`);
      expect(await l.sessions.bucket.get(m.id)).toBeUndefined();
      // Once the platform accepts again the session starts.
      expect((await client.startSession({ monitorId: m.id })).session?.state).toBe(SessionState.CONNECTED);
      await client.deleteMonitor({ monitorId: m.id });
    });

    it("platform unreachable → unavailable", async () => {
      const port = await freePort();
      const down = await startIdigiListener(config({ IDIGI_URL: `http://127.0.0.1:${port}` }), logger, { installSignalHandlers: false });
      try {
        const c = clientFor(down);
        expect((await codeOf(c.listMonitors({}))).code).toBe(Code.Unavailable);
        expect((await codeOf(c.startSession({ monitorId: "1001" }))).code).toBe(Code.Unavailable);
      } finally {
        await down.stop();
      }
    });
  });
});
