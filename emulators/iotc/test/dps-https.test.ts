import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type IotcEmulator, startIotcEmulator } from "../src/index.js";
import { dpsToken, groupDeviceKey } from "./helpers.js";

let e: IotcEmulator;
beforeAll(async () => {
  e = await startIotcEmulator({ assigningPolls: 1, retryAfterSeconds: 2 });
});
afterAll(() => e.stop());

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

function call(
  method: string,
  path: string,
  options: { auth?: string; body?: string; cert?: { certPem: string; keyPem: string } } = {},
): Promise<Answer> {
  const url = new URL(path, e.httpsUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: e.caPem,
        ...(options.cert ? { cert: options.cert.certPem, key: options.cert.keyPem } : {}),
        headers: {
          "content-type": "application/json; charset=utf-8",
          ...(options.auth ? { authorization: options.auth } : {}),
          // As the Node SDK does: a GET with a body needs its length (Node sends neither chunked nor a length for GET).
          ...(options.body === undefined ? {} : { "content-length": String(Buffer.byteLength(options.body)) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString() || "null") }),
        );
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

describe("DPS over HTTPS", () => {
  it("PUT register -> 202 with a retry-after header, GET operations (with a body, as the Node SDK sends) -> 200 assigned", async () => {
    const id = "http-dev-1";
    const auth = dpsToken(e, id, groupDeviceKey(e, id));
    const reg = await call("PUT", `/${e.idScope}/registrations/${id}/register?api-version=2021-06-01`, {
      auth,
      body: JSON.stringify({ registrationId: id, payload: { modelId: "dtmi:x:y;1" } }),
    });
    expect(reg.status).toBe(202);
    expect(reg.headers["retry-after"]).toBe("2");
    expect(reg.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(reg.body).toMatchObject({ status: "assigning", operationId: expect.any(String) });
    const op = await call("GET", `/${e.idScope}/registrations/${id}/operations/${reg.body.operationId as string}?api-version=2019-03-31`, {
      auth,
      body: "{}",
    });
    expect(op.status).toBe(200);
    expect(op.body).toMatchObject({
      status: "assigned",
      registrationState: { deviceId: id, assignedHub: e.hubHostName, status: "assigned" },
    });
    expect(e.devices().find((d) => d.deviceId === id)).toMatchObject({ modelId: "dtmi:x:y;1", registrations: 1 });
  });

  it("registers with a client certificate and no Authorization header", async () => {
    const id = "http-x509";
    const cert = e.issueDeviceCertificate(id);
    const reg = await call("PUT", `/${e.idScope}/registrations/${id}/register?api-version=2021-06-01`, {
      cert,
      body: JSON.stringify({ registrationId: id }),
    });
    expect(reg.status).toBe(202);
  });

  it("answers 401 with a DPS error body for a bad token or none, 404 for an unknown operation, 429 with retry-after when throttled", async () => {
    const id = "http-dev-2";
    const bad = await call("PUT", `/${e.idScope}/registrations/${id}/register`, {
      auth: dpsToken(e, id, Buffer.alloc(32, 9).toString("base64")),
      body: "{}",
    });
    expect(bad.status).toBe(401);
    expect(bad.body).toMatchObject({ errorCode: 401002, trackingId: expect.any(String), message: expect.any(String) });
    expect((await call("PUT", `/${e.idScope}/registrations/${id}/register`, { body: "{}" })).status).toBe(401);

    const auth = dpsToken(e, id, groupDeviceKey(e, id));
    const unknown = await call("GET", `/${e.idScope}/registrations/${id}/operations/nope`, { auth });
    expect(unknown.status).toBe(404);
    expect(String(unknown.body.errorCode)).toMatch(/^404/);

    e.setFault({ dpsThrottle: { count: 1, retryAfterSeconds: 9 } });
    const throttled = await call("PUT", `/${e.idScope}/registrations/${id}/register`, { auth, body: "{}" });
    expect(throttled.status).toBe(429);
    expect(throttled.headers["retry-after"]).toBe("9");
    expect(String(throttled.body.errorCode)).toMatch(/^429/);
  });
});

describe("/_emulator admin surface", () => {
  it("reset forgets devices and drops their connections", async () => {
    const { registerOverMqtt, hubConnect, hubToken, closed } = await import("./helpers.js");
    const id = "adm-reset";
    const key = groupDeviceKey(e, id);
    await registerOverMqtt(e, id, { password: dpsToken(e, id, key) });
    const c = await hubConnect(e, id, { password: hubToken(e, id, key) });
    expect((await call("POST", "/_emulator/reset")).body).toEqual({ reset: true });
    await closed(c);
    expect(e.devices()).toEqual([]);
    await expect(hubConnect(e, id, { password: hubToken(e, id, key) })).rejects.toMatchObject({ code: 5 });
  });

  it("serves state, the CA, faults, desired updates, C2D, device status and enrollments", async () => {
    expect((await call("GET", "/_emulator/health")).body).toEqual({ ok: true });
    const state = await call("GET", "/_emulator/state");
    expect(state.body).toMatchObject({ idScope: e.idScope, hubHostName: e.hubHostName, mqttHost: e.mqttHost });

    const fault = await call("POST", "/_emulator/faults", { body: JSON.stringify({ connackServerUnavailable: 2 }) });
    expect(fault.body).toEqual({ faults: { connackServerUnavailable: 2 } });
    const badFault = await call("POST", "/_emulator/faults", { body: JSON.stringify({ dpsThrottle: { count: 0 } }) });
    expect(badFault.status).toBe(400);
    expect(String(badFault.body.error)).toMatch(/dpsThrottle/);
    await call("DELETE", "/_emulator/faults");

    const v = await call("POST", "/_emulator/devices/adm-1/desired", { body: JSON.stringify({ target: 5 }) });
    expect(v.body).toEqual({ version: 2 });
    expect((await call("GET", "/_emulator/devices/adm-1/twin")).body).toEqual({
      desired: { target: 5, $version: 2 },
      reported: { $version: 1 },
    });
    const method = await call("POST", "/_emulator/devices/adm-1/methods", { body: JSON.stringify({ methodName: "Reboot" }) });
    expect(method.body).toMatchObject({ status: 404, payload: { errorCode: 404103 } });
    const status = await call("POST", "/_emulator/devices/adm-1/status", { body: JSON.stringify({ status: "blocked" }) });
    expect(status.status).toBe(400);
    await call("POST", "/_emulator/devices/adm-1/status", { body: JSON.stringify({ status: "disabled" }) });
    expect((await call("POST", "/_emulator/devices/adm-1/expire-token")).body).toEqual({ expired: false });
    expect(e.devices().find((d) => d.deviceId === "adm-1")?.status).toBe("disabled");
    const enrolled = await call("PUT", "/_emulator/enrollments/adm-2", { body: JSON.stringify({ x509: true }) });
    expect(enrolled.body).toEqual({ enrolled: true });
    const ca = await new Promise<string>((resolve, reject) =>
      request(new URL("/_emulator/ca.pem", e.httpsUrl), { ca: e.caPem }, (res) => {
        let s = "";
        res.on("data", (c) => {
          s += c;
        });
        res.on("end", () => resolve(s));
      })
        .on("error", reject)
        .end(),
    );
    expect(ca).toBe(e.caPem);
  });
});
