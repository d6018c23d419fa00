import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type OciEmulator, startOciEmulator } from "@meridian/emulator-oci";
import { type OciTwinManager, ociTwinManagerConfig, startOciTwinManager } from "@meridian/oci-twin-manager";
import { type NatsServerHandle, startForTest, startNatsServer, testTransport } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runVerb } from "../src/commands/testdata/harness.js";
import { registerTwin } from "../src/commands/twin.js";
import { EXIT } from "../src/kit/exit.js";

/**
 * manage-dt's session (seed 004) as `meridian twin create | send | query | delete`, against the real oci-twin-manager and
 * the OCI emulator: the custom-adapter twin of an iot_config.yaml with manage-dt's sample files, an M5 payload posted
 * as the device, its content and the raw and historized tables read back, everything deleted.
 */
const AUTH_ID = "ocid1.vaultsecret.oc1.eu-frankfurt-1.m5devicesecret";
const DEVICE_SECRET = "m5-device-secret-1";

let nats: NatsServerHandle;
let emulator: OciEmulator;
let manager: OciTwinManager;
let dir: string;

// manage-dt's data/ directory: iot_config.yaml and the M5Stack Env-III files (protocol notes §2.6).
const CONTEXT = ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:historization;1", "dtmi:dtdl:extension:quantitativeTypes;1"];
const measure = (name: string, semantic: string, unit: string, displayName: string) => ({
  "@type": ["Telemetry", "Historized", semantic],
  name,
  schema: "double",
  unit,
  displayName,
});
const MODEL_CUSTOM = {
  "@context": CONTEXT,
  "@id": "dtmi:com:oracle:placeholder;1",
  "@type": "Interface",
  contents: [
    measure("sht_temperature", "Temperature", "degreeCelsius", "SHT Temperature"),
    measure("qmp_temperature", "Temperature", "degreeCelsius", "QMP Temperature"),
    measure("humidity", "RelativeHumidity", "percent", "Humidity"),
    measure("pressure", "Pressure", "hectopascal", "Pressure"),
    { "@type": "Telemetry", name: "count", schema: "integer", displayName: "Message Count" },
    { "@type": ["Telemetry", "Historized"], name: "system", schema: { "@type": "Object", fields: [] }, displayName: "System Message" },
  ],
};
const ENVELOPE = {
  envelopeMapping: { timeObserved: "$.time" },
  referenceEndpoint: "iot/v1/telemetry",
  referencePayload: {
    dataFormat: "JSON",
    data: { count: 0, humidity: 0.0, pressure: 0.0, qmp_temperature: 0.0, sht_temperature: 0.0, time: 0 },
  },
};
const ROUTES = [
  {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an OCI jq condition, not a placeholder
    condition: '${endpoint(3) == "telemetry"}',
    description: "Environment data",
    payloadMapping: {
      "$.count": "$.count",
      "$.humidity": "$.humidity",
      "$.pressure": "$.pressure",
      "$.qmp_temperature": "$.qmp_temperature",
      "$.sht_temperature": "$.sht_temperature",
    },
  },
  // biome-ignore lint/suspicious/noTemplateCurlyInString: an OCI jq expression
  { condition: "*", description: "Default condition", payloadMapping: { "$.system": "${.}" } },
];

beforeAll(async () => {
  nats = await startNatsServer();
  emulator = await startOciEmulator({});
  dir = mkdtempSync(join(tmpdir(), "meridian-cli-twin-"));
  const keyFile = join(dir, "key.pem");
  writeFileSync(keyFile, emulator.apiKey.privateKeyPem, { mode: 0o600 });
  const configFile = join(dir, "config");
  writeFileSync(
    configFile,
    [
      "[DEFAULT]",
      `user=${emulator.apiKey.user}`,
      `fingerprint=${emulator.apiKey.fingerprint}`,
      `tenancy=${emulator.apiKey.tenancy}`,
      "region=eu-frankfurt-1",
      `key_file=${keyFile}`,
      "",
    ].join("\n"),
  );
  const env: Record<string, string> = {
    INSTANCE_ID: "cli-test",
    NATS_URL: nats.url,
    OCI_CREDENTIALS_KEY: Buffer.alloc(32, 12).toString("base64"),
    OCI_AUTH: "api_key",
    OCI_CONFIG_FILE: configFile,
    OCI_PROFILE: "DEFAULT",
    OCI_IOT_ENDPOINT: emulator.controlUrl,
    OCI_DATA_URL: emulator.dataUrl,
    OCI_DEVICE_URL: emulator.deviceUrl,
    OCI_IDENTITY_URL: emulator.identityUrl,
    OCI_IOT_DOMAIN_ID: emulator.domain.id,
    OCI_DATA_CLIENT_ID: emulator.dataAccess.clientId,
    OCI_DATA_CLIENT_SECRET: emulator.dataAccess.clientSecret,
    OCI_DATA_USERNAME: emulator.dataAccess.username,
    OCI_DATA_PASSWORD: emulator.dataAccess.password,
    OCI_REQUEST_TIMEOUT_MS: "10000",
  };
  if (emulator.caPem) {
    writeFileSync(join(dir, "ca.pem"), emulator.caPem);
    env.OCI_CA_FILE = join(dir, "ca.pem");
  }
  emulator.addVaultSecret(AUTH_ID, DEVICE_SECRET);
  manager = await startForTest(startOciTwinManager, ociTwinManagerConfig, env, { deleteWaitMs: 10_000 });

  const data = join(dir, "data");
  mkdirSync(data);
  writeFileSync(
    join(data, "iot_config.yaml"),
    `iot:
  domain_id: ${emulator.domain.id}
environ:
  device_key: pvhd
  auth_id: ${AUTH_ID}
digital_twins:
  custom-adapter:
    device_name: \${device_key}-m5-env-cstm-01
    external_key: \${device_key}-cstm
    auth_id: \${auth_id}
    model_name: dtmi:com:oracle:\${device_key}:m5:env:cstm;1
    model_description: M5Stack Env-III (custom)
    model_dtdl: m5_model_custom.json
    adapter_name: \${device_key}-m5-env-cstm-adapter
    adapter_envelope: m5_adapter_envelope.json
    adapter_routes: m5_adapter_routes.json
`,
  );
  writeFileSync(join(data, "m5_model_custom.json"), JSON.stringify(MODEL_CUSTOM, null, 2));
  writeFileSync(join(data, "m5_adapter_envelope.json"), JSON.stringify(ENVELOPE, null, 2));
  writeFileSync(join(data, "m5_adapter_routes.json"), JSON.stringify(ROUTES, null, 2));
  process.env.MERIDIAN_TEST_DEVICE_SECRET = DEVICE_SECRET;
}, 60_000);

