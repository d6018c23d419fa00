import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  type CreateTwinRequest,
  LifecycleState,
  OciTwinManagerService,
  type QueryTwinDataRequest,
  TwinDataSet,
  TwinKind,
  TwinSchema,
} from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { describe, expect, it } from "vitest";
import { EXIT } from "../kit/exit.js";
import { runVerb } from "./testdata/harness.js";
import { registerTwin, safeSubstitute, twinSpecFromConfig } from "./twin.js";

// manage-dt's data/iot_config.distr.yaml shape (protocol notes §2.1) with the three shipped twins.
const CONFIG = `
iot:
  domain_id: ocid1.iotdomain.oc1..dom
identity:
  app_client_id: x
environ:
  device_key: pvhd
  auth_id: ocid1.vaultsecret.oc1..sec
digital_twins:
  unstructured:
    device_name: \${device_key}-m5-env-unst-01
    external_key: \${device_key}-unst
    auth_id: \${auth_id}
  default-adapter:
    device_name: \${device_key}-m5-env-dflt-01
    external_key: \${device_key}-dflt
    auth_id: \${auth_id}
    model_name: dtmi:com:oracle:\${device_key}:m5:env:dflt;1
    model_description: M5 environment sensor
    model_dtdl: m5_model_default.json
    adapter_name: \${device_key}-m5-env-dflt-adapter
  custom-adapter:
    device_name: \${device_key}-m5-env-cstm-01
    external_key: \${device_key}-cstm
    auth_id: \${auth_id}
    model_name: dtmi:com:oracle:\${device_key}:m5:env:cstm;1
    model_description: M5 environment sensor, custom
    model_dtdl: m5_model_custom.json
    adapter_name: \${device_key}-m5-env-cstm-adapter
    adapter_envelope: m5_adapter_envelope.json
    adapter_routes: m5_adapter_routes.json
`;
const DTDL = {
  "@context": ["dtmi:dtdl:context;3"],
  "@id": "dtmi:placeholder;1",
  "@type": "Interface",
  contents: [{ "@type": "Telemetry", name: "humidity", schema: "double" }],
};
const ENVELOPE = {
  envelopeMapping: { timeObserved: "$.time" },
  referenceEndpoint: "iot/v1/telemetry",
  referencePayload: { dataFormat: "JSON", data: { humidity: 0 } },
};
// biome-ignore lint/suspicious/noTemplateCurlyInString: an OCI jq expression, not a placeholder
const ROUTES = [{ condition: "*", description: "Default condition", payloadMapping: { "$.system": "${.}" } }];

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "meridian-twin-"));
  mkdirSync(join(dir, "data"));
  writeFileSync(join(dir, "data", "iot_config.yaml"), CONFIG);
  for (const f of ["m5_model_default.json", "m5_model_custom.json"]) writeFileSync(join(dir, "data", f), JSON.stringify(DTDL));
  writeFileSync(join(dir, "data", "m5_adapter_envelope.json"), JSON.stringify(ENVELOPE));
  writeFileSync(join(dir, "data", "m5_adapter_routes.json"), JSON.stringify(ROUTES));
  return join(dir, "data");
}

