import { type Bus, decodeToken, encodeToken, jsonCodec, KeyExistsError, KvBucket } from "@meridian/bus";
import { type SealedSecret, type SecretKeyring, SecretOpenError } from "@meridian/service-kit";
import type { DeviceCredential, DeviceRegistration, RegistrationStore } from "../platform/types.js";
import { CredentialsError, DeviceIdCollisionError } from "./errors.js";

/** The KV buckets iotc-bridge owns (its NATS user may write these and no other). */
export const APPLICATIONS_BUCKET = "iotc_applications";
export const DEVICES_BUCKET = "iotc_devices";

/** Purposes of the sealed secrets: a secret sealed for one never opens as another. */
const APPLICATION_PURPOSE = "meridian.iotc-application";
const DEVICE_CREDENTIAL_PURPOSE = "meridian.iotc-device-credential";
const REGISTRATION_PURPOSE = "meridian.iotc-registration";

export const DEFAULT_PROVISIONING_HOST = "global.azure-devices-provisioning.net";

/** What IoT Central's writable-property changes are acknowledged with once the bus stored them. */
export type WritablePropertyAckMode = "completed" | "accepted";

/** An application as the API and the file give it, without its credential. */
export interface ApplicationSettings {
  id: string;
  displayName: string;
  idScope: string;
  provisioningHost: string;
  gatewayHost?: string | undefined;
  modelId?: string | undefined;
  deviceIdTemplate?: string | undefined;
  writablePropertyAck: WritablePropertyAckMode;
  idleDisconnectSeconds?: number | undefined;
}

/** The enrollment group's credential in the clear: only in memory, on its way to be sealed or used. */
export type GroupCredential =
  | { kind: "group_key"; groupKey: string }
  | { kind: "x509"; certificateChainPem: string; privateKeyPem: string };

/** A device's own credential in the clear (an individual enrollment, or the leaf issued for an X.509 group). */
export type OwnCredential = Exclude<DeviceCredential, { kind: "group_key" }>;

type SealedCredential =
  | { kind: "group_key"; sealed: SealedSecret }
  | { kind: "device_key"; sealed: SealedSecret }
  | { kind: "x509"; certificateChainPem: string; sealedKey: SealedSecret };

export interface ApplicationRecord extends ApplicationSettings {
  credential?: SealedCredential | undefined;
  origin: "api" | "file";
  createTime: string;
  updateTime?: string | undefined;
}

interface StoredRegistration {
  registrationId: string;
  deviceId: string;
  assignedHub: string;
  modelId?: string | undefined;
  registeredAt: string;
  credential: { kind: "sas"; sealed: SealedSecret } | { kind: "x509"; certificateChainPem: string; sealedKey: SealedSecret };
}

/** One IoT Central device the bridge acts as: its own credential, its DPS registration, the source it stands for. */
export interface DeviceRecord {
  applicationId: string;
  deviceId: string;
  /** "platform/connection/device" when a route made it: the claim that detects id collisions. */
  source?: string | undefined;
  modelId?: string | undefined;
  credential?: SealedCredential | undefined;
  registration?: StoredRegistration | undefined;
  createTime: string;
}

/**
 * The bridge's KV buckets. Secrets are sealed with IOTC_CREDENTIALS_KEY and bound to what decides where they go:
 *  - an application's group secret: application id, ID scope, provisioning host, gateway host, credential kind;
 *  - a device's own credential: application id, device id, ID scope, provisioning host, kind;
 *  - a registration's hub credential: application id, device id, assigned hub, gateway host, ID scope.
 * A record re-pointed by whoever can write the bucket (another scope, DPS host, gateway or hub) no longer opens, so
 * no key is ever sent to the new place. A registration that does not open is as good as none: the device registers
 * again with the application's (opened) group credential.
 */
export class IotcStore {
  readonly applications: KvBucket<ApplicationRecord>;
  readonly devices: KvBucket<DeviceRecord>;
  /**
   * Claims this instance made or read, by device key: every route message claims its device, and reading the record
   * each time was a KV round trip per message. Only a repeat of the same source is answered from here; what this
   * store writes or deletes drops the entry, and a change made by another process is seen within CLAIM_CACHE_MS.
   */
  private readonly claimed = new Map<string, { source: string; at: number }>();
  static readonly CLAIM_CACHE_MS = 5000;
  /** Bounds the claim cache; past it the cache starts over (a re-read per device, nothing else). */
  static readonly MAX_CLAIMS_CACHED = 100_000;

