import { describe, expect, it } from "vitest";
import {
  OmfAuthError,
  OmfBadRequestError,
  OmfConfigError,
  OmfConflictError,
  OmfNotFoundError,
  OmfServerError,
  OmfThrottledError,
  OmfTlsError,
} from "../platform/index.js";
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
    expect(isPermanent(new Error("socket"))).toBe(false);
  });
});
