/**
 * Azure IoT Central's device side, for in-process tests and as a stand-alone server (`main.ts`): DPS over MQTT and
 * HTTPS, IoT Hub over MQTT/TLS (SAS and X.509, twins, direct methods, C2D, persistent sessions). Written from
 * `shared/protocols/iotc.md` alone.
 */
import { createCa, createTestPki, type ListeningServer, listen } from "@meridian/emulator-kit";
import { createLogger } from "@meridian/service-kit";
import { createAdmin } from "./admin.js";
import { createAppApi } from "./app-api/router.js";
import { Provisioning } from "./dps.js";
import type { IotcEmulator } from "./emulator.js";
import { Faults } from "./faults.js";
import { createHttpsSurface } from "./https.js";
import { InvalidRequestError, IotcModel, METHOD_TIMEOUT_BOUNDS } from "./model.js";
import { startMqttSurface } from "./mqtt.js";
import { type IotcEmulatorOptions, resolveOptions } from "./options.js";
import { issueDeviceCertificate } from "./x509.js";

export type { IotcEmulator } from "./emulator.js";
export type { FaultConfig } from "./faults.js";
export { FaultConfigError } from "./faults.js";
export type { DeviceStatus, DeviceSummary, EnrollmentAttestation, MethodResult, TelemetryMessage } from "./model.js";
export { DeviceLimitError, InvalidRequestError, IotcModel } from "./model.js";
export type { IotcEmulatorOptions } from "./options.js";
export { OptionsError } from "./options.js";
export { createSasToken, deriveDeviceKey } from "./sas.js";
export { TwinPatchError } from "./twin.js";

export async function startIotcEmulator(options: IotcEmulatorOptions = {}): Promise<IotcEmulator> {
  const o = resolveOptions(options);
  const log = options.logger ?? createLogger("emulator-iotc", { level: "silent" });
  const pki = createTestPki({
    caName: "Meridian IoT Central Emulator CA",
    hosts: [o.hubHostName, o.provisioningHostName, ...o.extraHostNames],
  });
  const x509Ca = createCa("Meridian IoT Central Emulator X.509 enrollment CA");
  const faults = new Faults();
  const model = new IotcModel({
    groupKey: o.groupKey,
    maxTelemetry: o.maxTelemetry,
    maxTelemetryBytes: o.maxTelemetryBytes,
    maxDevices: o.maxDevices,
  });
  const provisioning = new Provisioning(
    model,
    { idScope: o.idScope, hubHostName: o.hubHostName, assigningPolls: o.assigningPolls, retryAfterSeconds: o.retryAfterSeconds },
    faults,
  );
  const tls = { key: pki.keyPem, cert: pki.certPem, clientCa: x509Ca.certPem };

  const mqtt = await startMqttSurface(model, provisioning, faults, { ...tls, hubHostName: o.hubHostName, sasGraceMs: o.sasGraceMs }, log);
  let mqttListener: ListeningServer | undefined;
  let httpsListener: ListeningServer | undefined;
  try {
    mqttListener = await listen(mqtt.server, { port: o.port, host: o.host });
    const emulatorRef: { current?: IotcEmulator } = {};
    const admin = createAdmin(() => emulatorRef.current!, faults, provisioning, pki.caPem, log);
    const appApi = createAppApi(model, { apiToken: o.apiToken }, log);
    httpsListener = await listen(createHttpsSurface(provisioning, admin, appApi, tls, log), { port: o.httpsPort, host: o.host });

    const emulator: IotcEmulator = {
      mqttHost: `${mqttListener.host}:${mqttListener.port}`,
      httpsUrl: httpsListener.url("https"),
      caPem: pki.caPem,
      idScope: o.idScope,
      hubHostName: o.hubHostName,
      groupKey: o.groupKey,
      apiToken: o.apiToken,
      x509Ca,
      model,
      issueDeviceCertificate: (registrationId) => issueDeviceCertificate(x509Ca, registrationId),
      enrollDevice: (registrationId, attestation) => model.enroll(registrationId, attestation),
      setDeviceStatus: (deviceId, status) => {
        if (status !== "enabled" && status !== "disabled") throw new InvalidRequestError(`status must be enabled or disabled`);
        model.setStatus(deviceId, status);
      },
      devices: () => model.list(),
      telemetry: (deviceId) => model.telemetry(deviceId),
      twin: (deviceId) => model.twin(deviceId),
      updateDesired: (deviceId, patch) => model.patchDesired(deviceId, patch),
      invokeMethod: (deviceId, name, payload, opts) =>
        model.invokeMethod(deviceId, name, payload, opts?.timeoutSeconds ?? METHOD_TIMEOUT_BOUNDS.default),
      sendC2D: (deviceId, body, properties = {}) => model.sendC2D(deviceId, Buffer.from(body), properties),
      disconnect: (deviceId) => model.disconnect(deviceId),
      expireToken: (deviceId) => model.expireToken(deviceId),
      setFault: (fault) => faults.set(fault),
      clearFaults: () => faults.clear(),
      async stop() {
        await Promise.all([mqttListener?.close(), httpsListener?.close()]);
        await mqtt.close();
        model.reset();
      },
    };
    emulatorRef.current = emulator;
    log.debug({ mqttHost: emulator.mqttHost, httpsUrl: emulator.httpsUrl, idScope: o.idScope }, "IoT Central emulator listening");
    return emulator;
  } catch (err) {
    await Promise.all([mqttListener?.close(), httpsListener?.close()]);
    await mqtt.close();
    throw err;
  }
}
