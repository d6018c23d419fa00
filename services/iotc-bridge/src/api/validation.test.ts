import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ApplicationSchema } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { describe, expect, it } from "vitest";
import { validateApplication } from "./iotc-bridge.js";
import { Violations } from "./validation.js";

function problems(f: (v: Violations) => void): string[] {
  const v = new Violations();
  f(v);
  return v.list.map((x) => `${x.path}: ${x.reason}`);
}

const good = {
  id: "plant-1",
  idScope: "0ne00123456",
  enrollmentGroup: { credential: { case: "groupKey" as const, value: Buffer.alloc(32, 1).toString("base64") } },
};

describe("validation", () => {
  it("a good application passes", () => {
    expect(problems((v) => validateApplication(create(ApplicationSchema, good), v))).toEqual([]);
  });

  it("names every bad field of an application", () => {
    const out = problems((v) =>
      validateApplication(
        create(ApplicationSchema, {
          id: "Plant_1",
          idScope: "",
          provisioningHost: "not a host",
          modelId: "thermostat",
          deviceIdTemplate: "{site}-{device}",
          idleDisconnectSeconds: 5,
          credentialKind: "group_key",
          enrollmentGroup: { credential: { case: "groupKey", value: "short" } },
        }),
        v,
      ),
    );
    expect(out).toEqual([
      "application.id: must be 1-63 lower-case letters, digits or '-', starting with a letter",
      "application.id_scope: is required",
      'application.provisioning_host: "not a host" is not host[:port]',
      'application.model_id: "thermostat" is not a DTDL model id (dtmi:<path>;<version>)',
      "application.device_id_template: unknown placeholder {site}: use {platform}, {connection} and {device}",
      "application.idle_disconnect_seconds: must be 60 to 86400, got 5",
      "application.credential_kind: is output only",
      "application.enrollment_group.group_key: must be a base64 SAS key of 16 to 64 bytes",
    ]);
  });

  it("the group key is never echoed in a complaint", () => {
    const secret = "c2VjcmV0LXRoYXQtaXMtdG9vLXNob3J0";
    const out = problems((v) => v.sasKey("group_key", `${secret}!!`));
    expect(out.join()).not.toContain(secret);
  });

  it("a device id DPS would refuse is named with the reason", () => {
    expect(problems((v) => v.deviceId("device_id", "Pump 1"))).toEqual([
      expect.stringMatching(/^device_id: character "P" at position 0 is not accepted by DPS/),
    ]);
    expect(problems((v) => v.deviceId("device_id", "d".repeat(129)))).toEqual([expect.stringMatching(/^device_id: is 129 characters/)]);
    expect(problems((v) => v.deviceId("device_id", "pump-1"))).toEqual([]);
  });

  it("a payload over its limit is named with its size", () => {
    const big = { s: "x".repeat(300 * 1024) };
    expect(problems((v) => v.jsonObject("payload", big, 256 * 1024))).toEqual([
      expect.stringMatching(/^payload: is \d+ bytes as JSON, over the 262144-byte limit/),
    ]);
    expect(problems((v) => v.jsonObject("patch", undefined, 32 * 1024))).toEqual(["patch: is required (a JSON object)"]);
  });

  it("properties: IoT Hub's own names refused, at most 64", () => {
    const props: Record<string, string> = { $sub: "x" };
    for (let i = 0; i < 70; i++) props[`p${i}`] = "v";
    const out = problems((v) => v.properties("properties", props));
    expect(out[0]).toMatch(/at most 64 properties, got 71/);
    expect(out[1]).toMatch(/names starting with \$ or iothub- are IoT Hub's own/);
  });

  it("throwIfAny is invalid_argument listing the fields", () => {
    const v = new Violations();
    v.applicationId("application_id", "");
    try {
      v.throwIfAny();
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      expect((err as ConnectError).rawMessage).toContain("application_id: is required");
    }
  });
});
