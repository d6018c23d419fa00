import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { STREAMS } from "@meridian/bus";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Health, StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { Platform, PointSchema, type TelemetryEvent, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import {
  codeOf,
  freePort,
  type NatsServerHandle,
  startNatsServer,
  TEST_KEYS,
  testCredential,
  testIdentitiesFile,
  testLogger,
  until,
} from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayConfig } from "../src/config.js";
import { type Gateway, startGateway } from "../src/service.js";

const logger = testLogger();

function event(id: string, device: string, value: number, t = new Date()): TelemetryEvent {
  return create(TelemetryEventSchema, {
    id,
    source: { platform: Platform.API, connection: "gw-test", device },
    observedTime: timestampFromDate(t),
    points: [{ name: "temperature", unit: "degC", value: { case: "doubleValue", value } }],
  });
}

describe("gateway over a real nats-server", () => {
  let nats: NatsServerHandle;
  let gw: Gateway;
  let connect: ReturnType<typeof createConnectTransport>;
  let grpc: ReturnType<typeof createGrpcTransport>;

  beforeAll(async () => {
    nats = await startNatsServer();
    const dir = mkdtempSync(join(tmpdir(), "gw-routes-"));
    const routesFile = join(dir, "routes.json");
    writeFileSync(
      routesFile,
      JSON.stringify({
        routes: [{ id: "from-file", source: { platform: "PLATFORM_IDIGI" }, sink: { platform: "PLATFORM_OMF", target: "pi" } }],
      }),
    );
    gw = await startGateway(
      gatewayConfig.parse({ PORT: "0", AUTH_IDENTITIES_FILE: testIdentitiesFile(), NATS_URL: nats.url, ROUTES_FILE: routesFile }),
      logger,
      {
        installSignalHandlers: false,
      },
    );
    await gw.bus.ready;
    connect = createConnectTransport({ interceptors: [testCredential()], baseUrl: gw.service.url, httpVersion: "1.1" });
    grpc = createGrpcTransport({ interceptors: [testCredential()], baseUrl: gw.service.url });
  });
  afterAll(async () => {
    await gw?.stop();
    await nats?.stop();
  });

  it("publishes over gRPC and streams the events back over Connect, in order per device", async () => {
    const telemetry = createClient(TelemetryService, grpc);
    const watcher = createClient(TelemetryService, connect);
    const ac = new AbortController();
    const got: string[] = [];
    const start = new Date(Date.now() - 1000);
    const reading = (async () => {
      try {
        for await (const r of watcher.subscribe(
          { filter: { connection: "gw-test", device: "d1" }, startTime: timestampFromDate(start) },
          { signal: ac.signal },
        )) {
          got.push(r.event!.id);
          if (got.length === 50) ac.abort();
        }
      } catch (err) {
        if (!ac.signal.aborted) throw err;
      }
    })();
    for (let b = 0; b < 5; b++) {
      const events = Array.from({ length: 10 }, (_, i) => event(`ev-${b * 10 + i}`, "d1", i));
      events.push(event(`other-${b}`, "d2", b));
      const res = await telemetry.publish({ events });
      expect(res.eventIds).toEqual(events.map((e) => e.id));
      // Both devices' events of the call, in one message of the connection.
      expect(res.storedMessages).toBe(1);
    }
    await reading;
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `ev-${i}`));
  });

  it("gives events without an id one, and recognises a repeated publish", async () => {
    const telemetry = createClient(TelemetryService, connect);
    const noId = event("", "d3", 1);
    const first = await telemetry.publish({ events: [noId] });
    expect(first.eventIds[0]).toMatch(/^[0-9a-f-]{36}$/);
    const again = await telemetry.publish({ events: [event("fixed", "d3", 1)] });
    const repeat = await telemetry.publish({ events: [event("fixed", "d3", 1)] });
    expect([again.storedMessages, repeat.storedMessages, repeat.duplicateMessages]).toEqual([1, 0, 1]);
  });

  it("rejects a bad batch naming the field, and writes nothing of it", async () => {
    const telemetry = createClient(TelemetryService, connect);
    const before = (await gw.bus.jsm().streams.info(STREAMS.telemetry)).state.messages;
    const good = event("good-1", "d4", 1);
    const noDevice = event("bad-1", "", 1);
    const noValue = event("bad-2", "d4", 1);
    noValue.points[0]!.value = { case: undefined };
    const nan = event("bad-3", "d4", Number.NaN);
    // An API caller cannot forge another platform's telemetry.
    const forged = event("bad-4", "d4", 1);
    forged.source!.platform = Platform.IDIGI;
    const err = await codeOf(telemetry.publish({ events: [good, noDevice, noValue, nan, forged] }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toContain("events[1].source.device: required");
    expect(err.message).toContain("events[2].points[0].value");
    expect(err.message).toContain("events[3].points[0].double_value: must be finite");
    expect(err.message).toContain("events[4].source.platform: must be PLATFORM_API");
    expect((await gw.bus.jsm().streams.info(STREAMS.telemetry)).state.messages).toBe(before);
    expect((await codeOf(telemetry.publish({ events: [] }))).message).toContain("events: required");
  });

  it("splits a call larger than one bus message into several, and answers invalid_argument for one event past max_payload", async () => {
    const telemetry = createClient(TelemetryService, grpc);
    const big = "x".repeat(1000);
    const events = Array.from({ length: 1500 }, (_, i) => {
      const e = event(`big-${i}`, "big-device", i);
      e.points.push(create(PointSchema, { name: "note", value: { case: "stringValue", value: big } }));
      return e;
    });
    // 1.5 MB of one device's events: more than max_payload (1 MiB) in one message, in chunks of at most 512 KiB.
    const res = await telemetry.publish({ events });
    expect(res.storedMessages).toBe(4);
    const huge = event("huge-1", "big-device", 0);
    huge.points.push(create(PointSchema, { name: "note", value: { case: "stringValue", value: "x".repeat(1100 * 1024) } }));
    const err = await codeOf(telemetry.publish({ events: [huge] }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/exceeds the server's max_payload/);
  });

  it("creates, lists, gets and deletes routes with already_exists and not_found", async () => {
    const routes = createClient(RouteService, grpc);
    const route = { id: "idigi-to-pi", source: { platform: Platform.IDIGI }, sink: { platform: Platform.OMF, target: "pi-main" } };
    const created = await routes.createRoute({ route });
    expect(created.route?.createTime).toBeDefined();
    expect((await codeOf(routes.createRoute({ route }))).code).toBe(Code.AlreadyExists);
    expect((await routes.getRoute({ id: "idigi-to-pi" })).route?.sink?.target).toBe("pi-main");
    const ids = (await routes.listRoutes({})).routes.map((r) => r.id);
    expect(ids).toEqual(expect.arrayContaining(["idigi-to-pi", "from-file"]));
    expect((await codeOf(routes.getRoute({ id: "nope" }))).code).toBe(Code.NotFound);
    await routes.deleteRoute({ id: "idigi-to-pi" });
    expect((await codeOf(routes.deleteRoute({ id: "idigi-to-pi" }))).code).toBe(Code.NotFound);
    const bad = await codeOf(routes.createRoute({ route: { id: "Bad Id", sink: { platform: Platform.OMNIA, target: "" } } }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.message).toContain("route.source: required");
    expect(bad.message).toContain("route.sink.target: required");
    expect(bad.message).toContain("route.id: must be");
    expect(bad.message).toContain("route.sink.platform: OMNIA has no sink service");
  });

  it("reports its own health and the streams", async () => {
    const status = createClient(StatusService, connect);
    const res = await status.getStatus({});
    const self = res.services.find((s) => s.service === "gateway");
    expect(self?.health).toBe(Health.SERVING);
    expect(res.streams.map((s) => s.name)).toEqual(expect.arrayContaining(["TELEMETRY", "DEADLETTER"]));
    expect(res.streams.find((s) => s.name === "TELEMETRY")!.messages).toBeGreaterThan(0n);
  });

  it("reports each stream's limits and how many messages it stored and no longer holds", async () => {
    const status = createClient(StatusService, connect);
    for (const n of [1, 2, 3])
      await gw.bus.publishDeadLetter({ consumer: "status-test", data: new Uint8Array([n]), reason: "test", detail: "" });
    const held = await gw.bus.jsm().streams.info(STREAMS.deadLetter);
    // A dead letter purged: stored, no longer held.
    await gw.bus.jsm().streams.deleteMessage(STREAMS.deadLetter, held.state.last_seq - 1);
    const res = await status.getStatus({});
    const dlq = res.streams.find((s) => s.name === STREAMS.deadLetter)!;
    const info = await gw.bus.jsm().streams.info(STREAMS.deadLetter);
    expect(dlq.messages).toBe(BigInt(held.state.messages - 1));
    expect(dlq.removed).toBe(BigInt(info.state.last_seq - info.state.messages));
    expect(dlq.removed).toBeGreaterThanOrEqual(1n);
    expect(dlq.maxBytes).toBe(BigInt(info.config.max_bytes));
    expect(dlq.maxBytes).toBeGreaterThan(0n);
    expect(Number(dlq.maxAge?.seconds)).toBe(Math.round(info.config.max_age / 1e9));
    expect(Number(dlq.maxAge?.seconds)).toBeGreaterThan(0);
  });

  it("tells a caller who it is and which roles it holds; a key without status:read is refused", async () => {
    const asKey = (key: string) =>
      createClient(
        StatusService,
        createConnectTransport({ interceptors: [testCredential(key)], baseUrl: gw.service.url, httpVersion: "1.1" }),
      );
    expect(await asKey(TEST_KEYS.admin).getCaller({})).toMatchObject({ name: "test-admin", via: "api-key", roles: ["*"] });
    expect(await asKey(TEST_KEYS["status:read"]).getCaller({})).toMatchObject({ name: "test-status-read", roles: ["status:read"] });
    expect((await codeOf(asKey(TEST_KEYS["routes:read"]).getCaller({}))).code).toBe(Code.PermissionDenied);
  });

  it("speaks Connect JSON over plain HTTP/1.1 (curl-style)", async () => {
    const res = await fetch(`${gw.service.url}/meridian.route.v1.RouteService/GetRoute`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TEST_KEYS["routes:read"]}` },
      body: JSON.stringify({ id: "from-file" }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ route: { id: "from-file", sink: { platform: "PLATFORM_OMF", target: "pi" } } });
  });
});

describe("gateway quotas", () => {
  it("refuses a route beyond MAX_ROUTES with resource_exhausted naming the setting; a delete makes room", async () => {
    const nats = await startNatsServer();
    const gw = await startGateway(
      gatewayConfig.parse({ PORT: "0", AUTH_IDENTITIES_FILE: testIdentitiesFile(), NATS_URL: nats.url, MAX_ROUTES: "2" }),
      logger,
      {
        installSignalHandlers: false,
      },
    );
    try {
      await gw.bus.ready;
      const routes = createClient(
        RouteService,
        createConnectTransport({ interceptors: [testCredential()], baseUrl: gw.service.url, httpVersion: "1.1" }),
      );
      const route = (id: string) => ({ id, source: { connection: "q" }, sink: { platform: Platform.OMF, target: "pi" } });
      await routes.createRoute({ route: route("q-1") });
      await routes.createRoute({ route: route("q-2") });
      const refused = await codeOf(routes.createRoute({ route: route("q-3") }));
      expect(refused.code).toBe(Code.ResourceExhausted);
      expect(refused.message).toContain("MAX_ROUTES=2");
      expect((await routes.listRoutes({})).routes.map((r) => r.id).sort()).toEqual(["q-1", "q-2"]);
      await routes.deleteRoute({ id: "q-1" });
      await routes.createRoute({ route: route("q-3") });
    } finally {
      await gw.stop();
      await nats.stop();
    }
  });

  it("refuses to start with a routes file larger than MAX_ROUTES", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-quota-"));
    const file = join(dir, "routes.json");
    const route = (id: string) => ({ id, source: { connection: "q" }, sink: { platform: "PLATFORM_OMF", target: "pi" } });
    writeFileSync(file, JSON.stringify({ routes: [route("a"), route("b"), route("c")] }));
    await expect(
      startGateway(
        gatewayConfig.parse({ PORT: "0", AUTH_IDENTITIES_FILE: testIdentitiesFile(), ROUTES_FILE: file, MAX_ROUTES: "2" }),
        logger,
        { installSignalHandlers: false },
      ),
    ).rejects.toThrow(/3 routes, more than MAX_ROUTES=2/);
  });
});

describe("gateway when NATS is down", () => {
  it("starts, reports not ready, answers unavailable, and recovers when NATS appears", async () => {
    const port = await freePort();
    const gw = await startGateway(
      gatewayConfig.parse({ PORT: "0", AUTH_IDENTITIES_FILE: testIdentitiesFile(), NATS_URL: `nats://127.0.0.1:${port}` }),
      logger,
      {
        installSignalHandlers: false,
      },
    );
    const dir = mkdtempSync(join(tmpdir(), "gw-late-"));
    let proc: ReturnType<typeof spawn> | undefined;
    try {
      expect((await fetch(`${gw.service.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${gw.service.url}/healthz`)).status).toBe(200);
      const telemetry = createClient(
        TelemetryService,
        createConnectTransport({ interceptors: [testCredential()], baseUrl: gw.service.url, httpVersion: "1.1" }),
      );
      expect((await codeOf(telemetry.publish({ events: [event("late-1", "d", 1)] }))).code).toBe(Code.Unavailable);
      proc = spawn("nats-server", ["-js", "-sd", dir, "-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
      await until(async () => (await fetch(`${gw.service.url}/readyz`)).status === 200, { timeoutMs: 20_000 });
      expect((await telemetry.publish({ events: [event("late-1", "d", 1)] })).storedMessages).toBe(1);
    } finally {
      await gw.stop();
      proc?.kill("SIGKILL");
    }
  }, 40_000);

  it("refuses to start with a bad routes file, naming the route and field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-bad-"));
    const file = join(dir, "routes.json");
    writeFileSync(
      file,
      JSON.stringify({ routes: [{ id: "ok", source: {}, sink: { platform: "PLATFORM_OMF", target: "x" } }, { id: "Nope" }] }),
    );
    await expect(
      startGateway(gatewayConfig.parse({ PORT: "0", AUTH_IDENTITIES_FILE: testIdentitiesFile(), ROUTES_FILE: file }), logger, {
        installSignalHandlers: false,
      }),
    ).rejects.toThrow(/routes\[1\].*route\.id: must be/);
  });
});
