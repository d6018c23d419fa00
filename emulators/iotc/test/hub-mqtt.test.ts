import tls from "node:tls";
import type { MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type IotcEmulator, startIotcEmulator } from "../src/index.js";
import { closed, dpsToken, groupDeviceKey, hubConnack, hubConnect, hubToken, inAnHour, inbox, registerOverMqtt } from "./helpers.js";

let e: IotcEmulator;
const open: MqttClient[] = [];
/** A token expiry an hour and `s` seconds away: distinct from inAnHour()'s, so that a test can tell them apart. */
const inAnHourPlus = (s: number): number => inAnHour() + s;
const track = (c: MqttClient): MqttClient => {
  open.push(c);
  return c;
};

async function provision(id: string): Promise<string> {
  const key = groupDeviceKey(e, id);
  const answers = await registerOverMqtt(e, id, { password: dpsToken(e, id, key) });
  expect(answers.at(-1)!.body.status).toBe("assigned");
  return key;
}

async function device(id: string, extra: Parameters<typeof hubConnect>[2] = {}): Promise<MqttClient> {
  const key = e.devices().some((d) => d.deviceId === id && d.registrations > 0) ? groupDeviceKey(e, id) : await provision(id);
  return track(await hubConnect(e, id, { password: hubToken(e, id, key), ...extra }));
}

