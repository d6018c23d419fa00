import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { describe, expect, it } from "vitest";
import { DEFAULT_DEVICE_ID_TEMPLATE, deviceIdFor, sourceName, templateProblem } from "./device-ids.js";
import { RouteOptionError } from "./errors.js";

const src = (connection: string, device: string, platform = Platform.IDIGI) => ({ platform, connection, device });

describe("device id templates", () => {
  it("replaces {platform} {connection} {device} and normalises to what DPS accepts", () => {
    expect(deviceIdFor(DEFAULT_DEVICE_ID_TEMPLATE, src("Line 1", "Pump/7"))).toBe("line-1-pump-7");
    expect(deviceIdFor("{platform}.{connection}.{device}", src("north", "TT-101"))).toBe("idigi.north.tt-101");
    expect(deviceIdFor("plant-{device}", src("x", "00:13:A2:00"))).toBe("plant-00:13:a2:00");
  });

  it("two different sources can normalise to the same id: the caller must detect it", () => {
    expect(deviceIdFor(DEFAULT_DEVICE_ID_TEMPLATE, src("line", "Pump 1"))).toBe(
      deviceIdFor(DEFAULT_DEVICE_ID_TEMPLATE, src("line", "pump-1")),
    );
    expect(sourceName(src("line", "Pump 1"))).not.toBe(sourceName(src("line", "pump-1")));
  });

  it("refuses unknown placeholders and a template without {device}, naming the option", () => {
    expect(templateProblem("{connection}-{dev}")).toMatch(/unknown placeholder \{dev\}/);
    expect(templateProblem("{connection}")).toMatch(/must contain \{device\}/);
    expect(templateProblem("x".repeat(300))).toMatch(/longer than 256/);
    expect(templateProblem("{device}")).toBeUndefined();
    expect(() => deviceIdFor("{site}-{device}", src("a", "b"))).toThrow(RouteOptionError);
    expect(() => deviceIdFor("{site}-{device}", src("a", "b"))).toThrow(/route option device_id_template/);
  });

  it("a source whose name leaves nothing usable is a RouteOptionError naming the raw id", () => {
    expect(() => deviceIdFor("{device}", src("a", "   "))).toThrow(/leaves no IoT Central device id/);
  });

  it("cuts to DPS's 128 characters", () => {
    expect(deviceIdFor("{device}", src("a", "d".repeat(200)))).toHaveLength(128);
  });
});