  constructor(
    bus: Bus,
    readonly keyring: SecretKeyring | undefined,
  ) {
    this.applications = new KvBucket(bus, APPLICATIONS_BUCKET, jsonCodec<ApplicationRecord>());
    this.devices = new KvBucket(bus, DEVICES_BUCKET, jsonCodec<DeviceRecord>());
  }

  private ring(what: string): SecretKeyring {
    if (!this.keyring)
      throw new CredentialsError(`${what} needs IOTC_CREDENTIALS_KEY, which is not set: iotc-bridge keeps no secret unsealed`);
    return this.keyring;
  }

  private open(purpose: string, binding: (string | number | boolean)[], sealed: SealedSecret, what: string): string {
    try {
      return this.ring(what).open(purpose, binding, sealed);
    } catch (err) {
      if (err instanceof SecretOpenError)
        throw new CredentialsError(
          err.reason === "unknown_key"
            ? `${what} was sealed with key ${err.kid}, which is neither IOTC_CREDENTIALS_KEY nor one of IOTC_CREDENTIALS_PREVIOUS_KEYS`
            : `${what} does not open for its record: the record was changed after the secret was given (create it again through the API)`,
          { cause: err },
        );
      throw err;
    }
  }

  // ---- applications

  private static applicationBinding(a: ApplicationSettings, kind: string): (string | number | boolean)[] {
    return [a.id, a.idScope, a.provisioningHost, a.gatewayHost ?? "", kind];
  }

  /** The record to store for these settings, with the credential sealed (or, when none is given, none). */
  sealApplication(
    settings: ApplicationSettings,
    credential: GroupCredential | undefined,
  ): Omit<ApplicationRecord, "origin" | "createTime"> {
    const record: Omit<ApplicationRecord, "origin" | "createTime"> = { ...settings };
    if (!credential) return record;
    const binding = IotcStore.applicationBinding(settings, credential.kind);
    const ring = this.ring(`application ${settings.id}'s enrollment group credential`);
    record.credential =
      credential.kind === "group_key"
        ? { kind: "group_key", sealed: ring.seal(APPLICATION_PURPOSE, binding, credential.groupKey) }
        : {
            kind: "x509",
            certificateChainPem: credential.certificateChainPem,
            sealedKey: ring.seal(APPLICATION_PURPOSE, [...binding, credential.certificateChainPem], credential.privateKeyPem),
          };
    return record;
  }

  /** The application's group credential in the clear; CredentialsError when it has none or it does not open. */
  openApplication(record: ApplicationRecord): GroupCredential {
    const c = record.credential;
    const what = `application ${record.id}'s enrollment group credential`;
    if (!c) throw new CredentialsError(`application ${record.id} has no enrollment group credential: give its devices their own`);
    const binding = IotcStore.applicationBinding(record, c.kind);
    if (c.kind === "group_key") return { kind: "group_key", groupKey: this.open(APPLICATION_PURPOSE, binding, c.sealed, what) };
    if (c.kind === "x509")
      return {
        kind: "x509",
        certificateChainPem: c.certificateChainPem,
        privateKeyPem: this.open(APPLICATION_PURPOSE, [...binding, c.certificateChainPem], c.sealedKey, what),
      };
    throw new CredentialsError(`${what} has an unknown kind`);
  }

  /** True when the key that sealed the record's credential is a previous key (it should be sealed again). */
  isStale(record: ApplicationRecord): boolean {
    const c = record.credential;
    if (!c || !this.keyring) return false;
    return this.keyring.isStale(c.kind === "x509" ? c.sealedKey : c.sealed);
  }

  // ---- devices

  static deviceKey(applicationId: string, deviceId: string): string {
    // KV keys allow [-/_=.A-Za-z0-9]: the subject token's %XX escapes become =XX, still reversible.
    return `${applicationId}.${encodeToken(deviceId).replaceAll("%", "=")}`;
  }

