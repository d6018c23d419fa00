import type { Logger } from "pino";
import { ApplicationNotFoundError, TooManyApplicationsError } from "./errors.js";
import type { ApplicationRecord, ApplicationSettings, GroupCredential, IotcStore } from "./store.js";

export interface ApplicationsOptions {
  store: IotcStore;
  logger: Logger;
  maxApplications: number;
  /** Called when an application's settings or credential changed or it was deleted: its devices must close. */
  changed(applicationId: string): Promise<void>;
}

/**
 * The applications: records in the iotc_applications bucket, read through a cache (every route message needs its
 * application). Changes made here close the application's devices, which reopen with the new settings on demand.
 * Changes another instance makes are seen when this one next reads the record (the cache lives CACHE_MS).
 */
export class Applications {
  private readonly cache = new Map<string, { record: ApplicationRecord; at: number }>();
  static readonly CACHE_MS = 5000;

  constructor(private readonly o: ApplicationsOptions) {}

  get store(): IotcStore {
    return this.o.store;
  }

  async find(id: string): Promise<ApplicationRecord | undefined> {
    const hit = this.cache.get(id);
    if (hit && Date.now() - hit.at < Applications.CACHE_MS) return hit.record;
    const record = await this.o.store.applications.get(id);
    if (record) {
      if (hit && fingerprint(hit.record) !== fingerprint(record)) await this.o.changed(id);
      this.cache.set(id, { record, at: Date.now() });
    } else {
      this.cache.delete(id);
      if (hit) await this.o.changed(id);
    }
    return record;
  }

  /** The application when the cache holds it and it is fresh: no await on the path every route message takes. */
  cached(id: string): ApplicationRecord | undefined {
    const hit = this.cache.get(id);
    return hit && Date.now() - hit.at < Applications.CACHE_MS ? hit.record : undefined;
  }

  async get(id: string): Promise<ApplicationRecord> {
    const record = await this.find(id);
    if (!record) throw new ApplicationNotFoundError(id);
    return record;
  }

  async has(id: string): Promise<boolean> {
    return (await this.find(id)) !== undefined;
  }

  async list(): Promise<ApplicationRecord[]> {
    return (await this.o.store.applications.entries()).map(([, r]) => r);
  }

  /**
   * Creates or replaces an application. A replacement without a credential keeps the one held when the settings it is
   * bound to did not change; otherwise the old credential is dropped (it was given for another scope or host).
   * Returns whether anything changed.
   */
  async put(
    settings: ApplicationSettings,
    credential: GroupCredential | undefined,
    origin: ApplicationRecord["origin"],
  ): Promise<{ record: ApplicationRecord; changed: boolean }> {
    const existing = await this.o.store.applications.get(settings.id);
    if (!existing && (await this.o.store.applications.keys()).length >= this.o.maxApplications)
      throw new TooManyApplicationsError(this.o.maxApplications);
    let sealed = this.o.store.sealApplication(settings, credential);
    if (!credential && existing?.credential) {
      // Kept only if it still opens for the new settings (same scope, hosts and kind).
      try {
        this.o.store.openApplication({ ...existing, ...settings });
        sealed = { ...sealed, credential: existing.credential };
      } catch {
        this.o.logger.warn({ application: settings.id }, "the application's credential was given for other settings; dropped");
      }
    }
    if (existing && credential && sameCredential(this.o.store, existing, credential) && sameSettings(existing, settings)) {
      this.cache.set(settings.id, { record: existing, at: Date.now() });
      return { record: existing, changed: false };
    }
    const now = new Date().toISOString();
    const record: ApplicationRecord = {
      ...sealed,
      origin,
      createTime: existing?.createTime ?? now,
      ...(existing ? { updateTime: now } : {}),
    };
    await this.o.store.applications.put(settings.id, record);
    this.cache.set(settings.id, { record, at: Date.now() });
    if (existing) await this.o.changed(settings.id);
    return { record, changed: true };
  }

  /** Deletes the application and its cached device registrations; its devices close. */
  async delete(id: string): Promise<void> {
    if (!(await this.o.store.applications.delete(id))) throw new ApplicationNotFoundError(id);
    this.cache.delete(id);
    await this.o.changed(id);
    await this.o.store.deleteDevices(id);
  }
}

const SETTINGS_FIELDS = [
  "displayName",
  "idScope",
  "provisioningHost",
  "gatewayHost",
  "modelId",
  "deviceIdTemplate",
  "writablePropertyAck",
  "idleDisconnectSeconds",
] as const;

function sameSettings(a: ApplicationSettings, b: ApplicationSettings): boolean {
  return SETTINGS_FIELDS.every((f) => (a[f] ?? "") === (b[f] ?? ""));
}

/** What the devices depend on; a change in it closes them. */
function fingerprint(r: ApplicationRecord): string {
  return JSON.stringify([...SETTINGS_FIELDS.map((f) => r[f] ?? ""), r.credential ?? null]);
}

function sameCredential(store: IotcStore, existing: ApplicationRecord, given: GroupCredential): boolean {
  if (store.isStale(existing)) return false;
  try {
    return JSON.stringify(store.openApplication(existing)) === JSON.stringify(given);
  } catch {
    return false;
  }
}