describe("manage-dt's iot_config.yaml", () => {
  it("substitutes environ as string.Template.safe_substitute: braced and bare names when known, the rest left, $$ a dollar", () => {
    expect(safeSubstitute(["$", "{a}-$a-$", "{b}-$$-$1"].join(""), { a: "A" })).toBe(["A-A-$", "{b}-$-$1"].join(""));
  });

  it("unstructured: no model, no adapter, manage-dt's description", () => {
    const dir = dataDir();
    const spec = twinSpecFromConfig(CONFIG, "iot_config.yaml", "unstructured", dir);
    expect(spec).toEqual({
      key: "unstructured",
      iotDomainId: "ocid1.iotdomain.oc1..dom",
      displayName: "pvhd-m5-env-unst-01",
      externalKey: "pvhd-unst",
      authId: "ocid1.vaultsecret.oc1..sec",
      description: "pvhd-m5-env-unst-01 - Unstructured Telemetry",
    });
  });

  it("custom adapter: the DTDL's @id replaced by model_name, the envelope and routes from their files", () => {
    const spec = twinSpecFromConfig(CONFIG, "iot_config.yaml", "custom-adapter", dataDir());
    expect(spec.description).toBe("pvhd-m5-env-cstm-01 - Structured Telemetry with custom Adapter");
    expect(spec.model).toMatchObject({
      specUri: "dtmi:com:oracle:pvhd:m5:env:cstm;1",
      displayName: "dtmi:com:oracle:pvhd:m5:env:cstm;1",
      description: "M5 environment sensor, custom",
    });
    expect((spec.model!.spec as Record<string, unknown>)["@id"]).toBe("dtmi:com:oracle:pvhd:m5:env:cstm;1");
    expect(spec.adapter).toMatchObject({
      displayName: "pvhd-m5-env-cstm-adapter",
      description: "Default Adapter for dtmi:com:oracle:pvhd:m5:env:cstm;1",
      inboundEnvelope: ENVELOPE,
      inboundRoutes: ROUTES,
    });
    const dflt = twinSpecFromConfig(CONFIG, "iot_config.yaml", "default-adapter", dataDir());
    expect(dflt.description).toBe("pvhd-m5-env-dflt-01 - Structured Telemetry with default Adapter");
    expect(dflt.adapter?.inboundEnvelope).toBeUndefined();
  });

  it("an unknown twin or a missing file is named (exit 2)", () => {
    expect(() => twinSpecFromConfig(CONFIG, "iot_config.yaml", "nope", dataDir())).toThrow(
      'iot_config.yaml: digital_twins has no "nope" (it has: unstructured, default-adapter, custom-adapter)',
    );
    expect(() => twinSpecFromConfig(CONFIG, "iot_config.yaml", "custom-adapter", "/nonexistent")).toThrow(
      /iot_config.yaml digital_twins.custom-adapter.model_dtdl \/nonexistent\/m5_model_custom.json: cannot be read \(ENOENT\)/,
    );
  });
});

const TWIN = create(TwinSchema, {
  key: "custom-adapter",
  kind: TwinKind.CUSTOM_ADAPTER,
  instance: { id: "ocid1.inst", displayName: "pvhd-m5-env-cstm-01", externalKey: "pvhd-cstm", lifecycleState: LifecycleState.ACTIVE },
  adapter: { id: "ocid1.adapter", displayName: "pvhd-m5-env-cstm-adapter", lifecycleState: LifecycleState.ACTIVE },
  model: { id: "ocid1.model", specUri: "dtmi:com:oracle:pvhd:m5:env:cstm;1", lifecycleState: LifecycleState.ACTIVE },
});

// The seed's sample session: 2 raw records, 4 historized rows, 1 rejected row.
const ROWS: Record<number, Record<string, unknown>[]> = {
  [TwinDataSet.RAW]: [
    { id: 535, time_received: "2025-09-18T18:32:28.847244Z", endpoint: "iot/pvhd" },
    { id: 536, time_received: "2025-09-18T18:32:34.621067Z", endpoint: "iot/pvhd" },
  ],
  [TwinDataSet.HISTORIZED]: [
    { id: 1852, time_observed: "2025-09-18T18:32:28.847244Z", content_path: "sht_temperature", value: 22.3 },
    { id: 1853, time_observed: "2025-09-18T18:32:28.847244Z", content_path: "humidity", value: 73 },
    { id: 1854, time_observed: "2025-09-18T18:32:28.847244Z", content_path: "pressure", value: 1023 },
    { id: 1855, time_observed: "2025-09-18T18:32:28.847244Z", content_path: "qmp_temperature", value: 22.1 },
  ],
  [TwinDataSet.REJECTED]: [
    {
      id: 48,
      time_received: "2025-09-18T18:32:34.621067Z",
      endpoint: "iot/pvhd",
      reason_code: 500,
      reason_message: "Normalization output is empty",
    },
  ],
};

