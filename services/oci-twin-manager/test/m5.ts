/**
 * The manage-dt sample's M5Stack Env-III model, adapter envelope and routes (data/m5_model_default.json,
 * m5_model_custom.json, m5_adapter_envelope.json, m5_adapter_routes.json), as the protocol notes describe them.
 */
import type { JsonObject } from "../src/platform/types.js";

const CONTEXT = ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:historization;1", "dtmi:dtdl:extension:quantitativeTypes;1"];

function measure(name: string, semantic: string, unit: string, displayName: string): JsonObject {
  return { "@type": ["Telemetry", "Historized", semantic], name, schema: "double", unit, displayName };
}

export const M5_CONTENTS: JsonObject[] = [
  measure("sht_temperature", "Temperature", "degreeCelsius", "SHT Temperature"),
  measure("qmp_temperature", "Temperature", "degreeCelsius", "QMP Temperature"),
  measure("humidity", "RelativeHumidity", "percent", "Humidity"),
  measure("pressure", "Pressure", "hectopascal", "Pressure"),
  { "@type": "Telemetry", name: "count", schema: "integer", displayName: "Message Count" },
];

/** m5_model_default.json ("@id" is replaced by the spec URI, as manage-dt does). */
export function m5ModelDefault(): JsonObject {
  return { "@context": CONTEXT, "@id": "dtmi:com:oracle:placeholder;1", "@type": "Interface", contents: structuredClone(M5_CONTENTS) };
}

/** m5_model_custom.json: the default model and `system`, the payloads no other route takes. */
export function m5ModelCustom(): JsonObject {
  return {
    ...m5ModelDefault(),
    contents: [
      ...structuredClone(M5_CONTENTS),
      { "@type": ["Telemetry", "Historized"], name: "system", schema: { "@type": "Object", fields: [] }, displayName: "System Message" },
    ],
  };
}

export const M5_ENVELOPE: JsonObject = {
  envelopeMapping: { timeObserved: "$.time" },
  referenceEndpoint: "iot/v1/telemetry",
  referencePayload: {
    dataFormat: "JSON",
    data: { count: 0, humidity: 0.0, pressure: 0.0, qmp_temperature: 0.0, sht_temperature: 0.0, time: 0 },
  },
};

// The `${…}` strings are OCI's jq expressions, not template placeholders.
export const M5_ROUTES: JsonObject[] = [
  {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an OCI jq condition
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
  // biome-ignore lint/suspicious/noTemplateCurlyInString: an OCI jq expression (the whole payload)
  { condition: "*", description: "Default condition", payloadMapping: { "$.system": "${.}" } },
];

/** What the M5 device posts. */
export const M5_PAYLOAD: JsonObject = { sht_temperature: 23.8, qmp_temperature: 24.4, humidity: 56.1, pressure: 1012.2, count: 5479 };