afterAll(async () => {
  await manager?.stop();
  await emulator?.stop();
  await nats?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const run = (args: string[], format: "table" | "json" = "table") =>
  runVerb(registerTwin, testTransport(manager.service.url), args, { format });

describe("meridian twin: manage-dt's create | query | delete", () => {
  it("creates the custom-adapter twin of iot_config.yaml, takes a device payload, queries it and deletes it", async () => {
    const created = await run([
      "twin",
      "create",
      "custom-adapter",
      "--data-dir",
      join(dir, "data"),
      "--device-secret-env",
      "MERIDIAN_TEST_DEVICE_SECRET",
    ]);
    expect(created.error).toBeUndefined();
    expect(created.stdout).toContain("Digital Twin custom-adapter created (custom adapter)");
    expect(created.stdout).toMatch(/Digital Twin Model\s+dtmi:com:oracle:pvhd:m5:env:cstm;1\s+\S+\s+ACTIVE/);
    expect(created.stdout).toMatch(/Digital Twin Adapter\s+pvhd-m5-env-cstm-adapter\s+\S+\s+ACTIVE/);
    expect(created.stdout).toMatch(/Digital Twin Instance\s+pvhd-m5-env-cstm-01\s+\S+\s+ACTIVE/);

    // Again: the same twin, nothing created (manage-dt would make a second one).
    const again = await run(["twin", "create", "custom-adapter", "--data-dir", join(dir, "data")], "json");
    expect(JSON.parse(again.stdout).created).toBe(false);

    const sent = await run([
      "twin",
      "send",
      "custom-adapter",
      '{"sht_temperature": 22.3, "qmp_temperature": 22.1, "humidity": 73, "pressure": 1023, "count": 2}',
    ]);
    expect(sent.error).toBeUndefined();

    let q = await run(["twin", "query", "custom-adapter"], "json");
    for (let i = 0; i < 40 && (JSON.parse(q.stdout).historizedData ?? []).length < 4; i++) {
      await new Promise((r) => setTimeout(r, 250));
      q = await run(["twin", "query", "custom-adapter"], "json");
    }
    const doc = JSON.parse(q.stdout);
    expect(doc.content).toMatchObject({ humidity: 73, pressure: 1023, sht_temperature: 22.3, qmp_temperature: 22.1, count: 2 });
    expect(doc.rawData.length).toBeGreaterThanOrEqual(1);
    // count is not historized (manage-dt's session: 4 rows from one message).
    expect(doc.historizedData.map((r: { content_path: string }) => r.content_path).sort()).toEqual([
      "humidity",
      "pressure",
      "qmp_temperature",
      "sht_temperature",
    ]);

    const table = await run(["twin", "query", "custom-adapter"]);
    expect(table.stdout).toContain("Digital Twin Instance content");
    expect(table.stdout).toMatch(/Recent raw data - \d+ record\(s\)/);
    expect(table.stdout).toContain("Recent historized data - 4 record(s)");
    expect(table.stdout).toMatch(/sht_temperature\s+22\.3/);
    expect(table.stdout).toContain("Recent rejected data - 0 record(s)");

    const deleted = await run(["twin", "delete", "custom-adapter"], "json");
    expect(deleted.error).toBeUndefined();
    expect(JSON.parse(deleted.stdout).deletedIds).toHaveLength(3);
    expect((await run(["twin", "get", "custom-adapter"])).code).toBe(EXIT.notFound);
  }, 60_000);

  it("a twin missing from iot_config.yaml is named, exit 2, nothing created", async () => {
    const r = await run(["twin", "create", "nope", "--data-dir", join(dir, "data")]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.error).toContain('digital_twins has no "nope" (it has: custom-adapter)');
    expect(JSON.parse((await run(["twin", "list"], "json")).stdout)).toEqual({ twins: [], nextPageToken: "" });
  });
});
