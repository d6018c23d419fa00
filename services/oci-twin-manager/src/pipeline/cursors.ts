import { type Bus, jsonCodec, KvBucket } from "@meridian/bus";
import type { SourceDataSet } from "./mapping.js";

/** The KV bucket of the source pipelines' positions (oci-twin-manager's NATS user may write it). */
export const CURSORS_BUCKET = "oci_cursors";

/**
 * Where a twin's data set is read from. Written only after the bus stored the rows up to `lastRowId`, so a crash in
 * between reads them again (and the bus, seeing the same message ids, stores them once).
 */
export interface CursorRecord {
  /** The instance the position belongs to: a twin key given to another instance starts afresh. */
  instanceId: string;
  /**
   * The last row on the bus. A source without a start_time starts with the highest row id there was when it was
   * enabled (0 for none); one with a start_time has none until its first row is on the bus, and reads by `startTime`.
   */
  lastRowId?: number;
  /** The source's start_time, where reading starts by time; without one, when the source was enabled (a record only). ISO. */
  startTime: string;
  updated: string;
}

/** KV bucket oci_cursors, one key per (twin key, data set): `<twin key>.<data set>`. */
export class CursorStore {
  private readonly bucket: KvBucket<CursorRecord>;

  constructor(bus: Bus) {
    this.bucket = new KvBucket(bus, CURSORS_BUCKET, jsonCodec<CursorRecord>());
  }

  /** Twin keys are [a-z0-9-] and data set names letters: the key needs no escaping. */
  static key(twinKey: string, dataSet: SourceDataSet): string {
    return `${twinKey}.${dataSet}`;
  }

  /** The twin's cursor for the data set; undefined when there is none or it belongs to another instance. */
  async get(twinKey: string, dataSet: SourceDataSet, instanceId: string): Promise<CursorRecord | undefined> {
    const c = await this.bucket.get(CursorStore.key(twinKey, dataSet));
    return c && c.instanceId === instanceId ? c : undefined;
  }

  put(twinKey: string, dataSet: SourceDataSet, record: CursorRecord): Promise<void> {
    return this.bucket.put(CursorStore.key(twinKey, dataSet), record);
  }

  /** The twin's cursors by data set (for status and tests). */
  async of(twinKey: string): Promise<Map<SourceDataSet, CursorRecord>> {
    const out = new Map<SourceDataSet, CursorRecord>();
    for (const key of await this.bucket.keys()) {
      if (!key.startsWith(`${twinKey}.`)) continue;
      const v = await this.bucket.get(key);
      if (v) out.set(key.slice(twinKey.length + 1) as SourceDataSet, v);
    }
    return out;
  }

  /** A deleted twin's positions go with it. */
  async deleteTwin(twinKey: string): Promise<void> {
    for (const key of await this.bucket.keys()) if (key.startsWith(`${twinKey}.`)) await this.bucket.delete(key);
  }
}
