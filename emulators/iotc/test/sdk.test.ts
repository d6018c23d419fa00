/**
 * The unmodified official Azure IoT device SDKs against the emulator: DPS over MQTT (device key, group key, X.509),
 * then the hub client with GatewayHostName pointing at the emulator. The DPS MQTT transport has no `ca` option, so
 * the emulator's CA joins the process's default trust store for these tests (Node 24 setDefaultCACertificates).
 */
import tls from "node:tls";
import { Client, Message, SharedAccessKeyAuthenticationProvider, type Twin } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { ProvisioningDeviceClient, type RegistrationResult } from "azure-iot-provisioning-device";
import { Mqtt as ProvisioningMqtt } from "azure-iot-provisioning-device-mqtt";
import { SymmetricKeySecurityClient } from "azure-iot-security-symmetric-key";
import { X509Security } from "azure-iot-security-x509";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { deriveDeviceKey, type IotcEmulator, startIotcEmulator } from "../src/index.js";

let e: IotcEmulator;
const defaultCas = tls.getCACertificates("default");
const clients: Client[] = [];

beforeAll(async () => {
  e = await startIotcEmulator();
  tls.setDefaultCACertificates([...defaultCas, e.caPem]);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
});
afterAll(async () => {
  tls.setDefaultCACertificates(defaultCas);
  await e.stop();
});

/** The security packages carry their own copy of azure-iot-common, so their types differ nominally from the client's. */
type SecurityClient = Parameters<typeof ProvisioningDeviceClient.create>[3];

function registerWithKey(id: string, key: string, payload?: object): Promise<RegistrationResult> {
  const client = ProvisioningDeviceClient.create(
    e.mqttHost,
    e.idScope,
    new ProvisioningMqtt(),
    new SymmetricKeySecurityClient(id, key) as unknown as SecurityClient,
  );
  if (payload) client.setProvisioningPayload(payload);
  return client.register() as Promise<RegistrationResult>;
}

async function openDevice(cs: string, options: Record<string, unknown> = {}): Promise<Client> {
  const client = Client.fromConnectionString(cs, Mqtt);
  clients.push(client);
  await client.setOptions({ ca: e.caPem, ...options });
  await client.open();
  return client;
}

function connectionString(r: RegistrationResult, key: string): string {
  return `HostName=${r.assignedHub};DeviceId=${r.deviceId};SharedAccessKey=${key};GatewayHostName=${e.mqttHost}`;
}

const eventually = async (check: () => void, timeoutMs = 5000): Promise<void> => {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
};

/** Invokes until the device has subscribed: the SDK's method SUBSCRIBE goes out after onDeviceMethod returns. */
async function methodAnswers(id: string, name: string, payload?: unknown) {
  let result = await e.invokeMethod(id, name, payload);
  for (let i = 0; result.status === 404 && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    result = await e.invokeMethod(id, name, payload);
  }
  return result;
}