beforeAll(async () => {
  e = await startIotcEmulator({ assigningPolls: 0 });
});
afterEach(async () => {
  e.clearFaults();
  await Promise.all(open.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
});
afterAll(() => e.stop());

describe("IoT Hub CONNECT", () => {
  it("accepts a provisioned device and counts the connect; reads model-id from the username", async () => {
    await provision("hub-a");
    const c = track(
      await hubConnect(e, "hub-a", {
        password: hubToken(e, "hub-a", groupDeviceKey(e, "hub-a")),
        username: `${e.hubHostName}/hub-a/?api-version=2021-04-12&model-id=dtmi%3Acom%3Aexample%3AHub%3B1&DeviceClientType=x`,
      }),
    );
    expect(c.connected).toBe(true);
    expect(e.devices().find((d) => d.deviceId === "hub-a")).toMatchObject({
      connected: true,
      connects: 1,
      registrations: 1,
      modelId: "dtmi:com:example:Hub;1",
    });
  });

  it("refuses (CONNACK 5) a bad signature, a token for another hub, an unprovisioned device and a client id that is not the device id", async () => {
    const key = await provision("hub-b");
    const wrong = Buffer.alloc(32, 3).toString("base64");
    await expect(hubConnect(e, "hub-b", { password: hubToken(e, "hub-b", wrong) })).rejects.toMatchObject({ code: 5 });
    const { createSasToken } = await import("../src/index.js");
    const otherHub = createSasToken(key, encodeURIComponent("other.azure-devices.net/devices/hub-b"), Math.ceil(Date.now() / 1000) + 60);
    await expect(hubConnect(e, "hub-b", { password: otherHub })).rejects.toMatchObject({ code: 5 });
    await expect(
      hubConnect(e, "never-provisioned", { password: hubToken(e, "never-provisioned", groupDeviceKey(e, "never-provisioned")) }),
    ).rejects.toMatchObject({ code: 5 });
    await expect(hubConnect(e, "hub-b", { password: hubToken(e, "hub-b", key), clientId: "hub-c" })).rejects.toMatchObject({
      code: 5,
    });
    expect(e.devices().find((d) => d.deviceId === "hub-b")?.connects).toBe(0);
  });

  it("accepts a token whose sr is percent-encoded in lower case", async () => {
    const key = await provision("hub-lc");
    const { createSasToken } = await import("../src/index.js");
    const sr = encodeURIComponent(`${e.hubHostName}/devices/hub-lc`).toLowerCase();
    track(await hubConnect(e, "hub-lc", { password: createSasToken(key, sr, Math.ceil(Date.now() / 1000) + 60) }));
  });

  it("accepts an X.509 device with its certificate (no password) and refuses it a SAS token or another device's certificate", async () => {
    const cert = e.issueDeviceCertificate("hub-x509");
    const answers = await registerOverMqtt(e, "hub-x509", { cert: cert.certPem, key: cert.keyPem });
    expect(answers.at(-1)!.body.status).toBe("assigned");
    track(await hubConnect(e, "hub-x509", { cert: cert.certPem, key: cert.keyPem }));
    await expect(hubConnect(e, "hub-x509", { password: hubToken(e, "hub-x509", groupDeviceKey(e, "hub-x509")) })).rejects.toMatchObject({
      code: 5,
    });
    const other = e.issueDeviceCertificate("hub-other");
    await expect(hubConnect(e, "hub-x509", { cert: other.certPem, key: other.keyPem })).rejects.toMatchObject({ code: 5 });
  });

  it("answers CONNACK 3 while a server-unavailable fault is armed, then accepts", async () => {
    const key = await provision("hub-d");
    e.setFault({ connackServerUnavailable: 2 });
    for (let i = 0; i < 2; i++) {
      await expect(hubConnect(e, "hub-d", { password: hubToken(e, "hub-d", key) })).rejects.toMatchObject({ code: 3 });
    }
    track(await hubConnect(e, "hub-d", { password: hubToken(e, "hub-d", key) }));
  });

  it("refuses a disabled device (CONNACK 5) and drops its live connection when it is disabled", async () => {
    const c = await device("hub-e");
    e.setDeviceStatus("hub-e", "disabled");
    await closed(c);
    await expect(hubConnect(e, "hub-e", { password: hubToken(e, "hub-e", groupDeviceKey(e, "hub-e")) })).rejects.toMatchObject({
      code: 5,
    });
    e.setDeviceStatus("hub-e", "enabled");
    track(await hubConnect(e, "hub-e", { password: hubToken(e, "hub-e", groupDeviceKey(e, "hub-e")) }));
  });

  it("kicks the older connection when the same client id connects again", async () => {
    const first = await device("hub-f");
    const firstClosed = closed(first);
    const second = await device("hub-f");
    await firstClosed;
    expect(second.connected).toBe(true);
    expect(e.devices().find((d) => d.deviceId === "hub-f")).toMatchObject({ connected: true, connects: 2 });
  });

  it("closes the connection when the token's se passes", async () => {
    const key = await provision("hub-g");
    const se = Math.ceil(Date.now() / 1000) + 2;
    const c = track(await hubConnect(e, "hub-g", { password: hubToken(e, "hub-g", key, se) }));
    await closed(c, 15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(se * 1000 - 50);
    expect(Date.now() - se * 1000).toBeLessThan(4000); // at se, with room for a loaded machine
    expect(e.devices().find((d) => d.deviceId === "hub-g")?.connected).toBe(false);
  });

  it("records each accepted token's se and counts the connections closed at se", async () => {
    const key = await provision("hub-se");
    const se = Math.ceil(Date.now() / 1000) + 1;
    const c = track(await hubConnect(e, "hub-se", { password: hubToken(e, "hub-se", key, se) }));
    expect(e.devices().find((d) => d.deviceId === "hub-se")).toMatchObject({
      tokenExpiresAt: new Date(se * 1000).toISOString(),
      tokenExpiries: 0,
    });
    await closed(c, 15_000);
    expect(e.devices().find((d) => d.deviceId === "hub-se")?.tokenExpiries).toBe(1);
    // A connection the device ends itself is no expiry.
    const later = inAnHourPlus(5);
    const d = track(await hubConnect(e, "hub-se", { password: hubToken(e, "hub-se", key, later) }));
    await d.endAsync();
    expect(e.devices().find((x) => x.deviceId === "hub-se")).toMatchObject({
      tokenExpiresAt: new Date(later * 1000).toISOString(),
      tokenExpiries: 1,
      connects: 2,
    });
  });

  it("expireToken closes the connection as at se and refuses that token from then on; a new token connects", async () => {
    const key = await provision("hub-exp");
    const token = hubToken(e, "hub-exp", key);
    const c = track(await hubConnect(e, "hub-exp", { password: token }));
    const gone = closed(c, 2000);
    expect(e.expireToken("hub-exp")).toBe(true);
    await gone;
    expect(e.devices().find((d) => d.deviceId === "hub-exp")).toMatchObject({ connected: false, tokenExpiries: 1, connects: 1 });
    await expect(hubConnect(e, "hub-exp", { password: token })).rejects.toMatchObject({ code: 5 });
    const fresh = inAnHourPlus(7);
    track(await hubConnect(e, "hub-exp", { password: hubToken(e, "hub-exp", key, fresh) }));
    expect(e.devices().find((d) => d.deviceId === "hub-exp")).toMatchObject({
      connected: true,
      connects: 2,
      tokenExpiries: 1,
      tokenExpiresAt: new Date(fresh * 1000).toISOString(),
    });
    // Nothing to expire: offline, unknown, or connected with a certificate.
    expect(e.expireToken("never-connected")).toBe(false);
    const cert = e.issueDeviceCertificate("hub-exp-x509");
    await registerOverMqtt(e, "hub-exp-x509", { cert: cert.certPem, key: cert.keyPem });
    const x = track(await hubConnect(e, "hub-exp-x509", { cert: cert.certPem, key: cert.keyPem }));
    expect(e.expireToken("hub-exp-x509")).toBe(false);
    expect(x.connected).toBe(true);
  });

  it("closes a connection that stays silent for 1.5 x its keepalive", async () => {
    const key = await provision("hub-ka");
    // A raw CONNECT (keepalive 1 s) and then silence: MQTT.js would send PINGREQs on its own.
    const str = (s: string) => {
      const b = Buffer.from(s);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(b.length);
      return Buffer.concat([len, b]);
    };
    const body = Buffer.concat([
      str("MQTT"),
      Buffer.from([4, 0xc2, 0, 1]), // level 4; username, password, clean; keepalive 1 s
      str("hub-ka"),
      str(`${e.hubHostName}/hub-ka/?api-version=2021-04-12`),
      str(hubToken(e, "hub-ka", key)),
    ]);
    expect(body.length).toBeLessThan(16384);
    const header = Buffer.from([0x10, (body.length & 0x7f) | 0x80, body.length >> 7]);
    const [host, port] = e.mqttHost.split(":");
    const socket = tls.connect({ host, port: Number(port), ca: e.caPem, servername: "localhost" });
    const connack = new Promise<Buffer>((resolve) => socket.once("data", resolve));
    const closedAt = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now())));
    // Timed from before the CONNECT is written: the server's clock starts no earlier, however late this process
    // gets to read the CONNACK.
    const t0 = Date.now();
    socket.write(Buffer.concat([header, body]));
    expect([...(await connack)]).toEqual([0x20, 2, 0, 0]);
    const silentMs = (await closedAt) - t0;
    expect(silentMs).toBeGreaterThanOrEqual(1400);
    expect(silentMs).toBeLessThan(4500); // 1.5 s, and up to 3 s more for a loaded machine
  });

  it("closes the connection of a device that publishes with QoS 2", async () => {
    const c = await device("hub-h");
    c.publish("devices/hub-h/messages/events/", "{}", { qos: 2 });
    await closed(c);
    expect(e.telemetry("hub-h")).toHaveLength(0);
  });

  it("closes the connection of a device that publishes to a topic the hub does not serve", async () => {
    const c = await device("hub-i");
    c.publish("devices/someone-else/messages/events/", "{}", { qos: 1 });
    await closed(c);
  });

  it("refuses subscriptions outside the hub's topics and grants at most QoS 1", async () => {
    const c = await device("hub-j");
    // MQTT.js rejects a SUBACK with a failure in it; the packet says what was granted.
    const err = await c
      .subscribeAsync({
        "devices/other/messages/devicebound/#": { qos: 1 },
        "#": { qos: 0 },
        "$iothub/methods/POST/#": { qos: 2 },
      })
      .catch((x: { packet: { granted: number[] } }) => x);
    expect((err as { packet: { granted: number[] } }).packet.granted).toEqual([128, 128, 1]);
  });
});

