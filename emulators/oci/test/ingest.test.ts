/**
 * Device ingest over HTTPS (Basic externalKey:secret, the secret being the vault secret named by the instance's
 * authId): raw rows always, normalisation through the adapter into historized rows and the snapshot, or rejected
 * rows; unstructured twins stop at raw.
 */
import { until } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OciEmulator } from "../src/index.js";
import {
  createStructuredTwin,
  dataToken,
  emuFetch,
  m5CustomModel,
  m5DefaultModel,
  m5Payload,
  ords,
  postDevice,
  sdkClient,
  startEmulator,
} from "./harness.js";

let emu: OciEmulator;
let client: ReturnType<typeof sdkClient>;
let token: string;

beforeAll(async () => {
  emu = await startEmulator();
  client = sdkClient(emu);
  token = (await dataToken(emu)).body.access_token as string;
});
afterAll(async () => {
  client?.close();
  await emu?.stop();
});

const rows = async (set: string, instanceId: string) =>
  (await ords(emu, token, set, { q: JSON.stringify({ digital_twin_instance_id: instanceId, $orderby: { id: "asc" } }), limit: "500" })).body
    .items!;

describe("device ingest", () => {
  it("turns the M5 sample into a raw row, 4 historized rows and a snapshot with count (custom adapter); 2xx without JSON", async () => {
    const twin = await createStructuredTwin(emu, client, { key: "m5", model: m5CustomModel, custom: true });
    const time = 1758220348847244;
    const res = await postDevice(emu, twin.externalKey, twin.secret, { ...m5Payload, time });
    expect(res.status).toBeGreaterThanOrEqual(200);
    expect(res.status).toBeLessThan(300);
    expect(res.text).toBe("");
    expect(res.contentType ?? "").not.toContain("json");

    expect(await rows("rawData", twin.instance.id)).toHaveLength(1);
    const historized = await rows("historizedData", twin.instance.id);
    expect(Object.fromEntries(historized.map((r) => [r.content_path, r.value]))).toEqual({
      sht_temperature: 23.8,
      qmp_temperature: 24.4,
      humidity: 56.1,
      pressure: 1012.2,
    });
    expect(historized).toHaveLength(4);
    expect(new Set(historized.map((r) => r.time_observed))).toEqual(new Set(["2025-09-18T18:32:28.847244Z"]));
    const content = await client.getDigitalTwinInstanceContent({ digitalTwinInstanceId: twin.instance.id });
    expect(content.value).toEqual(m5Payload);
    const withMeta = await client.getDigitalTwinInstanceContent({ digitalTwinInstanceId: twin.instance.id, shouldIncludeMetadata: true });
    expect((withMeta.value as Record<string, unknown>).count).toBe(5479);
    expect(await rows("rejectedData", twin.instance.id)).toHaveLength(0);
  });

  it("rejects an iot/pvhd payload with 500 'Normalization output is empty' under the default adapter (nothing maps)", async () => {
    const twin = await createStructuredTwin(emu, client, { key: "pvhd-default", model: m5DefaultModel, custom: false });
    expect((await postDevice(emu, twin.externalKey, twin.secret, { uptime: 12, heap: 40000 }, "iot/pvhd")).status).toBe(202);
    const rejected = await rows("rejectedData", twin.instance.id);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ endpoint: "iot/pvhd", reason_code: 500, reason_message: "Normalization output is empty" });
    expect(await rows("rawData", twin.instance.id)).toHaveLength(1);
    expect(await rows("historizedData", twin.instance.id)).toHaveLength(0);
  });

  it("custom adapter: a payload route 1 maps nothing from is rejected 500 'Normalization output is empty'; on iot/pvhd route 2 takes it into system (reading of the notes: route 2 is the catch-all)", async () => {
    const twin = await createStructuredTwin(emu, client, { key: "pvhd-custom", model: m5CustomModel, custom: true });
    await postDevice(emu, twin.externalKey, twin.secret, { unrelated: 1 });
    const rejected = await rows("rejectedData", twin.instance.id);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ endpoint: "iot/v1/telemetry", reason_code: 500, reason_message: "Normalization output is empty" });

    await postDevice(emu, twin.externalKey, twin.secret, { uptime: 12, heap: 40000 }, "iot/pvhd");
    const historized = await rows("historizedData", twin.instance.id);
    expect(historized.map((r) => [r.content_path, r.value])).toEqual([["system", { uptime: 12, heap: 40000 }]]);
  });

  it("keeps only raw rows for an unstructured twin", async () => {
    emu.addVaultSecret("ocid1.vaultsecret.oc1.eu-frankfurt-1.unstructured", "s3cret");
    const i = await client.createDigitalTwinInstance({
      createDigitalTwinInstanceDetails: {
        iotDomainId: emu.domain.id,
        externalKey: "unstructured-ext",
        authId: "ocid1.vaultsecret.oc1.eu-frankfurt-1.unstructured",
      },
    });
    expect((await postDevice(emu, "unstructured-ext", "s3cret", { anything: true }, "custom/path")).status).toBe(202);
    const raw = await rows("rawData", i.digitalTwinInstance.id);
    expect(raw).toHaveLength(1);
    expect(raw[0]!.endpoint).toBe("custom/path");
    expect(await rows("rejectedData", i.digitalTwinInstance.id)).toHaveLength(0);
    expect(await rows("historizedData", i.digitalTwinInstance.id)).toHaveLength(0);
  });

  it("refuses bad credentials with 401 and stores nothing: wrong secret, unknown device, no Basic, deleted instance", async () => {
    const twin = await createStructuredTwin(emu, client, { key: "creds", model: m5CustomModel, custom: true });
    expect((await postDevice(emu, twin.externalKey, "wrong", m5Payload)).status).toBe(401);
    expect((await postDevice(emu, "nobody", twin.secret, m5Payload)).status).toBe(401);
    expect((await emuFetch(emu)(`${emu.deviceUrl}/iot/v1/telemetry`, { method: "POST", body: "{}" })).status).toBe(401);
    await client.deleteDigitalTwinInstance({ digitalTwinInstanceId: twin.instance.id });
    expect((await postDevice(emu, twin.externalKey, twin.secret, m5Payload)).status).toBe(401);
    expect(await rows("rawData", twin.instance.id)).toHaveLength(0);
  });

  it("ingests as a device through the emulator (no credentials)", async () => {
    const twin = await createStructuredTwin(emu, client, { key: "asdevice", model: m5CustomModel, custom: true });
    const result = emu.ingest(twin.externalKey, m5Payload);
    expect(result).toMatchObject({ outcome: "normalized", instanceId: twin.instance.id });
    expect(result.historizedIds).toHaveLength(4);
    expect(() => emu.ingest("nobody", m5Payload)).toThrow(/external key/);
  });

  it("simulates M5 devices that exist: OCI_EMU_SIMULATE's external keys send on iot/v1/telemetry every interval", async () => {
    const sim = await startEmulator({ simulate: { externalKeys: ["sim-ext", "absent-ext"], intervalMs: 50 } });
    const simClient = sdkClient(sim);
    try {
      const twin = await createStructuredTwin(sim, simClient, { key: "sim", model: m5DefaultModel, custom: false });
      await until(() => (sim.state().counts as { historizedData: number }).historizedData >= 8, {
        timeoutMs: 5000,
        what: "8 simulated historized rows",
      });
      const content = (await simClient.getDigitalTwinInstanceContent({ digitalTwinInstanceId: twin.instance.id })).value as Record<
        string,
        number
      >;
      expect(Object.keys(content).sort()).toEqual(["count", "humidity", "pressure", "qmp_temperature", "sht_temperature"]);
      expect(content.count).toBeGreaterThanOrEqual(2);
    } finally {
      simClient.close();
      await sim.stop();
    }
  });
});