function service(seen: { create?: CreateTwinRequest; queries: QueryTwinDataRequest[] }) {
  return (router: ConnectRouter) =>
    router.service(OciTwinManagerService, {
      createTwin: (req) => {
        seen.create = req;
        return { twin: TWIN, created: true };
      },
      getTwin: () => ({ twin: TWIN }),
      getTwinContent: () => ({ content: { humidity: 73, count: 2, pressure: 1023, sht_temperature: 22.3, qmp_temperature: 22.1 } }),
      queryTwinData: (req) => {
        seen.queries.push(req);
        return { rows: (ROWS[req.dataSet] ?? []) as never, hasMore: false };
      },
      deleteTwin: () => ({ deletedIds: ["ocid1.inst", "ocid1.adapter"], kept: { "ocid1.model": "used by twin other" } }),
    });
}

describe("twin create | query | delete", () => {
  it("create sends manage-dt's twin and lists what OCI holds for it", async () => {
    const seen = { queries: [] as QueryTwinDataRequest[] } as { create?: CreateTwinRequest; queries: QueryTwinDataRequest[] };
    const dir = dataDir();
    const r = await runVerb(registerTwin, service(seen), [
      "twin",
      "create",
      "custom-adapter",
      "--data-dir",
      dir,
      "--source",
      "historized,rejected",
    ]);
    expect(r.error).toBeUndefined();
    expect(seen.create?.twin).toMatchObject({
      key: "custom-adapter",
      displayName: "pvhd-m5-env-cstm-01",
      source: { historized: true, raw: false, rejected: true },
    });
    expect(r.stdout).toContain("Digital Twin custom-adapter created (custom adapter)");
    expect(r.stdout).toMatch(/Digital Twin Model\s+dtmi:com:oracle:pvhd:m5:env:cstm;1\s+ocid1\.model\s+ACTIVE/);
    expect(r.stdout).toMatch(/Digital Twin Instance\s+pvhd-m5-env-cstm-01\s+ocid1\.inst\s+ACTIVE/);
  });

  it("query prints manage-dt's content and its three titled tables over the last 5 minutes", async () => {
    const seen = { queries: [] as QueryTwinDataRequest[] };
    const r = await runVerb(registerTwin, service(seen), ["twin", "query", "custom-adapter"]);
    expect(r.code).toBe(0);
    expect(seen.queries.map((q) => [q.dataSet, q.lastMinutes])).toEqual([
      [TwinDataSet.RAW, 5],
      [TwinDataSet.HISTORIZED, 5],
      [TwinDataSet.REJECTED, 5],
    ]);
    const out = r.stdout;
    expect(out).toContain("Digital Twin Instance content");
    expect(out).toContain('"sht_temperature":22.3');
    expect(out).toContain("Recent raw data - 2 record(s)");
    expect(out).toMatch(/ID\s+TIME RECEIVED \(UTC\)\s+ENDPOINT\n\s*535\s+2025-09-18T18:32:28\.847244Z\s+iot\/pvhd/);
    expect(out).toContain("Recent historized data - 4 record(s)");
    expect(out).toMatch(/1852\s+2025-09-18T18:32:28\.847244Z\s+sht_temperature\s+22\.3/);
    expect(out).toContain("Recent rejected data - 1 record(s)");
    expect(out).toMatch(/48\s+2025-09-18T18:32:34\.621067Z\s+iot\/pvhd\s+500\s+Normalization output is empty/);
  });

  it("query -o json is one document with the content and the three data sets", async () => {
    const r = await runVerb(registerTwin, service({ queries: [] }), ["twin", "query", "custom-adapter", "-l", "60"], { format: "json" });
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ twin: "custom-adapter", kind: "custom adapter", content: { humidity: 73 } });
    expect(doc.historizedData).toHaveLength(4);
    expect(doc.rejectedData[0].reason_message).toBe("Normalization output is empty");
  });

  it("query --last-minutes beyond 43200 exits 2 before any call", async () => {
    const seen = { queries: [] as QueryTwinDataRequest[] };
    const r = await runVerb(registerTwin, service(seen), ["twin", "query", "custom-adapter", "--last-minutes", "43201"]);
    expect(r.code).toBe(EXIT.usage);
    expect(seen.queries).toEqual([]);
  });

  it("delete lists what went and what was kept, with why", async () => {
    const r = await runVerb(registerTwin, service({ queries: [] }), ["twin", "delete", "custom-adapter"]);
    expect(r.stdout).toMatch(/ocid1\.inst\s+deleted/);
    expect(r.stdout).toMatch(/ocid1\.model\s+kept\s+used by twin other/);
  });
});
