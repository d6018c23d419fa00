import { describe, expect, it } from "vitest";
import { boundMemory } from "./manager.js";
import type { PipelineSettings } from "./route-pipeline.js";

const MiB = 1024 * 1024;
const base: PipelineSettings = {
  maxBatchEvents: 2000,
  maxBatchBytes: 4 * MiB,
  lingerMs: 250,
  maxInflightBatches: 4,
  dataAction: "auto",
  intFormat: "int64",
} as PipelineSettings;

describe("boundMemory (route options against OMF_PIPELINE_MEMORY_BYTES)", () => {
  it("leaves settings that fit alone", () => {
    expect(boundMemory(base, 256 * MiB)).toEqual({ settings: base });
  });

  it("takes batches out of flight first: 64 MiB × 32 against 256 MiB keeps 64 MiB batches, 3 in flight", () => {
    const { settings, problem } = boundMemory({ ...base, maxBatchBytes: 64 * MiB, maxInflightBatches: 32 }, 256 * MiB);
    expect(settings.maxBatchBytes).toBe(64 * MiB);
    expect(settings.maxInflightBatches).toBe(3);
    expect(settings.maxBatchBytes * (settings.maxInflightBatches + 1)).toBeLessThanOrEqual(256 * MiB);
    expect(problem).toMatch(/2112 MiB exceeds OMF_PIPELINE_MEMORY_BYTES \(256 MiB\)/);
  });

  it("makes batches smaller only when even one in flight does not fit", () => {
    const { settings } = boundMemory({ ...base, maxBatchBytes: 64 * MiB, maxInflightBatches: 2 }, 16 * MiB);
    expect(settings.maxInflightBatches).toBe(1);
    expect(settings.maxBatchBytes).toBe(8 * MiB);
  });
});
