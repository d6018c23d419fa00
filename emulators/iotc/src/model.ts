/**
 * What the emulated IoT Central application holds, independent of any wire protocol: enrollments, devices (their
 * status, model id, counters), twins, the telemetry log and pending direct methods. The MQTT and HTTPS surfaces
 * drive it; an application REST API can be added on top through the same methods.
 */
import { EventEmitter } from "node:events";
import { deriveDeviceKey } from "./sas.js";
import { type JsonObject, TwinSection } from "./twin.js";

export type DeviceStatus = "enabled" | "disabled";

/** How an individual enrollment proves itself; devices not individually enrolled use the group key or the X.509 CA. */
export type EnrollmentAttestation = { deviceKey: string } | { x509: true };

export type AttestationKind = "symmetricKey" | "x509";

export interface DeviceRecord {
  deviceId: string;
  status: DeviceStatus;
  modelId?: string;
  /** Set once DPS assigned the device to the hub: before that the hub does not know it. */
  assignedAt?: Date;
  attestation?: AttestationKind;
  createdAt: Date;
  updatedAt: Date;
  etag: string;
  /** DPS register calls that passed authentication (throttled ones included). */
  registrations: number;
  /** Hub connections accepted. */
  connects: number;
  connected: boolean;
  /** `se` of the SAS token of the last hub connection accepted with one. */
  tokenExpiresAt?: Date;
  /** Hub connections closed because their SAS token expired (at `se`, or by expireToken). */
  tokenExpiries: number;
  /**
   * Signatures (base64) of tokens expired by expireToken before their `se`: the hub refuses them from then on, as it
   * would once `se` had passed. The newest MAX_EXPIRED_TOKENS only.
   */
  expiredTokens: string[];
  desired: TwinSection;
  reported: TwinSection;
}

export interface TelemetryMessage {
  deviceId: string;
  body: Buffer;
  /** The body parsed, when it is JSON. */
  json?: unknown;
  component?: string;
  contentType?: string;
  contentEncoding?: string;
  messageId?: string;
  correlationId?: string;
  /** Application properties (everything in the bag that is not a `$.` system property). */
  properties: Record<string, string>;
  /** Every property as received, system ones included, decoded. */
  systemProperties: Record<string, string>;
  receivedAt: Date;
}

export interface DeviceSummary {
  deviceId: string;
  modelId?: string;
  status: string;
  connected: boolean;
  registrations: number;
  connects: number;
  provisioned: boolean;
  attestation?: AttestationKind;
  /** ISO time of the `se` of the last SAS token the hub accepted from the device. */
  tokenExpiresAt?: string;
  tokenExpiries: number;
}

export interface ModelEvents {
  /** A desired patch was accepted: the hub pushes it to the device's connection. */
  desired: [deviceId: string, patch: JsonObject, version: number];
  /** A device was disabled: the hub drops its connection. */
  disabled: [deviceId: string];
}

export interface ModelOptions {
  groupKey: string;
  /** Telemetry messages kept (oldest dropped first). */
  maxTelemetry: number;
  /** Telemetry body bytes kept (oldest dropped first): 10 000 messages of 256 KiB would be 2.5 GiB. */
  maxTelemetryBytes: number;
  maxDevices: number;
}

export interface MethodResult {
  status: number;
  payload: unknown;
}

/** Method names IoT Hub accepts: IoT Central's `component*command` included. */
const METHOD_NAME = /^[A-Za-z0-9_\-*:.$]{1,128}$/;
export const METHOD_TIMEOUT_BOUNDS = { min: 5, max: 300, default: 30 } as const;
/** Direct method request and response payloads. */
export const MAX_METHOD_PAYLOAD_BYTES = 128 * 1024;
/** C2D message body. */
export const MAX_C2D_BYTES = 64 * 1024;
/** Tokens expired early remembered per device: a device signs a new one for each connection, so a few suffice. */
export const MAX_EXPIRED_TOKENS = 16;

/** What the hub surface does for the model: reach the device's live connection. */
export interface DeviceLink {
  /** False when the device has no connection subscribed to direct methods. */
  sendMethod(deviceId: string, name: string, rid: string, payload: Buffer): boolean;
  sendC2D(deviceId: string, body: Buffer, properties: Record<string, string>): void;
  disconnect(deviceId: string): void;
  /** False when the device has no connection authenticated with a SAS token. */
  expireToken(deviceId: string): boolean;
}

export class InvalidRequestError extends Error {
  override name = "InvalidRequestError";
}

