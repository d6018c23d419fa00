import { describe, expect, it } from "vitest";
import { M5_ENVELOPE, M5_ROUTES, m5ModelCustom, m5ModelDefault } from "../../test/m5.js";
import type { JsonObject } from "../platform/types.js";
import { canonicalJson, kindOfDescription, type TwinDescription, targetContent, twinProblems } from "./twins.js";

const base = (over: Partial<TwinDescription> = {}): TwinDescription => ({
  key: "m5-env",
  iotDomainId: "",
  displayName: "m5-env-01",
  ...over,
});

const withModel = (spec: JsonObject, adapter?: TwinDescription["adapter"]) =>
  base({ model: { specUri: "dtmi:com:example:m5:env;1", spec }, ...(adapter ? { adapter } : {}) });

describe("twinProblems", () => {
  it("accepts manage-dt's three twins", () => {
    expect(twinProblems(base())).toEqual([]);
    expect(twinProblems(withModel(m5ModelDefault()))).toEqual([]);
    expect(twinProblems(withModel(m5ModelCustom(), { inboundEnvelope: M5_ENVELOPE, inboundRoutes: M5_ROUTES }))).toEqual([]);
  });

  it("names the key, display name, domain and auth id that are wrong", () => {
    const p = twinProblems(base({ key: "Bad_Key", displayName: "", iotDomainId: "my-domain", authId: "secret" }));
    expect(p.map((x) => x.path).sort()).toEqual(["auth_id", "display_name", "iot_domain_id", "key"]);
  });

  it("refuses a spec that is not a DTDL interface, naming the field", () => {
    const spec = { ...m5ModelDefault(), "@type": "Component" };
    expect(twinProblems(withModel(spec))).toEqual([{ path: "model.spec.@type", reason: expect.stringContaining('"Interface"') }]);
    const noContext = m5ModelDefault();
    delete noContext["@context"];
    expect(twinProblems(withModel(noContext))[0]?.path).toBe("model.spec.@context");
  });

  it("refuses two contents of the same name, naming both", () => {
    const spec = m5ModelDefault();
    (spec["contents"] as JsonObject[]).push({ "@type": "Telemetry", name: "humidity", schema: "double" });
    expect(twinProblems(withModel(spec))).toEqual([
      { path: "model.spec.contents[5].name", reason: '"humidity" is also the name of contents[2]' },
    ]);
  });

  it("refuses a content without a name or a schema, and contents that are not a list", () => {
    const spec = m5ModelDefault();
    (spec["contents"] as JsonObject[]).push({ "@type": "Telemetry", schema: "double" }, { "@type": "Property", name: "mode" });
    expect(twinProblems(withModel(spec)).map((p) => p.path)).toEqual(["model.spec.contents[5].name", "model.spec.contents[6].schema"]);
    expect(twinProblems(withModel({ ...m5ModelDefault(), contents: {} }))[0]?.path).toBe("model.spec.contents");
  });

  it("refuses a spec URI that is not a DTMI", () => {
    expect(twinProblems(base({ model: { specUri: "m5-model", spec: m5ModelDefault() } }))[0]?.path).toBe("model.spec_uri");
  });

  it("names the route and the content when a route maps a content the model lacks", () => {
    const routes = structuredClone(M5_ROUTES);
    (routes[0]!["payloadMapping"] as JsonObject)["$.temperature"] = "$.temp";
    const p = twinProblems(withModel(m5ModelDefault(), { inboundEnvelope: M5_ENVELOPE, inboundRoutes: routes }));
    // The default model has no `system` either (route 1 maps it).
    expect(p).toEqual([
      {
        path: 'adapter.inbound_routes[0].payloadMapping["$.temperature"]',
        reason: expect.stringContaining('route 0 maps content "temperature"'),
      },
      { path: 'adapter.inbound_routes[1].payloadMapping["$.system"]', reason: expect.stringContaining('route 1 maps content "system"') },
    ]);
  });

  it("refuses an adapter without a model, a route without condition, and more than 128 routes", () => {
    expect(twinProblems(base({ adapter: { inboundRoutes: [] } }))[0]?.path).toBe("adapter");
    const routes = Array.from({ length: 129 }, () => ({ condition: "*" }));
    expect(twinProblems(withModel(m5ModelDefault(), { inboundRoutes: routes })).map((p) => p.path)).toEqual(["adapter.inbound_routes"]);
    expect(twinProblems(withModel(m5ModelDefault(), { inboundRoutes: [{ payloadMapping: {} }] })).map((p) => p.path)).toEqual([
      "adapter.inbound_routes[0].condition",
    ]);
  });

  it("refuses an envelope without its reference endpoint", () => {
    const p = twinProblems(withModel(m5ModelCustom(), { inboundEnvelope: { envelopeMapping: {} }, inboundRoutes: [] }));
    expect(p.map((x) => x.path)).toEqual(["adapter.inbound_envelope.referenceEndpoint"]);
  });
});

describe("helpers", () => {
  it("targetContent reads the content a mapping target names", () => {
    expect(targetContent("$.count")).toBe("count");
    expect(targetContent("$.system.uptime")).toBe("system");
    expect(targetContent("$['humidity']")).toBe("humidity");
    expect(targetContent("count")).toBeUndefined();
  });

  it("kindOfDescription follows manage-dt's rule", () => {
    expect(kindOfDescription(base())).toBe("unstructured");
    expect(kindOfDescription(withModel(m5ModelDefault()))).toBe("default-adapter");
    expect(kindOfDescription(withModel(m5ModelDefault(), { displayName: "x", inboundRoutes: [] }))).toBe("default-adapter");
    expect(kindOfDescription(withModel(m5ModelCustom(), { inboundEnvelope: M5_ENVELOPE, inboundRoutes: M5_ROUTES }))).toBe(
      "custom-adapter",
    );
  });

  it("canonicalJson does not depend on key order", () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe(canonicalJson({ a: [{ c: 3, d: 2 }], b: 1 }));
    expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
  });
});
