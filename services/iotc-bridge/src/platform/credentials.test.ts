import { describe, expect, it } from "vitest";
import { deriveDeviceKey } from "./credentials.js";
import { IotcInvalidArgumentError } from "./errors.js";

describe("deriveDeviceKey", () => {
  it("is base64(HMAC-SHA256(base64decode(groupKey), registrationId)) (vector from openssl dgst -mac HMAC)", () => {
    // echo -n thermostat-01 | openssl dgst -sha256 -mac HMAC -macopt hexkey:<hex of the key> -binary | base64
    expect(deriveDeviceKey("bWVyaWRpYW4tdGVzdC1ncm91cC1rZXktMzItYnl0ZXMh", "thermostat-01")).toBe(
      "7HObHjy8R+W8sDk+PjpMdgDEa0pOVf8Wo7VWsgwsKGw=",
    );
  });

  it("differs per registration id", () => {
    const key = Buffer.alloc(32, 7).toString("base64");
    expect(deriveDeviceKey(key, "a")).not.toBe(deriveDeviceKey(key, "b"));
  });

  it("refuses a group key that is not base64, naming it and not quoting it", () => {
    const err = (() => {
      try {
        deriveDeviceKey("not base64 !!secret", "dev");
      } catch (e) {
        return e;
      }
    })() as IotcInvalidArgumentError;
    expect(err).toBeInstanceOf(IotcInvalidArgumentError);
    expect(err.field).toBe("groupKey");
    expect(err.message).not.toContain("secret");
  });

  it("refuses a key shorter than 16 bytes and an empty registration id", () => {
    expect(() => deriveDeviceKey(Buffer.alloc(8).toString("base64"), "dev")).toThrow(/groupKey: is 8 bytes/);
    expect(() => deriveDeviceKey(Buffer.alloc(32).toString("base64"), "")).toThrow(/registrationId/);
  });
});
