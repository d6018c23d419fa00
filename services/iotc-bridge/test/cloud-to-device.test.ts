/**
 * CloudToDevice and the command RPCs against a real nats-server: two bridge instances share the bus; the device
 * connection is a fake DirectMethodRequest (the end-to-end run through the IoT Central emulator is another test).
 */
import { create, fromBinary, fromJson, toJson } from "@bufbuild/protobuf";
import { timestampFromDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import { type Client, Code, createClient } from "@connectrpc/connect";
import { Bus, STREAMS } from "@meridian/bus";
import { CommandResponseSchema, CommandSchema } from "@meridian/contracts/meridian/command/v1/command_pb";
import { IotcBridgeService } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { authSettings, type RunningService, serverAuth, startService } from "@meridian/service-kit";
import { busErrors } from "@meridian/service-kit/bus";
import {
  expectCode,
  type NatsServerHandle,
  startNatsServer,
  TEST_KEYS,
  testIdentitiesFile,
  testLogger,
  testTransport,
  until,
} from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { commandHandlers } from "../src/api/commands.js";
import { CloudToDevice } from "../src/pipeline/cloud-to-device.js";
import type { DirectMethodRequest } from "../src/platform/types.js";

const logger = testLogger();
const APP = "plant-a";

/** A direct method as the device client hands it over; records what IoT Hub would get back. */
function directMethod(name: string, payload: unknown, waitMs: number, component?: string) {
  const answers: { status: number; payload: unknown; at: number }[] = [];
  const request: DirectMethodRequest = {
    requestId: "1",
    name,
    payload,
    deadline: new Date(Date.now() + waitMs),
    ...(component ? { component } : {}),
    async respond(status, body) {
      answers.push({ status, payload: body, at: Date.now() });
    },
  };
  return { request, answers };
}

async function consumerNames(bus: Bus): Promise<Set<string>> {
  const names = new Set<string>();
  for await (const c of bus.jsm().consumers.list(STREAMS.cloudToDevice)) names.add(c.name);
  return names;
}

/**
 * Starts a server stream and resolves once its ordered consumer exists, so nothing published after is missed. A new
 * consumer name, not a larger count: the previous test's consumer is deleted in the background as this one starts.
 */
async function watching<T>(bus: Bus, open: (signal: AbortSignal) => AsyncIterable<T>) {
  const before = await consumerNames(bus);
  const ac = new AbortController();
  const items: T[] = [];
  const done = (async () => {
    try {
      for await (const item of open(ac.signal)) items.push(item);
    } catch (err) {
      if (!ac.signal.aborted) throw err;
    }
  })();
  await until(async () => [...(await consumerNames(bus))].some((n) => !before.has(n)), { timeoutMs: 10_000, intervalMs: 25 });
  return { items, stop: () => ac.abort(), done };
}

describe("cloud to device across two bridge instances", () => {
  let nats: NatsServerHandle;
  let busA: Bus;
  let busB: Bus;
  let a: CloudToDevice;
  let b: CloudToDevice;
  let server: RunningService;
  let client: Client<typeof IotcBridgeService>;
  const running = new AbortController();

  beforeAll(async () => {
    nats = await startNatsServer();
    busA = Bus.connect({ servers: nats.url, name: "iotc-bridge-a", logger });
    busB = Bus.connect({ servers: nats.url, name: "iotc-bridge-b", logger });
    await Promise.all([busA.ready, busB.ready]);
    a = new CloudToDevice({ bus: busA, logger, instance: "a" });
    b = new CloudToDevice({ bus: busB, logger, instance: "b" });
    void a.run(running.signal);
    void b.run(running.signal);
    await busA.connection().flush();
    await busB.connection().flush();
    // Instance B serves the API; the devices below are connected to instance A.
    server = await startService({
      name: "iotc-bridge-b",
      port: 0,
      logger,
      auth: serverAuth(z.object(authSettings).parse({ AUTH_IDENTITIES_FILE: testIdentitiesFile() }), logger),
      installSignalHandlers: false,
      errors: [busErrors],
      routes: (router) =>
        router.service(
          IotcBridgeService,
          commandHandlers({ cloudToDevice: b, bus: busB, applications: { has: async (id) => id === APP } }),
        ),
    });
    client = createClient(IotcBridgeService, testTransport(server.url));
  });
  afterAll(async () => {
    running.abort();
    await server?.stop();
    await a?.stop();
    await b?.stop();
    await busA?.close();
    await busB?.close();
    await nats?.stop();
  });

  it("WatchCommands with start_time also delivers a command stored before the watch was subscribed; without it, only later ones", async () => {
    const before = new Date(Date.now() - 1000);
    const { request } = directMethod("purge", { line: 2 }, 30_000);
    a.handlers(APP, "boiler-9", "completed").command!(request);
    await until(() => a.pendingCommands > 0, { timeoutMs: 10_000, intervalMs: 25 });
    await busA.connection().flush();
    const replay = await watching(busB, (signal) =>
      client.watchCommands({ applicationId: APP, deviceId: "boiler-9", startTime: timestampFromDate(before) }, { signal }),
    );
    const live = await watching(busB, (signal) => client.watchCommands({ applicationId: APP, deviceId: "boiler-9" }, { signal }));
    await until(() => replay.items.length === 1, { timeoutMs: 10_000, intervalMs: 25 });
    expect(replay.items[0]!.command!.name).toBe("purge");
    await new Promise((r) => setTimeout(r, 300));
    expect(live.items).toEqual([]);
    replay.stop();
    live.stop();
    await client.respondCommand({ applicationId: APP, requestId: replay.items[0]!.command!.requestId, status: 200 });
  });

  it("a command reaches WatchCommands, and a response through the other instance's RespondCommand answers it once", async () => {
    const watch = await watching(busB, (signal) => client.watchCommands({ applicationId: APP }, { signal }));
    const { request, answers } = directMethod("setMode", { mode: "eco" }, 30_000, "thermostat1");
    a.handlers(APP, "boiler-1", "completed").command!(request);
    await until(() => watch.items.length === 1, { timeoutMs: 10_000, intervalMs: 25 });
    const cmd = watch.items[0]!.command!;
    expect(cmd.target).toMatchObject({ platform: Platform.IOT_CENTRAL, connection: APP, device: "boiler-1" });
    expect([cmd.component, cmd.name, cmd.offline]).toEqual(["thermostat1", "setMode", false]);
    expect(toJson(ValueSchema, cmd.payload!)).toEqual({ mode: "eco" });
    expect(Number(cmd.deadline!.seconds)).toBe(Math.floor(request.deadline.getTime() / 1000));
    expect(a.pendingCommands).toBe(1);

    const first = await client.respondCommand({
      applicationId: APP,
      requestId: cmd.requestId,
      status: 200,
      payload: fromJson(ValueSchema, { applied: true }),
    });
    expect(first.delivered).toBe(true);
    expect(answers.map((x) => [x.status, x.payload])).toEqual([[200, { applied: true }]]);

    // Late: answered already. Not an error, and IoT Hub gets nothing more.
    const late = await client.respondCommand({ applicationId: APP, requestId: cmd.requestId, status: 500 });
    expect(late.delivered).toBe(false);
    expect(answers).toHaveLength(1);
    expect(a.pendingCommands).toBe(0);
    watch.stop();
    await watch.done;
  });

  it("a response the plant publishes on the bus itself answers the command; status unset means 200", async () => {
    const watch = await watching(busB, (signal) => busB.watchCommands({ connection: APP, device: "boiler-2" }, { signal }));
    const { request, answers } = directMethod("ping", null, 30_000);
    a.handlers(APP, "boiler-2", "completed").command!(request);
    await until(() => watch.items.length === 1, { timeoutMs: 10_000, intervalMs: 25 });
    const plant = Bus.connect({ servers: nats.url, name: "plant", logger });
    try {
      await plant.ready;
      const r = await plant.respondToCommand(
        Platform.IOT_CENTRAL,
        APP,
        create(CommandResponseSchema, { requestId: watch.items[0]!.requestId, payload: fromJson(ValueSchema, "pong"), responder: "plc-7" }),
      );
      expect(r.delivered).toBe(true);
      expect(answers.map((x) => [x.status, x.payload])).toEqual([[200, "pong"]]);
    } finally {
      await plant.close();
      watch.stop();
      await watch.done;
    }
  });

  it("no response: IoT Hub gets 504 at the deadline, saying how long the plant had", async () => {
    const { request, answers } = directMethod("slow", {}, 1000);
    a.handlers(APP, "boiler-3", "completed").command!(request);
    await until(() => answers.length === 1, { timeoutMs: 5000, intervalMs: 10 });
    expect(answers[0]!.at).toBeGreaterThanOrEqual(request.deadline.getTime() - 5);
    expect(answers[0]!.at).toBeLessThan(request.deadline.getTime() + 500);
    expect(answers.map((x) => [x.status, x.payload])).toEqual([[504, { error: "no response from the plant within 1 s" }]]);
  });

  it("a writable-property change reaches WatchProperties and is acknowledged per the application's setting", async () => {
    const watch = await watching(busB, (signal) => client.watchProperties({ applicationId: APP, deviceId: "boiler-4" }, { signal }));
    const completed = await a.handlers(APP, "boiler-4", "completed").writableProperty!({ name: "setpoint", value: 21.5, version: 7 });
    expect(completed).toEqual({ ac: 200, ad: "completed", value: 21.5 });
    const accepted = await a.handlers(APP, "boiler-4", "accepted").writableProperty!({
      component: "thermostat1",
      name: "setpoint",
      value: 19,
      version: 8,
    });
    expect(accepted).toEqual({ ac: 202, ad: "accepted by Meridian" });
    await until(() => watch.items.length === 2, { timeoutMs: 10_000, intervalMs: 25 });
    expect(watch.items.map((x) => [x.update?.component, x.update?.name, x.update?.version, x.update?.target?.device])).toEqual([
      ["", "setpoint", 7n, "boiler-4"],
      ["thermostat1", "setpoint", 8n, "boiler-4"],
    ]);
    watch.stop();
    await watch.done;
  });

  it("an offline command is stored on the bus before its handler resolves", async () => {
    await a.handlers(APP, "boiler-5", "completed").offlineCommand!({
      messageId: "c2d-msg-1",
      name: "resetCounters",
      payload: { counters: ["a", "b"] },
      properties: { "method-name": "resetCounters" },
    });
    // Read at once: resolved means stored.
    const stored = await busA
      .jsm()
      .streams.getMessage(STREAMS.cloudToDevice, { last_by_subj: `command.v1.iotc.${APP}.boiler-5.resetCounters` });
    const cmd = fromBinary(CommandSchema, stored.data);
    expect([cmd.requestId, cmd.offline, cmd.deadline, cmd.properties]).toEqual([
      "c2d-msg-1",
      true,
      undefined,
      { "method-name": "resetCounters" },
    ]);
    // Redelivered by IoT Hub (not completed in time): stored once.
    await a.handlers(APP, "boiler-5", "completed").offlineCommand!({
      messageId: "c2d-msg-1",
      name: "resetCounters",
      payload: {},
      properties: {},
    });
    const again = await busA
      .jsm()
      .streams.getMessage(STREAMS.cloudToDevice, { last_by_subj: `command.v1.iotc.${APP}.boiler-5.resetCounters` });
    expect(again.seq).toBe(stored.seq);
  });

  it("RespondCommand names the bad field, and an unknown application is not_found", async () => {
    const bad = async (req: Parameters<typeof client.respondCommand>[0], field: RegExp) =>
      expect(await expectCode(client.respondCommand(req), Code.InvalidArgument)).toMatch(field);
    await bad({ applicationId: "Plant_A", requestId: "r" }, /application_id: must be/);
    await bad({ applicationId: APP, requestId: "" }, /request_id: is required/);
    await bad({ applicationId: APP, requestId: "x".repeat(257) }, /request_id: longer than 256/);
    await bad({ applicationId: APP, requestId: "r", status: 199 }, /status: must be 200 to 599, got 199/);
    await bad({ applicationId: APP, requestId: "r", status: 600 }, /status: must be 200 to 599/);
    await bad({ applicationId: APP, requestId: "r", payload: fromJson(ValueSchema, "x".repeat(128 * 1024)) }, /payload: is 131074 bytes/);
    expect(await expectCode(client.respondCommand({ applicationId: "plant-b", requestId: "r" }), Code.NotFound)).toMatch(/plant-b/);
    expect(await expectCode(consume(client.watchCommands({ applicationId: "plant-b" })), Code.NotFound)).toMatch(/plant-b/);
    expect(await expectCode(consume(client.watchProperties({ deviceId: "Not Valid!" })), Code.InvalidArgument)).toMatch(/device_id/);
    // Unknown request id of a known application: nobody holds it.
    expect((await client.respondCommand({ applicationId: APP, requestId: "never-issued" })).delivered).toBe(false);
  });

  it("RespondCommand needs platform:admin: a platform:read caller is refused", async () => {
    const reader = createClient(IotcBridgeService, testTransport(server.url, { credential: TEST_KEYS["platform:read"] }));
    await expectCode(reader.respondCommand({ applicationId: APP, requestId: "r" }), Code.PermissionDenied);
  });
});

describe("cloud to device while the bus is down", () => {
  it("a command is answered 503 at once; a property change and an offline command are rejected, unacknowledged", async () => {
    const nats = await startNatsServer();
    const bus = Bus.connect({ servers: nats.url, name: "iotc-bridge-down", logger });
    await bus.ready;
    const c2d = new CloudToDevice({ bus, logger, instance: "down" });
    try {
      await nats.stop();
      await until(() => !bus.connected, { timeoutMs: 10_000, intervalMs: 25 });
      const h = c2d.handlers(APP, "boiler-9", "completed");

      const { request, answers } = directMethod("reboot", null, 30_000);
      const started = Date.now();
      h.command!(request);
      await until(() => answers.length === 1, { timeoutMs: 2000, intervalMs: 5 });
      expect(answers[0]!.at - started).toBeLessThan(1000);
      expect(answers[0]!.status).toBe(503);
      expect(answers[0]!.payload).toEqual({ error: expect.stringMatching(/event bus is unavailable/) });
      expect(c2d.pendingCommands).toBe(0);

      await expect(h.writableProperty!({ name: "setpoint", value: 1, version: 2 })).rejects.toThrow(/not connected/i);
      await expect(h.offlineCommand!({ name: "reset", payload: null, properties: {} })).rejects.toThrow(/not connected/i);
    } finally {
      await c2d.stop();
      await bus.close();
    }
  });
});

async function consume(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // the first message or error is all these tests need
    return;
  }
}
