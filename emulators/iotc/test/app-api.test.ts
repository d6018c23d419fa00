/**
 * The application REST API driven over HTTPS against devices speaking MQTT to the emulator's hub, as a user of a real
 * IoT Central application and a real device would.
 */
import type { MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type IotcEmulator, startIotcEmulator } from "../src/index.js";
import { api } from "./app-api-client.js";
import { closed, dpsToken, groupDeviceKey, hubConnect, hubToken, inbox, registerOverMqtt } from "./helpers.js";

let e: IotcEmulator;
const open: MqttClient[] = [];

beforeAll(async () => {
  e = await startIotcEmulator({ assigningPolls: 0 });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
});
afterAll(() => e.stop());

async function provision(id: string, modelId?: string): Promise<void> {
  const answers = await registerOverMqtt(
    e,
    id,
    { password: dpsToken(e, id, groupDeviceKey(e, id)) },
    modelId === undefined ? undefined : { modelId },
  );
  expect(answers.at(-1)!.body.status).toBe("assigned");
}

/** A provisioned device connected to the hub (clean=0), subscribed to methods, desired updates, twin answers and C2D. */
async function online(id: string, modelId?: string) {
  if (!e.devices().some((d) => d.deviceId === id && d.registrations > 0)) await provision(id, modelId);
  const client = await hubConnect(e, id, { password: hubToken(e, id, groupDeviceKey(e, id)) });
  open.push(client);
  const box = inbox(client);
  await client.subscribeAsync(
    ["$iothub/methods/POST/#", "$iothub/twin/PATCH/properties/desired/#", "$iothub/twin/res/#", `devices/${id}/messages/devicebound/#`],
    { qos: 1 },
  );
  let rid = 100;
  return {
    client,
    box,
    /** Answers the next direct method with `status` and `payload`; resolves with the method's name and request. */
    async answerMethod(status: number, payload: (request: unknown) => unknown) {
      const m = await box.next((r) => r.topic.startsWith("$iothub/methods/POST/"));
      const [, name, query] = /^\$iothub\/methods\/POST\/([^/]+)\/\?(.*)$/.exec(m.topic)!;
      const request = JSON.parse(m.payload.toString());
      const methodRid = new URLSearchParams(query).get("$rid");
      await client.publishAsync(`$iothub/methods/res/${status}/?$rid=${methodRid}`, JSON.stringify(payload(request)));
      return { name: name!, request };
    },
    async report(patch: Record<string, unknown>) {
      const r = String(rid++);
      await client.publishAsync(`$iothub/twin/PATCH/properties/reported/?$rid=${r}`, JSON.stringify(patch));
      const answer = await box.next((m) => m.topic.startsWith("$iothub/twin/res/") && m.topic.includes(`$rid=${r}`));
      expect(answer.topic).toMatch(/^\$iothub\/twin\/res\/204\//);
    },
    telemetry(body: unknown, bag = "%24.ct=application%2Fjson&%24.ce=utf-8") {
      return client.publishAsync(`devices/${id}/messages/events/${bag}`, JSON.stringify(body), { qos: 1 });
    },
  };
}

function expectError(answer: Awaited<ReturnType<typeof api>>, status: number, code: string, message?: RegExp) {
  expect(answer.status).toBe(status);
  expect(answer.headers["x-ms-error-code"]).toBe(code);
  expect(answer.json.error).toMatchObject({ code, requestId: expect.any(String), time: expect.any(String) });
  expect(Number.isNaN(Date.parse(answer.json.error.time))).toBe(false);
  if (message) expect(answer.json.error.message).toMatch(message);
}

describe("authentication and api-version", () => {
  it("answers 401 without an Authorization header and 403 for any other token, in IoT Central's error shape", async () => {
    expectError(await api(e, "GET", "/api/devices", { authorization: null }), 401, "Unauthorized", /Authorization/);
    expectError(await api(e, "GET", "/api/devices", { authorization: "" }), 401, "Unauthorized");
    const wrong = e.apiToken.replace(/sig=[^&]+/, "sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    expectError(await api(e, "GET", "/api/devices", { authorization: wrong }), 403, "Forbidden");
    // Compared whole: the right token with anything added is another token.
    expectError(await api(e, "GET", "/api/devices", { authorization: `${e.apiToken}&x=1` }), 403, "Forbidden");
    expectError(await api(e, "GET", "/api/devices", { authorization: "Bearer eyJ0eXAi.x.y" }), 403, "Forbidden", /bearer/);
    // Refused before anything else is looked at: an unknown device is not revealed to a caller without the token.
    expectError(await api(e, "GET", "/api/devices/nobody", { authorization: null }), 401, "Unauthorized");
  });

  it("requires a supported api-version, accepts 2022-07-31, 2022-05-31 and 2022-10-31-preview", async () => {
    expectError(await api(e, "GET", "/api/devices", { apiVersion: null }), 400, "BadRequest", /^api-version: .*required/);
    expectError(await api(e, "GET", "/api/devices", { apiVersion: "1.0" }), 400, "BadRequest", /^api-version: "1.0" is not supported/);
    for (const v of ["2022-07-31", "2022-05-31", "2022-10-31-preview"]) {
      expect((await api(e, "GET", "/api/devices", { apiVersion: v })).status).toBe(200);
    }
  });

  it("answers 404 for a route the emulator does not serve and 405 for a method a route does not take", async () => {
    expectError(await api(e, "GET", "/api/deviceTemplates"), 404, "NotFound", /no API route/);
    const r = await api(e, "DELETE", "/api/devices/anyone");
    expectError(r, 405, "MethodNotAllowed");
    expect(r.headers.allow).toBe("GET, PATCH");
  });
});

describe("devices", () => {
  it("lists and gets devices with the template each announced, provisioned and enabled", async () => {
    await provision("app-dev-1", "dtmi:com:example:Thermostat;1");
    await online("app-dev-2", "dtmi:com:example:Pump;2");
    e.setDeviceStatus("app-dev-registered", "enabled"); // created, never provisioned

    const list = await api(e, "GET", "/api/devices");
    expect(list.status).toBe(200);
    const byId = new Map((list.json.value as Array<{ id: string }>).map((d) => [d.id, d]));
    expect(byId.get("app-dev-1")).toEqual({
      id: "app-dev-1",
      etag: expect.any(String),
      displayName: "app-dev-1",
      template: "dtmi:com:example:Thermostat;1",
      simulated: false,
      provisioned: true,
      enabled: true,
    });
    expect(byId.get("app-dev-2")).toMatchObject({ template: "dtmi:com:example:Pump;2", provisioned: true });
    expect(byId.get("app-dev-registered")).toMatchObject({ provisioned: false, enabled: true });
    expect(byId.get("app-dev-registered")).not.toHaveProperty("template");

    const one = await api(e, "GET", "/api/devices/app-dev-1");
    expect(one.status).toBe(200);
    expect(one.json).toEqual(byId.get("app-dev-1"));
    expectError(await api(e, "GET", "/api/devices/no-such-device"), 404, "NotFound", /no-such-device/);
    expectError(await api(e, "GET", "/api/devices/bad%20id"), 400, "BadRequest", /^deviceId:/);
  });

  it("pages with nextLink (maxpagesize, $top) and refuses ODATA options it does not evaluate", async () => {
    for (const id of ["page-a", "page-b", "page-c"]) e.setDeviceStatus(id, "enabled");
    const all = (await api(e, "GET", "/api/devices?maxpagesize=1000")).json.value.map((d: { id: string }) => d.id);
    const seen: string[] = [];
    let page = await api(e, "GET", "/api/devices?maxpagesize=2");
    let pages = 0;
    for (;;) {
      expect(page.status).toBe(200);
      expect(page.json.value.length).toBeLessThanOrEqual(2);
      seen.push(...page.json.value.map((d: { id: string }) => d.id));
      pages++;
      if (!page.json.nextLink) break;
      expect(page.json.nextLink).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/api\/devices\?/);
      page = await api(e, "GET", page.json.nextLink);
    }
    expect(seen).toEqual(all);
    expect(pages).toBe(Math.ceil(all.length / 2));

    const top = await api(e, "GET", "/api/devices?$top=3&maxpagesize=2");
    const next = await api(e, "GET", top.json.nextLink);
    expect([...top.json.value, ...next.json.value]).toHaveLength(3);
    expect(next.json.nextLink).toBeUndefined();

    expectError(await api(e, "GET", "/api/devices?$filter=enabled%20eq%20true"), 400, "BadRequest", /^\$filter: .*not supported/);
    expectError(await api(e, "GET", "/api/devices?maxpagesize=0"), 400, "BadRequest", /^maxpagesize:/);
    expectError(await api(e, "GET", "/api/devices?$skiptoken=%%%"), 400, "BadRequest", /^\$skiptoken:/);
  });

  it("PATCH enabled:false drops the device's connection and DPS and the hub refuse it until it is enabled again", async () => {
    const d = await online("app-dev-blocked");
    const before = (await api(e, "GET", "/api/devices/app-dev-blocked")).json;
    const off = await api(e, "PATCH", "/api/devices/app-dev-blocked", { body: { enabled: false } });
    expect(off.status).toBe(200);
    expect(off.json).toMatchObject({ id: "app-dev-blocked", enabled: false });
    expect(off.json.etag).not.toBe(before.etag);
    await closed(d.client);
    const token = hubToken(e, "app-dev-blocked", groupDeviceKey(e, "app-dev-blocked"));
    await expect(hubConnect(e, "app-dev-blocked", { password: token })).rejects.toMatchObject({ code: 5 });
    const dps = await registerOverMqtt(e, "app-dev-blocked", {
      password: dpsToken(e, "app-dev-blocked", groupDeviceKey(e, "app-dev-blocked")),
    });
    expect(dps.at(-1)!.body.status).toBe("disabled");

    expect((await api(e, "PATCH", "/api/devices/app-dev-blocked", { body: { enabled: true } })).json.enabled).toBe(true);
    open.push(await hubConnect(e, "app-dev-blocked", { password: token }));
  });

  it("PATCH sets displayName, takes back unchanged read-only fields, refuses changing them, a stale etag and unknown fields", async () => {
    await provision("app-dev-named", "dtmi:com:example:Named;1");
    const got = (await api(e, "GET", "/api/devices/app-dev-named")).json;
    const named = await api(e, "PATCH", "/api/devices/app-dev-named", { body: { ...got, displayName: "Boiler 3" } });
    expect(named.status).toBe(200);
    expect(named.json).toMatchObject({ displayName: "Boiler 3", template: "dtmi:com:example:Named;1" });
    expect((await api(e, "GET", "/api/devices/app-dev-named")).json.displayName).toBe("Boiler 3");

    expectError(
      await api(e, "PATCH", "/api/devices/app-dev-named", { body: { etag: got.etag, enabled: false } }),
      412,
      "PreconditionFailed",
    );
    expectError(
      await api(e, "PATCH", "/api/devices/app-dev-named", { body: { template: "dtmi:other;1" } }),
      400,
      "BadRequest",
      /^body\.template: cannot be changed/,
    );
    expectError(await api(e, "PATCH", "/api/devices/app-dev-named", { body: { enabled: "no" } }), 400, "BadRequest", /^body\.enabled:/);
    expectError(await api(e, "PATCH", "/api/devices/app-dev-named", { body: { colour: "red" } }), 400, "BadRequest", /^body\.colour:/);
    expectError(await api(e, "PATCH", "/api/devices/nobody-here", { body: { enabled: false } }), 404, "NotFound");
  });
});

describe("commands", () => {
  it("runs a command as a direct method and answers 201 with the device's response and status", async () => {
    const d = await online("cmd-dev-1");
    const [answer, seen] = await Promise.all([
      api(e, "POST", "/api/devices/cmd-dev-1/commands/reboot", { body: { request: { delay: 5 } } }),
      d.answerMethod(200, (req) => ({ rebooting: true, echo: req })),
    ]);
    expect(seen).toEqual({ name: "reboot", request: { delay: 5 } });
    expect(answer.status).toBe(201);
    expect(answer.json).toMatchObject({
      id: expect.any(String),
      request: { delay: 5 },
      response: { rebooting: true, echo: { delay: 5 } },
      responseCode: 200,
    });

    // The device's own failure status is the command's responseCode, not an API error.
    const [failed] = await Promise.all([
      api(e, "POST", "/api/devices/cmd-dev-1/commands/reboot", { body: {} }),
      d.answerMethod(500, () => ({ reason: "busy" })),
    ]);
    expect(failed.status).toBe(201);
    expect(failed.json).toMatchObject({ response: { reason: "busy" }, responseCode: 500 });
    expect(failed.json).not.toHaveProperty("request");

    const history = await api(e, "GET", "/api/devices/cmd-dev-1/commands/reboot");
    expect(history.json.value).toEqual([failed.json]);
  });

  it("sends a component's command as component*command", async () => {
    const d = await online("cmd-dev-2");
    const [answer, seen] = await Promise.all([
      api(e, "POST", "/api/devices/cmd-dev-2/components/thermostat1/commands/getMaxMinReport", {
        body: { request: "2024-01-01T00:00:00Z", responseTimeout: 10 },
      }),
      d.answerMethod(200, () => ({ maxTemp: 30 })),
    ]);
    expect(seen.name).toBe("thermostat1*getMaxMinReport");
    expect(seen.request).toBe("2024-01-01T00:00:00Z");
    expect(answer.json).toMatchObject({ response: { maxTemp: 30 }, responseCode: 200, responseTimeout: 10 });
  });

  it("device not connected: 404 NotFound 'not connected' at once, or after connectionTimeout; a device that connects in time gets it", async () => {
    await provision("cmd-dev-offline");
    const started = Date.now();
    expectError(
      await api(e, "POST", "/api/devices/cmd-dev-offline/commands/reboot", { body: { request: null } }),
      404,
      "NotFound",
      /cmd-dev-offline is not connected/,
    );
    expect(Date.now() - started).toBeLessThan(5000); // not a wait for the device; 5 s leaves room for a loaded machine
    expectError(await api(e, "POST", "/api/devices/never-seen/commands/reboot", { body: {} }), 404, "NotFound", /not found/);

    const waiting = api(e, "POST", "/api/devices/cmd-dev-offline/commands/reboot", { body: { request: 1, connectionTimeout: 10 } });
    await new Promise((r) => setTimeout(r, 600));
    const d = await online("cmd-dev-offline");
    await d.answerMethod(200, () => "ok");
    const answer = await waiting;
    expect(answer.status).toBe(201);
    expect(answer.json).toMatchObject({ response: "ok", responseCode: 200, connectionTimeout: 10 });
  });

  it("no answer within responseTimeout: 504 GatewayTimeout (the emulator's reading; real IoT Central may instead answer 201 with responseCode 504)", async () => {
    const d = await online("cmd-dev-silent");
    const started = Date.now();
    const answer = await api(e, "POST", "/api/devices/cmd-dev-silent/commands/reboot", { body: { responseTimeout: 5 } });
    expectError(answer, 504, "GatewayTimeout", /did not answer command reboot within 5 s/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
    // The device did get the method; it just never answered.
    expect((await d.box.next((m) => m.topic.startsWith("$iothub/methods/POST/reboot/"))).topic).toMatch(/\$rid=\d+$/);
  });

  it("queueIfOffline=true: an offline device's command becomes a C2D message with method-name, answered 202, delivered on reconnect", async () => {
    const first = await online("cmd-dev-queue");
    await first.client.endAsync();
    expect(e.devices().find((d) => d.deviceId === "cmd-dev-queue")?.connected).toBe(false);

    const queued = await api(e, "POST", "/api/devices/cmd-dev-queue/components/valve/commands/open?queueIfOffline=true", {
      body: { request: { percent: 40 } },
    });
    expect(queued.status).toBe(202);
    expect(queued.json).toMatchObject({ id: expect.any(String), request: { percent: 40 } });
    expect(queued.json).not.toHaveProperty("responseCode");

    // Back with its persistent session (clean=0): the hub delivers what was queued.
    const c = await hubConnect(e, "cmd-dev-queue", { password: hubToken(e, "cmd-dev-queue", groupDeviceKey(e, "cmd-dev-queue")) });
    open.push(c);
    const box = inbox(c);
    const m = await box.next((r) => r.topic.startsWith("devices/cmd-dev-queue/messages/devicebound/"));
    const bag = new URLSearchParams(m.topic.slice("devices/cmd-dev-queue/messages/devicebound/".length));
    expect(bag.get("method-name")).toBe("valve*open");
    expect(JSON.parse(m.payload.toString())).toEqual({ percent: 40 });

    expectError(await api(e, "POST", "/api/devices/cmd-dev-queue/commands/open?queueIfOffline=maybe", { body: {} }), 400, "BadRequest");
  });

  it("queueIfOffline=true on an online device is still a direct method (201), as the brief reads it", async () => {
    const d = await online("cmd-dev-queue-online");
    const [answer] = await Promise.all([
      api(e, "POST", "/api/devices/cmd-dev-queue-online/commands/open?queueIfOffline=true", { body: { request: 1 } }),
      d.answerMethod(200, () => true),
    ]);
    expect(answer.status).toBe(201);
  });

  it("refuses bad command requests naming what is wrong", async () => {
    const path = "/api/devices/cmd-dev-1/commands/reboot";
    expectError(await api(e, "POST", path, { raw: "{not json" }), 400, "BadRequest", /^body: is not valid JSON/);
    expectError(await api(e, "POST", path, { raw: "" }), 400, "BadRequest", /^body: is empty/);
    expectError(await api(e, "POST", path, { body: [1] }), 400, "BadRequest", /^body: must be a JSON object/);
    expectError(await api(e, "POST", path, { body: { responseTimeout: 60 } }), 400, "BadRequest", /^body\.responseTimeout: .* 5 to 30/);
    expectError(await api(e, "POST", path, { body: { connectionTimeout: -1 } }), 400, "BadRequest", /^body\.connectionTimeout:/);
    expectError(await api(e, "POST", path, { body: { timeout: 5 } }), 400, "BadRequest", /^body\.timeout: is not a field/);
    expectError(await api(e, "POST", "/api/devices/cmd-dev-1/commands/re-boot", { body: {} }), 400, "BadRequest", /^commandName:/);
    expectError(
      await api(e, "POST", path, { raw: "{}", headers: { "content-type": "text/plain" } }),
      415,
      "UnsupportedMediaType",
      /text\/plain/,
    );
    const big = await api(e, "POST", path, { body: { request: "x".repeat(300 * 1024) } });
    expectError(big, 413, "PayloadTooLarge");
    const overMethodLimit = await api(e, "POST", path, { body: { request: "x".repeat(200 * 1024) } });
    expectError(overMethodLimit, 400, "BadRequest", /payload is \d+ bytes, over 131072/);
  });
});

describe("properties", () => {
  it("GET shows reported values, acks unwrapped, components nested, desired values and their versions under $metadata", async () => {
    const d = await online("prop-dev-1");
    await d.report({ serialNumber: "SN-1", thermostat1: { __t: "c", maxTempSinceLastReboot: 25.3 } });

    const write = await api(e, "PATCH", "/api/devices/prop-dev-1/properties", { body: { targetTemperature: 42 } });
    expect(write.status).toBe(202);
    expect(write.json).toEqual({ $metadata: { targetTemperature: { desiredValue: 42, desiredVersion: 2 } } });
    const pushed = await d.box.next((m) => m.topic.startsWith("$iothub/twin/PATCH/properties/desired/"));
    expect(pushed.topic).toBe("$iothub/twin/PATCH/properties/desired/?$version=2");
    expect(JSON.parse(pushed.payload.toString())).toEqual({ targetTemperature: 42, $version: 2 });

    // Not acknowledged yet: only the desired side is known.
    const pending = (await api(e, "GET", "/api/devices/prop-dev-1/properties")).json;
    expect(pending).not.toHaveProperty("targetTemperature");
    expect(pending.$metadata.targetTemperature).toMatchObject({ desiredValue: 42, desiredVersion: 2 });

    await d.report({ targetTemperature: { value: 42, ac: 200, ad: "completed", av: 2 } });
    const props = (await api(e, "GET", "/api/devices/prop-dev-1/properties")).json;
    expect(props).toEqual({
      serialNumber: "SN-1",
      targetTemperature: 42,
      $metadata: {
        targetTemperature: {
          desiredValue: 42,
          desiredVersion: 2,
          ackVersion: 2,
          ackCode: 200,
          ackDescription: "completed",
          lastUpdateTime: expect.any(String),
        },
      },
      thermostat1: { maxTempSinceLastReboot: 25.3 },
    });
  });

  it("PATCH and PUT of a component's properties reach the device marked __t:c and bump $version", async () => {
    const d = await online("prop-dev-2");
    await d.report({ thermostat1: { __t: "c", maxTempSinceLastReboot: 20 } });
    const desiredPush = () => d.box.next((m) => m.topic.startsWith("$iothub/twin/PATCH/properties/desired/"));

    const a = await api(e, "PATCH", "/api/devices/prop-dev-2/properties", { body: { thermostat1: { targetTemperature: 21.5 } } });
    expect(a.json).toEqual({ thermostat1: { $metadata: { targetTemperature: { desiredValue: 21.5, desiredVersion: 2 } } } });
    expect(JSON.parse((await desiredPush()).payload.toString())).toEqual({
      thermostat1: { __t: "c", targetTemperature: 21.5 },
      $version: 2,
    });

    const b = await api(e, "PUT", "/api/devices/prop-dev-2/components/thermostat2/properties", { body: { targetTemperature: 18 } });
    expect(b.status).toBe(202);
    expect(b.json).toEqual({ $metadata: { targetTemperature: { desiredValue: 18, desiredVersion: 3 } } });
    const pushed = await desiredPush();
    expect(pushed.topic).toBe("$iothub/twin/PATCH/properties/desired/?$version=3");
    expect(JSON.parse(pushed.payload.toString())).toEqual({ thermostat2: { __t: "c", targetTemperature: 18 }, $version: 3 });

    const t2 = await api(e, "GET", "/api/devices/prop-dev-2/components/thermostat2/properties");
    expect(t2.json.$metadata.targetTemperature).toMatchObject({ desiredValue: 18, desiredVersion: 3 });
    const all = (await api(e, "GET", "/api/devices/prop-dev-2/properties")).json;
    expect(all.thermostat1).toMatchObject({ maxTempSinceLastReboot: 20, $metadata: { targetTemperature: { desiredValue: 21.5 } } });
    expect(e.twin("prop-dev-2").desired.$version).toBe(3);
  });

  it("refuses a property write that is not an object of DTDL names, and one over the twin's size", async () => {
    await provision("prop-dev-3");
    const path = "/api/devices/prop-dev-3/properties";
    expectError(await api(e, "PATCH", path, { raw: "[1,2" }), 400, "BadRequest", /^body: is not valid JSON/);
    expectError(await api(e, "PATCH", path, { body: 5 }), 400, "BadRequest", /^body: must be a JSON object/);
    expectError(await api(e, "PATCH", path, { body: {} }), 400, "BadRequest", /^body: names no property/);
    expectError(await api(e, "PATCH", path, { body: { $version: 9 } }), 400, "BadRequest", /^body\.\$version:/);
    expectError(await api(e, "PATCH", path, { body: { "bad-name": 1 } }), 400, "BadRequest", /^body\.bad-name:/);
    expectError(await api(e, "PATCH", path, { body: { big: "x".repeat(40 * 1024) } }), 400, "BadRequest", /32768-byte limit/);
    expectError(await api(e, "GET", "/api/devices/nobody/properties"), 404, "NotFound");
  });
});

describe("telemetry", () => {
  it("answers the last value of a telemetry (per component), with the device's creation time when it sent one; 404 when none", async () => {
    const d = await online("tel-dev-1");
    await d.telemetry({ temperature: 21.5, humidity: 40 });
    await d.telemetry({ temperature: 22 });
    await d.telemetry(
      { temperature: 30 },
      "%24.ct=application%2Fjson&%24.sub=thermostat1&iothub-creation-time-utc=2024-05-04T21%3A59%3A39.153Z",
    );

    const t = await api(e, "GET", "/api/devices/tel-dev-1/telemetry/temperature");
    expect(t.status).toBe(200);
    expect(t.json).toEqual({ timestamp: expect.any(String), value: 22 });
    expect(Math.abs(Date.parse(t.json.timestamp) - Date.now())).toBeLessThan(10_000);
    expect((await api(e, "GET", "/api/devices/tel-dev-1/telemetry/humidity")).json.value).toBe(40);
    expect((await api(e, "GET", "/api/devices/tel-dev-1/components/thermostat1/telemetry/temperature")).json).toEqual({
      timestamp: "2024-05-04T21:59:39.153Z",
      value: 30,
    });

    expectError(await api(e, "GET", "/api/devices/tel-dev-1/telemetry/pressure"), 404, "NotFound", /no value of telemetry pressure/);
    expectError(await api(e, "GET", "/api/devices/tel-dev-1/components/thermostat2/telemetry/temperature"), 404, "NotFound");
    expectError(await api(e, "GET", "/api/devices/nobody/telemetry/temperature"), 404, "NotFound", /device "nobody" not found/);
  });
});

describe("after an emulator reset", () => {
  it("a device created again has no display name, command history or desired-write times from before", async () => {
    await provision("reset-dev");
    await api(e, "PATCH", "/api/devices/reset-dev", { body: { displayName: "Old name" } });
    await api(e, "PATCH", "/api/devices/reset-dev/properties", { body: { a: 1 } });
    await api(e, "PATCH", "/api/devices/reset-dev/properties", { body: { b: 2 } });
    expect((await api(e, "GET", "/api/devices/reset-dev/properties")).json.$metadata.b.desiredVersion).toBe(3);

    e.model.reset();
    await provision("reset-dev");
    expect((await api(e, "GET", "/api/devices/reset-dev")).json.displayName).toBe("reset-dev");
    await api(e, "PATCH", "/api/devices/reset-dev/properties", { body: { b: 5 } });
    const meta = (await api(e, "GET", "/api/devices/reset-dev/properties")).json.$metadata;
    expect(meta).toEqual({ b: { desiredValue: 5, desiredVersion: 2, lastUpdateTime: expect.any(String) } });
  });
});
