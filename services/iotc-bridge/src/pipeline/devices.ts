import { sleep } from "@meridian/retry";
import type { Logger } from "pino";
import {
  IotcDeviceDisabledError,
  IotcError,
  IotcMessageTooLargeError,
  IotcRegistrationFailedError,
  IotcUnauthorizedError,
} from "../platform/errors.js";
import type { IotcDeviceOptions } from "../platform/index.js";
import type { DeviceConnectionState, DeviceCredential, DeviceHandlers, IotcDevice, TelemetryOptions, Twin } from "../platform/types.js";
import type { Applications } from "./applications.js";
import { TooManyDevicesError } from "./errors.js";
import type { ApplicationRecord, DeviceRecord, IotcStore, OwnCredential, WritablePropertyAckMode } from "./store.js";

/** The platform's createIotcDevice, or a fake of it. */
export type DeviceFactory = (options: IotcDeviceOptions) => IotcDevice;

/** Issues a device's leaf certificate for an X.509 enrollment group (the platform's issueDeviceCertificate). */
export type CertificateIssuer = (
  signing: { certificateChainPem: string; privateKeyPem: string },
  registrationId: string,
) => { certificateChainPem: string; privateKeyPem: string };

/** The commands and writable-property parts of a device's handlers (pipeline/cloud-to-device.ts). */
export interface CloudToDeviceHandlers {
  handlers(
    applicationId: string,
    deviceId: string,
    ack: WritablePropertyAckMode,
  ): Pick<DeviceHandlers, "writableProperty" | "command" | "offlineCommand">;
}

export interface DeviceManagerOptions {
  store: IotcStore;
  applications: () => Applications;
  createDevice: DeviceFactory;
  issueCertificate?: CertificateIssuer;
  cloudToDevice?: CloudToDeviceHandlers;
  logger: Logger;
  maxDevices: number;
  /** Device connects per second across the bridge. */
  connectRate: number;
  idleDisconnectSeconds: number;
  tokenValiditySeconds: number;
  tokenRenewalMarginSeconds: number;
  maxInFlight: number;
  ca?: string;
  /** How long a device refused for good is not tried again (its last error is answered meanwhile). */
  failureHoldMs?: number;
}

/** What the API shows of a device this instance acts as. */
export interface DeviceStatus {
  state: DeviceConnectionState;
  lastError?: string | undefined;
  lastActivity?: Date | undefined;
  messagesSent: number;
}

interface DeviceEntry extends DeviceStatus {
  applicationId: string;
  deviceId: string;
  device?: IotcDevice | undefined;
  opening?: Promise<IotcDevice> | undefined;
  /** A refusal for good, answered again until `failedUntil` instead of connecting again. */
  failure?: Error | undefined;
  failedUntil?: number | undefined;
  inFlight: number;
  waiting: Array<() => void>;
  idleTimer?: NodeJS.Timeout | undefined;
  idleSeconds: number;
}

/** The device can never be accepted as it is: disabled, credential refused, DPS failed it, a message too large. */
export function isRefusal(err: unknown): boolean {
  return (
    err instanceof IotcDeviceDisabledError ||
    err instanceof IotcUnauthorizedError ||
    err instanceof IotcRegistrationFailedError ||
    err instanceof IotcMessageTooLargeError
  );
}

/**
 * Spaces device connects across the bridge: at most `rate` per second, first come first served. A restart with 1,000
 * devices reconnects them over 1000/rate seconds instead of all at once (IoT Hub throttles new connections per unit,
 * DPS registrations per scope).
 */
export class ConnectLimiter {
  private next = 0;
  constructor(private readonly ratePerSecond: number) {}

  async take(signal?: AbortSignal): Promise<void> {
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + 1000 / this.ratePerSecond;
    if (at > now) await sleep(at - now, signal);
  }
}

const key = (applicationId: string, deviceId: string) => `${applicationId}\u0000${deviceId}`;

