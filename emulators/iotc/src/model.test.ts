import { describe, expect, it } from "vitest";
import { DeviceLimitError, IotcModel, type TelemetryMessage } from "./model.js";

const model = (o: Partial<ConstructorParameters<typeof IotcModel>[0]> = {}) =>
  new IotcModel({ groupKey: Buffer.alloc(32).toString("base64"), maxTelemetry: 100, maxTelemetryBytes: 1000, maxDevices: 3, ...o });

const message = (deviceId: string, bytes: number): TelemetryMessage => ({
  deviceId,
  body: Buffer.alloc(bytes),
  properties: {},
  systemProperties: {},
  receivedAt: new Date(),
});

describe("the application model", () => {
  it("keeps telemetry within its count and byte bounds, dropping the oldest", () => {
    const m = model({ maxTelemetry: 3 });
    for (let i = 0; i < 5; i++) m.addTelemetry(message(`d${i}`, 10));
    expect(m.telemetry().map((t) => t.deviceId)).toEqual(["d2", "d3", "d4"]);
    const b = model();
    for (let i = 0; i < 4; i++) b.addTelemetry(message(`d${i}`, 400));
    expect(b.telemetry().map((t) => t.deviceId)).toEqual(["d2", "d3"]);
  });

  it("refuses a device past maxDevices", () => {
    const m = model();
    for (const id of ["a", "b", "c"]) m.ensureDevice(id);
    expect(() => m.ensureDevice("d")).toThrow(DeviceLimitError);
  });

  it("uses an individual enrollment's key, the group-derived key otherwise, none for X.509", () => {
    const m = model();
    m.enroll("ind", { deviceKey: "a2V5" });
    m.enroll("cert", { x509: true });
    expect(m.deviceKey("ind")).toBe("a2V5");
    expect(m.deviceKey("cert")).toBeUndefined();
    expect(m.deviceKey("any")).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it("answers a method for a device that is not connected with 404103 at once", async () => {
    const m = model();
    expect(await m.invokeMethod("a", "reboot", null, 5)).toMatchObject({ status: 404, payload: { errorCode: 404103 } });
    expect(() => m.invokeMethod("a", "bad name", null, 5)).toThrow(/method name/);
  });
});
