import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import {
  IotcDeviceDisabledError,
  IotcNotConnectedError,
  IotcRegistrationFailedError,
  IotcThrottledError,
  IotcTimeoutError,
  IotcUnauthorizedError,
} from "./errors.js";
import { connectionError, hubError, registrationError, twinError } from "./sdk-errors.js";

const here = createRequire(import.meta.url);
/** azure-iot-common as the DPS state machine loads it (a nested, older copy in this install). */
const dpsCommon = createRequire(here.resolve("azure-iot-provisioning-device"))("azure-iot-common") as typeof import("azure-iot-common");
const hubCommon = createRequire(here.resolve("azure-iot-device"))("azure-iot-common") as typeof import("azure-iot-common");

describe("registrationError", () => {
  it("DeviceRegistrationFailedError is matched by class (its name is ProvisioningRegistrationFailedError), with DPS's errorCode", () => {
    const err = Object.assign(new dpsCommon.errors.DeviceRegistrationFailedError("registration failed"), {
      result: { status: "failed", registrationState: { errorCode: 400209, errorMessage: "unknown enrollment" } },
    });
    expect(err.name).not.toBe("DeviceRegistrationFailedError");
    const mapped = registrationError(err, {}, "dev");
    expect(mapped).toBeInstanceOf(IotcRegistrationFailedError);
    expect(mapped.code).toBe(400209);
    expect(mapped.message).toContain("unknown enrollment");
    expect(mapped.registrationId).toBe("dev");
  });

  it("an Error named like it but of no SDK class is not taken for it", () => {
    const fake = Object.assign(new Error("x"), { name: "DeviceRegistrationFailedError" });
    expect(registrationError(fake, {}, "dev")).not.toBeInstanceOf(IotcRegistrationFailedError);
  });

  it("status disabled (the SDK's SyntaxError for a status it does not know) is IotcDeviceDisabledError", () => {
    const err = Object.assign(new SyntaxError("status is disabled"), { result: { status: "disabled" } });
    expect(registrationError(err, {}, "dev")).toBeInstanceOf(IotcDeviceDisabledError);
  });

  it("401 is IotcUnauthorizedError; a CONNACK 5 on the DPS connection too", () => {
    expect(registrationError(new dpsCommon.errors.UnauthorizedError("401"), {}, "dev")).toBeInstanceOf(IotcUnauthorizedError);
    expect(registrationError(new Error("Connection refused: Not authorized"), { connackCode: 5 }, "dev")).toBeInstanceOf(
      IotcUnauthorizedError,
    );
  });

  it("a timeout after DPS answered 429 is IotcThrottledError with DPS's retry-after; without a 429 it is IotcTimeoutError", () => {
    const throttled = registrationError(new dpsCommon.errors.TimeoutError(), { dpsStatus: 429, dpsRetryAfterSeconds: 7 }, "dev");
    expect(throttled).toBeInstanceOf(IotcThrottledError);
    expect(throttled.retryAfterMs).toBe(7000);
    expect(throttled.retryable).toBe(true);
    expect(registrationError(new dpsCommon.errors.TimeoutError(), { dpsStatus: 202 }, "dev")).toBeInstanceOf(IotcTimeoutError);
  });

  it("a refused socket is IotcNotConnectedError (retryable); an untrusted certificate says to add the CA", () => {
    const refused = registrationError(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), {}, "dev");
    expect(refused).toBeInstanceOf(IotcNotConnectedError);
    expect(refused.retryable).toBe(true);
    const tls = registrationError(
      new Error("x"),
      { socketError: Object.assign(new Error("self signed"), { code: "SELF_SIGNED_CERT_IN_CHAIN" }) },
      "dev",
    );
    expect(tls.message).toMatch(/add its CA/);
  });
});

describe("hub errors", () => {
  it("the SDK's wrapped first-connection failure is read from the CONNACK: 5 unauthorized, 3 throttled", () => {
    const wrapped = new Error("Failure on first connection (Not authorized): Connection refused: Not authorized");
    expect(hubError(wrapped, { connackCode: 5 }, "dev", "connection")).toBeInstanceOf(IotcUnauthorizedError);
    expect(hubError(wrapped, { connackCode: 3 }, "dev", "connection")).toBeInstanceOf(IotcThrottledError);
  });

  it("'Message not acknowledged' is IotcTimeoutError; a purged publish is IotcNotConnectedError", () => {
    expect(hubError(new hubCommon.errors.TimeoutError("Message not acknowledged"), {}, "dev", "telemetry")).toBeInstanceOf(
      IotcTimeoutError,
    );
    expect(hubError(new hubCommon.errors.NotConnectedError("Connect was lost"), {}, "dev", "telemetry")).toBeInstanceOf(
      IotcNotConnectedError,
    );
  });

  it("a twin error keeps the status the wire showed: 429 throttled, 5xx not connected", () => {
    expect(twinError(new Error("throttled"), { twinStatus: 429 }, "dev", "twin request")).toBeInstanceOf(IotcThrottledError);
    expect(twinError(new Error("oops"), { twinStatus: 503 }, "dev", "twin request")).toBeInstanceOf(IotcNotConnectedError);
    expect(twinError(new Error("bad"), { twinStatus: 400 }, "dev", "twin request").code).toBe(400);
  });

  it("connectionError is undefined for what is not a connection failure", () => {
    expect(connectionError("IoT Hub", new Error("something else"), {}, "dev")).toBeUndefined();
  });
});
