import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { createSasToken, deriveDeviceKey, type IotcEmulator } from "../src/index.js";

export const inAnHour = (): number => Math.ceil(Date.now() / 1000) + 3600;

/** A DPS SAS token as the Node SDK writes it (resource left raw). */
export function dpsToken(e: IotcEmulator, registrationId: string, key: string, se = inAnHour()): string {
  return createSasToken(key, `${e.idScope}/registrations/${registrationId}`, se, "registration");
}

/** A hub SAS token as the Node SDK writes it (resource percent-encoded). */
export function hubToken(e: IotcEmulator, deviceId: string, key: string, se = inAnHour()): string {
  return createSasToken(key, encodeURIComponent(`${e.hubHostName}/devices/${deviceId}`), se);
}

export const groupDeviceKey = (e: IotcEmulator, id: string): string => deriveDeviceKey(e.groupKey, id);

export async function connect(e: IotcEmulator, options: IClientOptions): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtts://${e.mqttHost}`, {
    ca: e.caPem,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  });
}

/** Connects to the hub without waiting, so the caller sees the CONNACK (sessionPresent) itself. */
export function hubConnack(
  e: IotcEmulator,
  deviceId: string,
  extra: IClientOptions,
): { client: MqttClient; connack: Promise<{ sessionPresent: boolean }> } {
  const client = mqtt.connect(`mqtts://${e.mqttHost}`, {
    ca: e.caPem,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    clientId: deviceId,
    clean: false,
    username: `${e.hubHostName}/${deviceId}/?api-version=2021-04-12&DeviceClientType=test`,
    ...extra,
  });
  const connack = new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
    client.once("connect", (p) => resolve({ sessionPresent: p.sessionPresent }));
    client.once("error", reject);
  });
  return { client, connack };
}

export function dpsConnect(e: IotcEmulator, registrationId: string, extra: IClientOptions = {}): Promise<MqttClient> {
  return connect(e, {
    clientId: registrationId,
    clean: true,
    username: `${e.idScope}/registrations/${registrationId}/api-version=2019-03-31&ClientVersion=test`,
    ...extra,
  });
}

export function hubConnect(e: IotcEmulator, deviceId: string, extra: IClientOptions = {}): Promise<MqttClient> {
  return connect(e, {
    clientId: deviceId,
    clean: false,
    username: `${e.hubHostName}/${deviceId}/?api-version=2021-04-12&DeviceClientType=test`,
    ...extra,
  });
}

export interface Received {
  topic: string;
  payload: Buffer;
}

/** Collects what the client receives; `next(match)` waits for the first matching message not taken yet. */
export function inbox(client: MqttClient) {
  const got: Received[] = [];
  const waiters: Array<{ match: (r: Received) => boolean; resolve: (r: Received) => void }> = [];
  client.on("message", (topic, payload) => {
    const r = { topic, payload: Buffer.from(payload) };
    const i = waiters.findIndex((w) => w.match(r));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(r);
    else got.push(r);
  });
  return {
    got,
    next(match: (r: Received) => boolean = () => true, timeoutMs = 5000): Promise<Received> {
      const i = got.findIndex(match);
      if (i >= 0) return Promise.resolve(got.splice(i, 1)[0]!);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no matching message in time")), timeoutMs);
        waiters.push({
          match,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        });
      });
    },
  };
}

/** DPS registration over MQTT, packet by packet as the Node transport does it; returns every answer. */
export async function registerOverMqtt(
  e: IotcEmulator,
  registrationId: string,
  connectOptions: IClientOptions,
  payload?: unknown,
): Promise<Array<{ status: number; query: URLSearchParams; body: Record<string, unknown> }>> {
  const c = await dpsConnect(e, registrationId, connectOptions);
  try {
    const box = inbox(c);
    await c.subscribeAsync("$dps/registrations/res/#", { qos: 1 });
    const answers: Array<{ status: number; query: URLSearchParams; body: Record<string, unknown> }> = [];
    const read = async (rid: string) => {
      const r = await box.next((m) => m.topic.includes(`$rid=${rid}`));
      const m = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/.exec(r.topic)!;
      const a = { status: Number(m[1]), query: new URLSearchParams(m[2]), body: JSON.parse(r.payload.toString()) };
      answers.push(a);
      return a;
    };
    await c.publishAsync(
      "$dps/registrations/PUT/iotdps-register/?$rid=1",
      JSON.stringify({ registrationId, ...(payload === undefined ? {} : { payload }) }),
      { qos: 1 },
    );
    let a = await read("1");
    let rid = 2;
    while (a.status === 202 || a.status === 429) {
      const op = a.body.operationId as string | undefined;
      if (!op) break;
      await c.publishAsync(`$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${op}`, " ", { qos: 1 });
      a = await read(String(rid++));
    }
    return answers;
  } finally {
    await c.endAsync();
  }
}

export function closed(c: MqttClient, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (c.disconnected || !c.connected) return resolve();
    const timer = setTimeout(() => reject(new Error("connection still open")), timeoutMs);
    c.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
