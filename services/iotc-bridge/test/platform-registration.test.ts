/**
 * DPS registration through the SDK against the IoT Central emulator: every credential kind, the model id, and each
 * way DPS says no. DPS is trusted the way the README says callers must: the emulator's CA added to the default CAs.
 */
import { randomBytes } from "node:crypto";
import tls from "node:tls";
import { type IotcEmulator, startIotcEmulator } from "@meridian/emulator-iotc";
import { until } from "@meridian/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  deriveDeviceKey,
  IotcDeviceDisabledError,
  IotcInvalidArgumentError,
  IotcNotConnectedError,
  IotcRegistrationFailedError,
  IotcThrottledError,
  IotcUnauthorizedError,
  issueDeviceCertificate,
  type ProvisioningEndpoint,
  register,
} from "../src/platform/index.js";

let emu: IotcEmulator;
let endpoint: ProvisioningEndpoint;
const defaultCas = tls.getCACertificates("default");

beforeAll(async () => {
  emu = await startIotcEmulator();
  tls.setDefaultCACertificates([...defaultCas, emu.caPem]);
  endpoint = { idScope: emu.idScope, provisioningHost: emu.mqttHost, gatewayHost: emu.mqttHost };
});

afterAll(async () => {
  tls.setDefaultCACertificates(defaultCas);
  await emu?.stop();
});

beforeEach(() => emu.clearFaults());

let n = 0;
const newId = (prefix: string) => `${prefix}-${++n}-${randomBytes(3).toString("hex")}`;
const device = (id: string) => emu.model.list().find((d) => d.deviceId === id);

describe("register through DPS (SDK ProvisioningDeviceClient over MQTT)", () => {
  it("group key: assigned to the emulator's hub with the derived device key, model id sent (modelId and iotcModelId)", async () => {
    const id = newId("group");
    const reg = await register(endpoint, id, { kind: "group_key", groupKey: emu.groupKey }, { modelId: "dtmi:meridian:Pump;1" });
    expect(reg).toMatchObject({ registrationId: id, deviceId: id, assignedHub: emu.hubHostName, modelId: "dtmi:meridian:Pump;1" });
    expect(reg.credential).toEqual({ kind: "sas", deviceKey: deriveDeviceKey(emu.groupKey, id) });
    expect(Date.parse(reg.registeredAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(device(id)).toMatchObject({ modelId: "dtmi:meridian:Pump;1", registrations: 1, provisioned: true });
  });

  it("individual device key", async () => {
    const id = newId("key");
    const deviceKey = randomBytes(32).toString("base64");
    emu.enrollDevice(id, { deviceKey });
    const reg = await register(endpoint, id, { kind: "device_key", deviceKey });
    expect(reg).toMatchObject({ deviceId: id, credential: { kind: "sas", deviceKey } });
  });

  it("X.509: a certificate issued by issueDeviceCertificate with the enrollment group's CA is the TLS client certificate", async () => {
    const id = newId("x509");
    const issued = issueDeviceCertificate({ certificateChainPem: emu.x509Ca.certPem, privateKeyPem: emu.x509Ca.keyPem }, id);
    const credential = { kind: "x509" as const, certificateChainPem: issued.certificateChainPem, privateKeyPem: issued.privateKeyPem };
    const reg = await register(endpoint, id, credential);
    expect(reg).toMatchObject({ deviceId: id, assignedHub: emu.hubHostName, credential });
    expect(device(id)?.attestation).toBe("x509");
  });

  it("a key DPS does not accept is IotcUnauthorizedError", async () => {
    const id = newId("wrong");
    emu.enrollDevice(id, { deviceKey: randomBytes(32).toString("base64") });
    await expect(register(endpoint, id, { kind: "device_key", deviceKey: randomBytes(32).toString("base64") })).rejects.toBeInstanceOf(
      IotcUnauthorizedError,
    );
  });

  it("a disabled device is IotcDeviceDisabledError", async () => {
    const id = newId("disabled");
    await register(endpoint, id, { kind: "group_key", groupKey: emu.groupKey });
    emu.setDeviceStatus(id, "disabled");
    const err = await register(endpoint, id, { kind: "group_key", groupKey: emu.groupKey }).catch((e) => e);
    expect(err).toBeInstanceOf(IotcDeviceDisabledError);
    expect(err.retryable).toBe(false);
  });

  it("DPS status failed is IotcRegistrationFailedError with DPS's errorCode and message (SDK class matched, not its name)", async () => {
    emu.setFault({ dpsFailed: { count: 1, errorCode: 400209, errorMessage: "enrollment not found" } });
    const err = await register(endpoint, newId("failed"), { kind: "group_key", groupKey: emu.groupKey }).catch((e) => e);
    expect(err).toBeInstanceOf(IotcRegistrationFailedError);
    expect(err.code).toBe(400209);
    expect(err.message).toContain("enrollment not found");
  });

  it("DPS 429: the registration is retried after DPS's retry-after and succeeds", async () => {
    const id = newId("throttled");
    emu.setFault({ dpsThrottle: { count: 2, retryAfterSeconds: 1 } });
    const started = Date.now();
    const reg = await register(endpoint, id, { kind: "group_key", groupKey: emu.groupKey });
    expect(reg.deviceId).toBe(id);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
  });

  it("DPS throttling longer than the registration's time: IotcThrottledError with the retry-after DPS sent", async () => {
    emu.setFault({ dpsThrottle: { count: 1000, retryAfterSeconds: 2 } });
    const err = await register(endpoint, newId("throttled"), { kind: "group_key", groupKey: emu.groupKey }, { timeoutMs: 3000 }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(IotcThrottledError);
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(2000);
  });

  it("an aborted registration rejects with the signal's reason and the SDK stops registering (no request after the abort)", async () => {
    const id = newId("aborted");
    emu.setFault({ dpsThrottle: { count: 1000, retryAfterSeconds: 1 } });
    const controller = new AbortController();
    const pending = register(endpoint, id, { kind: "group_key", groupKey: emu.groupKey }, { signal: controller.signal });
    await until(() => (device(id)?.registrations ?? 0) >= 2);
    const reason = new Error("shutting down");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    const after = device(id)?.registrations;
    await new Promise((r) => setTimeout(r, 2500));
    expect(device(id)?.registrations).toBe(after);
  });

  it("DPS not reachable is IotcNotConnectedError (retryable)", async () => {
    const err = await register(
      { idScope: emu.idScope, provisioningHost: "127.0.0.1:1" },
      newId("nowhere"),
      { kind: "group_key", groupKey: emu.groupKey },
      { timeoutMs: 5000 },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(IotcNotConnectedError);
    expect(err.retryable).toBe(true);
  });

  it("refuses bad input before connecting, naming the field", async () => {
    await expect(register(endpoint, "Bad Id", { kind: "group_key", groupKey: emu.groupKey })).rejects.toThrow(/^registrationId: /);
    await expect(
      register({ ...endpoint, provisioningHost: "mqtts://x" }, "ok", { kind: "group_key", groupKey: emu.groupKey }),
    ).rejects.toThrow(/^endpoint.provisioningHost: /);
    const err = await register(endpoint, "ok", { kind: "device_key", deviceKey: "!!" }).catch((e) => e);
    expect(err).toBeInstanceOf(IotcInvalidArgumentError);
    expect(err.field).toBe("credential.deviceKey");
  });
});
