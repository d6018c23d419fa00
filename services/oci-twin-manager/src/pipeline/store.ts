import { type Bus, jsonCodec, KvBucket } from "@meridian/bus";
import { type SealedSecret, type SecretKeyring, SecretOpenError } from "@meridian/service-kit";
import { OciInvalidArgumentError } from "../platform/errors.js";
import type { DeviceCredentials } from "../platform/types.js";

/** The KV bucket of the twins Meridian manages (its NATS user may write it). */
export const TWINS_BUCKET = "oci_twins";

/** Purpose of a sealed device secret: it never opens as anything else. */
const DEVICE_SECRET_PURPOSE = "meridian.oci-device-secret";

export type TwinKindName = "unstructured" | "default-adapter" | "custom-adapter";

/** Which of a twin's data sets are published on the bus. */
export interface StoredSource {
  historized: boolean;
  raw: boolean;
  rejected: boolean;
  pollIntervalMs?: number;
  /** ISO time reading starts at the first time. */
  startTime?: string;
}

/** A twin as Meridian keeps it: the OCIDs it created (never a display name), and what it was created from. */
export interface StoredTwin {
  key: string;
  iotDomainId: string;
  kind: TwinKindName;
  instanceId: string;
  adapterId?: string;
  modelId?: string;
  externalKey?: string;
  /** Hash of the TwinSpec's description (not source/secret): a repeat with another one is refused. */
  specHash: string;
  source?: StoredSource;
  deviceSecret?: SealedSecret;
  createTime: string;
  /** The model was there before (equal spec, not Meridian's): never deleted with the twin. */
  modelReused?: boolean;
}

/** No OCI_CREDENTIALS_KEY, or a sealed secret that does not open: the twin cannot be posted to as its device. */
export class DeviceSecretError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DeviceSecretError";
  }
}

/**
 * KV bucket oci_twins, by twin key. A device secret is sealed with OCI_CREDENTIALS_KEY and bound to the twin's key,
 * domain, instance and external key: a record re-pointed at another instance or device no longer opens, so the secret
 * is never sent as another device.
 */
export class TwinStore {
  readonly bucket: KvBucket<StoredTwin>;

  constructor(
    bus: Bus,
    readonly keyring: SecretKeyring | undefined,
  ) {
    this.bucket = new KvBucket(bus, TWINS_BUCKET, jsonCodec<StoredTwin>());
  }

  get(key: string): Promise<StoredTwin | undefined> {
    return this.bucket.get(key);
  }

  async list(): Promise<StoredTwin[]> {
    return (await this.bucket.entries()).map(([, t]) => t);
  }

  put(t: StoredTwin): Promise<void> {
    return this.bucket.put(t.key, t);
  }

  async delete(key: string): Promise<void> {
    await this.bucket.delete(key);
  }

  async byInstanceId(id: string): Promise<StoredTwin | undefined> {
    return (await this.list()).find((t) => t.instanceId === id);
  }

  /** Changes as they happen (key, the twin or undefined when deleted), after the current values; like the bus KV watch. */
  async *watch(signal: AbortSignal): AsyncIterable<{ key: string; twin?: StoredTwin }> {
    for await (const { key, value } of this.bucket.watch(signal)) yield value ? { key, twin: value } : { key };
  }

  private static binding(t: StoredTwin): string[] {
    return [t.key, t.iotDomainId, t.instanceId, t.externalKey ?? ""];
  }

  /** The secret sealed for this twin; DeviceSecretError without OCI_CREDENTIALS_KEY. */
  seal(t: StoredTwin, secret: string): SealedSecret {
    if (!this.keyring)
      throw new DeviceSecretError(`twin ${t.key}: a device secret needs OCI_CREDENTIALS_KEY, which is not set (nothing is kept unsealed)`);
    if (!t.externalKey) throw new OciInvalidArgumentError("device_secret", `twin ${t.key} has no external key to post as`);
    return this.keyring.seal(DEVICE_SECRET_PURPOSE, TwinStore.binding(t), secret);
  }

  /** The twin's device identity and secret in the clear; undefined when it has none; DeviceSecretError when it does not open. */
  deviceCredentials(t: StoredTwin): DeviceCredentials | undefined {
    if (!t.deviceSecret || !t.externalKey) return undefined;
    if (!this.keyring) throw new DeviceSecretError(`twin ${t.key}: its device secret is sealed, and OCI_CREDENTIALS_KEY is not set`);
    try {
      return { externalKey: t.externalKey, secret: this.keyring.open(DEVICE_SECRET_PURPOSE, TwinStore.binding(t), t.deviceSecret) };
    } catch (err) {
      if (!(err instanceof SecretOpenError)) throw err;
      throw new DeviceSecretError(
        err.reason === "unknown_key"
          ? `twin ${t.key}: its device secret was sealed with key ${err.kid}, neither OCI_CREDENTIALS_KEY nor a previous key`
          : `twin ${t.key}: its device secret does not open for this record (it was changed after the secret was given; set it again)`,
        { cause: err },
      );
    }
  }
}
