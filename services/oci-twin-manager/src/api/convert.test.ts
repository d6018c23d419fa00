import { toJson } from "@bufbuild/protobuf";
import { DigitalTwinAdapterSchema } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { describe, expect, it } from "vitest";
import { adapterToProto, protoJson } from "./convert.js";

describe("OCI JSON in answers", () => {
  it("an adapter whose envelope and routes carry undefined fields (as the SDK's model objects do) serialises as JSON without them", () => {
    const adapter = adapterToProto({
      id: "ocid1.iotdigitaltwinadapter.oc1..a",
      iotDomainId: "ocid1.iotdomain.oc1..d",
      digitalTwinModelId: "ocid1.iotdigitaltwinmodel.oc1..m",
      digitalTwinModelSpecUri: "dtmi:com:example:m5;1",
      displayName: "m5",
      inboundEnvelope: {
        referenceEndpoint: "iot/v1/telemetry",
        referencePayload: undefined,
        envelopeMapping: { timeObserved: "$.time" },
      } as never,
      inboundRoutes: [{ condition: "*", description: undefined, payloadMapping: { "$.count": "$.count" } }] as never,
      lifecycleState: "ACTIVE",
      timeCreated: new Date("2026-12-01T00:00:00Z"),
    });
    const json = toJson(DigitalTwinAdapterSchema, adapter) as Record<string, unknown>;
    expect(json["inboundEnvelope"]).toEqual({ referenceEndpoint: "iot/v1/telemetry", envelopeMapping: { timeObserved: "$.time" } });
    expect(json["inboundRoutes"]).toEqual([{ condition: "*", payloadMapping: { "$.count": "$.count" } }]);
  });

  it("ORDS rows and content keep their values; nested undefined goes", () => {
    expect(protoJson({ id: 7, value: 21.5, content: { a: undefined, b: [1, "x", null] } })).toEqual({
      id: 7,
      value: 21.5,
      content: { b: [1, "x", null] },
    });
  });
});