export class DeviceLimitError extends Error {
  override name = "DeviceLimitError";
}

export class IotcModel extends EventEmitter<ModelEvents> {
  private readonly enrollments = new Map<string, EnrollmentAttestation>();
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly log: TelemetryMessage[] = [];
  private logBytes = 0;
  private readonly pendingMethods = new Map<string, { deviceId: string; done: (r: MethodResult) => void }>();
  private nextRid = 1;
  private link: DeviceLink | undefined;

  constructor(private readonly options: ModelOptions) {
    super();
  }

  enroll(registrationId: string, attestation: EnrollmentAttestation): void {
    this.enrollments.set(registrationId, structuredClone(attestation));
  }

  enrollment(registrationId: string): EnrollmentAttestation | undefined {
    return this.enrollments.get(registrationId);
  }

  /** The symmetric key a device signs with: its individual key, else the one derived from the group key. */
  deviceKey(registrationId: string): string | undefined {
    const e = this.enrollments.get(registrationId);
    if (e && "x509" in e) return undefined;
    return e ? e.deviceKey : deriveDeviceKey(this.options.groupKey, registrationId);
  }

  device(deviceId: string): DeviceRecord | undefined {
    return this.devices.get(deviceId);
  }

  /** The device's record, created (enabled, unprovisioned) when missing. */
  ensureDevice(deviceId: string): DeviceRecord {
    let d = this.devices.get(deviceId);
    if (!d) {
      if (this.devices.size >= this.options.maxDevices) {
        throw new DeviceLimitError(`the emulator holds ${this.options.maxDevices} devices already`);
      }
      const now = new Date();
      d = {
        deviceId,
        status: "enabled",
        createdAt: now,
        updatedAt: now,
        etag: newEtag(),
        registrations: 0,
        connects: 0,
        connected: false,
        tokenExpiries: 0,
        expiredTokens: [],
        desired: new TwinSection(),
        reported: new TwinSection(),
      };
      this.devices.set(deviceId, d);
    }
    return d;
  }

  setStatus(deviceId: string, status: DeviceStatus): void {
    const d = this.ensureDevice(deviceId);
    d.status = status;
    d.updatedAt = new Date();
    d.etag = newEtag();
    if (status === "disabled") this.emit("disabled", deviceId);
  }

  /** DPS assigned the device (again): the hub knows it from now on. */
  assign(deviceId: string, attestation: AttestationKind): DeviceRecord {
    const d = this.ensureDevice(deviceId);
    const now = new Date();
    d.assignedAt ??= now;
    d.attestation = attestation;
    d.updatedAt = now;
    d.etag = newEtag();
    return d;
  }

  list(): DeviceSummary[] {
    return [...this.devices.values()].map((d) => ({
      deviceId: d.deviceId,
      ...(d.modelId === undefined ? {} : { modelId: d.modelId }),
      status: d.status,
      connected: d.connected,
      registrations: d.registrations,
      connects: d.connects,
      provisioned: d.assignedAt !== undefined,
      ...(d.attestation === undefined ? {} : { attestation: d.attestation }),
      ...(d.tokenExpiresAt === undefined ? {} : { tokenExpiresAt: d.tokenExpiresAt.toISOString() }),
      tokenExpiries: d.tokenExpiries,
    }));
  }

  addTelemetry(message: TelemetryMessage): void {
    this.log.push(message);
    this.logBytes += message.body.length;
    while (this.log.length > this.options.maxTelemetry || (this.logBytes > this.options.maxTelemetryBytes && this.log.length > 1)) {
      this.logBytes -= this.log.shift()!.body.length;
    }
  }

  telemetry(deviceId?: string): TelemetryMessage[] {
    return deviceId === undefined ? [...this.log] : this.log.filter((m) => m.deviceId === deviceId);
  }

  twin(deviceId: string): { desired: JsonObject; reported: JsonObject } {
    const d = this.devices.get(deviceId);
    if (!d) return { desired: { $version: 1 }, reported: { $version: 1 } };
    return { desired: d.desired.view(), reported: d.reported.view() };
  }

  /** Throws TwinPatchError for a patch the hub refuses. */
  patchReported(deviceId: string, patch: unknown): number {
    return this.ensureDevice(deviceId).reported.apply(patch, "reported");
  }