/**
 * One IotcDevice per (application, device id) on this instance: made on first use (RegisterDevice, a route's event),
 * opened through the global connect limiter, closed after the idle time and opened again on demand, at most
 * IOTC_MAX_DEVICES connected or connecting (the least recently used idle one makes room). The device client keeps a
 * connection up by itself (reconnects with backoff, renews its token); this keeps state, last error and counters per
 * device for the API. IoT Hub admits one connection per device id, so one instance acts as a given device.
 */
export class DeviceManager {
  private readonly entries = new Map<string, DeviceEntry>();
  private readonly limiter: ConnectLimiter;
  private readonly ac = new AbortController();

  constructor(private readonly o: DeviceManagerOptions) {
    this.limiter = new ConnectLimiter(o.connectRate);
  }

  status(applicationId: string, deviceId: string): DeviceStatus | undefined {
    const e = this.entries.get(key(applicationId, deviceId));
    return e ? { state: e.state, lastError: e.lastError, lastActivity: e.lastActivity, messagesSent: e.messagesSent } : undefined;
  }

  /** Devices connected or connecting now. */
  get openCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.device || e.opening) n++;
    return n;
  }

  /**
   * The open device, opening it when needed. `register` is RegisterDevice's: a credential of the device's own (kept
   * sealed in its record), a model id, `force` to register with DPS again.
   */
  async open(
    applicationId: string,
    deviceId: string,
    register?: { credential?: OwnCredential | undefined; modelId?: string | undefined; force?: boolean | undefined },
  ): Promise<IotcDevice> {
    const app = await this.o.applications().get(applicationId);
    const k = key(applicationId, deviceId);
    let e = this.entries.get(k);
    if (register?.credential || register?.modelId || register?.force) {
      // New credential or model, or a forced registration: the device starts over with them.
      if (e) await this.close(e, "disconnected");
      await this.remember(app, deviceId, register);
    }
    if (!e) {
      e = {
        applicationId,
        deviceId,
        state: "disconnected",
        messagesSent: 0,
        inFlight: 0,
        waiting: [],
        idleSeconds: app.idleDisconnectSeconds ?? this.o.idleDisconnectSeconds,
      };
      this.entries.set(k, e);
    }
    if (e.failure && e.failedUntil !== undefined && Date.now() < e.failedUntil && !register?.force) throw e.failure;
    // Refused for good earlier and the hold is over: start over (DPS again), in case IoT Central was fixed meanwhile.
    if (e.device?.state === "failed") await this.close(e, "disconnected");
    if (e.device) return e.device;
    if (!e.opening) {
      const entry = e;
      entry.state = "connecting";
      // Set before any await, so that concurrent callers share this one open.
      entry.opening = this.makeRoom(entry)
        .then(() => this.connect(app, entry, register?.force === true))
        .finally(() => {
          entry.opening = undefined;
          if (!entry.device && entry.state === "connecting") entry.state = "disconnected";
        });
    }
    return e.opening!;
  }

  private async remember(
    app: ApplicationRecord,
    deviceId: string,
    register: { credential?: OwnCredential | undefined; modelId?: string | undefined },
  ): Promise<void> {
    const store = this.o.store;
    const existing = await store.getDevice(app.id, deviceId);
    const record: DeviceRecord = existing ?? { applicationId: app.id, deviceId, createTime: new Date().toISOString() };
    if (register.credential) record.credential = store.sealOwnCredential(app, deviceId, register.credential);
    if (register.modelId) record.modelId = register.modelId;
    if (register.credential || register.modelId || !existing) await store.putDevice(record);
  }

  private async credentialFor(app: ApplicationRecord, deviceId: string): Promise<{ credential: DeviceCredential; modelId?: string }> {
    const store = this.o.store;
    const record = await store.getDevice(app.id, deviceId);
    const modelId = record?.modelId || app.modelId || undefined;
    const own = record ? store.openOwnCredential(app, record) : undefined;
    if (own) return { credential: own, ...(modelId ? { modelId } : {}) };
    const group = store.openApplication(app);
    if (group.kind === "group_key") return { credential: group, ...(modelId ? { modelId } : {}) };
    if (!this.o.issueCertificate) throw new IotcError("this bridge cannot issue X.509 device certificates");
    // An X.509 group: the device's leaf is issued once and kept (sealed) with it.
    const leaf = this.o.issueCertificate(group, deviceId);
    const credential: OwnCredential = { kind: "x509", ...leaf };
    await store.putDevice({
      ...(record ?? { applicationId: app.id, deviceId, createTime: new Date().toISOString() }),
      credential: store.sealOwnCredential(app, deviceId, credential),
    });
    return { credential, ...(modelId ? { modelId } : {}) };
  }

  private async connect(app: ApplicationRecord, e: DeviceEntry, force: boolean): Promise<IotcDevice> {
    const log = this.o.logger.child({ application: app.id, device: e.deviceId });
    let device: IotcDevice | undefined;
    try {
      const { credential, modelId } = await this.credentialFor(app, e.deviceId);
      await this.limiter.take(this.ac.signal);
      device = this.o.createDevice({
        endpoint: {
          idScope: app.idScope,
          provisioningHost: app.provisioningHost,
          ...(app.gatewayHost ? { gatewayHost: app.gatewayHost } : {}),
        },
        registrationId: e.deviceId,
        credential,
        ...(modelId ? { modelId } : {}),
        store: this.o.store.registrations(app, (id, err) =>
          log.warn({ err: err.message, registration: id }, "cached registration unusable; registering again"),
        ),
        handlers: {
          ...(this.o.cloudToDevice?.handlers(app.id, e.deviceId, app.writablePropertyAck) ?? {}),
          state: (state, err) => {
            if (this.entries.get(key(e.applicationId, e.deviceId)) !== e || (e.device !== device && e.device)) return;
            e.state = state;
            if (err) e.lastError = err.message;
            if (state === "failed" && err) this.hold(e, err);
          },
        },
        logger: log,
        tokenValiditySeconds: this.o.tokenValiditySeconds,
        tokenRenewalMarginSeconds: this.o.tokenRenewalMarginSeconds,
        ...(this.o.ca ? { ca: this.o.ca } : {}),
      });
      await device.open({ force, signal: this.ac.signal });
      e.device = device;
      e.state = "connected";
      e.failure = undefined;
      e.failedUntil = undefined;
      this.touch(e);
      log.info({ hub: device.registration?.assignedHub }, "device connected");
      return device;
    } catch (err) {
      await device?.close().catch(() => {});
      e.lastError = (err as Error).message;
      if (isRefusal(err)) this.hold(e, err as Error);
      else e.state = "disconnected";
      log.warn({ err: (err as Error).message }, "device did not connect");
      throw err;
    }
  }

  private hold(e: DeviceEntry, err: Error): void {
    e.state = "failed";
    e.failure = err;
    e.failedUntil = Date.now() + (this.o.failureHoldMs ?? 60_000);
    e.lastError = err.message;
  }

  /** Closes the least recently used idle device when IOTC_MAX_DEVICES are open. */
  private async makeRoom(except: DeviceEntry): Promise<void> {
    if (this.openCount < this.o.maxDevices) return;
    let victim: DeviceEntry | undefined;
    for (const e of this.entries.values()) {
      if (e === except || !e.device || e.opening || e.inFlight > 0) continue;
      if (!victim || (e.lastActivity?.getTime() ?? 0) < (victim.lastActivity?.getTime() ?? 0)) victim = e;
    }
    if (!victim) throw new TooManyDevicesError(this.o.maxDevices);
    this.o.logger.info({ application: victim.applicationId, device: victim.deviceId }, "device closed to make room (IOTC_MAX_DEVICES)");
    await this.close(victim, "disconnected");
  }

  /**
   * Notes activity. The idle timer is not reset here (that was two timer operations per message): when it fires it
   * looks at the last activity and waits out the rest of the idle time.
   */
  private touch(e: DeviceEntry): void {
    e.lastActivity = new Date();
    if (!e.idleTimer) this.armIdle(e, e.idleSeconds * 1000);
  }

  private armIdle(e: DeviceEntry, ms: number): void {
    e.idleTimer = setTimeout(() => {
      e.idleTimer = undefined;
      if (e.inFlight > 0) return this.touch(e);
      const left = (e.lastActivity?.getTime() ?? 0) + e.idleSeconds * 1000 - Date.now();
      if (left > 0) return this.armIdle(e, left);
      this.o.logger.info({ application: e.applicationId, device: e.deviceId, idleSeconds: e.idleSeconds }, "idle device disconnected");
      void this.close(e, "disconnected");
    }, ms);
    e.idleTimer.unref();
  }

  private async acquire(e: DeviceEntry): Promise<void> {
    while (e.inFlight >= this.o.maxInFlight) await new Promise<void>((r) => e.waiting.push(r));
    e.inFlight++;
  }

  private release(e: DeviceEntry): void {
    e.inFlight--;
    e.waiting.shift()?.();
  }

  /** Sends one telemetry message as the device; resolves once IoT Hub acknowledged it. */
  async sendTelemetry(applicationId: string, deviceId: string, payload: Record<string, unknown>, options: TelemetryOptions): Promise<void> {
    const k = key(applicationId, deviceId);
    const known = this.entries.get(k)?.device;
    // A connected device is used as it is (what open() would return, without its awaits): nearly every message's case.
    const device = known?.state === "connected" ? known : await this.open(applicationId, deviceId);
    const e = this.entries.get(k)!;
    if (e.inFlight < this.o.maxInFlight) e.inFlight++;
    else await this.acquire(e);
    try {
      await device.sendTelemetry(payload, options);
      e.messagesSent++;
    } catch (err) {
      e.lastError = (err as Error).message;
      if (isRefusal(err) && !(err instanceof IotcMessageTooLargeError)) {
        this.hold(e, err as Error);
        void this.close(e, "failed");
      }
      throw err;
    } finally {
      this.release(e);
      this.touch(e);
    }
  }

  async updateReportedProperties(applicationId: string, deviceId: string, patch: Record<string, unknown>, component?: string) {
    const device = await this.open(applicationId, deviceId);
    const e = this.entries.get(key(applicationId, deviceId))!;
    this.touch(e);
    return device.updateReportedProperties(patch, component);
  }

  /** The twin when the device is connected now; undefined otherwise (it is not connected to read it). */
  async twin(applicationId: string, deviceId: string): Promise<Twin | undefined> {
    const e = this.entries.get(key(applicationId, deviceId));
    if (!e?.device || e.state !== "connected") return undefined;
    return e.device.getTwin();
  }

  private async close(e: DeviceEntry, state: DeviceConnectionState): Promise<void> {
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.idleTimer = undefined;
    const device = e.device;
    e.device = undefined;
    if (e.state !== "failed" || state === "failed") e.state = state;
    await device?.close().catch((err) => this.o.logger.warn({ err, device: e.deviceId }, "closing a device failed"));
  }

  /** Closes and forgets the application's devices (its settings changed, or it is gone). */
  async closeApplication(applicationId: string): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [k, e] of this.entries) {
      if (e.applicationId !== applicationId) continue;
      this.entries.delete(k);
      closing.push(this.close(e, "disconnected"));
    }
    await Promise.all(closing);
  }

  /** Closes and forgets one device. */
  async forget(applicationId: string, deviceId: string): Promise<void> {
    const k = key(applicationId, deviceId);
    const e = this.entries.get(k);
    this.entries.delete(k);
    if (e) await this.close(e, "disconnected");
  }

  /** Connected and failed counts per state, for status. */
  counts(): Record<DeviceConnectionState, number> {
    const out = { disconnected: 0, connecting: 0, connected: 0, failed: 0 };
    for (const e of this.entries.values()) out[e.state]++;
    return out;
  }

  async stop(): Promise<void> {
    this.ac.abort(new Error("stopping"));
    await Promise.all([...this.entries.values()].map((e) => this.close(e, "disconnected")));
    this.entries.clear();
  }
}
