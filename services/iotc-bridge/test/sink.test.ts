import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Bus, consumerBacklog, routeConsumerName } from "@meridian/bus";
import { Platform, TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type NatsServerHandle, startForTest, startNatsServer, testLogger, until } from "@meridian/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { iotcBridgeConfig } from "../src/config.js";
import { type IotcBridge, startIotcBridge } from "../src/service.js";
import { api, CREDENTIALS_KEY, deadLetters, FakeCentral, GROUP_KEY, routeInto } from "./harness.js";

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

function bridge(central: FakeCentral, instance: string, settings: Record<string, string> = {}): Promise<IotcBridge> {
  return startForTest(
    startIotcBridge,
    iotcBridgeConfig,
    { NATS_URL: nats.url, INSTANCE_ID: instance, IOTC_CREDENTIALS_KEY: CREDENTIALS_KEY, IOTC_CONNECT_RATE: "1000", ...settings },
    { createDevice: central.createDevice, redeliveryBackoff: { initialMs: 50, maxMs: 200, multiplier: 2, jitter: 0 }, failureHoldMs: 100 },
  );
}

function events(connection: string, device: string, from: number, n: number) {
  return Array.from({ length: n }, (_, j) =>
    create(TelemetryEventSchema, {
      id: `${connection}-${device}-${from + j}`,
      source: { platform: Platform.API, connection, device },
      observedTime: timestampFromMs(Date.UTC(2026, 10, 30) + (from + j) * 1000),
      points: [{ name: "temperature", value: { case: "doubleValue", value: from + j } }],
      attributes: { site: "north" },
    }),
  );
}

it("N events become N telemetry messages, each acknowledged bus message sent once, across throttling and dropped connections", async () => {
  const central = new FakeCentral();
  const svc = await bridge(central, "sink-n");
  try {
    await api(svc.service.url).createApplication({
      application: { id: "plant", idScope: "0ne00000001", enrollmentGroup: { credential: { case: "groupKey", value: GROUP_KEY } } },
    });
    await routeInto(bus, "into-plant", "line", "plant", { component: "thermostat" });
    central.openFaults = ["throttled"];
    central.sendFaults = ["throttled", "not_connected", "not_connected", "throttled"];
    // "Pump 1" first, so that it is the source holding line-pump-1; "pump-1" (the same id once normalised) comes later.
    await bus.publishEvents(events("line", "Pump 1", 0, 10));
    await until(() => new Set(central.messageIds()).size >= 10, { timeoutMs: 10_000, what: "the first device's messages" });
    for (let b = 1; b < 12; b++) await bus.publishEvents(events("line", b % 3 === 0 ? "Pump 1" : `pump-${b % 3}`, b * 10, 10));
    // 4 batches of "Pump 1" and 4 of "pump-2" arrive; the 4 of "pump-1" collide.
    const N = 80;
    await until(() => new Set(central.messageIds()).size >= N, { timeoutMs: 20_000, what: `${N} messages` });
    await until(async () => (await consumerBacklog(bus, routeConsumerName("into-plant", Platform.IOT_CENTRAL)))?.ackPending === 0, {
      timeoutMs: 10_000,
      what: "everything acknowledged",
    });
    expect(new Set(central.messageIds()).size).toBe(N);
    expect(central.sendFaults).toHaveLength(0);
    const first = central.sent.find((m) => m.options.messageId === "line-Pump 1-0");
    expect(first).toMatchObject({
      deviceId: "line-pump-1",
      payload: { temperature: 0 },
      options: { component: "thermostat", properties: { site: "north" }, creationTime: new Date(Date.UTC(2026, 10, 30)) },
    });
    expect(new Set(central.sent.map((m) => m.deviceId))).toEqual(new Set(["line-pump-1", "line-pump-2"]));
    // "Pump 1" came first and holds line-pump-1; "pump-1" never reached it.
    expect(central.sent.filter((m) => m.deviceId === "line-pump-1").every((m) => m.options.messageId?.startsWith("line-Pump 1-"))).toBe(
      true,
    );
    const letters = await deadLetters(bus, "into-plant");
    expect(letters.length).toBe(4);
    expect(letters[0]?.reason).toBe("device id collision: line-pump-1 already stands for api/line/Pump 1");
    const counters = svc.sinks.list()[0]!.counters;
    expect(counters.delivered).toBe(N);
    // Registered once per device although connections failed and messages were redelivered.
    expect(Object.fromEntries(central.registrations)).toEqual({ "line-pump-1": 1, "line-pump-2": 1 });
  } finally {
    await svc.stop();
  }
});