  /** Throws TwinPatchError for a patch the hub refuses; emits `desired` with the accepted patch. */
  patchDesired(deviceId: string, patch: unknown): number {
    const version = this.ensureDevice(deviceId).desired.apply(patch, "desired");
    this.emit("desired", deviceId, structuredClone(patch as JsonObject), version);
    return version;
  }

  attach(link: DeviceLink): void {
    this.link = link;
  }

  /**
   * Calls a direct method the way the service API does: the result is what the caller of IoT Hub gets, the device's
   * own status and payload, or 404 with errorCode 404103 (device not online or not subscribed to methods), or 504
   * with 504101 (no answer within the timeout). Never rejects for those: they are answers, not emulator failures.
   */
  invokeMethod(deviceId: string, name: string, payload: unknown, timeoutSeconds: number): Promise<MethodResult> {
    if (!METHOD_NAME.test(name)) throw new InvalidRequestError(`method name ${JSON.stringify(name)} is not valid`);
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < METHOD_TIMEOUT_BOUNDS.min || timeoutSeconds > METHOD_TIMEOUT_BOUNDS.max) {
      throw new InvalidRequestError(`timeoutSeconds must be an integer from ${METHOD_TIMEOUT_BOUNDS.min} to ${METHOD_TIMEOUT_BOUNDS.max}`);
    }
    // A request without a payload still carries valid JSON: the Node SDK parses it and throws on an empty body.
    const body = Buffer.from(JSON.stringify(payload ?? null));
    if (body.length > MAX_METHOD_PAYLOAD_BYTES) {
      throw new InvalidRequestError(`method payload is ${body.length} bytes, over ${MAX_METHOD_PAYLOAD_BYTES}`);
    }
    // Decimal request ids: the iotc Node client only recognises digits.
    const rid = String(this.nextRid++);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pendingMethods.delete(rid);
        resolve({
          status: 504,
          payload: { errorCode: 504101, message: `device ${deviceId} did not answer method ${name} in ${timeoutSeconds} s` },
        });
      }, timeoutSeconds * 1000);
      this.pendingMethods.set(rid, {
        deviceId,
        done: (r) => {
          clearTimeout(timer);
          this.pendingMethods.delete(rid);
          resolve(r);
        },
      });
      const d = this.devices.get(deviceId);
      const sent = d?.connected === true && this.link?.sendMethod(deviceId, name, rid, body) === true;
      if (!sent) {
        this.pendingMethods.get(rid)?.done({
          status: 404,
          payload: { errorCode: 404103, message: `device ${deviceId} is not online or not subscribed to methods` },
        });
      }
    });
  }

  /** The device answered `rid`; false when no such call is pending for it (late, or another device's). */
  completeMethod(deviceId: string, rid: string, status: number, payload: unknown): boolean {
    const p = this.pendingMethods.get(rid);
    if (!p || p.deviceId !== deviceId) return false;
    p.done({ status, payload });
    return true;
  }

  sendC2D(deviceId: string, body: Buffer, properties: Record<string, string>): void {
    if (body.length > MAX_C2D_BYTES) throw new InvalidRequestError(`C2D body is ${body.length} bytes, over ${MAX_C2D_BYTES}`);
    this.link?.sendC2D(deviceId, body, properties);
  }

  disconnect(deviceId: string): void {
    this.link?.disconnect(deviceId);
  }

  /**
   * The device's current SAS token expires now: the hub closes its connection as it does when `se` passes, and
   * refuses that token from then on. False when the device has no connection authenticated with a token.
   */
  expireToken(deviceId: string): boolean {
    return this.link?.expireToken(deviceId) ?? false;
  }

  /** Remembers a token expired before its `se`, so that the hub refuses it again. */
  tokenExpiredEarly(deviceId: string, signature: string): void {
    const d = this.devices.get(deviceId);
    if (!d) return;
    d.expiredTokens.push(signature);
    if (d.expiredTokens.length > MAX_EXPIRED_TOKENS) d.expiredTokens.shift();
  }

  /** Everything back to an empty application (enrollments, devices, twins, telemetry). */
  reset(): void {
    // Deleted devices lose their connections, as on the hub.
    for (const d of this.devices.values()) if (d.connected) this.link?.disconnect(d.deviceId);
    this.enrollments.clear();
    this.devices.clear();
    this.log.length = 0;
    this.logBytes = 0;
    for (const p of [...this.pendingMethods.values()]) p.done({ status: 404, payload: { errorCode: 404103, message: "emulator reset" } });
  }
}

function newEtag(): string {
  return Buffer.from(`"${crypto.randomUUID()}"`).toString("base64");
}
