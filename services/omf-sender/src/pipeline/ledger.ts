import { createHash, randomBytes } from "node:crypto";
import { type Bus, jsonCodec, KvBucket } from "@meridian/bus";
import { STATE_BUCKET } from "./store.js";

/**
 * What of one bus message an endpoint has accepted: everything (`"all"`), or per container id how many of the
 * message's values for it (its first n, in event order: requests go out in order and stop at the first failure).
 */
export type Written = "all" | Record<string, number>;

export interface LedgerRecord {
  /** Stream sequence → what of that message was written. */
  m: Record<string, Written>;
  /** Stream sequences of messages about to be sent (written before the send): a crash may have left them half done. */
  s?: number[];
}

/**
 * The ledger's record of one send: made by `intend` before it, completed by `record` after (the same key, so a send
 * costs one KV key, not two).
 */
export interface LedgerNote {
  readonly key: string;
  readonly record: LedgerRecord;
}

/** What the ledger knows of one message. */
export interface LedgerEntry {
  written?: Written;
  /** A send of it began (and may have ended anywhere, e.g. in a crash). */
  sending: boolean;
}

/** Keys live in the state bucket (omf-sender's NATS user owns it), apart from the endpoints' `<endpoint>.` keys. */
const PREFIX = "_delivered";
/** Purge requests in flight at once while pruning. */
const PURGE_CONCURRENCY = 32;

/**
 * The delivery ledger of one route: which bus messages (by stream sequence) an endpoint accepted, written to KV
 * after the endpoint's 2xx and before the ack. A message delivered again (deliveryCount > 1: this or another replica
 * may have written it, then stopped, crashed or failed before the ack) is looked up here, and what was written is
 * not sent again. That is what makes delivery exactly-once whatever the receiver does with a second value at the
 * same timestamp (PI's OmfCreateMode Insert keeps both), rather than relying on the receiver overwriting it.
 *
 * A first delivery is never looked up: nothing can have written it. Records are dropped once the route's consumer
 * has acknowledged past every message they name (its ack floor), checked at most every `pruneMs`.
 *
 * Before a send, the batch's messages are noted as being sent (`intend`). A message delivered again with that note
 * and no complete written record may have been written in part by a send that died with its instance (a kill -9
 * during the endpoint's answer): the pipeline then asks the endpoint what it holds at those indexes (reconcile.ts)
 * rather than sending blind.
 */
export class DeliveryLedger {
  private readonly bucket: KvBucket<LedgerRecord>;
  private readonly prefix: string;
  /** Records known (written here or read from the bucket): key → its record. */
  private readonly records = new Map<string, LedgerRecord>();
  /** Stream sequence → keys of the records naming it. */
  private readonly bySeq = new Map<number, Set<string>>();
  /** The ack floor seen at the previous prune: records are dropped against it, not the newest (see prune). */
  private floorSeen: number | undefined;
  /** When the last completed listing of the bucket started. */
  private loadedFrom = -1;
  /** The listing in progress and when it started. */
  private loading: { startedAt: number; done: Promise<void> } | undefined;
  private prunedAt = Date.now();

  constructor(
    bus: Bus,
    routeId: string,
    private readonly pruneMs = 30_000,
  ) {
    this.bucket = new KvBucket(bus, STATE_BUCKET, jsonCodec<LedgerRecord>());
    this.prefix = `${PREFIX}.${createHash("sha256").update(routeId).digest("hex").slice(0, 16)}.`;
  }

  /** Adds a record to the known ones and to the index by stream sequence. */
  private remember(key: string, r: LedgerRecord): void {
    this.records.set(key, r);
    for (const seq of [...Object.keys(r.m).map(Number), ...(r.s ?? [])]) {
      const keys = this.bySeq.get(seq);
      if (keys) keys.add(key);
      else this.bySeq.set(seq, new Set([key]));
    }
  }

  private forget(key: string): void {
    const r = this.records.get(key);
    if (!r) return;
    this.records.delete(key);
    for (const seq of [...Object.keys(r.m).map(Number), ...(r.s ?? [])]) {
      const keys = this.bySeq.get(seq);
      keys?.delete(key);
      if (keys?.size === 0) this.bySeq.delete(seq);
    }
  }

  private find(seq: number): LedgerEntry | undefined {
    const keys = this.bySeq.get(seq);
    if (!keys) return undefined;
    let out: Written | undefined;
    let sending = false;
    const k = String(seq);
    for (const key of keys) {
      const r = this.records.get(key);
      if (!r) continue;
      if (r.s?.includes(seq)) sending = true;
      const w = r.m[k];
      if (w === undefined) continue;
      if (w === "all") return { written: "all", sending: true };
      // Several records may name a message (written in part, then more): counts only grow, keep the largest.
      const merged: Record<string, number> = out === undefined || out === "all" ? {} : out;
      for (const [c, n] of Object.entries(w)) merged[c] = Math.max(merged[c] ?? 0, n);
      out = merged;
    }
    if (out === undefined && !sending) return undefined;
    return { ...(out !== undefined ? { written: out } : {}), sending: sending || out !== undefined };
  }

