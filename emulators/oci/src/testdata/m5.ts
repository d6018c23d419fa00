// biome-ignore-all lint/suspicious/noTemplateCurlyInString: jq expressions are written ${ ... } in plain strings
// The manage-dt sample's M5 model, custom adapter envelope and routes, as the OCI notes (§2.6) describe them.

const telemetry = (name: string, semantic: string, unit: string, displayName: string) => ({
  "@type": ["Telemetry", "Historized", semantic],
  name,
  schema: "double",
  unit,
  displayName,
});

export const m5DefaultModel = {
  "@context": ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:historization;1", "dtmi:dtdl:extension:quantitativeTypes;1"],
  "@id": "dtmi:com:oracle:dev42:m5:env:dflt;1",
  "@type": "Interface",
  displayName: "M5 environment",
  contents: [
    telemetry("sht_temperature", "Temperature", "degreeCelsius", "SHT Temperature"),
    telemetry("qmp_temperature", "Temperature", "degreeCelsius", "QMP Temperature"),
    telemetry("humidity", "RelativeHumidity", "percent", "Humidity"),
    telemetry("pressure", "Pressure", "hectopascal", "Pressure"),
    { "@type": "Telemetry", name: "count", schema: "integer", displayName: "Message Count" },
  ],
};

export const m5CustomModel = {
  ...m5DefaultModel,
  "@id": "dtmi:com:oracle:dev42:m5:env:cust;1",
  contents: [
    ...m5DefaultModel.contents,
    { "@type": ["Telemetry", "Historized"], name: "system", schema: { "@type": "Object" }, displayName: "System Message" },
  ],
};

export const m5Envelope = {
  envelopeMapping: { timeObserved: "$.time" },
  referenceEndpoint: "iot/v1/telemetry",
  referencePayload: {
    dataFormat: "JSON",
    data: { count: 0, humidity: 0.0, pressure: 0.0, qmp_temperature: 0.0, sht_temperature: 0.0, time: 0 },
  },
};

export const m5Routes = [
  {
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
  { condition: "*", description: "Default condition", payloadMapping: { "$.system": "${.}" } },
];

export const m5Payload = { sht_temperature: 23.8, qmp_temperature: 24.4, humidity: 56.1, pressure: 1012.2, count: 5479 };
