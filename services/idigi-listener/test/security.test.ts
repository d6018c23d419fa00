import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Code, createClient } from "@connectrpc/connect";
import { Bus, jsonCodec, KvBucket } from "@meridian/bus";
import {
  ConnectionSettingsSchema,
  IdigiListenerService,
  SessionState,
  StartSessionRequestSchema,
} from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { type IdigiEmulator, startIdigiEmulator } from "@meridian/emulator-idigi";
import { ConfigError, type Logger } from "@meridian/service-kit";
import {
  captureLogger,
  codeOf,
  expectExactlyOnce,
  json,
  type NatsServerHandle,
  type RecordingServer,
  startForTest,
  startNatsServer,
  startRecordingServer,
  testLogger,
  testTransport,
  until,
} from "@meridian/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { idigiListenerConfig } from "../src/config.js";
import { LEASES_BUCKET, SESSIONS_BUCKET, type SessionRecord } from "../src/pipeline/manager.js";
import { type IdigiListener, type IdigiListenerOptions, startIdigiListener } from "../src/service.js";
import { admin, collect, emulatorSessions, startTrapServer, type TrapServer } from "./harness.js";

/*
 * Where the account's credentials go is configuration only: not what the idigi_sessions KV bucket says, not a request
 * field; and never unprotected unless the operator says so (IDIGI_ALLOW_INSECURE).
 */

const USER = "listener";
const PASSWORD = "pw-s3cret-9f2c";
const FAST_RECONNECT = { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0 };

