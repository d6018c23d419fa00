import { Code } from "@connectrpc/connect";
import { Bus } from "@meridian/bus";
import { ConnectionState, WritablePropertyAck } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { expectCode, type NatsServerHandle, startForTest, startNatsServer, testLogger } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { iotcBridgeConfig } from "../src/config.js";
import { APPLICATIONS_BUCKET, DEVICES_BUCKET } from "../src/pipeline/store.js";
import { type IotcBridge, startIotcBridge } from "../src/service.js";
import { api, CREDENTIALS_KEY, FakeCentral, GROUP_KEY } from "./harness.js";

let nats: NatsServerHandle;
let bus: Bus;
let svc: IotcBridge;
const central = new FakeCentral();

beforeAll(async () => {
  nats = await startNatsServer();
  bus = Bus.connect({ servers: nats.url, name: "test-reader", logger: testLogger() });
  await bus.ready;
  svc = await startForTest(
    startIotcBridge,
    iotcBridgeConfig,
    { NATS_URL: nats.url, INSTANCE_ID: "api", IOTC_CREDENTIALS_KEY: CREDENTIALS_KEY, IOTC_CONNECT_RATE: "1000" },
    { createDevice: central.createDevice },
  );
  await api(svc.service.url).createApplication({
    application: {
      id: "plant",
      displayName: "Plant",
      idScope: "0ne00000001",
      modelId: "dtmi:meridian:pump;1",
      writablePropertyAck: WritablePropertyAck.COMPLETED,
      enrollmentGroup: { credential: { case: "groupKey", value: GROUP_KEY } },
    },
  });
});

afterAll(async () => {
  await svc?.stop();
  await bus?.close();
  await nats?.stop();
});

/** Every raw byte of a KV bucket, as text. */
async function bucketText(bucket: string): Promise<string> {
  const jsm = bus.jsm();
  const info = await jsm.streams.info(`KV_${bucket}`);
  let out = "";
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    try {
      out += Buffer.from((await jsm.streams.getMessage(`KV_${bucket}`, { seq })).data).toString("utf8");
    } catch {
      // deleted
    }
  }
  return out;
}

describe("applications", () => {
  it("the group key is write-only: never returned, not in KV in the clear", async () => {
    const got = await api(svc.service.url).getApplication({ id: "plant" });
    expect(got.application).toMatchObject({
      id: "plant",
      credentialKind: "group_key",
      provisioningHost: "global.azure-devices-provisioning.net",
      writablePropertyAck: WritablePropertyAck.COMPLETED,
    });
    expect(got.application?.enrollmentGroup).toBeUndefined();
    const listed = await api(svc.service.url).listApplications({});
    expect(JSON.stringify(listed.applications.map((a) => a.enrollmentGroup))).not.toContain(GROUP_KEY);
    expect(await bucketText(APPLICATIONS_BUCKET)).not.toContain(GROUP_KEY);
  });

  it("bad input names the field; an unknown application is not_found", async () => {
    const c = api(svc.service.url);
    await expectCode(c.getApplication({ id: "nope" }), Code.NotFound, /application nope not found/);
    await expectCode(c.getApplication({ id: "Bad_Id" }), Code.InvalidArgument, /id: must be 1-63 lower-case/);
    await expectCode(
      c.createApplication({
        application: { id: "x", idScope: "0ne1", enrollmentGroup: { credential: { case: "groupKey", value: "not-base64!" } } },
      }),
      Code.InvalidArgument,
      /application\.enrollment_group\.group_key: must be a base64 SAS key/,
    );
    await expectCode(c.createApplication({}), Code.InvalidArgument, /application: is required/);
    await expectCode(c.deleteApplication({ id: "nope" }), Code.NotFound);
  });
});