  static deviceIdOfKey(key: string): { applicationId: string; deviceId: string } {
    const dot = key.indexOf(".");
    return { applicationId: key.slice(0, dot), deviceId: decodeToken(key.slice(dot + 1).replaceAll("=", "%")) };
  }

  getDevice(applicationId: string, deviceId: string): Promise<DeviceRecord | undefined> {
    return this.devices.get(IotcStore.deviceKey(applicationId, deviceId));
  }

  putDevice(record: DeviceRecord): Promise<void> {
    const key = IotcStore.deviceKey(record.applicationId, record.deviceId);
    if (this.claimed.get(key)?.source !== record.source) this.claimed.delete(key);
    return this.devices.put(key, record);
  }

  deleteDevice(applicationId: string, deviceId: string): Promise<boolean> {
    const key = IotcStore.deviceKey(applicationId, deviceId);
    this.claimed.delete(key);
    return this.devices.delete(key);
  }

  /** The application's device records, by device id. */
  async listDevices(applicationId: string): Promise<DeviceRecord[]> {
    const prefix = `${applicationId}.`;
    const out: DeviceRecord[] = [];
    for (const key of (await this.devices.keys()).filter((k) => k.startsWith(prefix)).sort()) {
      const r = await this.devices.get(key);
      if (r) out.push(r);
    }
    return out.sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  }

  async deleteDevices(applicationId: string): Promise<number> {
    let n = 0;
    for (const key of this.claimed.keys()) if (key.startsWith(`${applicationId}.`)) this.claimed.delete(key);
    for (const key of await this.devices.keys()) if (key.startsWith(`${applicationId}.`) && (await this.devices.delete(key))) n++;
    return n;
  }