describe("idigi-listener: where the credentials go", () => {
  let nats: NatsServerHandle;
  let emu: IdigiEmulator;
  let reader: Bus;
  let records: KvBucket<SessionRecord>;
  const listeners: IdigiListener[] = [];
  const traps: TrapServer[] = [];

  const options: Omit<IdigiListenerOptions, "installSignalHandlers"> = {
    reconnectBackoff: FAST_RECONNECT,
    startWaitMs: 5_000,
    leaseTtlMs: 1_500,
    failedRetryMs: 500,
    statusIntervalMs: 200,
  };

  function env(over: Record<string, string | undefined> = {}): Record<string, string | undefined> {
    return {
      NATS_URL: nats.url,
      IDIGI_URL: emu.httpUrl,
      IDIGI_PUSH_PORT: String(emu.pushPort),
      IDIGI_USERNAME: USER,
      IDIGI_PASSWORD: PASSWORD,
      // The emulator's REST API is plain http: the one thing these tests allow unless a test says otherwise.
      IDIGI_ALLOW_INSECURE: "true",
      INSTANCE_ID: "sec",
      ...over,
    };
  }

  async function startListener(over: Record<string, string | undefined> = {}, logger: Logger = testLogger()): Promise<IdigiListener> {
    const l = await startForTest(startIdigiListener, idigiListenerConfig, env(over), options, logger);
    listeners.push(l);
    return l;
  }

  const clientFor = (l: IdigiListener) => createClient(IdigiListenerService, testTransport(l.service.url));

  async function trap(): Promise<TrapServer> {
    const t = await startTrapServer();
    traps.push(t);
    return t;
  }

  const sessionOf = async (l: IdigiListener, id: string) => (await clientFor(l).listSessions({})).sessions.find((s) => s.monitorId === id);

  /** What someone who can write the bucket puts there: the session pointed at `connection`. */
  const tamper = (id: string, connection: SessionRecord["connection"]) =>
    records.put(id, { monitorId: id, startedTime: new Date().toISOString(), connection });

  beforeAll(async () => {
    nats = await startNatsServer();
    emu = await startIdigiEmulator({ users: [{ username: USER, password: PASSWORD, cstId: 4321 }] });
    reader = Bus.connect({ servers: nats.url, name: "test-reader", logger: testLogger() });
    await reader.ready;
    records = new KvBucket(reader, SESSIONS_BUCKET, jsonCodec<SessionRecord>(), { history: 1 });
  });

  afterEach(async () => {
    await Promise.all(listeners.splice(0).map((l) => l.stop()));
    await Promise.all(traps.splice(0).map((t) => t.close()));
    for (const name of [SESSIONS_BUCKET, LEASES_BUCKET]) {
      const bucket = new KvBucket(reader, name, jsonCodec());
      for (const key of await bucket.keys()) await bucket.delete(key);
    }
    await admin(emu, "faults", undefined, "DELETE");
  });

  afterAll(async () => {
    await reader?.close();
    await emu?.stop();
    await nats?.stop();
  });

  it("a KV record re-pointing a session's host is ignored (logged at warn with the monitor id): the listener connects where the configuration says, and the other host sees no connection and no credentials", async () => {
    const elsewhere = await trap();
    const { logger, lines, raw } = captureLogger();
    const l = await startListener({}, logger);
    const client = clientFor(l);
    const resumed = (await client.createMonitor({ topics: ["DataPoint"], batchSize: 5, batchDurationSeconds: 0 })).monitor!.id;
    const started = (await client.createMonitor({ topics: ["DataStream"], batchSize: 5, batchDurationSeconds: 0 })).monitor!.id;
    const pointElsewhere = { host: elsewhere.host, port: elsewhere.port, tls: false, verifyCertificate: false };

    // Resumed by the lease upkeep, as after a restart …
    await tamper(resumed, pointElsewhere);
    await until(async () => (await sessionOf(l, resumed))?.state === SessionState.CONNECTED, {
      timeoutMs: 10_000,
      what: "tampered session resumed",
    });
    // … and started through the API on top of a tampered record.
    await tamper(started, pointElsewhere);
    await client.startSession({ monitorId: started });
    await until(async () => (await sessionOf(l, started))?.state === SessionState.CONNECTED, {
      timeoutMs: 10_000,
      what: "tampered session started",
    });

    for (const id of [resumed, started]) {
      expect((await sessionOf(l, id))?.connection).toMatchObject({ host: "127.0.0.1", port: emu.pushPort, tls: false });
      expect(await emulatorSessions(emu, id)).toHaveLength(1);
      const since = new Date();
      const bus = collect(reader, id, since);
      await admin(emu, "emit", { monitorId: Number(id), count: 12 });
      expectExactlyOnce(await bus.exactly(12), 12);
      const warned = lines.find((x) => x["level"] === 40 && x["monitorId"] === id && String(x["msg"]).includes("another push target"));
      expect(warned).toMatchObject({ recorded: { host: elsewhere.host, port: elsewhere.port, tls: false } });
    }
    // Long enough for any connection attempt to have reached it.
    await new Promise((r) => setTimeout(r, 500));
    expect(elsewhere.connections).toBe(0);
    expect(elsewhere.received()).toHaveLength(0);
    expect(raw.join("\n")).not.toContain(PASSWORD);
  });

  it("tls:false in the KV record with the configuration on TLS: the session connects with TLS, verified against the configured CA", async () => {
    const l = await startListener({ IDIGI_PUSH_TLS: "true", IDIGI_PUSH_PORT: String(emu.pushTlsPort), IDIGI_CA_FILE: emu.caPemPath! });
    const client = clientFor(l);
    const id = (await client.createMonitor({ topics: ["DeviceCore"], batchSize: 5, batchDurationSeconds: 0 })).monitor!.id;
    // As recorded before the configuration was fixed: plain TCP on the plain port.
    await tamper(id, { host: "127.0.0.1", port: emu.pushPort, tls: false, verifyCertificate: false });
    await until(async () => (await sessionOf(l, id))?.state === SessionState.CONNECTED, { timeoutMs: 10_000, what: "session resumed" });
    expect((await sessionOf(l, id))?.connection).toEqual(
      expect.objectContaining({ port: emu.pushTlsPort, tls: true, verifyCertificate: true, insecure: ["REST API over http"] }),
    );
    // The platform side of the wire: one connection for the monitor, and it is TLS.
    expect((await emulatorSessions(emu, id)).map((s) => s.tls)).toEqual([true]);
    const bus = collect(reader, id, new Date());
    await admin(emu, "emit", { monitorId: Number(id), count: 9 });
    expectExactlyOnce(await bus.exactly(9), 9);
    // A restart (a new listener, the same record) takes the configuration's TLS again.
    await l.stop();
    listeners.splice(listeners.indexOf(l), 1);
    const again = await startListener({ IDIGI_PUSH_TLS: "true", IDIGI_PUSH_PORT: String(emu.pushTlsPort), IDIGI_CA_FILE: emu.caPemPath! });
    await until(async () => (await sessionOf(again, id))?.state === SessionState.CONNECTED, { timeoutMs: 10_000, what: "resumed again" });
    expect((await emulatorSessions(emu, id)).map((s) => s.tls)).toEqual([true]);
    expect((await records.get(id))?.connection?.tls).toBe(false);
  });

  describe("without IDIGI_ALLOW_INSECURE", () => {
    it.each([
      ["an http:// IDIGI_URL (REST and, by default, push in clear)", { IDIGI_URL: "http://127.0.0.1:9" }, ["IDIGI_URL"]],
      ["IDIGI_PUSH_TLS=false", { IDIGI_URL: "https://127.0.0.1:9", IDIGI_PUSH_TLS: "false" }, ["IDIGI_PUSH_TLS"]],
      ["IDIGI_TLS_INSECURE=true", { IDIGI_URL: "https://127.0.0.1:9", IDIGI_TLS_INSECURE: "true" }, ["IDIGI_TLS_INSECURE"]],
    ])("%s does not start, naming the setting; the push server never sees a connection", async (_what, over, settings) => {
      const push = await trap();
      const err = await startListener({
        ...over,
        IDIGI_PUSH_HOST: push.host,
        IDIGI_PUSH_PORT: String(push.port),
        IDIGI_ALLOW_INSECURE: undefined,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).settings).toEqual([...settings, "IDIGI_ALLOW_INSECURE"]);
      expect((err as Error).message).toContain("IDIGI_ALLOW_INSECURE=true");
      expect((err as Error).message).not.toContain(PASSWORD);
      await new Promise((r) => setTimeout(r, 300));
      expect(push.connections).toBe(0);
    });

    it("https and TLS start without it, with nothing listed as insecure", async () => {
      const push = await trap();
      const { logger, lines } = captureLogger();
      const l = await startListener(
        {
          IDIGI_URL: "https://127.0.0.1:9",
          IDIGI_PUSH_HOST: push.host,
          IDIGI_PUSH_PORT: String(push.port),
          IDIGI_ALLOW_INSECURE: undefined,
        },
        logger,
      );
      await tamper("4242", undefined);
      await until(async () => (await sessionOf(l, "4242"))?.state === SessionState.CONNECTING || push.connections > 0, {
        timeoutMs: 5_000,
        what: "session resumed",
      });
      expect((await sessionOf(l, "4242"))?.connection).toMatchObject({ tls: true, verifyCertificate: true, insecure: [] });
      expect(lines.some((x) => String(x["msg"]).includes("IDIGI_ALLOW_INSECURE"))).toBe(false);
      // A TLS ClientHello went to the configured server (the trap speaks no TLS), never the credentials.
      await until(() => push.received().length > 0, { timeoutMs: 5_000, what: "a TLS ClientHello" });
      expect(push.received()[0]).toBe(0x16);
      expect(push.received().includes(Buffer.from(PASSWORD))).toBe(false);
    });
  });

  it("with IDIGI_ALLOW_INSECURE=true plaintext is used: warned at start, listed in ListSessions (the control: the credentials do cross in clear)", async () => {
    const push = await trap();
    const { logger, lines } = captureLogger();
    const l = await startListener({ IDIGI_PUSH_HOST: push.host, IDIGI_PUSH_PORT: String(push.port) }, logger);
    const warned = lines.find((x) => x["level"] === 40 && String(x["msg"]).startsWith("IDIGI_ALLOW_INSECURE"));
    expect(warned).toMatchObject({ insecure: ["REST API over http", "push session without TLS"], settings: ["IDIGI_URL"] });
    await tamper("4243", undefined);
    await until(() => push.received().includes(Buffer.from(PASSWORD)), { timeoutMs: 5_000, what: "the ConnectRequest at the push server" });
    expect((await sessionOf(l, "4243"))?.connection).toMatchObject({
      host: push.host,
      port: push.port,
      tls: false,
      insecure: ["REST API over http", "push session without TLS"],
    });
  });

  it("the API cannot choose the push server or turn TLS off: connection fields injected into StartSession (unknown to the contract) change nothing", async () => {
    const elsewhere = await trap();
    const l = await startListener();
    const client = clientFor(l);
    const id = (await client.createMonitor({ topics: ["Alarm"] })).monitor!.id;
    const settings = toBinary(
      ConnectionSettingsSchema,
      create(ConnectionSettingsSchema, { host: elsewhere.host, port: elsewhere.port, tls: false, verifyCertificate: false }),
    );
    // What a caller guessing at a `connection` field (2) and an `insecure` flag (3) would send over gRPC.
    const request = create(StartSessionRequestSchema, {
      monitorId: id,
      $unknown: [
        { no: 2, wireType: WireType.LengthDelimited, data: new BinaryWriter().bytes(settings).finish() },
        { no: 3, wireType: WireType.Varint, data: new BinaryWriter().bool(true).finish() },
      ],
    });
    const { session } = await client.startSession(request);
    expect(session).toMatchObject({ state: SessionState.CONNECTED, connection: { host: "127.0.0.1", port: emu.pushPort } });
    expect((await records.get(id))?.connection).toMatchObject({ port: emu.pushPort });
    await new Promise((r) => setTimeout(r, 300));
    expect(elsewhere.connections).toBe(0);
  });

  describe("what the API repeats of Digi's answers", () => {
    let digi: RecordingServer;
    afterEach(async () => {
      await digi?.close();
    });
    const JAVA_TRACE = [
      "com.digi.ws.monitor.InvalidMonitorException: Invalid monTopic 'Data Point' for customer 4321",
      "\tat com.digi.ws.monitor.MonitorValidator.validate(MonitorValidator.java:212)",
      "\tat com.digi.ws.monitor.MonitorResource.create(MonitorResource.java:88)",
      "\tat org.apache.catalina.core.StandardWrapperValve.invoke(StandardWrapperValve.java:199)",
    ].join("\n");

    it("an error body is repeated as one capped line, without the exception class or the stack trace", async () => {
      digi = await startRecordingServer((req) =>
        req.method === "POST"
          ? { status: 400, headers: { "content-type": "text/xml" }, body: `<result><error>${JAVA_TRACE}</error></result>` }
          : req.path.startsWith("/ws/Monitor/.json")
            ? json(200, { resultSize: "0", remainingSize: "0", items: [] })
            : {
                status: 503,
                headers: { "content-type": "text/plain", "retry-after": "0" },
                body: `${"x".repeat(5000)}\nat Foo.bar(Foo.java:1)`,
              },
      );
      const l = await startListener({ IDIGI_URL: digi.url });
      const client = clientFor(l);
      const bad = await codeOf(client.createMonitor({ topics: ["DataPoint"] }));
      expect(bad.code).toBe(Code.InvalidArgument);
      expect(bad.message).toBe("iDigi rejected the request: request rejected (HTTP 400): Invalid monTopic 'Data Point' for customer 4321");
      const down = await codeOf(client.deleteMonitor({ monitorId: "77" }));
      expect(down.code).toBe(Code.Unavailable);
      expect(down.message.length).toBeLessThan(300);
      expect(down.message).toMatch(/x…$/);
      expect(down.message).not.toContain("Foo.java");
    });

    it("an HTML error page is not repeated at all", async () => {
      digi = await startRecordingServer(() => ({
        status: 418,
        headers: { "content-type": "text/html" },
        body: "<html><head><title>418</title></head><body><h1>Teapot</h1><hr>nginx/1.18.0 (Ubuntu) at 10.20.30.40</body></html>",
      }));
      const l = await startListener({ IDIGI_URL: digi.url });
      const bad = await codeOf(clientFor(l).listMonitors({}));
      expect(bad.message).toBe("iDigi rejected the request: request rejected (HTTP 418)");
    });

    it("monitor records are repeated with every text capped, however long the platform's", async () => {
      const huge = "D".repeat(100_000);
      digi = await startRecordingServer(() =>
        json(200, {
          resultSize: "1",
          remainingSize: "0",
          items: [
            {
              monId: "9001",
              cstId: "4321",
              monTopic: Array.from({ length: 500 }, (_, i) => `T${i}${"t".repeat(300)}`).join(","),
              monTransportType: "tcp".repeat(50),
              monStatus: "ACTIVE".repeat(50),
              monDescription: huge,
            },
          ],
        }),
      );
      const l = await startListener({ IDIGI_URL: digi.url });
      const [m] = (await clientFor(l).listMonitors({})).monitors;
      expect(m!.id).toBe("9001");
      expect(m!.description.length).toBeLessThanOrEqual(1024);
      expect(m!.topics.length).toBeLessThanOrEqual(64);
      expect(Math.max(...m!.topics.map((t) => t.length))).toBeLessThanOrEqual(256);
      expect(m!.transport.length).toBeLessThanOrEqual(32);
      expect(m!.status.length).toBeLessThanOrEqual(32);
    });
  });

  it("a monitors file cannot name a connection either: an unknown field stops the start naming it", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "idigi-monitors-")), "monitors.json");
    writeFileSync(file, JSON.stringify({ monitors: [{ topics: ["DataPoint"], connection: { host: "10.0.0.1", tls: false } }] }));
    const err = await startListener({ IDIGI_MONITORS_FILE: file }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/monitors\[0\]: .*"connection"/);
  });
});
