import { FaultConfigError } from "@meridian/emulator-kit";
import { describe, expect, it } from "vitest";
import { Faults, parseFaultConfig } from "./faults.js";

describe("OMF fault switch", () => {
  it("hits OMF POSTs only unless scope is all, and only the profile it names", () => {
    const f = new Faults();
    f.set({ status: 503 });
    expect(f.decide("eds", false, "/api/v1/tenants/default/namespaces/default/Types").http.kind).toBe("none");
    expect(f.decide("eds", true, "/api/v1/tenants/default/namespaces/default/omf").http.kind).toBe("status");
    f.set({ scope: "all", profile: "pi" });
    expect(f.decide("eds", true, "/x").http.kind).toBe("none");
    expect(f.decide("pi", false, "/piwebapi/system").http.kind).toBe("status");
  });

  it("partialFailures fails message 0 of an OMF POST when no HTTP fault fires, and counts down", () => {
    const f = new Faults();
    f.set({ partialFailures: 1, latencyMs: 5, latencyCount: 1 });
    expect(f.decide("pi", true, "/piwebapi/omf")).toEqual({
      http: { kind: "none", latencyMs: 5 },
      failFirstMessage: true,
      asyncFailure: false,
      asyncDelayMs: 0,
    });
    expect(f.decide("pi", true, "/piwebapi/omf").failFirstMessage).toBe(false);
    expect(f.get()).toEqual({});
  });

  it("asyncFailures fires on ADH / EDS OMF POSTs only, before partialFailures, and counts down; asyncDelayMs stays", () => {
    const f = new Faults();
    f.set({ asyncFailures: 1, partialFailures: 1, asyncDelayMs: 50 });
    const pi = f.decide("pi", true, "/piwebapi/omf");
    expect(pi).toMatchObject({ asyncFailure: false, failFirstMessage: true, asyncDelayMs: 0 });
    expect(f.decide("adh", false, "/api/v1/tenants/t/namespaces/n/Streams").asyncFailure).toBe(false);
    expect(f.decide("adh", true, "/api/v1/tenants/t/namespaces/n/omf")).toMatchObject({ asyncFailure: true, asyncDelayMs: 50 });
    expect(f.decide("eds", true, "/api/v1/tenants/default/namespaces/default/omf")).toMatchObject({
      asyncFailure: false,
      asyncDelayMs: 50,
    });
    expect(f.get()).toEqual({ asyncDelayMs: 50 });
    expect(() => parseFaultConfig({ asyncDelayMs: 600_001 })).toThrow(/^asyncDelayMs:/);
  });

  it("set merges the kit's fields and the OMF ones; clear empties both", () => {
    const f = new Faults();
    f.set({ status: 500, profile: "adh" });
    expect(f.set({ count: 2, scope: "all" })).toEqual({ status: 500, count: 2, profile: "adh", scope: "all" });
    f.clear();
    expect(f.get()).toEqual({});
  });

  it("parseFaultConfig validates both kinds of field and names the one that is wrong", () => {
    expect(parseFaultConfig({ status: 429, retryAfterSeconds: 1, scope: "omf", profile: "eds", partialFailures: 2 })).toEqual({
      status: 429,
      retryAfterSeconds: 1,
      scope: "omf",
      profile: "eds",
      partialFailures: 2,
    });
    for (const [bad, field] of [
      [{ profile: "ocs" }, "profile"],
      [{ scope: "some" }, "scope"],
      [{ partialFailures: -1 }, "partialFailures"],
      [{ status: 302 }, "status"],
    ] as const) {
      expect(() => parseFaultConfig(bad)).toThrow(FaultConfigError);
      expect(() => parseFaultConfig(bad)).toThrow(new RegExp(`^${field}:`));
    }
  });
});
