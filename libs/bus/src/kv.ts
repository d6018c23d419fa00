import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { KV, KvEntry } from "nats";
import type { Bus } from "./bus.js";
import {
  BusPermissionError,
  BusUnavailableError,
  isPermissionError,
  isTransientBusFailure,
  KeyChangedError,
  KeyExistsError,
} from "./errors.js";

/** How values of a bucket are turned into bytes and back. */
export interface KvCodec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

export function jsonCodec<T>(): KvCodec<T> {
  return {
    encode: (v) => new TextEncoder().encode(JSON.stringify(v)),
    decode: (b) => JSON.parse(new TextDecoder().decode(b)) as T,
  };
}

export interface KvBucketOptions {
  history?: number;
  /** Entries older than this vanish (0 = forever). */
  ttlMs?: number;
  /** How long a listing of keys waits for the next one before it gives up as unavailable (default LIST_IDLE_MS). */
  listIdleMs?: number;
}

/** See keys(). */
export const LIST_IDLE_MS = 5000;

/**
 * A typed JetStream KV bucket: where routes and per-service state live, so services stay
 * stateless processes that can run as several replicas. What fails for a reason another attempt may overcome (no
 * JetStream answering, a bucket stream without a leader, no answer in time) is thrown as BusUnavailableError, which
 * callers answer as `unavailable`; a write refused by the NATS permissions as BusPermissionError.
 */
export class KvBucket<T> {
  private kvPromise: Promise<KV> | undefined;

  constructor(
    private readonly bus: Bus,
    readonly name: string,
    private readonly codec: KvCodec<T>,
    private readonly options: KvBucketOptions = {},
  ) {}

  private async kv(): Promise<KV> {
    if (!this.bus.connected) throw new BusUnavailableError();
    try {
      return await this.open();
    } catch (err) {
      throw this.failure(err);
    }
  }

  private open(): Promise<KV> {
    if (!this.kvPromise) {
      const p = this.bus.js().views.kv(this.name, {
        history: this.options.history ?? 1,
        ...(this.options.ttlMs ? { ttl: this.options.ttlMs } : {}),
        replicas: this.bus.limits.replicas,
      });
      this.kvPromise = p;
      p.catch(() => {
        if (this.kvPromise === p) this.kvPromise = undefined;
      });
    }
    return this.kvPromise;
  }

  async get(key: string): Promise<T | undefined> {
    const e = await this.read(key);
    return live(e) ? this.codec.decode(e.value) : undefined;
  }

  /** The value with the revision it was written at (the bucket stream's sequence), for a later `update`. */
  async entry(key: string): Promise<{ value: T; revision: number } | undefined> {
    const e = await this.read(key);
    return live(e) ? { value: this.codec.decode(e.value), revision: e.revision } : undefined;
  }

  private async read(key: string): Promise<KvEntry | null> {
    const kv = await this.kv();
    try {
      return await kv.get(key);
    } catch (err) {
      throw this.failure(err, key);
    }
  }

  /**
   * Writes only if the key is still at `revision` (compare and set): KeyChangedError when anyone wrote or deleted it
   * since. Returns the new revision.
   */
  async update(key: string, value: T, revision: number): Promise<number> {
    try {
      return await (await this.kv()).update(key, this.codec.encode(value), revision);
    } catch (err) {
      if (/wrong last sequence/i.test((err as Error).message)) throw new KeyChangedError(key, revision, { cause: err });
      throw this.failure(err, key);
    }
  }

  /** Writes are refused with BusPermissionError when this service's NATS user does not own the bucket. */
  async put(key: string, value: T): Promise<void> {
    try {
      await (await this.kv()).put(key, this.codec.encode(value));
    } catch (err) {
      throw this.failure(err, key);
    }
  }

  /** Writes only if the key is absent; KeyExistsError otherwise. Returns the new revision. */
  async create(key: string, value: T): Promise<number> {
    try {
      return await (await this.kv()).create(key, this.codec.encode(value));
    } catch (err) {
      if (/wrong last sequence|key exists/i.test((err as Error).message)) throw new KeyExistsError(key);
      throw this.failure(err, key);
    }
  }

