import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type IdigiEmulator, startIdigiEmulator } from "../src/index.js";
import { basic, OTHER, USER } from "./harness.js";

const AUTH = basic(USER.username, USER.password);

let emu: IdigiEmulator;

beforeAll(async () => {
  emu = await startIdigiEmulator({ users: [USER, OTHER], tls: false, firstMonitorId: 178007 });
});
afterAll(async () => {
  await emu.stop();
});
beforeEach(async () => {
  await fetch(`${emu.httpUrl}/_emulator/reset`, { method: "POST" });
});

async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${emu.httpUrl}${path}`, {
    method,
    headers: { Authorization: AUTH, ...headers },
    ...(body !== undefined ? { body } : {}),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

// The seed's minidom output: no declaration, no whitespace, arbitrary element order.
const SEED_BODY =
  "<Monitor><monCompression>gzip</monCompression><monBatchDuration>0</monBatchDuration><monTopic>DeviceCore,FileData</monTopic><monFormatType>json</monFormatType><monBatchSize>1</monBatchSize><monTransportType>tcp</monTransportType></Monitor>";
// python-devicecloud's create_tcp_monitor: fixed order, indented, no monBatchDuration.
const DEVICECLOUD_BODY = `<Monitor>
    <monTopic>DeviceCore,FileDataCore,FileData,DataPoint</monTopic>
    <monBatchSize>1</monBatchSize>
    <monFormatType>json</monFormatType>
    <monTransportType>tcp</monTransportType>
    <monCompression>zlib</monCompression>
