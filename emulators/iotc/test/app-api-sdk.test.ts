/**
 * The application REST API against a device running the unmodified official Node SDK (azure-iot-device over MQTT):
 * what an operator does through the API must arrive as the SDK's own events. The device is provisioned over MQTT with
 * the wire helpers (DPS is sdk.test.ts's subject), then opened with a connection string whose GatewayHostName is the
 * emulator.
 */
import { Client, Message, type Twin } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type IotcEmulator, startIotcEmulator } from "../src/index.js";
import { api } from "./app-api-client.js";
import { dpsToken, groupDeviceKey, registerOverMqtt } from "./helpers.js";

let e: IotcEmulator;
const clients: Client[] = [];

beforeAll(async () => {
  e = await startIotcEmulator({ assigningPolls: 0 });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
});
afterAll(() => e.stop());

async function sdkDevice(id: string, modelId: string): Promise<Client> {
  const key = groupDeviceKey(e, id);
  const answers = await registerOverMqtt(e, id, { password: dpsToken(e, id, key) }, { modelId });
  expect(answers.at(-1)!.body.status).toBe("assigned");
  const client = Client.fromConnectionString(
    `HostName=${e.hubHostName};DeviceId=${id};SharedAccessKey=${key};GatewayHostName=${e.mqttHost}`,
    Mqtt,
  );
  clients.push(client);
  await client.setOptions({ ca: e.caPem, modelId });
  await client.open();
  return client;
}

async function eventually<T>(attempt: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await attempt();
    if (done(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("application API with the official device SDK", () => {
  it("lists the SDK device with its model id, runs its commands, writes a property it acknowledges, reads its telemetry", async () => {
    const id = "sdk-app-1";
    const client = await sdkDevice(id, "dtmi:com:example:Thermostat;1");
    expect((await api(e, "GET", `/api/devices/${id}`)).json).toMatchObject({
      template: "dtmi:com:example:Thermostat;1",
      provisioned: true,
      enabled: true,
    });

    client.onDeviceMethod("thermostat1*getMaxMinReport", (req, res) => {
      res.send(200, { since: req.payload, maxTemp: 31 }, () => undefined);
    });
    client.onDeviceMethod("reboot", (req, res) => res.send(200, { payload: req.payload ?? "none" }, () => undefined));
    // The SDK subscribes to methods asynchronously after onDeviceMethod returns.
    const component = await eventually(
      () => api(e, "POST", `/api/devices/${id}/components/thermostat1/commands/getMaxMinReport`, { body: { request: "2026-01-01" } }),
      (a) => a.status !== 404,
    );
    expect(component.status).toBe(201);
    expect(component.json).toMatchObject({ response: { since: "2026-01-01", maxTemp: 31 }, responseCode: 200 });
    // A command without a request reaches the SDK as JSON null, which it parses.
    const bare = await api(e, "POST", `/api/devices/${id}/commands/reboot`, { body: {} });
    expect(bare.json).toMatchObject({ response: { payload: "none" }, responseCode: 200 });

    const twin: Twin = await client.getTwin();
    const acked = new Promise<number>((resolve) => {
      twin.on("properties.desired", (patch: Record<string, unknown>) => {
        if (patch.targetTemperature === undefined) return;
        const av = patch.$version as number;
        twin.properties.reported.update({ targetTemperature: { value: patch.targetTemperature, ac: 200, ad: "completed", av } }, () =>
          resolve(av),
        );
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    const write = await api(e, "PATCH", `/api/devices/${id}/properties`, { body: { targetTemperature: 23.5 } });
    expect(write.status).toBe(202);
    const av = await acked;
    expect(av).toBe(write.json.$metadata.targetTemperature.desiredVersion);
    const props = await eventually(
      () => api(e, "GET", `/api/devices/${id}/properties`),
      (a) => a.json.targetTemperature !== undefined,
    );
    expect(props.json).toMatchObject({
      targetTemperature: 23.5,
      $metadata: { targetTemperature: { desiredValue: 23.5, desiredVersion: av, ackVersion: av, ackCode: 200 } },
    });

    const msg = new Message(JSON.stringify({ temperature: 19.25 }));
    msg.contentType = "application/json";
    msg.contentEncoding = "utf-8";
    msg.properties.add("dt-subject", "thermostat1");
    await client.sendEvent(msg);
    expect((await api(e, "GET", `/api/devices/${id}/components/thermostat1/telemetry/temperature`)).json.value).toBe(19.25);
  });

  it("a queued command (queueIfOffline) reaches the SDK as a C2D message with method-name once it reconnects", async () => {
    const id = "sdk-app-queue";
    const first = await sdkDevice(id, "dtmi:com:example:Valve;1");
    // The SDK subscribes to C2D when a message listener is added; the persistent session keeps it across the close.
    first.on("message", () => undefined);
    await new Promise((r) => setTimeout(r, 300));
    await first.close();
    clients.splice(clients.indexOf(first), 1);
    const queued = await api(e, "POST", `/api/devices/${id}/commands/open?queueIfOffline=true`, { body: { request: { percent: 40 } } });
    expect(queued.status).toBe(202);

    const client = Client.fromConnectionString(
      `HostName=${e.hubHostName};DeviceId=${id};SharedAccessKey=${groupDeviceKey(e, id)};GatewayHostName=${e.mqttHost}`,
      Mqtt,
    );
    clients.push(client);
    await client.setOptions({ ca: e.caPem });
    const received = new Promise<Message>((resolve) => client.on("message", (m: Message) => resolve(m)));
    await client.open();
    const m = await received;
    expect(m.properties.getValue("method-name")).toBe("open");
    expect(JSON.parse(m.getBytes().toString())).toEqual({ percent: 40 });
    await client.complete(m);
  });
});