  /**
   * Makes `source` the holder of the device's record (made when absent). The first source to claim an id holds it: another
   * source whose name normalises to the same id is refused (DeviceIdCollisionError) rather than mixed into its
   * telemetry. A device made through the API (no source) is taken by the first route that names it.
   */
  async claim(applicationId: string, deviceId: string, source: string): Promise<void> {
    if (this.holds(applicationId, deviceId, source)) return;
    const key = IotcStore.deviceKey(applicationId, deviceId);
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await this.getDevice(applicationId, deviceId);
      if (existing) {
        if (existing.source === source) return this.remember(key, source);
        if (existing.source) throw new DeviceIdCollisionError(deviceId, existing.source, source);
        await this.putDevice({ ...existing, source });
        return this.remember(key, source);
      }
      const record: DeviceRecord = { applicationId, deviceId, source, createTime: new Date().toISOString() };
      try {
        await this.devices.create(key, record);
        return this.remember(key, source);
      } catch (err) {
        // Another instance (or delivery) made it first: read what it made.
        if (!(err instanceof KeyExistsError)) throw err;
      }
    }
    throw new DeviceIdCollisionError(deviceId, "(being claimed)", source);
  }

  /** Whether `source` is known (from the claim cache) to hold the device: claim() would answer at once. */
  holds(applicationId: string, deviceId: string, source: string): boolean {
    const hit = this.claimed.get(IotcStore.deviceKey(applicationId, deviceId));
    return hit !== undefined && hit.source === source && Date.now() - hit.at < IotcStore.CLAIM_CACHE_MS;
  }

  private remember(key: string, source: string): void {
    if (this.claimed.size >= IotcStore.MAX_CLAIMS_CACHED) this.claimed.clear();
    this.claimed.set(key, { source, at: Date.now() });
  }

  private static deviceBinding(app: ApplicationSettings, deviceId: string, kind: string): (string | number | boolean)[] {
    return [app.id, deviceId, app.idScope, app.provisioningHost, kind];
  }

  sealOwnCredential(app: ApplicationSettings, deviceId: string, credential: OwnCredential): SealedCredential {
    const ring = this.ring(`device ${deviceId}'s credential`);
    const binding = IotcStore.deviceBinding(app, deviceId, credential.kind);
    return credential.kind === "device_key"
      ? { kind: "device_key", sealed: ring.seal(DEVICE_CREDENTIAL_PURPOSE, binding, credential.deviceKey) }
      : {
          kind: "x509",
          certificateChainPem: credential.certificateChainPem,
          sealedKey: ring.seal(DEVICE_CREDENTIAL_PURPOSE, [...binding, credential.certificateChainPem], credential.privateKeyPem),
        };
  }

  openOwnCredential(app: ApplicationSettings, record: DeviceRecord): OwnCredential | undefined {
    const c = record.credential;
    if (!c) return undefined;
    const what = `device ${record.deviceId}'s credential`;
    const binding = IotcStore.deviceBinding(app, record.deviceId, c.kind);
    if (c.kind === "device_key") return { kind: "device_key", deviceKey: this.open(DEVICE_CREDENTIAL_PURPOSE, binding, c.sealed, what) };
    if (c.kind === "x509")
      return {
        kind: "x509",
        certificateChainPem: c.certificateChainPem,
        privateKeyPem: this.open(DEVICE_CREDENTIAL_PURPOSE, [...binding, c.certificateChainPem], c.sealedKey, what),
      };
    throw new CredentialsError(`${what} has an unexpected kind`);
  }

  private static registrationBinding(app: ApplicationSettings, deviceId: string, hub: string): (string | number | boolean)[] {
    return [app.id, deviceId, hub, app.gatewayHost ?? "", app.idScope];
  }

  /**
   * The platform's RegistrationStore for one application: DPS results kept sealed in the device's record, so that a
   * restart connects to the assigned hub without registering again.
   */
  registrations(app: ApplicationSettings, onUnusable?: (deviceId: string, err: Error) => void): RegistrationStore {
    return {
      get: async (registrationId) => {
        const r = (await this.getDevice(app.id, registrationId))?.registration;
        if (!r) return undefined;
        const binding = IotcStore.registrationBinding(app, registrationId, r.assignedHub);
        const what = `device ${registrationId}'s cached registration`;
        try {
          const credential: DeviceRegistration["credential"] =
            r.credential.kind === "sas"
              ? { kind: "sas", deviceKey: this.open(REGISTRATION_PURPOSE, binding, r.credential.sealed, what) }
              : {
                  kind: "x509",
                  certificateChainPem: r.credential.certificateChainPem,
                  privateKeyPem: this.open(
                    REGISTRATION_PURPOSE,
                    [...binding, r.credential.certificateChainPem],
                    r.credential.sealedKey,
                    what,
                  ),
                };
          return {
            registrationId: r.registrationId,
            deviceId: r.deviceId,
            assignedHub: r.assignedHub,
            credential,
            ...(r.modelId ? { modelId: r.modelId } : {}),
            registeredAt: r.registeredAt,
          };
        } catch (err) {
          if (!(err instanceof CredentialsError)) throw err;
          // Re-pointed or sealed with a key gone: registering again is the safe way back.
          onUnusable?.(registrationId, err);
          return undefined;
        }
      },
      put: async (reg) => {
        const ring = this.ring(`device ${reg.registrationId}'s registration`);
        const binding = IotcStore.registrationBinding(app, reg.registrationId, reg.assignedHub);
        const stored: StoredRegistration = {
          registrationId: reg.registrationId,
          deviceId: reg.deviceId,
          assignedHub: reg.assignedHub,
          ...(reg.modelId ? { modelId: reg.modelId } : {}),
          registeredAt: reg.registeredAt,
          credential:
            reg.credential.kind === "sas"
              ? { kind: "sas", sealed: ring.seal(REGISTRATION_PURPOSE, binding, reg.credential.deviceKey) }
              : {
                  kind: "x509",
                  certificateChainPem: reg.credential.certificateChainPem,
                  sealedKey: ring.seal(
                    REGISTRATION_PURPOSE,
                    [...binding, reg.credential.certificateChainPem],
                    reg.credential.privateKeyPem,
                  ),
                },
        };
        const existing = await this.getDevice(app.id, reg.registrationId);
        await this.putDevice({
          ...(existing ?? { applicationId: app.id, deviceId: reg.registrationId, createTime: new Date().toISOString() }),
          registration: stored,
        });
      },
      delete: async (registrationId) => {
        const existing = await this.getDevice(app.id, registrationId);
        if (existing?.registration) {
          const { registration: _, ...rest } = existing;
          await this.putDevice(rest);
        }
      },
    };
  }
}
