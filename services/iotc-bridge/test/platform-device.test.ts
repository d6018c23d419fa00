/**
 * The device client against the IoT Central emulator, through its wire protocol only: telemetry, reported and
 * writable properties, commands, offline commands, the registration cache, refusals, drops and SAS renewal.
 */
import { randomBytes } from "node:crypto";
import tls from "node:tls";
import { type IotcEmulator, startIotcEmulator } from "@meridian/emulator-iotc";
import { until } from "@meridian/testing";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createIotcDevice,
  type DeviceConnectionState,
  type DeviceHandlers,
  type DeviceRegistration,
  type DirectMethodRequest,
  type IotcDevice,
  IotcDeviceDisabledError,
  type IotcDeviceOptions,
  IotcInvalidArgumentError,
  IotcMessageTooLargeError,
  IotcNotConnectedError,
  IotcThrottledError,
  IotcTimeoutError,
  MAX_TELEMETRY_BYTES,
  type OfflineCommand,
  type ProvisioningEndpoint,
  type RegistrationStore,
  type WritablePropertyChange,
} from "../src/platform/index.js";

class MemoryStore implements RegistrationStore {
  readonly entries = new Map<string, DeviceRegistration>();
  async get(id: string) {
    return this.entries.get(id);
  }
  async put(r: DeviceRegistration) {
    this.entries.set(r.registrationId, r);
  }
  async delete(id: string) {
    this.entries.delete(id);
  }
}

interface Opened {
  device: IotcDevice;
  states: Array<{ state: DeviceConnectionState; error?: Error }>;
  changes: WritablePropertyChange[];
  commands: DirectMethodRequest[];
  offline: OfflineCommand[];
}

let emu: IotcEmulator;
let endpoint: ProvisioningEndpoint;
const defaultCas = tls.getCACertificates("default");
const open: IotcDevice[] = [];

beforeAll(async () => {
  emu = await startIotcEmulator();
  tls.setDefaultCACertificates([...defaultCas, emu.caPem]);
  endpoint = { idScope: emu.idScope, provisioningHost: emu.mqttHost, gatewayHost: emu.mqttHost };
});

afterAll(async () => {
  tls.setDefaultCACertificates(defaultCas);
  await emu?.stop();
});

beforeEach(() => emu.clearFaults());

afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

let n = 0;
const newId = (prefix: string) => `${prefix}-${++n}-${randomBytes(3).toString("hex")}`;
const summary = (id: string) => emu.devices().find((d) => d.deviceId === id);

function makeDevice(id: string, options: Partial<IotcDeviceOptions> & { handlers?: DeviceHandlers } = {}): Opened {
  const opened: Opened = { states: [], changes: [], commands: [], offline: [] } as unknown as Opened;
  const handlers: DeviceHandlers = {
    state: (state, error) => opened.states.push({ state, ...(error ? { error } : {}) }),
    writableProperty: async (change) => {
      opened.changes.push(change);
      return { ac: 200, ad: "applied" };
    },
    command: (request) => {
      opened.commands.push(request);
      void request.respond(200, { received: request.name, payload: request.payload });
    },
    offlineCommand: async (command) => {
      opened.offline.push(command);
    },
    ...options.handlers,
  };
  opened.device = createIotcDevice({
    endpoint,
    registrationId: id,
    credential: { kind: "group_key", groupKey: emu.groupKey },
    store: new MemoryStore(),
    ca: emu.caPem,
    reconnect: { initialMs: 100, maxMs: 1000 },
    ...options,
    handlers,
  });
  open.push(opened.device);
  return opened;
}