describe("devices", () => {
  it("RegisterDevice registers and connects; the device's key is sealed; List/Get/Delete", async () => {
    const c = api(svc.service.url);
    const deviceKey = Buffer.alloc(32, 5).toString("base64");
    const reg = await c.registerDevice({ applicationId: "plant", deviceId: "pump-1" });
    expect(reg.device).toMatchObject({
      deviceId: "pump-1",
      assignedHub: "fake-hub.azure-devices.net",
      modelId: "dtmi:meridian:pump;1",
      credentialKind: "group_key",
      state: ConnectionState.CONNECTED,
    });
    const own = await c.registerDevice({ applicationId: "plant", deviceId: "pump-2", credential: { case: "deviceKey", value: deviceKey } });
    expect(own.device?.credentialKind).toBe("device_key");
    expect(central.made.at(-1)?.credential).toEqual({ kind: "device_key", deviceKey });
    expect(await bucketText(DEVICES_BUCKET)).not.toContain(deviceKey);

    const page1 = await c.listDevices({ applicationId: "plant", pageSize: 1 });
    expect(page1.devices.map((d) => d.deviceId)).toEqual(["pump-1"]);
    const page2 = await c.listDevices({ applicationId: "plant", pageSize: 1, pageToken: page1.nextPageToken });
    expect(page2.devices.map((d) => d.deviceId)).toEqual(["pump-2"]);
    expect(page2.nextPageToken).toBe("");

    const got = await c.getDevice({ applicationId: "plant", deviceId: "pump-1" });
    expect(got.twin?.desired).toEqual({ $version: 1 });
    const sent = await c.sendTelemetry({ applicationId: "plant", deviceId: "pump-1", payload: { temperature: 21.5 }, component: "pump" });
    expect(central.sent.at(-1)).toMatchObject({
      deviceId: "pump-1",
      payload: { temperature: 21.5 },
      options: { component: "pump", messageId: sent.messageId },
    });
    expect((await c.getDevice({ applicationId: "plant", deviceId: "pump-1" })).device?.messagesSent).toBe(1n);
    expect((await c.updateReportedProperties({ applicationId: "plant", deviceId: "pump-1", patch: { serial: "A1" } })).version).toBe(2n);

    await c.deleteDevice({ applicationId: "plant", deviceId: "pump-2" });
    await expectCode(
      c.getDevice({ applicationId: "plant", deviceId: "pump-2" }),
      Code.NotFound,
      /device pump-2 of application plant not found/,
    );
    await expectCode(c.deleteDevice({ applicationId: "plant", deviceId: "pump-2" }), Code.NotFound);
  });

  it("bad device input names the field", async () => {
    const c = api(svc.service.url);
    await expectCode(c.registerDevice({ applicationId: "nope", deviceId: "d" }), Code.NotFound, /application nope not found/);
    await expectCode(c.registerDevice({ applicationId: "plant", deviceId: "Pump 1" }), Code.InvalidArgument, /device_id: character "P"/);
    await expectCode(c.getDevice({ applicationId: "plant", deviceId: "" }), Code.InvalidArgument, /device_id: is required/);
    await expectCode(
      c.sendTelemetry({ applicationId: "plant", deviceId: "pump-1", payload: { blob: "x".repeat(257 * 1024) } }),
      Code.InvalidArgument,
      /payload: is \d+ bytes as JSON, over the 262144-byte limit/,
    );
    await expectCode(c.sendTelemetry({ applicationId: "plant", deviceId: "pump-1" }), Code.InvalidArgument, /payload: is required/);
    await expectCode(
      c.updateReportedProperties({ applicationId: "plant", deviceId: "pump-1", patch: { blob: "x".repeat(33 * 1024) } }),
      Code.InvalidArgument,
      /patch: is \d+ bytes as JSON, over the 32768-byte limit/,
    );
    await expectCode(
      c.sendTelemetry({ applicationId: "plant", deviceId: "pump-1", payload: { a: 1 }, component: "1bad" }),
      Code.InvalidArgument,
      /component: must be a DTDL component name/,
    );
    await expectCode(c.listDevices({ applicationId: "plant", pageSize: 5000 }), Code.InvalidArgument, /page_size: must be 1 to 1000/);
    await expectCode(c.listDevices({ applicationId: "plant", pageToken: "!!" }), Code.InvalidArgument, /page_token/);
  });

  it("a disabled device is failed_precondition, and its state says so", async () => {
    const c = api(svc.service.url);
    central.disabled.add("blocked-1");
    await expectCode(c.registerDevice({ applicationId: "plant", deviceId: "blocked-1" }), Code.FailedPrecondition, /disabled/);
    const d = await c.getDevice({ applicationId: "plant", deviceId: "blocked-1" });
    expect(d.device?.state).toBe(ConnectionState.FAILED);
    expect(d.device?.lastError).toMatch(/disabled/);
  });

  it("an application replaced with other settings closes its devices; deleted, it forgets them", async () => {
    const c = api(svc.service.url);
    await c.registerDevice({ applicationId: "plant", deviceId: "pump-9" });
    const before = central.made.length;
    await c.createApplication({
      application: { id: "plant", idScope: "0ne00000009", enrollmentGroup: { credential: { case: "groupKey", value: GROUP_KEY } } },
    });
    expect((await c.getDevice({ applicationId: "plant", deviceId: "pump-9" })).device?.state).toBe(ConnectionState.DISCONNECTED);
    await c.sendTelemetry({ applicationId: "plant", deviceId: "pump-9", payload: { a: 1 } });
    expect(central.made.length).toBe(before + 1);
    expect(central.made.at(-1)?.endpoint.idScope).toBe("0ne00000009");
    await c.deleteApplication({ id: "plant" });
    await expectCode(c.getDevice({ applicationId: "plant", deviceId: "pump-9" }), Code.NotFound);
  });
});

it("without IOTC_CREDENTIALS_KEY an application with a secret is failed_precondition naming the setting", async () => {
  const keyless = await startForTest(
    startIotcBridge,
    iotcBridgeConfig,
    { NATS_URL: nats.url, INSTANCE_ID: "keyless" },
    { createDevice: central.createDevice },
  );
  try {
    await expectCode(
      api(keyless.service.url).createApplication({
        application: { id: "k", idScope: "0ne1", enrollmentGroup: { credential: { case: "groupKey", value: GROUP_KEY } } },
      }),
      Code.FailedPrecondition,
      /needs IOTC_CREDENTIALS_KEY/,
    );
  } finally {
    await keyless.stop();
  }
});
