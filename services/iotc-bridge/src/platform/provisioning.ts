/**
 * Registration through DPS with the SDK's ProvisioningDeviceClient over MQTT (notes 1.2). The SDK's transport retries
 * a 429 by itself after the retry-after DPS sends, so throttling shows only when the registration runs out of time;
 * then it is an IotcThrottledError with DPS's last retry-after.
 */
import { parseSettings, provisioningEndpointSchema, registerOptionsSchema } from "./config.js";
import { decodeSasKey, deriveDeviceKey } from "./credentials.js";
import { IotcInvalidArgumentError, IotcRegistrationFailedError, IotcTimeoutError } from "./errors.js";
import type { DeviceLogger } from "./logger.js";
import { validateRegistrationId } from "./registration-id.js";
import { dpsMqttBaseFor, loadSdk, type WireObservations } from "./sdk.js";
import { registrationError } from "./sdk-errors.js";
import type { DeviceCredential, DeviceRegistration, ProvisioningEndpoint } from "./types.js";

export interface RegisterOptions {
  /** Sent to DPS as both `modelId` and `iotcModelId`, so IoT Central associates the device with its template. */
  modelId?: string;
  signal?: AbortSignal;
  /** Default 60 000. */
  timeoutMs?: number;
  logger?: DeviceLogger;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;
const PEM_KEY = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

/** IotcInvalidArgumentError naming the field of a credential that cannot work (never quoting a key). */
export function validateCredential(credential: DeviceCredential, field = "credential"): void {
  if (typeof credential !== "object" || credential === null) throw new IotcInvalidArgumentError(field, "is required");
  switch (credential.kind) {
    case "device_key":
      decodeSasKey(credential.deviceKey, `${field}.deviceKey`);
      return;
    case "group_key":
      decodeSasKey(credential.groupKey, `${field}.groupKey`);
      return;
    case "x509":
      if (typeof credential.certificateChainPem !== "string" || !PEM_CERT.test(credential.certificateChainPem))
        throw new IotcInvalidArgumentError(`${field}.certificateChainPem`, "holds no PEM certificate");
      if (typeof credential.privateKeyPem !== "string" || !PEM_KEY.test(credential.privateKeyPem))
        throw new IotcInvalidArgumentError(`${field}.privateKeyPem`, "holds no PEM private key");
      return;
    default:
      throw new IotcInvalidArgumentError(
        `${field}.kind`,
        `must be device_key, group_key or x509, got ${JSON.stringify((credential as { kind?: unknown }).kind)}`,
      );
  }
}

/** The key the device signs with: its own, or derived from its group's. Undefined for X.509. */
export function deviceKeyOf(credential: DeviceCredential, registrationId: string): string | undefined {
  if (credential.kind === "device_key") return credential.deviceKey;
  if (credential.kind === "group_key") return deriveDeviceKey(credential.groupKey, registrationId);
  return undefined;
}

/**
 * Registers `registrationId` with DPS and returns where it was assigned, with the credential the hub connection uses
 * (for a group key, the derived device key). DPS is trusted through the process's default CAs: the SDK's DPS transport
 * takes no CA of its own (add an emulator's with `tls.setDefaultCACertificates`).
 */
export async function register(
  endpoint: ProvisioningEndpoint,
  registrationId: string,
  credential: DeviceCredential,
  options: RegisterOptions = {},
): Promise<DeviceRegistration> {
  const ep = parseSettings(provisioningEndpointSchema, endpoint, "endpoint");
  validateRegistrationId(registrationId);
  validateCredential(credential);
  const settings = parseSettings(registerOptionsSchema, { modelId: options.modelId, timeoutMs: options.timeoutMs }, "options");
  options.signal?.throwIfAborted();

  const { common, provisioning, provisioningMqtt, symmetricKey, x509 } = loadSdk();
  const deviceKey = deviceKeyOf(credential, registrationId);
  const security =
    deviceKey !== undefined
      ? new symmetricKey.SymmetricKeySecurityClient(registrationId, deviceKey)
      : new x509.X509Security(registrationId, {
          cert: (credential as { certificateChainPem: string }).certificateChainPem,
          key: (credential as { privateKeyPem: string }).privateKeyPem,
        });
  const observations: WireObservations = {};
  const transport = new provisioningMqtt.Mqtt(dpsMqttBaseFor(observations) as never);
  // The transport emits 'error' when DPS closes a connection it did not expect closed; unheard, that ends the process.
  transport.on("error", (err: Error) => options.logger?.debug({ registrationId, err: err.message }, "DPS connection error"));
  const client = provisioning.ProvisioningDeviceClient.create(ep.provisioningHost, ep.idScope, transport, security as never);
  if (settings.modelId !== undefined) client.setProvisioningPayload({ modelId: settings.modelId, iotcModelId: settings.modelId });

  const started = Date.now();
  options.logger?.debug({ registrationId, provisioningHost: ep.provisioningHost, idScope: ep.idScope }, "registering with DPS");
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  let cancelled: "timeout" | "abort" | undefined;
  let giveUp: ((err: Error) => void) | undefined;
  const cancel = (why: "timeout" | "abort") => {
    cancelled ??= why;
    // The registration's cancel() cancels only the transport's pending request: while the SDK waits out a retry-after
    // it would register again afterwards, forever. Its polling state machine's cancel() stops that too and answers the
    // pending register() with OperationCancelledError (then disconnects).
    const sdk = client as unknown as {
      _pollingStateMachine?: { cancel(cb: (err?: Error) => void): void };
      cancel(cb: (err?: Error) => void): void;
    };
    if (sdk._pollingStateMachine) sdk._pollingStateMachine.cancel(() => {});
    else sdk.cancel(() => {});
    // Should the SDK never answer, the caller is not kept waiting.
    setTimeout(() => giveUp?.(new common.errors.OperationCancelledError("registration cancelled")), 5000).unref();
  };
  try {
    const outcome = new Promise<Record<string, unknown>>((resolve, reject) => {
      giveUp = reject;
      client.register((err, result) => (err ? reject(err) : resolve(result as unknown as Record<string, unknown>)));
    });
    timer = setTimeout(() => cancel("timeout"), settings.timeoutMs);
    if (options.signal) {
      onAbort = () => cancel("abort");
      options.signal.addEventListener("abort", onAbort, { once: true });
    }
    let state: Record<string, unknown>;
    try {
      state = await outcome;
    } catch (err) {
      if (cancelled === "abort") throw options.signal?.reason ?? err;
      const mapped = registrationError(err, observations, registrationId);
      if (cancelled === "timeout" && !mapped.retryable)
        throw new IotcTimeoutError(`DPS did not complete the registration within ${settings.timeoutMs} ms`, { registrationId, cause: err });
      throw mapped;
    }
    const assignedHub = state.assignedHub;
    const deviceId = state.deviceId;
    if (typeof assignedHub !== "string" || assignedHub === "" || typeof deviceId !== "string" || deviceId === "")
      throw new IotcRegistrationFailedError("DPS answered 'assigned' without an assigned hub and device id", { registrationId });
    options.logger?.info(
      { registrationId, assignedHub, deviceId, substatus: state.substatus, ms: Date.now() - started },
      "registered with DPS",
    );
    return {
      registrationId,
      deviceId,
      assignedHub,
      credential:
        deviceKey !== undefined
          ? { kind: "sas", deviceKey }
          : {
              kind: "x509",
              certificateChainPem: (credential as { certificateChainPem: string }).certificateChainPem,
              privateKeyPem: (credential as { privateKeyPem: string }).privateKeyPem,
            },
      ...(settings.modelId === undefined ? {} : { modelId: settings.modelId }),
      registeredAt: new Date().toISOString(),
    };
  } finally {
    clearTimeout(timer);
    if (onAbort) options.signal?.removeEventListener("abort", onAbort);
  }
}