it("a disabled device's messages are dead-lettered with the reason while the route's other devices go on", async () => {
  const central = new FakeCentral();
  const svc = await bridge(central, "sink-disabled");
  try {
    await api(svc.service.url).createApplication({
      application: { id: "plant2", idScope: "0ne00000002", enrollmentGroup: { credential: { case: "groupKey", value: GROUP_KEY } } },
    });
    await routeInto(bus, "into-plant2", "cell", "plant2");
    central.disabled.add("cell-bad");
    for (let b = 0; b < 6; b++) await bus.publishEvents(events("cell", b % 2 === 0 ? "bad" : "good", b * 5, 5));
    await until(() => central.messageIds("cell-good").length >= 15, { timeoutMs: 15_000, what: "the good device's messages" });
    await until(async () => (await deadLetters(bus, "into-plant2")).length >= 3, { timeoutMs: 15_000, what: "3 dead letters" });
    const letters = await deadLetters(bus, "into-plant2");
    expect(letters).toHaveLength(3);
    for (const l of letters) {
      expect(l.reason).toMatch(/^IoT Central refused the device's telemetry: device cell-bad is disabled/);
      expect(l.subject).toBe("telemetry.v1.api.cell.bad");
    }
    expect(central.messageIds("cell-bad")).toHaveLength(0);
    expect(central.messageIds("cell-good")).toHaveLength(15);
    const device = await api(svc.service.url).getDevice({ applicationId: "plant2", deviceId: "cell-bad" });
    expect(device.device?.lastError).toMatch(/disabled/);
    expect(device.device?.source).toBe("api/cell/bad");
  } finally {
    await svc.stop();
  }
});

it("a restart connects from the cached registrations: no device registers again", async () => {
  const central = new FakeCentral();
  let svc = await bridge(central, "sink-restart");
  try {
    await api(svc.service.url).createApplication({
      application: { id: "plant3", idScope: "0ne00000003", enrollmentGroup: { credential: { case: "groupKey", value: GROUP_KEY } } },
    });
    await routeInto(bus, "into-plant3", "hall", "plant3");
    await bus.publishEvents([...events("hall", "a", 0, 5), ...events("hall", "b", 0, 5)]);
    await until(() => central.sent.length >= 10, { timeoutMs: 10_000, what: "first messages" });
    await svc.stop();
    svc = await bridge(central, "sink-restart");
    await bus.publishEvents([...events("hall", "a", 5, 5), ...events("hall", "b", 5, 5)]);
    await until(() => new Set(central.messageIds()).size >= 20, { timeoutMs: 10_000, what: "messages after the restart" });
    expect(Object.fromEntries(central.registrations)).toEqual({ "hall-a": 1, "hall-b": 1 });
    expect(Object.fromEntries(central.opens)).toEqual({ "hall-a": 2, "hall-b": 2 });
  } finally {
    await svc.stop();
  }
});

it("a message whose device takes longer than IOTC_SINK_ACK_WAIT_MS to connect is not redelivered meanwhile: sent once", async () => {
  const central = new FakeCentral();
  central.openDelayMs = 2500;
  const svc = await bridge(central, "sink-slow", { IOTC_SINK_ACK_WAIT_MS: "1000" });
  try {
    await api(svc.service.url).createApplication({
      application: { id: "slow", idScope: "0ne00000003", enrollmentGroup: { credential: { case: "groupKey", value: GROUP_KEY } } },
    });
    await routeInto(bus, "into-slow", "kiln", "slow");
    await bus.publishEvents(events("kiln", "k1", 0, 1));
    await until(() => central.sent.length >= 1, { timeoutMs: 10_000, what: "the message sent" });
    await until(async () => (await consumerBacklog(bus, routeConsumerName("into-slow", Platform.IOT_CENTRAL)))?.ackPending === 0, {
      timeoutMs: 5_000,
      what: "the message acknowledged",
    });
    // A redelivery during the 2.5 s open would have been a second delivery sending the same message again.
    await new Promise((r) => setTimeout(r, 1500));
    expect(central.messageIds()).toEqual(["kiln-k1-0"]);
    expect(svc.sinks.list().find((s) => s.route.id === "into-slow")?.counters.delivered).toBe(1);
  } finally {
    await svc.stop();
  }
});