  /**
   * What this instance knows of a message without reading the bucket: a first delivery is checked here. After a
   * failover of the consumer's leader, a message this instance wrote and acked can come again as a *first* delivery
   * (the delivered state had not reached the new leader), so a delivery count of 1 does not prove nothing wrote it.
   */
  known(seq: number): LedgerEntry | undefined {
    return this.find(seq);
  }

  /**
   * Makes sure the records hold everything in the bucket as of `since` or later: a listing that started then or
   * after (done or in progress) serves; otherwise one is started (one at a time, shared by concurrent lookups).
   */
  private async loadSince(since: number): Promise<void> {
    for (;;) {
      if (this.loadedFrom >= since) return;
      const current = this.loading;
      if (current) {
        await current.done.catch(() => {});
        if (current.startedAt >= since) return current.done;
        continue;
      }
      const startedAt = Date.now();
      const done = this.load().then(() => {
        this.loadedFrom = Math.max(this.loadedFrom, startedAt);
      });
      this.loading = { startedAt, done };
      void done
        .finally(() => {
          if (this.loading?.done === done) this.loading = undefined;
        })
        .catch(() => {});
      return done;
    }
  }

  private async load(): Promise<void> {
    const keys = (await this.bucket.keys()).filter((k) => k.startsWith(this.prefix) && !this.records.has(k));
    const found = await Promise.all(keys.map((k) => this.bucket.get(k)));
    keys.forEach((k, i) => {
      const r = found[i];
      if (r) this.remember(k, r);
    });
  }

  /** What the ledger knows of these messages (only those with a record). */
  async lookup(seqs: readonly number[]): Promise<Map<number, LedgerEntry>> {
    const out = new Map<number, LedgerEntry>();
    if (seqs.length === 0) return out;
    const since = Date.now();
    const collect = () => {
      for (const s of seqs) {
        const w = this.find(s);
        if (w !== undefined) out.set(s, w);
      }
    };
    collect();
    if (seqs.some((q) => out.get(q)?.written !== "all")) {
      // Another replica (or this one before a restart) may have written them: read what the bucket holds now.
      await this.loadSince(since);
      out.clear();
      collect();
    }
    return out;
  }

  /**
   * Records what the endpoint accepted of these messages (one KV put for the batch). The record is known to this
   * instance even when the put fails (a leader election of the bucket's stream): a redelivery here is then skipped,
   * and one elsewhere (this instance died) finds the `intend` note and reads back what the endpoint holds.
   */
  async record(written: ReadonlyMap<number, Written>, note?: LedgerNote): Promise<void> {
    if (written.size === 0) return;
    const key = note?.key ?? `${this.prefix}${Math.min(...written.keys())}.${randomBytes(4).toString("hex")}`;
    // The send's note takes what was written beside what was being sent: one record per send.
    const record: LedgerRecord = note?.record ?? { m: {} };
    for (const [seq, w] of written) record.m[String(seq)] = w;
    this.remember(key, record);
    await this.bucket.put(key, record);
  }

  /**
   * Notes, before a send, that these messages are being sent: if this instance dies before their written record, a
   * redelivery knows the endpoint may hold some of their values and asks it (reconcile.ts) instead of sending blind.
   * The caller must not send when this fails: a send without its note could be repeated blind after a crash.
   */
  async intend(seqs: readonly number[]): Promise<LedgerNote | undefined> {
    if (seqs.length === 0) return undefined;
    const key = `${this.prefix}${Math.min(...seqs)}.${randomBytes(4).toString("hex")}`;
    const record: LedgerRecord = { m: {}, s: [...seqs] };
    await this.bucket.put(key, record);
    this.remember(key, record);
    return { key, record };
  }

  /**
   * Drops the records whose messages are all acknowledged, against the ack floor seen at the *previous* check (at
   * least `pruneMs` old): a consumer's leader may report acks its followers have not stored yet, and a new leader
   * after its failover redelivers those messages. Those need their records still.
   */
  async prune(ackFloor: () => Promise<number | undefined>): Promise<void> {
    if (Date.now() - this.prunedAt < this.pruneMs) return;
    this.prunedAt = Date.now();
    const floor = this.floorSeen;
    this.floorSeen = await ackFloor();
    if (floor === undefined) return;
    const done: string[] = [];
    for (const [key, r] of this.records) {
      if (Object.keys(r.m).every((s) => Number(s) <= floor) && (r.s ?? []).every((s) => s <= floor)) done.push(key);
    }
    for (const key of done) this.forget(key);
    // Purged, not deleted: a KV delete leaves a marker per key, and every send makes a key of its own.
    for (let i = 0; i < done.length; i += PURGE_CONCURRENCY) {
      await Promise.all(done.slice(i, i + PURGE_CONCURRENCY).map((k) => this.bucket.purge(k)));
    }
  }

  /** Reads the records left by earlier runs or other replicas (once at start), so prune can drop the old ones. */
  async open(): Promise<void> {
    await this.loadSince(Date.now());
  }

  /** Records held (for tests and status). */
  get size(): number {
    return this.records.size;
  }
}