describe("an IoT Central device on the emulator", () => {
  it("telemetry with a component, properties, message id and creation time arrives as JSON UTF-8", async () => {
    const id = newId("telemetry");
    const { device } = makeDevice(id, { modelId: "dtmi:meridian:Pump;1" });
    await device.open();
    expect(device.state).toBe("connected");
    const at = new Date("2026-11-30T12:00:00.123Z");
    await device.sendTelemetry(
      { temperature: 21.5 },
      { component: "thermostat1", properties: { site: "north" }, messageId: "m-1", creationTime: at },
    );
    await device.sendTelemetry({ pressure: 2 });
    const [first, second] = emu.telemetry(id);
    expect(first).toMatchObject({
      json: { temperature: 21.5 },
      component: "thermostat1",
      contentType: "application/json",
      contentEncoding: "utf-8",
      messageId: "m-1",
      properties: { site: "north", "iothub-creation-time-utc": at.toISOString() },
    });
    expect(second?.component).toBeUndefined();
    expect(second?.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(summary(id)?.modelId).toBe("dtmi:meridian:Pump;1");
  });

  it("a message over 256 KiB (body and properties) is refused before sending; bad options name the field", async () => {
    const id = newId("large");
    const { device } = makeDevice(id);
    await device.open();
    const err = await device.sendTelemetry({ blob: "x".repeat(MAX_TELEMETRY_BYTES) }).catch((e) => e);
    expect(err).toBeInstanceOf(IotcMessageTooLargeError);
    await expect(device.sendTelemetry({ a: 1 }, { component: "bad name" })).rejects.toThrow(/^component: /);
    await expect(device.sendTelemetry({ a: 1 }, { properties: { "$.sub": "x" } })).rejects.toBeInstanceOf(IotcInvalidArgumentError);
    expect(emu.telemetry(id)).toHaveLength(0);
  });

  it("reported properties: the default component as is, a component nested with __t: c; the new $version comes back", async () => {
    const id = newId("reported");
    const { device } = makeDevice(id);
    await device.open();
    const v1 = await device.updateReportedProperties({ serialNumber: "123" });
    const v2 = await device.updateReportedProperties({ maxTempSinceLastReboot: 25.3 }, "thermostat1");
    expect(typeof v1).toBe("number");
    expect(v2).toBe((v1 as number) + 1);
    expect(emu.twin(id).reported).toMatchObject({ serialNumber: "123", thermostat1: { __t: "c", maxTempSinceLastReboot: 25.3 } });
    const twin = await device.getTwin();
    expect(twin.reported).toMatchObject({ serialNumber: "123", $version: v2 });
  });

  it("a desired update reaches the handler and is acknowledged with {value, ac, ad, av}", async () => {
    const id = newId("desired");
    const opened = makeDevice(id);
    await opened.device.open();
    const v = emu.updateDesired(id, { targetTemperature: 42, thermostat1: { __t: "c", target: 21.8 } });
    await until(() => (emu.twin(id).reported.thermostat1 as Record<string, unknown> | undefined)?.target !== undefined);
    expect(opened.changes).toEqual([
      { name: "targetTemperature", value: 42, version: v },
      { component: "thermostat1", name: "target", value: 21.8, version: v },
    ]);
    expect(emu.twin(id).reported).toMatchObject({
      targetTemperature: { value: 42, ac: 200, ad: "applied", av: v },
      thermostat1: { __t: "c", target: { value: 21.8, ac: 200, ad: "applied", av: v } },
    });
  });

  it("IoT Hub closing the connection while it is being set up (twin not answered yet) ends open() at once with IotcNotConnectedError, not after the operation timeout", async () => {
    const id = newId("setup-drop");
    const opened = makeDevice(id, { operationTimeoutMs: 20_000 });
    emu.setFault({ dropTwinResponses: 1 });
    const opening = opened.device.open().then(
      () => undefined,
      (err: unknown) => err,
    );
    await until(() => summary(id)?.connected === true, { timeoutMs: 10_000, intervalMs: 20 });
    emu.disconnect(id);
    const err = await opening;
    expect(err).toBeInstanceOf(IotcNotConnectedError);
    expect((err as Error).message).toMatch(/while it was being set up/);
    expect(opened.device.state).not.toBe("connected");
  });

  it("a handler that rejects is acknowledged with ac 500 and its message", async () => {
    const id = newId("refused");
    const opened = makeDevice(id, {
      handlers: {
        writableProperty: async () => {
          throw new Error("out of range");
        },
      },
    });
    await opened.device.open();
    const v = emu.updateDesired(id, { setpoint: 999 });
    await until(() => emu.twin(id).reported.setpoint !== undefined);
    expect(emu.twin(id).reported.setpoint).toEqual({ value: 999, ac: 500, ad: "out of range", av: v });
  });

  it("a handler that fails for now (retryable: its queue is down) leaves the change unacknowledged and is offered it again until it takes it", async () => {
    const id = newId("retry");
    let calls = 0;
    const opened = makeDevice(id, {
      reconnect: { initialMs: 100, maxMs: 200 },
      handlers: {
        writableProperty: async (change) => {
          calls++;
          if (calls < 3) throw Object.assign(new Error("NATS is not connected"), { retryable: true });
          return { ac: 200, ad: "stored", value: change.value };
        },
      },
    });
    await opened.device.open();
    const v = emu.updateDesired(id, { fan: 3 });
    await until(() => emu.twin(id).reported.fan !== undefined, { timeoutMs: 10_000 });
    // Never ac 500: nothing was acknowledged before the handler took the change.
    expect(emu.twin(id).reported.fan).toEqual({ value: 3, ac: 200, ad: "stored", av: v });
    expect(calls).toBe(3);
  });

  it("a writable property handler that never answers is left pending after commandTimeoutMs; later properties still go through", async () => {
    const id = newId("stuck");
    const opened = makeDevice(id, {
      commandTimeoutMs: 1000,
      handlers: {
        writableProperty: (change) => (change.name === "stuck" ? new Promise(() => {}) : Promise.resolve({ ac: 200 })),
      },
    });
    await opened.device.open();
    emu.updateDesired(id, { stuck: 1 });
    const v = emu.updateDesired(id, { ok: 2 });
    await until(() => emu.twin(id).reported.ok !== undefined, { timeoutMs: 5000 });
    expect(emu.twin(id).reported.ok).toEqual({ value: 2, ac: 200, av: v });
    expect(emu.twin(id).reported.stuck).toBeUndefined();
  });

  it("desired properties changed while offline are acknowledged when the device opens (twin read at connect)", async () => {
    const id = newId("offline-desired");
    const first = makeDevice(id);
    await first.device.open();
    await first.device.close();
    const v = emu.updateDesired(id, { fanSpeed: 3 });
    const second = makeDevice(id);
    await second.device.open();
    expect(second.changes).toEqual([{ name: "fanSpeed", value: 3, version: v }]);
    expect(emu.twin(id).reported.fanSpeed).toMatchObject({ value: 3, ac: 200, av: v });
  });

  it("a command of any name (component*command) reaches the handler and its response reaches the caller", async () => {
    const id = newId("command");
    const opened = makeDevice(id);
    await opened.device.open();
    const result = await emu.invokeMethod(id, "thermostat1*getMaxMinReport", { since: "2026-01-01" }, { timeoutSeconds: 10 });
    expect(result).toEqual({ status: 200, payload: { received: "getMaxMinReport", payload: { since: "2026-01-01" } } });
    const request = opened.commands[0]!;
    expect(request).toMatchObject({ component: "thermostat1", name: "getMaxMinReport", payload: { since: "2026-01-01" } });
    expect(request.deadline.getTime()).toBeGreaterThan(Date.now());
    await expect(request.respond(200)).rejects.toThrow(/already answered/);
    expect(await emu.invokeMethod(id, "reboot", null, { timeoutSeconds: 10 })).toMatchObject({
      status: 200,
      payload: { received: "reboot" },
    });
  });

  it("a command with no handler is answered 501 at once, not left to time out", async () => {
    const id = newId("no-handler");
    const { device } = makeDevice(id, { handlers: { command: undefined } });
    await device.open();
    const result = await emu.invokeMethod(id, "reboot", {}, { timeoutSeconds: 10 });
    expect(result.status).toBe(501);
  });

  it("a command handler that rejects (async) or throws is answered 500 with its message", async () => {
    const id = newId("cmd-fails");
    const { device } = makeDevice(id, {
      handlers: {
        command: (async (request: DirectMethodRequest) => {
          if (request.name === "sync") throw new Error("no");
          throw new Error("valve stuck");
        }) as DeviceHandlers["command"],
      },
    });
    await device.open();
    expect(await emu.invokeMethod(id, "open", {}, { timeoutSeconds: 10 })).toEqual({ status: 500, payload: { error: "valve stuck" } });
  });

  it("an offline command (C2D with method-name) reaches the handler with its component, payload and properties", async () => {
    const id = newId("c2d");
    const opened = makeDevice(id);
    await opened.device.open();
    emu.sendC2D(id, JSON.stringify({ delaySeconds: 5 }), { "method-name": "thermostat1*reboot", extra: "1" });
    await until(() => opened.offline.length === 1);
    expect(opened.offline[0]).toMatchObject({
      component: "thermostat1",
      name: "reboot",
      payload: { delaySeconds: 5 },
      properties: { "method-name": "thermostat1*reboot", extra: "1" },
    });
  });

  it("an offline command whose handler rejects is not acknowledged, and comes again on the next connection", async () => {
    const id = newId("c2d-retry");
    let calls = 0;
    const seen: OfflineCommand[] = [];
    const opened = makeDevice(id, {
      handlers: {
        offlineCommand: async (command) => {
          seen.push(command);
          if (++calls === 1) throw new Error("bus not reachable");
        },
      },
    });
    await opened.device.open();
    emu.sendC2D(id, JSON.stringify({ n: 1 }), { "method-name": "reset" });
    await until(() => seen.length === 1);
    emu.disconnect(id);
    await until(() => seen.length === 2, { timeoutMs: 15_000 });
    expect(seen[1]).toMatchObject({ name: "reset", payload: { n: 1 } });
    expect(seen[1]?.messageId).toBe(seen[0]?.messageId);
  });

  it("a restart with a warm store does not register again", async () => {
    const id = newId("warm");
    const store = new MemoryStore();
    const first = makeDevice(id, { store });
    await first.device.open();
    await first.device.close();
    expect(summary(id)?.registrations).toBe(1);
    const second = makeDevice(id, { store });
    await second.device.open();
    expect(second.device.state).toBe("connected");
    expect(summary(id)).toMatchObject({ registrations: 1, connects: 2 });
    expect(second.device.registration?.assignedHub).toBe(emu.hubHostName);
  });

  it("the hub is trusted through `ca` when the default CAs lack its CA; without `ca` the untrusted hub is IotcNotConnectedError saying so", async () => {
    const id = newId("trust");
    const store = new MemoryStore();
    const first = makeDevice(id, { store });
    await first.device.open();
    await first.device.close();
    // From here no DPS (the store has the registration) and the default CAs no longer hold the emulator's.
    tls.setDefaultCACertificates(defaultCas);
    try {
      const withCa = makeDevice(id, { store });
      await withCa.device.open();
      expect(withCa.device.state).toBe("connected");
      await withCa.device.close();
      const withoutCa = makeDevice(id, { store, ca: undefined });
      const err = await withoutCa.device.open().catch((e) => e);
      expect(err).toBeInstanceOf(IotcNotConnectedError);
      expect(err.message).toMatch(/not trusted/);
    } finally {
      tls.setDefaultCACertificates([...defaultCas, emu.caPem]);
    }
  });

  it("a stored registration the hub refuses is registered again once, and the store updated", async () => {
    const id = newId("moved");
    const store = new MemoryStore();
    const first = makeDevice(id, { store });
    await first.device.open();
    await first.device.close();
    // The device was moved to another hub since: the cached hub name no longer signs a token the hub accepts.
    await store.put({ ...store.entries.get(id)!, assignedHub: "iotc-old.azure-devices.net" });
    const second = makeDevice(id, { store });
    await second.device.open();
    expect(second.device.state).toBe("connected");
    expect(summary(id)?.registrations).toBe(2);
    expect(store.entries.get(id)?.assignedHub).toBe(emu.hubHostName);
  });

  it("a device disabled while connected: dropped, registering again says disabled → state failed with IotcDeviceDisabledError, no more reconnects", async () => {
    const id = newId("disable");
    const opened = makeDevice(id);
    await opened.device.open();
    emu.setDeviceStatus(id, "disabled");
    await until(() => opened.device.state === "failed", { timeoutMs: 15_000 });
    const failed = opened.states.at(-1)!;
    expect(failed.state).toBe("failed");
    expect(failed.error).toBeInstanceOf(IotcDeviceDisabledError);
    const connects = summary(id)?.connects;
    await new Promise((r) => setTimeout(r, 1500));
    expect(summary(id)?.connects).toBe(connects);
    await expect(opened.device.sendTelemetry({ a: 1 })).rejects.toBeInstanceOf(IotcNotConnectedError);
    // open() again on a disabled device fails the same way.
    await expect(opened.device.open()).rejects.toBeInstanceOf(IotcDeviceDisabledError);
    expect(opened.device.state).toBe("failed");
  });

  it("a dropped connection is reconnected with backoff and the device still gets commands and desired updates", async () => {
    const id = newId("drop");
    const opened = makeDevice(id);
    await opened.device.open();
    emu.disconnect(id);
    await until(() => opened.states.some((s) => s.state === "disconnected"));
    await until(() => opened.device.state === "connected", { timeoutMs: 15_000 });
    expect(opened.states.map((s) => s.state)).toEqual(["connecting", "connected", "disconnected", "connecting", "connected"]);
    expect(opened.states[2]?.error).toBeInstanceOf(IotcNotConnectedError);
    expect(await emu.invokeMethod(id, "ping", { n: 1 }, { timeoutSeconds: 10 })).toMatchObject({ status: 200 });
    const v = emu.updateDesired(id, { mode: "eco" });
    await until(() => emu.twin(id).reported.mode !== undefined);
    expect(emu.twin(id).reported.mode).toMatchObject({ value: "eco", av: v });
    expect(summary(id)?.registrations).toBe(1);
  });

  it("IoT Hub answering CONNACK 3 (throttled) on reconnect: retried until it accepts", async () => {
    const id = newId("connack3");
    const opened = makeDevice(id);
    await opened.device.open();
    emu.setFault({ connackServerUnavailable: 2 });
    emu.disconnect(id);
    await until(() => opened.states.filter((s) => s.state === "connected").length === 2, { timeoutMs: 15_000 });
    const refused = opened.states.filter((s) => s.error instanceof IotcThrottledError);
    expect(refused.length).toBe(2);
  });

  it("no PUBACK within the operation timeout is IotcTimeoutError (retryable); not connected is IotcNotConnectedError", async () => {
    const id = newId("puback");
    const { device } = makeDevice(id, { operationTimeoutMs: 1000 });
    await expect(device.sendTelemetry({ a: 1 })).rejects.toBeInstanceOf(IotcNotConnectedError);
    await device.open();
    emu.setFault({ dropPubacks: true });
    const err = await device.sendTelemetry({ a: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(IotcTimeoutError);
    expect(err.retryable).toBe(true);
  });

  it("a twin request answered 429 is IotcThrottledError", async () => {
    const id = newId("twin429");
    const { device } = makeDevice(id);
    await device.open();
    emu.setFault({ twinThrottle: 1 });
    await expect(device.getTwin()).rejects.toBeInstanceOf(IotcThrottledError);
    await expect(device.getTwin()).resolves.toMatchObject({ desired: {}, reported: {} });
  });

  it("SAS renewal with a 10 s token: the device keeps its connection and still gets desired updates and commands", async () => {
    const id = newId("sas");
    const opened = makeDevice(id, { tokenValiditySeconds: 10, tokenRenewalMarginSeconds: 5 });
    await opened.device.open();
    const connectsBefore = summary(id)!.connects;
    // Two renewals (every 5 s), and past the first token's expiry.
    await new Promise((r) => setTimeout(r, 12_000));
    expect(summary(id)!.connects).toBeGreaterThanOrEqual(connectsBefore + 2);
    expect(opened.states.map((s) => s.state)).toEqual(["connecting", "connected"]);
    const v = emu.updateDesired(id, { interval: 30 });
    await until(() => emu.twin(id).reported.interval !== undefined);
    expect(emu.twin(id).reported.interval).toMatchObject({ value: 30, av: v });
    expect(await emu.invokeMethod(id, "ping", {}, { timeoutSeconds: 10 })).toMatchObject({ status: 200 });
    await opened.device.sendTelemetry({ alive: true });
    expect(emu.telemetry(id)).toHaveLength(1);
  }, 40_000);

  it("X.509 device: registers with its certificate and connects to the hub with it", async () => {
    const id = newId("x509dev");
    const cert = emu.issueDeviceCertificate(id);
    const { device } = makeDevice(id, { credential: { kind: "x509", certificateChainPem: cert.certPem, privateKeyPem: cert.keyPem } });
    await device.open();
    await device.sendTelemetry({ x: 1 });
    expect(emu.telemetry(id)).toHaveLength(1);
    expect(device.registration?.credential.kind).toBe("x509");
  });
});