  /**
   * Returns false when there was nothing to delete. With `revision`, deletes only if the key is still at it (compare
   * and delete): KeyChangedError when anyone wrote or deleted it since.
   */
  async delete(key: string, revision?: number): Promise<boolean> {
    const current = await this.read(key);
    if (!live(current)) {
      if (revision !== undefined) throw new KeyChangedError(key, revision);
      return false;
    }
    if (revision !== undefined && current.revision !== revision) throw new KeyChangedError(key, revision);
    try {
      await (await this.kv()).delete(key, revision !== undefined ? { previousSeq: revision } : undefined);
    } catch (err) {
      if (revision !== undefined && /wrong last sequence/i.test((err as Error).message))
        throw new KeyChangedError(key, revision, { cause: err });
      throw this.failure(err, key);
    }
    return true;
  }

  /**
   * Removes every message of the key from the bucket's stream. Unlike delete, nothing is left behind (a delete keeps a
   * marker per key): for buckets of short-lived keys, which would otherwise grow by one marker per key written. A
   * watcher sees no event for it. Needs $JS.API.STREAM.PURGE.KV_<bucket>.
   */
  async purge(key: string): Promise<void> {
    await this.kv();
    try {
      await this.bus.jsm().streams.purge(`KV_${this.name}`, { filter: `$KV.${this.name}.${key}` });
    } catch (err) {
      throw this.failure(err, key);
    }
  }

  private failure(err: unknown, key?: string): unknown {
    if (err instanceof BusUnavailableError || err instanceof BusPermissionError) return err;
    const subject = `$KV.${this.name}.${key ?? ">"}`;
    if (isPermissionError(err)) return new BusPermissionError(subject, { cause: err });
    if (isTransientBusFailure(err)) return new BusUnavailableError(`${subject}: ${(err as Error).message}`, { cause: err });
    return err;
  }

  /**
   * The keys with a value (nats.js's kv.keys()). That listing ends only at a message the server says nothing follows;
   * when the bucket loses messages while it runs (a purge: the delivery ledgers purge their records while lookups list
   * them), that message never comes and the listing never ended: a route stalled with every send slot waiting on it.
   * A listing that gets no key for `listIdleMs` is given up here as BusUnavailableError (another attempt lists the
   * bucket as it is then). nats.js keeps that listing's subscription (it holds it out of reach): one per give-up.
   */
  async keys(): Promise<string[]> {
    const idleMs = this.options.listIdleMs ?? LIST_IDLE_MS;
    // A Set: nats.js lists keys with a consumer that also hands over a key written while the listing runs, so a key
    // being written (a status report every few seconds) could come twice, and GetStatus showed that instance twice.
    const out = new Set<string>();
    const kv = await this.kv();
    let gaveUp = false;
    try {
      const listing = await kv.keys();
      // A watchdog rather than a timer raced against each key: the listing is read as nats.js hands it over (reading
      // it more slowly lost its last keys).
      let lastKeyAt = Date.now();
      const watchdog = setInterval(
        () => {
          if (Date.now() - lastKeyAt < idleMs) return;
          gaveUp = true;
          listing.stop();
        },
        Math.max(10, Math.floor(idleMs / 4)),
      );
      try {
        for await (const k of listing) {
          out.add(k);
          lastKeyAt = Date.now();
        }
      } finally {
        clearInterval(watchdog);
      }
    } catch (err) {
      if (!gaveUp) throw this.failure(err);
    }
    if (gaveUp) throw new BusUnavailableError(`$KV.${this.name}.>: the listing of keys got nothing for ${idleMs} ms and was given up`);
    return [...out].sort();
  }

  async entries(): Promise<Array<[string, T]>> {
    const out: Array<[string, T]> = [];
    for (const key of await this.keys()) {
      const v = await this.get(key);
      if (v !== undefined) out.push([key, v]);
    }
    return out;
  }

  /** Current values, then every change (value undefined = deleted), until the signal aborts. */
  async *watch(signal: AbortSignal): AsyncGenerator<{ key: string; value: T | undefined }> {
    const kv = await this.kv();
    const iter = await kv.watch().catch((err) => {
      throw this.failure(err);
    });
    const stop = () => iter.stop();
    signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const e of iter) {
        yield { key: e.key, value: live(e) ? this.codec.decode(e.value) : undefined };
      }
    } finally {
      signal.removeEventListener("abort", stop);
      iter.stop();
    }
  }
}

function live(e: KvEntry | null): e is KvEntry {
  return e !== null && e.operation === "PUT";
}

/** Stores protobuf messages in their binary form, the same bytes on every service. */
export function protoCodec<Desc extends import("@bufbuild/protobuf").DescMessage>(
  schema: Desc,
): KvCodec<import("@bufbuild/protobuf").MessageShape<Desc>> {
  return {
    encode: (v) => toBinary(schema, v),
    decode: (b) => fromBinary(schema, b),
  };
}
