import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type IotcEmulator, startIotcEmulator } from "../src/index.js";
import { dpsConnect, dpsToken, groupDeviceKey, inAnHour, registerOverMqtt } from "./helpers.js";

let e: IotcEmulator;
beforeAll(async () => {
  e = await startIotcEmulator({ assigningPolls: 2, retryAfterSeconds: 3 });
});
afterAll(() => e.stop());

describe("DPS over MQTT", () => {
  it("registers a group-key device: 202 assigning per poll, then 200 with the full registrationState; records the model id", async () => {
    const id = "grp-dev-1";
    const answers = await registerOverMqtt(
      e,
      id,
      { password: dpsToken(e, id, groupDeviceKey(e, id)) },
      { modelId: "dtmi:com:example:Thermostat;1" },
    );
    expect(answers.map((a) => a.status)).toEqual([202, 202, 200]);
    expect(answers[0]!.body.status).toBe("assigning");
    expect(answers[0]!.query.get("retry-after")).toBe("3");
    const final = answers[2]!.body;
    expect(final.status).toBe("assigned");
    expect(final.operationId).toBe(answers[0]!.body.operationId);
    const state = final.registrationState as Record<string, unknown>;
    expect(state).toMatchObject({
      registrationId: id,
      deviceId: id,
      assignedHub: e.hubHostName,
      status: "assigned",
      substatus: "initialAssignment",
      symmetricKey: {},
    });
    for (const f of ["createdDateTimeUtc", "lastUpdatedDateTimeUtc", "etag"]) expect(typeof state[f]).toBe("string");
    expect(e.devices().find((d) => d.deviceId === id)).toMatchObject({
      modelId: "dtmi:com:example:Thermostat;1",
      registrations: 1,
      connects: 0,
    });
  });

  it("recognises iotcModelId and __iot:interfaces in the payload", async () => {
    for (const [id, payload, model] of [
      ["grp-dev-iotc", { iotcModelId: "urn:a:b:1" }, "urn:a:b:1"],
      ["grp-dev-legacy", { "__iot:interfaces": { CapabilityModelId: "urn:c:d:1" } }, "urn:c:d:1"],
    ] as const) {
      await registerOverMqtt(e, id, { password: dpsToken(e, id, groupDeviceKey(e, id)) }, payload);
      expect(e.devices().find((d) => d.deviceId === id)?.modelId).toBe(model);
    }
  });

  it("accepts an individual enrollment's own key, and a token whose sr is percent-encoded in lower case", async () => {
    const id = "ind-dev-1";
    const key = Buffer.alloc(32, 7).toString("base64");
    e.enrollDevice(id, { deviceKey: key });
    const { createSasToken } = await import("../src/index.js");
    const sr = encodeURIComponent(`${e.idScope}/registrations/${id}`).toLowerCase();
    const answers = await registerOverMqtt(e, id, { password: createSasToken(key, sr, inAnHour(), "registration") });
    expect(answers.at(-1)!.body.status).toBe("assigned");
    // The group key no longer opens an individually enrolled registration.
    await expect(dpsConnect(e, id, { password: dpsToken(e, id, groupDeviceKey(e, id)) })).rejects.toMatchObject({ code: 5 });
  });

  it("refuses a bad signature, an expired token, a wrong scope and a client id that is not the registration id (CONNACK 5)", async () => {
    const id = "grp-dev-bad";
    const good = groupDeviceKey(e, id);
    const wrongKey = Buffer.alloc(32, 1).toString("base64");
    await expect(dpsConnect(e, id, { password: dpsToken(e, id, wrongKey) })).rejects.toMatchObject({ code: 5 });
    await expect(dpsConnect(e, id, { password: dpsToken(e, id, good, Math.floor(Date.now() / 1000) - 10) })).rejects.toMatchObject({
      code: 5,
    });
    await expect(
      dpsConnect(e, id, {
        password: dpsToken(e, id, good),
        username: `0ne00OTHER1/registrations/${id}/api-version=2019-03-31`,
      }),
    ).rejects.toMatchObject({ code: 5 });
    await expect(dpsConnect(e, id, { password: dpsToken(e, id, good), clientId: "someone-else" })).rejects.toMatchObject({ code: 5 });
    expect(e.devices().find((d) => d.deviceId === id)).toBeUndefined();
  });

  it("registers an X.509 device whose certificate the enrollment CA signed; refuses one signed by another CA", async () => {
    const id = "x509-dev-1";
    const cert = e.issueDeviceCertificate(id);
    const answers = await registerOverMqtt(e, id, { cert: cert.certPem, key: cert.keyPem });
    const state = answers.at(-1)!.body.registrationState as Record<string, unknown>;
    expect(state).toMatchObject({ deviceId: id, status: "assigned", x509: {} });

    const other = await startIotcEmulator();
    try {
      const foreign = other.issueDeviceCertificate(id);
      await expect(dpsConnect(e, id, { cert: foreign.certPem, key: foreign.keyPem })).rejects.toMatchObject({ code: 5 });
      // A certificate for another registration id does not open this one.
      const wrongCn = e.issueDeviceCertificate("x509-dev-2");
      await expect(dpsConnect(e, id, { cert: wrongCn.certPem, key: wrongCn.keyPem })).rejects.toMatchObject({ code: 5 });
    } finally {
      await other.stop();
    }
  });

  it("answers a disabled device with status disabled and an injected failure with status failed", async () => {
    const id = "grp-dev-disabled";
    e.setDeviceStatus(id, "disabled");
    const answers = await registerOverMqtt(e, id, { password: dpsToken(e, id, groupDeviceKey(e, id)) });
    expect(answers.map((a) => [a.status, a.body.status])).toEqual([[200, "disabled"]]);

    e.setFault({ dpsFailed: { count: 1, errorCode: 400209, errorMessage: "blocked" } });
    const f = "grp-dev-failed";
    const failed = await registerOverMqtt(e, f, { password: dpsToken(e, f, groupDeviceKey(e, f)) });
    expect(failed.at(-1)!.body).toMatchObject({ status: "failed", registrationState: { errorCode: 400209, errorMessage: "blocked" } });
    expect(e.devices().find((d) => d.deviceId === f)).toMatchObject({ registrations: 1 });
  });

  it("answers 429 with retry-after and a JSON error while throttled, then registers", async () => {
    const id = "grp-dev-throttled";
    e.setFault({ dpsThrottle: { count: 1, retryAfterSeconds: 7 } });
    const c = await dpsConnect(e, id, { password: dpsToken(e, id, groupDeviceKey(e, id)) });
    try {
      await c.subscribeAsync("$dps/registrations/res/#", { qos: 1 });
      const answer = new Promise<{ topic: string; payload: Buffer }>((resolve) =>
        c.once("message", (topic, payload) => resolve({ topic, payload })),
      );
      await c.publishAsync("$dps/registrations/PUT/iotdps-register/?$rid=abc", JSON.stringify({ registrationId: id }), { qos: 1 });
      const a = await answer;
      expect(a.topic).toBe("$dps/registrations/res/429/?$rid=abc&retry-after=7");
      expect(JSON.parse(a.payload.toString())).toMatchObject({ errorCode: 429001 });
    } finally {
      await c.endAsync();
    }
    const again = await registerOverMqtt(e, id, { password: dpsToken(e, id, groupDeviceKey(e, id)) });
    expect(again.at(-1)!.body.status).toBe("assigned");
    expect(e.devices().find((d) => d.deviceId === id)?.registrations).toBe(2);
  });
});
