import { type Bus, decodeToken, encodeToken, jsonCodec, KvBucket, protoCodec } from "@meridian/bus";
import { type ReaderSpec, ReaderSpecSchema } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";

/** The KV buckets omnia-reader owns (its NATS user may write these and no other). */
export const READERS_BUCKET = "omnia_readers";
export const CURSORS_BUCKET = "omnia_cursors";

/** One series' position: everything before `cursorNs` is on the bus. */
export interface CursorRecord {
  /** Nanoseconds since the epoch, as a decimal string (JSON has no int64). */
  cursorNs: string;
  name: string;
  facility: string;
  updated: string;
}

export class ReaderStore {
  readonly readers: KvBucket<ReaderSpec>;
  private readonly cursors: KvBucket<CursorRecord>;

  constructor(bus: Bus) {
    this.readers = new KvBucket(bus, READERS_BUCKET, protoCodec(ReaderSpecSchema));
    this.cursors = new KvBucket(bus, CURSORS_BUCKET, jsonCodec<CursorRecord>());
  }

  private static key(readerId: string, seriesId: string): string {
    // KV keys allow [-/_=.A-Za-z0-9]: the subject token's %XX escapes become =XX, still reversible.
    return `${readerId}.${encodeToken(seriesId).replaceAll("%", "=")}`;
  }

  getCursor(readerId: string, seriesId: string): Promise<CursorRecord | undefined> {
    return this.cursors.get(ReaderStore.key(readerId, seriesId));
  }

  putCursor(readerId: string, seriesId: string, record: CursorRecord): Promise<void> {
    return this.cursors.put(ReaderStore.key(readerId, seriesId), record);
  }

  /** The reader's cursors by series id. */
  async cursorsOf(readerId: string): Promise<Map<string, CursorRecord>> {
    const out = new Map<string, CursorRecord>();
    const prefix = `${readerId}.`;
    for (const key of await this.cursors.keys()) {
      if (!key.startsWith(prefix)) continue;
      const v = await this.cursors.get(key);
      if (v) out.set(decodeToken(key.slice(prefix.length).replaceAll("=", "%")), v);
    }
    return out;
  }

  async deleteCursors(readerId: string): Promise<void> {
    for (const key of await this.cursors.keys()) if (key.startsWith(`${readerId}.`)) await this.cursors.delete(key);
  }
}