describe("official Node SDK", () => {
  it("registers with a group key (model id in the payload), opens, sends telemetry, reads and patches the twin, gets desired updates, methods and C2D", async () => {
    const id = "sdk-group-1";
    const key = deriveDeviceKey(e.groupKey, id);
    const r = await registerWithKey(id, key, { modelId: "dtmi:com:example:Thermostat;1" });
    expect(r).toMatchObject({ assignedHub: e.hubHostName, deviceId: id, status: "assigned" });

    const client = await openDevice(connectionString(r, key), { modelId: "dtmi:com:example:Thermostat;2" });
    const msg = new Message(JSON.stringify({ temperature: 21.5 }));
    msg.contentType = "application/json";
    msg.contentEncoding = "utf-8";
    msg.messageId = "m-1";
    msg.properties.add("dt-subject", "thermostat1");
    msg.properties.add("iothub-creation-time-utc", "2026-01-01T00:00:00Z");
    await client.sendEvent(msg);
    expect(e.telemetry(id)).toHaveLength(1);
    expect(e.telemetry(id)[0]).toMatchObject({
      json: { temperature: 21.5 },
      contentType: "application/json",
      contentEncoding: "utf-8",
      messageId: "m-1",
      component: "thermostat1",
      properties: { "iothub-creation-time-utc": "2026-01-01T00:00:00Z" },
    });
    expect(e.devices().find((d) => d.deviceId === id)).toMatchObject({
      modelId: "dtmi:com:example:Thermostat;2",
      registrations: 1,
      connects: 1,
      connected: true,
    });

    e.updateDesired(id, { targetTemperature: 42 });
    const twin: Twin = await client.getTwin();
    expect(twin.properties.desired.targetTemperature).toBe(42);
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ serialNumber: "123", thermostat1: { __t: "c", max: 25 } }, (err?: Error) =>
        err ? reject(err) : resolve(),
      ),
    );
    expect(e.twin(id).reported).toEqual({ serialNumber: "123", thermostat1: { __t: "c", max: 25 }, $version: 2 });

    const desired: unknown[] = [];
    twin.on("properties.desired", (d: unknown) => desired.push(d));
    await eventually(() => expect(desired.length).toBeGreaterThan(0)); // the whole doc fires once at subscribe
    desired.length = 0;
    const v = e.updateDesired(id, { targetTemperature: 43 });
    await eventually(() => expect(desired).toContainEqual({ targetTemperature: 43, $version: v }));

    client.onDeviceMethod("thermostat1*getMaxMinReport", (req, res) => {
      res.send(200, { got: req.payload }, () => undefined);
    });
    const result = await methodAnswers(id, "thermostat1*getMaxMinReport", { since: "2026-01-01" });
    expect(result).toEqual({ status: 200, payload: { got: { since: "2026-01-01" } } });
    // A method without a payload arrives as JSON null, which the SDK parses.
    client.onDeviceMethod("reboot", (req, res) => res.send(202, { payload: req.payload ?? "none" }, () => undefined));
    await new Promise((r) => setTimeout(r, 200));
    expect(await e.invokeMethod(id, "reboot")).toEqual({ status: 202, payload: { payload: "none" } });

    const c2d = new Promise<Message>((resolve) => client.on("message", (m: Message) => resolve(m)));
    await new Promise((r) => setTimeout(r, 300));
    e.sendC2D(id, JSON.stringify({ setpoint: 1 }), { "method-name": "thermostat1*setpoint" });
    const m = await c2d;
    expect(JSON.parse(m.getBytes().toString())).toEqual({ setpoint: 1 });
    expect(m.properties.getValue("method-name")).toBe("thermostat1*setpoint");
    await client.complete(m);
  });

  it("registers with an individual enrollment key", async () => {
    const id = "sdk-individual-1";
    const key = Buffer.alloc(32, 5).toString("base64");
    e.enrollDevice(id, { deviceKey: key });
    const r = await registerWithKey(id, key);
    expect(r.deviceId).toBe(id);
    const client = await openDevice(connectionString(r, key));
    await client.sendEvent(new Message("{}"));
    expect(e.telemetry(id)).toHaveLength(1);
  });

  it("fails registration with a DeviceRegistrationFailedError when DPS answers failed", async () => {
    const id = "sdk-failed-1";
    e.setFault({ dpsFailed: { count: 1 } });
    const err = await registerWithKey(id, deriveDeviceKey(e.groupKey, id)).catch((x: Error) => x);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe("ProvisioningRegistrationFailedError");
  });

  it("registers and connects with X.509 (the enrollment CA's certificate, CN = registration id)", async () => {
    const id = "sdk-x509-1";
    const cert = e.issueDeviceCertificate(id);
    const dps = ProvisioningDeviceClient.create(
      e.mqttHost,
      e.idScope,
      new ProvisioningMqtt(),
      new X509Security(id, { cert: cert.certPem, key: cert.keyPem }) as unknown as SecurityClient,
    );
    const r = (await dps.register()) as RegistrationResult;
    expect(r.deviceId).toBe(id);
    // The SDK's X.509 connection string ignores GatewayHostName (device_client.js builds the provider from HostName and
    // DeviceId only), so the socket's host:port goes in HostName; the hub does not check the username's host for X.509.
    expect(r.assignedHub).toBe(e.hubHostName);
    const client = await openDevice(`HostName=${e.mqttHost};DeviceId=${id};x509=true`, {
      cert: cert.certPem,
      key: cert.keyPem,
    });
    await client.sendEvent(new Message('{"x":1}'));
    expect(e.telemetry(id)[0]?.json).toEqual({ x: 1 });
  });

  it("reconnects by itself after a network drop and keeps receiving desired updates, methods and C2D queued meanwhile", async () => {
    const id = "sdk-drop-1";
    const key = deriveDeviceKey(e.groupKey, id);
    const r = await registerWithKey(id, key);
    const client = await openDevice(connectionString(r, key));
    const twin = await client.getTwin();
    const desired: Array<Record<string, unknown>> = [];
    twin.on("properties.desired", (d: Record<string, unknown>) => desired.push(d));
    client.onDeviceMethod("ping", (_req, res) => res.send(200, { pong: true }, () => undefined));
    const c2d: string[] = [];
    client.on("message", (m: Message) => c2d.push(m.getBytes().toString()));
    await methodAnswers(id, "ping");

    // The SDK reconnects at once (its first retry is immediate): the C2D message goes out as the socket drops.
    e.disconnect(id);
    e.sendC2D(id, "sent while offline");
    await eventually(() => expect(e.devices().find((d) => d.deviceId === id)).toMatchObject({ connected: true, connects: 2 }), 10_000);

    await eventually(() => expect(c2d).toContain("sent while offline"));
    const v = e.updateDesired(id, { afterDrop: 1 });
    await eventually(() => expect(desired).toContainEqual({ afterDrop: 1, $version: v }));
    expect(await e.invokeMethod(id, "ping")).toEqual({ status: 200, payload: { pong: true } });
    expect(e.devices().find((d) => d.deviceId === id)?.registrations).toBe(1);
  }, 20_000);

  it("renews its SAS token (reconnects) and keeps receiving desired updates and methods on the restored session", async () => {
    const id = "sdk-renewal-1";
    const key = deriveDeviceKey(e.groupKey, id);
    const r = await registerWithKey(id, key);
    // Tokens valid 4 s, renewed 2 s before expiry: the SDK reconnects every 2 s, the emulator closes at se.
    const provider = SharedAccessKeyAuthenticationProvider.fromConnectionString(connectionString(r, key), 4, 2);
    const client = Client.fromAuthenticationProvider(provider, Mqtt);
    clients.push(client);
    await client.setOptions({ ca: e.caPem });
    await client.open();
    const twin = await client.getTwin();
    const desired: Array<Record<string, unknown>> = [];
    twin.on("properties.desired", (d: Record<string, unknown>) => desired.push(d));
    client.onDeviceMethod("ping", (_req, res) => res.send(200, { pong: true }, () => undefined));
    await new Promise((r) => setTimeout(r, 7000));
    const connects = e.devices().find((d) => d.deviceId === id)!.connects;
    expect(connects).toBeGreaterThanOrEqual(3);

    const v = e.updateDesired(id, { afterRenewal: true });
    await eventually(() => expect(desired).toContainEqual({ afterRenewal: true, $version: v }));
    expect(await e.invokeMethod(id, "ping")).toEqual({ status: 200, payload: { pong: true } });
  }, 20_000);
});