describe("IoT Hub persistent sessions", () => {
  it("registering again over DPS while connected neither kicks the hub connection nor touches its session", async () => {
    const c = await device("sess-dps");
    const box = inbox(c);
    await c.subscribeAsync("$iothub/twin/res/#", { qos: 0 });
    const answers = await registerOverMqtt(e, "sess-dps", { password: dpsToken(e, "sess-dps", groupDeviceKey(e, "sess-dps")) });
    expect(answers.at(-1)!.body.status).toBe("assigned");
    expect(c.connected).toBe(true);
    c.publish("$iothub/twin/GET/?$rid=5", "");
    expect((await box.next()).topic).toBe("$iothub/twin/res/200/?$rid=5");
    expect(e.devices().find((d) => d.deviceId === "sess-dps")).toMatchObject({ registrations: 2, connects: 1, connected: true });
  });

  it("restores subscriptions on clean=0 (sessionPresent) and delivers C2D queued while offline; clean=1 starts afresh", async () => {
    const key = await provision("sess-a");
    const c1 = await hubConnect(e, "sess-a", { password: hubToken(e, "sess-a", key) });
    await c1.subscribeAsync({ "devices/sess-a/messages/devicebound/#": { qos: 1 }, "$iothub/twin/res/#": { qos: 0 } });
    await c1.endAsync();
    expect(e.devices().find((d) => d.deviceId === "sess-a")?.connected).toBe(false);

    e.sendC2D("sess-a", "while-offline", { "method-name": "reboot" });

    const { client: c2, connack } = hubConnack(e, "sess-a", { password: hubToken(e, "sess-a", key) });
    track(c2);
    const box = inbox(c2);
    expect((await connack).sessionPresent).toBe(true);
    const c2d = await box.next((m) => m.topic.startsWith("devices/sess-a/messages/devicebound/"));
    expect(c2d.payload.toString()).toBe("while-offline");
    const bag = new URLSearchParams(c2d.topic.split("/")[4]);
    expect(bag.get("method-name")).toBe("reboot");
    expect(bag.get("$.to")).toBe("/devices/sess-a/messages/devicebound");
    expect(bag.get("$.mid")).toBeTruthy();
    // No SUBSCRIBE on this connection: the twin answer arrives through the restored subscription.
    c2.publish("$iothub/twin/GET/?$rid=9", " ");
    const twin = await box.next((m) => m.topic.startsWith("$iothub/twin/res/"));
    expect(twin.topic).toBe("$iothub/twin/res/200/?$rid=9");
    await c2.endAsync();

    const c3 = hubConnack(e, "sess-a", { password: hubToken(e, "sess-a", key), clean: true });
    track(c3.client);
    expect((await c3.connack).sessionPresent).toBe(false);
  });
});

