import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CredentialCipher } from "./endpoints.js";
import { parseEndpoints } from "./endpoints-file.js";
import { isoTime } from "./pipeline/mapping.js";
import { isPermanent, pipelineSettings } from "./pipeline/route-pipeline.js";
import {
  OmfAuthError,
  OmfBadRequestError,
  OmfConflictError,
  OmfNotFoundError,
  OmfServerError,
  OmfThrottledError,
} from "./platform/index.js";

const DEFAULTS = {
  maxBatchEvents: 2000,
  maxBatchBytes: 4 << 20,
  lingerMs: 250,
  maxInflightBatches: 4,
  dataAction: "auto",
  intFormat: "int64",
} as const;

describe("CredentialCipher (AES-256-GCM)", () => {
  it("round-trips, never stores the plaintext, and is bound to the key and the endpoint id", () => {
    const key = randomBytes(32);
    const c = new CredentialCipher(key);
    const sealed = c.seal("pi", "pw-123");
    expect(JSON.stringify(sealed)).not.toContain("pw-123");
    expect(c.open("pi", sealed)).toBe("pw-123");
    expect(c.seal("pi", "pw-123").iv).not.toBe(sealed.iv);
    expect(() => c.open("other", sealed)).toThrow();
    expect(() => new CredentialCipher(randomBytes(32)).open("pi", sealed)).toThrow();
    expect(() => c.open("pi", { ...sealed, data: Buffer.from("x").toString("base64") })).toThrow();
  });
});

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

describe("isoTime (the OMF index)", () => {
  it("keeps the full precision of the observed time, and is the same for the same timestamp", () => {
    expect(isoTime({ seconds: 1767225600n, nanos: 0 } as never)).toBe("2026-01-01T00:00:00Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 5_000_000 } as never)).toBe("2026-01-01T00:00:00.005Z");
    expect(isoTime({ seconds: 1767225600n, nanos: 123_456_789 } as never)).toBe("2026-01-01T00:00:00.123456789Z");
    expect(() => isoTime({ seconds: 10n ** 15n, nanos: 0 } as never)).toThrow(/observed_time/);
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
    expect(isPermanent(new Error("socket"))).toBe(false);
  });
});

describe("endpoints file", () => {
  it("names the entry and field of every problem, and accepts both shapes", () => {
    expect(parseEndpoints([{ id: "eds", kind: "eds", url: "http://localhost:5590" }], { hasKey: false })).toHaveLength(1);
    expect(
      parseEndpoints({ endpoints: [{ id: "eds", kind: "EDS", url: "http://localhost:5590" }] }, { hasKey: false })[0]?.settings.kind,
    ).toBe("eds");
    expect(() =>
      parseEndpoints(
        [
          { id: "a", kind: "eds", url: "http://x", bogus: 1 },
          { id: "a", kind: "pi", url: "https://pi", username: "u", password: 5 },
        ],
        { hasKey: true },
      ),
    ).toThrow(/endpoints\[0\]\.bogus: unknown setting.*endpoints\[1\]\.id: duplicates endpoints\[0\]\.id.*endpoints\[1\]\.password/);
    expect(() => parseEndpoints({}, { hasKey: true })).toThrow(/OMF_ENDPOINTS_FILE/);
  });
});