</Monitor>`;

describe("legacy /ws/Monitor", () => {
  it("creates with 201, a Location header and a <location> body, both ending in /<id>", async () => {
    const r = await call("POST", "/ws/Monitor", SEED_BODY);
    expect(r.status).toBe(201);
    expect(r.headers.get("location")).toBe("Monitor/178007");
    expect(r.headers.get("content-type")).toMatch(/xml/);
    expect(r.text).toContain("<location>Monitor/178007</location>");
    expect(r.text.startsWith('<?xml version="1.0" encoding="ISO-8859-1"?>')).toBe(true);
    const fromBody = /<location>([^<]+)<\/location>/.exec(r.text)![1]!.split("/").pop();
    expect(fromBody).toBe("178007");
  });

  it("lists with the all-strings JSON envelope; gzip is stored as zlib; python-devicecloud body gets default batch duration 10", async () => {
    await call("POST", "/ws/Monitor", SEED_BODY);
    await call("POST", "/ws/Monitor", DEVICECLOUD_BODY);
    const r = await call("GET", "/ws/Monitor/.json");
    expect(r.status).toBe(200);
    const env = JSON.parse(r.text);
    expect(env).toMatchObject({ resultTotalRows: "2", requestedStartRow: "0", resultSize: "2", requestedSize: "1000", remainingSize: "0" });
    expect(env.items[0]).toMatchObject({
      monId: "178007",
      cstId: "7603",
      monTopic: "DeviceCore,FileData",
      monTransportType: "tcp",
      monFormatType: "json",
      monBatchSize: "1",
      monCompression: "zlib",
      monStatus: "INACTIVE",
      monBatchDuration: "0",
      monAckOption: "off",
      monAutoReplayOnConnect: "false",
    });
    expect(env.items[1]).toMatchObject({ monId: "178008", monTopic: "DeviceCore,FileDataCore,FileData,DataPoint", monBatchDuration: "10" });
    for (const item of env.items) for (const v of Object.values(item)) expect(typeof v).toBe("string");
  });

  it("filters by condition monTopic='..' [and monTransportType='..'] and pages with start/size", async () => {
    await call("POST", "/ws/Monitor", SEED_BODY);
    await call("POST", "/ws/Monitor", DEVICECLOUD_BODY);
    const seedQuery = `/ws/Monitor/.json?condition=${encodeURIComponent("monTopic='DeviceCore,FileData'")}`;
    const one = JSON.parse((await call("GET", seedQuery)).text);
    expect(one.resultSize).toBe("1");
    expect(one.items[0].monId).toBe("178007");
    const both = JSON.parse(
      (
        await call(
          "GET",
          `/ws/Monitor?condition=${encodeURIComponent("monTopic='DeviceCore,FileDataCore,FileData,DataPoint' and monTransportType='tcp'")}&start=0&size=1000`,
          undefined,
          { Accept: "application/json" },
        )
      ).text,
    );
    expect(both.items.map((i: { monId: string }) => i.monId)).toEqual(["178008"]);
    const none = JSON.parse((await call("GET", `/ws/Monitor/.json?condition=${encodeURIComponent("monTopic='Nope'")}`)).text);
    expect(none).toMatchObject({ resultSize: "0", items: [] });
    const page = JSON.parse((await call("GET", "/ws/Monitor/.json?start=1&size=1")).text);
    expect(page).toMatchObject({ resultTotalRows: "2", requestedStartRow: "1", resultSize: "1", requestedSize: "1", remainingSize: "0" });
    expect(page.items[0].monId).toBe("178008");
  });

  it("gets one monitor as the same envelope with items[0], and as XML without .json", async () => {
    await call("POST", "/ws/Monitor", SEED_BODY);
    const r = await call("GET", "/ws/Monitor/178007", undefined, { Accept: "application/json" });
    const env = JSON.parse(r.text);
    expect(env.resultSize).toBe("1");
    expect(env.items[0].monId).toBe("178007");
    const x = await call("GET", "/ws/Monitor/178007");
    expect(x.headers.get("content-type")).toMatch(/xml/);
    expect(x.text).toContain("<monId>178007</monId>");
    expect((await call("GET", "/ws/Monitor/1.json")).status).toBe(404);
  });

  it("deletes with 200, then the id is gone", async () => {
    await call("POST", "/ws/Monitor", SEED_BODY);
    expect((await call("DELETE", "/ws/Monitor/178007")).status).toBe(200);
    expect((await call("GET", "/ws/Monitor/178007.json")).status).toBe(404);
    expect((await call("DELETE", "/ws/Monitor/178007")).status).toBe(404);
  });

  it("PUT updates and resets the monitor", async () => {
    await call("POST", "/ws/Monitor", SEED_BODY);
    const r = await call(
      "PUT",
      "/ws/Monitor/178007",
      "<Monitor><monBatchSize>50</monBatchSize><monAckOption>explicit</monAckOption></Monitor>",
    );
    expect(r.status).toBe(200);
    const env = JSON.parse((await call("GET", "/ws/Monitor/178007.json")).text);
    expect(env.items[0]).toMatchObject({ monBatchSize: "50", monAckOption: "explicit", monTopic: "DeviceCore,FileData" });
  });

  it("stores ack option, auto replay and description", async () => {
    await call(
      "POST",
      "/ws/Monitor",
      "<Monitor><monTopic>DataPoint</monTopic><monTransportType>tcp</monTransportType><monAckOption>explicit</monAckOption><monAutoReplayOnConnect>true</monAutoReplayOnConnect><monDescription>a &amp; b</monDescription></Monitor>",
    );
    const env = JSON.parse((await call("GET", "/ws/Monitor/.json")).text);
    expect(env.items[0]).toMatchObject({
      monAckOption: "explicit",
      monAutoReplayOnConnect: "true",
      monDescription: "a & b",
      monBatchSize: "100",
    });
  });

  it("rejects bad fields with 400 naming the field", async () => {
    const bad = await call(
      "POST",
      "/ws/Monitor",
      "<Monitor><monTopic>DataPoint</monTopic><monTransportType>carrier-pigeon</monTransportType></Monitor>",
    );
    expect(bad.status).toBe(400);
    expect(bad.text).toContain("monTransportType");
    const noTopic = await call("POST", "/ws/Monitor", "<Monitor><monTransportType>tcp</monTransportType></Monitor>");
    expect(noTopic.status).toBe(400);
    expect(noTopic.text).toContain("monTopic");
    expect(
      (
        await call(
          "POST",
          "/ws/Monitor",
          "<Monitor><monTopic>A</monTopic><monTransportType>tcp</monTransportType><monCompression>lz4</monCompression></Monitor>",
        )
      ).status,
    ).toBe(400);
    expect((await call("POST", "/ws/Monitor", "not xml <")).status).toBe(400);
  });

  it("answers 401 with WWW-Authenticate for missing or wrong Basic credentials", async () => {
    const none = await fetch(`${emu.httpUrl}/ws/Monitor/.json`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Basic/);
    const wrong = await fetch(`${emu.httpUrl}/ws/Monitor`, {
      method: "POST",
      body: SEED_BODY,
      headers: { Authorization: basic("alice", "nope") },
    });
    expect(wrong.status).toBe(401);
    const v1 = await fetch(`${emu.httpUrl}/ws/v1/monitors/inventory`, { headers: { Authorization: basic("mallory", "x") } });
    expect(v1.status).toBe(401);
  });

  it("shows each customer only its own monitors", async () => {
    await call("POST", "/ws/Monitor", SEED_BODY);
    const r = await fetch(`${emu.httpUrl}/ws/Monitor/.json`, { headers: { Authorization: basic(OTHER.username, OTHER.password) } });
    expect(JSON.parse(await r.text()).resultSize).toBe("0");
    const g = await fetch(`${emu.httpUrl}/ws/Monitor/178007.json`, { headers: { Authorization: basic(OTHER.username, OTHER.password) } });
    expect(g.status).toBe(404);
  });
});

describe("v1 /ws/v1/monitors/inventory", () => {
  const json = { "Content-Type": "application/json" };

  it("creates with 201 and echoes id, customer_id, status inactive, compression none, header names only", async () => {
    const r = await call(
      "POST",
      "/ws/v1/monitors/inventory",
      JSON.stringify({
        type: "http",
        topics: ["DataPoint/*/cl1/cval"],
        description: "d",
        method: "POST",
        format: "json",
        url: "https://example.invalid/hook",
        auth_token: "user:password",
        headers: ["X-Api-Key: abc"],
        persistent: true,
        batch_duration: 10,
        batch_size: 100,
      }),
      json,
    );
    expect(r.status).toBe(201);
    const m = JSON.parse(r.text);
    expect(m).toMatchObject({
      id: 178007,
      customer_id: 7603,
      type: "http",
      topics: ["DataPoint/*/cl1/cval"],
      status: "inactive",
      compression: "none",
      headers: ["X-Api-Key"],
      persistent: true,
      batch_size: 100,
      batch_duration: 10,
      method: "POST",
    });
    expect(r.text).not.toContain("user:password");
  });

  it("shares one store with the legacy API: create in v1, list in both, delete in legacy", async () => {
    const r = await call(
      "POST",
      "/ws/v1/monitors/inventory",
      JSON.stringify({ type: "tcp", topics: ["DataPoint", "DeviceCore"], compression: "gzip" }),
      json,
    );
    const id = JSON.parse(r.text).id;
    const list = JSON.parse((await call("GET", "/ws/v1/monitors/inventory")).text);
    expect(list).toMatchObject({ count: 1 });
    expect(list.list[0]).toMatchObject({ id, type: "tcp", compression: "zlib" });
    expect(JSON.parse((await call("GET", `/ws/v1/monitors/inventory/${id}`)).text).topics).toEqual(["DataPoint", "DeviceCore"]);
    const legacy = JSON.parse((await call("GET", "/ws/Monitor/.json")).text);
    expect(legacy.items[0]).toMatchObject({ monId: String(id), monTopic: "DataPoint,DeviceCore", monCompression: "zlib" });
    expect((await call("DELETE", `/ws/Monitor/${id}`)).status).toBe(200);
    expect((await call("GET", `/ws/v1/monitors/inventory/${id}`)).status).toBe(404);
  });

  it("deletes with 204 and resets with POST .../reset", async () => {
    const id = JSON.parse(
      (await call("POST", "/ws/v1/monitors/inventory", JSON.stringify({ type: "tcp", topics: ["DataPoint"] }), json)).text,
    ).id;
    await fetch(`${emu.httpUrl}/_emulator/monitors/${id}/disable`, { method: "POST" });
    expect(JSON.parse((await call("GET", `/ws/v1/monitors/inventory/${id}`)).text).status).toBe("disabled");
    const reset = await call("POST", `/ws/v1/monitors/inventory/${id}/reset`);
    expect(reset.status).toBe(200);
    expect(JSON.parse(reset.text).status).toBe("inactive");
    expect((await call("DELETE", `/ws/v1/monitors/inventory/${id}`)).status).toBe(204);
    expect((await call("GET", `/ws/v1/monitors/inventory/${id}`)).status).toBe(404);
  });

  it("rejects a bad body with 400 naming the field", async () => {
    const r = await call("POST", "/ws/v1/monitors/inventory", JSON.stringify({ type: "tcp", topics: "DataPoint" }), json);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text).field).toBe("topics");
    const t = await call("POST", "/ws/v1/monitors/inventory", JSON.stringify({ type: "smoke", topics: ["DataPoint"] }), json);
    expect(JSON.parse(t.text).field).toBe("type");
  });
});

describe("admin", () => {
  it("serves the CA only when TLS is on", async () => {
    expect((await fetch(`${emu.httpUrl}/_emulator/ca.pem`)).status).toBe(404);
  });

  it("rejects an unknown fault type with 400", async () => {
    const r = await fetch(`${emu.httpUrl}/_emulator/faults`, { method: "POST", body: JSON.stringify({ type: "meteor" }) });
    expect(r.status).toBe(400);
  });

  it("health answers ok; an unknown admin route is 404 naming it; a bad emit body is 400 naming the field", async () => {
    expect(await (await fetch(`${emu.httpUrl}/_emulator/health`)).json()).toEqual({ ok: true });
    const unknown = await fetch(`${emu.httpUrl}/_emulator/nothing`, { method: "POST" });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: "no such admin route POST /_emulator/nothing" });
    const bad = await fetch(`${emu.httpUrl}/_emulator/emit`, { method: "POST", body: JSON.stringify({ count: -1 }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { field: string }).field).toBe("count");
  });

  it("emit to an unknown monitor is 404", async () => {
    const r = await fetch(`${emu.httpUrl}/_emulator/emit`, { method: "POST", body: JSON.stringify({ monitorId: 5, count: 1 }) });
    expect(r.status).toBe(404);
  });
});