describe("IoT Hub telemetry", () => {
  it("records the body, percent-decoded system properties, the component and application properties, and PUBACKs", async () => {
    const c = await device("tel-a");
    const body = JSON.stringify({ temperature: 21.5 });
    await c.publishAsync(
      "devices/tel-a/messages/events/%24.mid=m-1&%24.ct=application%2Fjson&%24.ce=utf-8&%24.sub=thermostat1&iothub-creation-time-utc=2026-01-01T00%3A00%3A00Z&flag",
      body,
      { qos: 1 },
    );
    await c.publishAsync("devices/tel-a/messages/events/$.ct=text%2Fplain&$.ce=utf-8/", "hello", { qos: 1 });
    await c.publishAsync("devices/tel-a/messages/events/", "{}", { qos: 1 });
    const [first, second, third] = e.telemetry("tel-a");
    expect(first).toMatchObject({
      deviceId: "tel-a",
      json: { temperature: 21.5 },
      component: "thermostat1",
      contentType: "application/json",
      contentEncoding: "utf-8",
      messageId: "m-1",
      properties: { "iothub-creation-time-utc": "2026-01-01T00:00:00Z", flag: "" },
    });
    expect(first!.body.toString()).toBe(body);
    expect(second).toMatchObject({ contentType: "text/plain", properties: {} });
    expect(second!.json).toBeUndefined();
    expect(third).toMatchObject({ json: {}, properties: {} });
  });

  it("closes the connection for a message over 256 KiB and keeps nothing of it", async () => {
    const c = await device("tel-b");
    c.publish("devices/tel-b/messages/events/", Buffer.alloc(256 * 1024 + 1, 0x61), { qos: 1 });
    await closed(c);
    expect(e.telemetry("tel-b")).toHaveLength(0);
  });

  it("drops and delays PUBACKs while those faults are armed", async () => {
    const c = await device("tel-c");
    e.setFault({ delayPubackMs: 400 });
    const t0 = Date.now();
    await c.publishAsync("devices/tel-c/messages/events/", "{}", { qos: 1 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    e.setFault({ delayPubackMs: 0, dropPubacks: true });
    const acked = c.publishAsync("devices/tel-c/messages/events/", '{"n":2}', { qos: 1 }).then(() => "acked");
    const result = await Promise.race([acked, new Promise((r) => setTimeout(() => r("no puback"), 500))]);
    expect(result).toBe("no puback");
    expect(e.telemetry("tel-c").map((m) => m.json)).toEqual([{}, { n: 2 }]);
  });
});

describe("IoT Hub twin", () => {
  it("GET: 200 without $version in the topic, body {desired, reported} with versions; reported PATCH: deep merge, null deletes, 204 with the new version", async () => {
    const c = await device("twin-a");
    const box = inbox(c);
    await c.subscribeAsync("$iothub/twin/res/#", { qos: 0 });
    e.updateDesired("twin-a", { target: 21 });

    c.publish("$iothub/twin/GET/?$rid=1", "");
    const get = await box.next();
    expect(get.topic).toBe("$iothub/twin/res/200/?$rid=1");
    expect(JSON.parse(get.payload.toString())).toEqual({ desired: { target: 21, $version: 2 }, reported: { $version: 1 } });

    c.publish("$iothub/twin/PATCH/properties/reported/?$rid=2", JSON.stringify({ a: { b: 1, c: 2 }, d: "x" }));
    const p1 = await box.next();
    expect(p1.topic).toBe("$iothub/twin/res/204/?$rid=2&$version=2");
    expect(p1.payload.length).toBe(0);
    c.publish("$iothub/twin/PATCH/properties/reported/?$rid=3", JSON.stringify({ a: { c: null, e: 3 }, d: null }));
    expect((await box.next()).topic).toBe("$iothub/twin/res/204/?$rid=3&$version=3");
    expect(e.twin("twin-a").reported).toEqual({ a: { b: 1, e: 3 }, $version: 3 });
  });

  it("answers a malformed patch 400 with {errorCode, message} and leaves the twin as it was", async () => {
    const c = await device("twin-b");
    const box = inbox(c);
    await c.subscribeAsync("$iothub/twin/res/#", { qos: 0 });
    c.publish("$iothub/twin/PATCH/properties/reported/?$rid=abc-1", "{not json");
    const r = await box.next();
    expect(r.topic).toBe("$iothub/twin/res/400/?$rid=abc-1");
    expect(JSON.parse(r.payload.toString())).toMatchObject({ errorCode: expect.any(Number), message: expect.any(String) });
    expect(e.twin("twin-b").reported).toEqual({ $version: 1 });
  });

  it("pushes desired updates only to the device's own subscribed connection", async () => {
    const a = await device("twin-c");
    const b = await device("twin-d");
    const boxA = inbox(a);
    const boxB = inbox(b);
    await a.subscribeAsync("$iothub/twin/PATCH/properties/desired/#", { qos: 0 });
    await b.subscribeAsync("$iothub/twin/PATCH/properties/desired/#", { qos: 0 });
    const v = e.updateDesired("twin-c", { fan: { speed: 3 } });
    const m = await boxA.next();
    expect(m.topic).toBe(`$iothub/twin/PATCH/properties/desired/?$version=${v}`);
    expect(JSON.parse(m.payload.toString())).toEqual({ fan: { speed: 3 }, $version: v });
    await new Promise((r) => setTimeout(r, 200));
    expect(boxB.got).toHaveLength(0);
  });

  it("drops or throttles twin answers while those faults are armed", async () => {
    const c = await device("twin-e");
    const box = inbox(c);
    await c.subscribeAsync("$iothub/twin/res/#", { qos: 0 });
    e.setFault({ dropTwinResponses: 1, twinThrottle: 1 });
    c.publish("$iothub/twin/GET/?$rid=1", "");
    c.publish("$iothub/twin/GET/?$rid=2", "");
    c.publish("$iothub/twin/GET/?$rid=3", "");
    const first = await box.next();
    const second = await box.next();
    expect([first.topic, second.topic].sort()).toEqual(["$iothub/twin/res/200/?$rid=3", "$iothub/twin/res/429/?$rid=2"]);
  });
});

describe("IoT Hub direct methods and C2D", () => {
  it("delivers a method with a decimal rid and returns the device's status and payload", async () => {
    const c = await device("meth-a");
    await c.subscribeAsync("$iothub/methods/POST/#", { qos: 0 });
    c.on("message", (topic, payload) => {
      const m = /^\$iothub\/methods\/POST\/([^/]+)\/\?\$rid=(\d+)$/.exec(topic);
      if (!m) return;
      const req = JSON.parse(payload.toString());
      c.publish(`$iothub/methods/res/201/?$rid=${m[2]}`, JSON.stringify({ echo: req, name: m[1] }));
    });
    const r = await e.invokeMethod("meth-a", "thermostat1*getMaxMinReport", { since: "x" });
    expect(r).toEqual({ status: 201, payload: { echo: { since: "x" }, name: "thermostat1*getMaxMinReport" } });
    // No payload: the device still gets valid JSON (null).
    const r2 = await e.invokeMethod("meth-a", "reboot");
    expect(r2).toEqual({ status: 201, payload: { echo: null, name: "reboot" } });
  });

  it("answers 404103 for a device offline or not subscribed to methods, 504101 after the timeout", async () => {
    expect(await e.invokeMethod("nobody", "x")).toMatchObject({ status: 404, payload: { errorCode: 404103 } });
    const c = await device("meth-b");
    expect(await e.invokeMethod("meth-b", "x")).toMatchObject({ status: 404, payload: { errorCode: 404103 } });
    await c.subscribeAsync("$iothub/methods/POST/#", { qos: 0 });
    const t0 = Date.now();
    expect(await e.invokeMethod("meth-b", "x", undefined, { timeoutSeconds: 5 })).toMatchObject({
      status: 504,
      payload: { errorCode: 504101 },
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4900);
  }, 10_000);

  it("refuses a method timeout outside 5..300 s", () => {
    expect(() => e.invokeMethod("meth-a", "x", null, { timeoutSeconds: 1 })).toThrow(/timeoutSeconds/);
  });

  it("delivers C2D with application properties to the connected device only", async () => {
    const a = await device("c2d-a");
    const b = await device("c2d-b");
    const boxA = inbox(a);
    const boxB = inbox(b);
    await a.subscribeAsync("devices/c2d-a/messages/devicebound/#", { qos: 1 });
    await b.subscribeAsync("devices/c2d-b/messages/devicebound/#", { qos: 1 });
    e.sendC2D("c2d-a", Buffer.from([1, 2, 3]), { "method-name": "comp*cmd", "with space": "a&b=c" });
    const m = await boxA.next();
    expect([...m.payload]).toEqual([1, 2, 3]);
    const bag = new URLSearchParams(m.topic.split("/")[4]);
    expect(bag.get("method-name")).toBe("comp*cmd");
    expect(bag.get("with space")).toBe("a&b=c");
    await new Promise((r) => setTimeout(r, 200));
    expect(boxB.got).toHaveLength(0);
  });

  it("disconnect() drops the device's connection", async () => {
    const c = await device("drop-a");
    e.disconnect("drop-a");
    await closed(c);
    await new Promise((r) => setTimeout(r, 50));
    expect(e.devices().find((d) => d.deviceId === "drop-a")?.connected).toBe(false);
  });
});
