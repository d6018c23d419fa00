import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import { PLATFORMS, platformName } from "./platform-names.js";

describe("platform names", () => {
  it("match the generated Platform enum both ways", () => {
    expect(PLATFORMS.omf).toBe(Platform.OMF);
    expect(PLATFORMS["iot-central"]).toBe(Platform.IOT_CENTRAL);
    expect(PLATFORMS.idigi).toBe(Platform.IDIGI);
    expect(PLATFORMS.omnia).toBe(Platform.OMNIA);
    expect(PLATFORMS["oci-iot"]).toBe(Platform.OCI_IOT);
    expect(PLATFORMS.api).toBe(Platform.API);
    const values = Object.values(Platform).filter((v): v is number => typeof v === "number" && v !== 0);
    for (const v of values) expect(PLATFORMS[platformName(v)], `Platform ${v}`).toBe(v);
  });
});
