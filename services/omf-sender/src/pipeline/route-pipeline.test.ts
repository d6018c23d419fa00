import { describe, expect, it } from "vitest";
import {
  OmfAuthError,
  OmfBadRequestError,
  OmfConfigError,
  OmfConflictError,
  OmfNotFoundError,
  OmfResponseTooLargeError,
  OmfServerError,
  OmfThrottledError,
  OmfTlsError,
} from "../platform/index.js";
import { RouteMappingError } from "./route-mapping.js";
import { isPermanent, pipelineSettings } from "./route-pipeline.js";

const DEFAULTS = {
  maxBatchEvents: 2000,
  maxBatchBytes: 4 << 20,
  lingerMs: 250,
  maxInflightBatches: 4,
  dataAction: "auto",
  intFormat: "int64",
} as const;

describe("route options", () => {
  it("reads batching options and reports bad ones by name, keeping defaults", () => {
    expect(pipelineSettings({ maxBatchEvents: "10", lingerMs: "0", dataAction: "create", intFormat: "int32" }, DEFAULTS)).toEqual({
      settings: { ...DEFAULTS, maxBatchEvents: 10, lingerMs: 0, dataAction: "create", intFormat: "int32" },
      problems: [],
    });
    const bad = pipelineSettings({ maxBatchEvents: "0", lingerMs: "soon", dataAction: "upsert", maxInflightBatches: "99" }, DEFAULTS);
    expect(bad.settings).toEqual(DEFAULTS);
    expect(bad.problems.join(" ")).toMatch(/options\.maxBatchEvents.*options\.lingerMs.*options\.maxInflightBatches.*options\.dataAction/);
  });
  it("maxRetryAfterMs lowers the Retry-After cap between 1 s and 5 min, never raises it", () => {
    expect(pipelineSettings({}, DEFAULTS).settings.maxRetryAfterMs).toBeUndefined();
    expect(pipelineSettings({ maxRetryAfterMs: "1000" }, DEFAULTS).settings.maxRetryAfterMs).toBe(1000);
    expect(pipelineSettings({ maxRetryAfterMs: "300000" }, DEFAULTS).settings.maxRetryAfterMs).toBe(300_000);
    for (const bad of ["999", "300001", "2.5", "soon"]) {
      const r = pipelineSettings({ maxRetryAfterMs: bad }, DEFAULTS);
      expect(r.settings.maxRetryAfterMs, bad).toBeUndefined();
      expect(r.problems, bad).toEqual(["options.maxRetryAfterMs: must be an integer between 1000 and 300000"]);
    }
  });
  it("confirmTimeoutMs (the Data Hub / EDS read-back's patience) is 0 to 60 s", () => {
    expect(pipelineSettings({}, DEFAULTS).settings.confirmTimeoutMs).toBeUndefined();
    expect(pipelineSettings({ confirmTimeoutMs: "0" }, DEFAULTS).settings.confirmTimeoutMs).toBe(0);
    expect(pipelineSettings({ confirmTimeoutMs: "60000" }, DEFAULTS).settings.confirmTimeoutMs).toBe(60_000);
    for (const bad of ["-1", "60001", "1.5", "later"]) {
      const r = pipelineSettings({ confirmTimeoutMs: bad }, DEFAULTS);
      expect(r.settings.confirmTimeoutMs, bad).toBeUndefined();
      expect(r.problems, bad).toEqual(["options.confirmTimeoutMs: must be an integer between 0 and 60000"]);
    }
  });
});

describe("failure classes", () => {
  it("dead-letters only what retrying cannot fix", () => {
    expect(isPermanent(new OmfBadRequestError("400"))).toBe(true);
    expect(isPermanent(new OmfNotFoundError("404"))).toBe(true);
    expect(isPermanent(new OmfConflictError("409"))).toBe(true);
    expect(isPermanent(new OmfServerError("503"))).toBe(false);
    expect(isPermanent(new OmfThrottledError("429", 1000))).toBe(false);
    expect(isPermanent(new OmfAuthError("401"))).toBe(false);
    // Under the one OmfError root now, and still waited out, not dead-lettered: the operator fixes these.
    expect(isPermanent(new OmfConfigError(["endpoint.url: required"]))).toBe(false);
    expect(isPermanent(new OmfTlsError("self-signed", "DEPTH_ZERO_SELF_SIGNED_CERT"))).toBe(false);
    // The endpoint answered with more than the client reads: not the data's fault, so the data waits.
    expect(isPermanent(new OmfResponseTooLargeError("too long", 4 << 20))).toBe(false);
    expect(isPermanent(new Error("socket"))).toBe(false);
  });
});

describe("route option omfMapping", () => {
  const mapping = {
    types: [
      {
        id: "T",
        classification: "dynamic",
        properties: { Time: { type: "string", format: "date-time", isindex: true }, V: { type: "number" } },
      },
    ],
    containers: [{ id: "{device}.v", typeid: "T", properties: { V: "value" } }],
  };
  it("a good mapping is used; a bad one is named by field and holds the route's events (not retried as a bad message)", () => {
    const good = pipelineSettings({ omfMapping: JSON.stringify(mapping) }, DEFAULTS);
    expect(good.problems).toEqual([]);
    expect(good.settings.mapping?.containers).toHaveLength(1);
    const bad = pipelineSettings(
      { omfMapping: JSON.stringify({ ...mapping, containers: [{ id: "{device}.v", typeid: "T", properties: { W: "w" } }] }) },
      DEFAULTS,
    );
    expect(bad.problems).toEqual(['options.omfMapping.containers[0].properties.W: not a property of type "T"']);
    expect(bad.settings.mapping).toBeUndefined();
    expect(bad.settings.mappingProblem).toBe(bad.problems[0]);
    expect(isPermanent(new RouteMappingError(bad.problems[0]!))).toBe(false);
  });
});
