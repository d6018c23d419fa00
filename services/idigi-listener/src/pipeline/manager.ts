import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Bus } from "@meridian/bus";
import { BusUnavailableError, jsonCodec, KeyExistsError, KvBucket } from "@meridian/bus";
import { type PipelineCounters, PipelineCountersSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { type BackoffPolicy, backoffDelay, retryHintOf, sleep } from "@meridian/retry";
import type { Logger } from "pino";
import type { PushTarget } from "../config.js";
import {
  IdigiError,
  IdigiNotFoundError,
  type Monitor,
  type MonitorApi,
  type PemInput,
  type PushSessionExtraOptions,
  type PushSessionOptions,
  type SessionState,
} from "../platform/index.js";
import { SessionRefusedError, ShuttingDownError } from "./errors.js";
import { type MonitorCounters, MonitorPipeline } from "./monitor-pipeline.js";

/** KV bucket of the sessions to run: monitor id → when it was started (never a secret, never where to connect). */
export const SESSIONS_BUCKET = "idigi_sessions";
/** KV bucket of who runs each session: monitor id → instance; entries expire unless renewed. */
export const LEASES_BUCKET = "idigi_session_leases";
export const DEFAULT_LEASE_TTL_MS = 15_000;
/**
 * Keys of the leases bucket that say a listener instance is alive (`replica.<token>`), renewed with its leases: with
 * them each instance knows how many share the sessions. A monitor id is decimal, so it never starts so.
 */
export const REPLICA_KEY_PREFIX = "replica.";

/** The sessions one instance runs while `replicas` instances are alive: ceil(sessions / replicas). */
export function fairShare(sessions: number, replicas: number): number {
  return Math.ceil(sessions / Math.max(1, replicas));
}

/** One instance runs a monitor's session at a time (a second socket would make the platform drop the first). */
export interface SessionLease {
  /** INSTANCE_ID of the holder (shown by ListSessions). */
  instance: string;
  /** Unique per process, so two processes with one INSTANCE_ID never share a lease. */
  token: string;
}

/** What survives a restart for one session. Credentials, and where they are sent, are configuration only. */
export interface SessionRecord {
  monitorId: string;
  /** ISO time StartSession was called. */
  startedTime: string;
  /**
   * Where the instance that recorded the session connected, for the record (and for instances of earlier versions,
   * which read it). Never used to connect: anyone who can write the bucket could point the credentials elsewhere.
   */
  connection?: PushTarget;
  /** Keep each record's payload as the platform sent it, whatever IDIGI_INCLUDE_RAW says (a raw watcher's session). */
  includeRaw?: boolean;
  /** The ack option the platform did not confirm when the session started (ackOptionWarning). */
  ackWarning?: string;
}

/**
 * What to tell an operator about a monitor's ack option as the platform reads it back, or undefined when all is well.
 * Explicit acks are what makes a block lost in flight come again. The legacy API documents monAckOption, and its lists
 * may leave it out (notes §1.6), so only an `off` read back is reported there; the v1 API's `ack_option` is in no
 * documented field list, so anything but an explicit read back is.
 */
export function ackOptionWarning(monitor: Monitor, documented: boolean): string | undefined {
  if (monitor.ackOption === "explicit") return undefined;
  const loss = "a block lost in flight (a dropped connection, a listener restart) is not sent again";
  if (monitor.ackOption === "off") return `monitor ${monitor.id} acks are off at the platform: ${loss}`;
  if (documented && monitor.ackOption === undefined) return undefined;
  return `monitor ${monitor.id}: the platform did not confirm explicit acks (ack option read back: ${
    monitor.ackOption === undefined ? "none" : JSON.stringify(String(monitor.ackOption).slice(0, 32))
  }; the v1 API documents no ack_option field); if it treats blocks as delivered once sent, ${loss}`;
}

export interface SessionView {
  record: SessionRecord;
  /** Where the session connects: the configuration's push target, whatever the record says. */
  connection: PushTarget;
  /** Undefined when the session is recorded but not running on this instance. */
  state: SessionState | undefined;
  /** The instance running the session (this one, another one, or undefined when nobody holds its lease). */
  instance: string | undefined;
  stateTime: Date | undefined;
  counters: MonitorCounters | undefined;
  pendingBlocks: number;
  /** Bytes the monitor's blocks hold, received and not yet published and acked. */
  heldBytes: number;
  atMemoryBudget: boolean;
}

export interface SessionManagerOptions {
  bus: Bus;
  api: MonitorApi;
  logger: Logger;
  /** Where every session connects, from the settings; a record in KV never changes it. */
  target: PushTarget;
  credentials: { username: string; password: string };
  ca?: PemInput[];
  maxUnacked: number;
  /** IDIGI_MONITOR_MEMORY_BYTES: what one monitor's blocks may hold before its socket is not read. */
  memoryBudgetBytes: number;
  dedupeEvents: number;
  includeRaw: boolean;
  /** Reconnect backoff of the push sessions (default: the platform client's). */
  reconnectBackoff?: BackoffPolicy;
  /** This instance's name (INSTANCE_ID). */
  instance: string;
  /** Lease lifetime; leases are renewed (and orphaned sessions taken over) every third of it. */
  leaseTtlMs?: number;
  /** A recorded session the platform refused for good (failed) is tried again after this long (default 60 s). */
  failedRetryMs?: number;
}

/**
 * The running push sessions of this instance (one pipeline per monitor) and their record in the
 * `idigi_sessions` KV bucket, from which a restarted listener resumes them.
 */
export class SessionManager {
  readonly bucket: KvBucket<SessionRecord>;
  readonly leases: KvBucket<SessionLease>;
  private readonly running = new Map<string, { record: SessionRecord; pipeline: MonitorPipeline }>();
  private readonly log: Logger;
  private readonly lease: SessionLease;
  private readonly leaseTtlMs: number;
  private closed = false;
  private readonly stopRetryLog: (() => void) | undefined;

  constructor(private readonly options: SessionManagerOptions) {
    this.bucket = new KvBucket(options.bus, SESSIONS_BUCKET, jsonCodec<SessionRecord>(), { history: 1 });
    this.leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    this.leases = new KvBucket(options.bus, LEASES_BUCKET, jsonCodec<SessionLease>(), { history: 1, ttlMs: this.leaseTtlMs });
    this.lease = { instance: options.instance, token: randomUUID() };
    this.log = options.logger.child({ component: "sessions" });
    // The monitor API has no logger; a Retry-After it cut to the cap is this service's to report, once per wait.
    this.stopRetryLog = options.api.onRetry?.(({ method, path, attempt, delayMs, error }) => {
      const hint = retryHintOf(error);
      if (hint?.clamped)
        this.log.warn(
          {
            method,
            path,
            attempt,
            status: (error as { status?: number }).status,
            retryAfterRequestedMs: hint.requestedMs,
            retryAfterMs: delayMs,
          },
          "iDigi's Retry-After is longer than the cap; retrying after the cap",
        );
    });
  }

  private lock: Promise<unknown> = Promise.resolve();

  /** Runs `fn` after every earlier exclusive call has finished. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.lock.then(fn);
    this.lock = result.catch(() => {});
    return result;
  }

  /** Takes (or renews) the lease of a monitor's session; returns the other holder when it is taken. */
  private async acquire(monitorId: string): Promise<SessionLease | undefined> {
    try {
      await this.leases.create(monitorId, this.lease);
      return undefined;
    } catch (err) {
      if (!(err instanceof KeyExistsError)) throw err;
    }
    const holder = await this.leases.get(monitorId);
    if (holder && holder.token !== this.lease.token) return holder;
    await this.leases.put(monitorId, this.lease);
    return undefined;
  }

  private async release(monitorId: string): Promise<void> {
    try {
      const holder = await this.leases.get(monitorId);
      if (holder?.token === this.lease.token) await this.leases.delete(monitorId);
    } catch (err) {
      // It expires on its own.
      this.log.debug({ err, monitorId }, "lease release failed");
    }
  }

  /** Monitors whose record names another push target, already warned about (once per record content). */
  private readonly warnedRecords = new Map<string, string>();

  /** A record that names another target than the configuration is ignored, and said so at warn once. */
  private checkRecord(record: SessionRecord): void {
    const recorded = record.connection;
    const t = this.options.target;
    if (!recorded) return;
    const key = JSON.stringify(recorded);
    if (this.warnedRecords.get(record.monitorId) === key) return;
    const differs =
      recorded.host !== t.host || recorded.port !== t.port || recorded.tls !== t.tls || recorded.verifyCertificate !== t.verifyCertificate;
    if (!differs) return;
    this.warnedRecords.set(record.monitorId, key);
    this.log.warn(
      {
        monitorId: record.monitorId,
        recorded: { host: recorded.host, port: recorded.port, tls: recorded.tls, verifyCertificate: recorded.verifyCertificate },
        connectingTo: t,
      },
      "the recorded session names another push target than the configuration; ignored: connecting where the configuration says",
    );
  }

  private launch(record: SessionRecord): MonitorPipeline {
    const o = this.options;
    this.checkRecord(record);
    // Host, port, TLS and CA from the configuration on every (re)start: never from the record.
    const t = o.target;
    const session: PushSessionOptions & PushSessionExtraOptions = {
      host: t.host,
      port: t.port,
      tls: t.tls,
      ...(t.tls && !t.verifyCertificate ? { insecure: true } : {}),
      ...(t.tls && o.ca ? { ca: o.ca } : {}),
      username: o.credentials.username,
      password: o.credentials.password,
      monitorId: record.monitorId,
      maxUnacked: o.maxUnacked,
      maxHeldBytes: o.memoryBudgetBytes,
      ...(o.reconnectBackoff ? { backoff: o.reconnectBackoff } : {}),
    };
    const pipeline = new MonitorPipeline({
      monitorId: record.monitorId,
      bus: o.bus,
      logger: o.logger,
      session,
      dedupeEvents: o.dedupeEvents,
      includeRaw: o.includeRaw || record.includeRaw === true,
    });
    if (record.ackWarning) this.log.warn({ monitorId: record.monitorId }, record.ackWarning);
    this.running.set(record.monitorId, { record, pipeline });
    pipeline.start();
    return pipeline;
  }

  /**
   * Starts a monitor's session (or returns the running one): checks the monitor on the platform, connects, waits
   * up to `waitMs` for the platform's answer, and records the session in KV unless the platform refused it.
   */
  async start(monitorId: string, waitMs = 10_000, opts: { includeRaw?: boolean } = {}): Promise<SessionView> {
    const existing = this.running.get(monitorId);
    if (existing && existing.pipeline.state.state !== "failed") return this.view(existing.record);
    const monitor = await this.options.api.get(monitorId);
    if (monitor.transport && monitor.transport !== "tcp") {
      throw new IdigiError(`monitor ${monitorId} uses the ${monitor.transport} transport; only tcp monitors have push sessions`);
    }
    // Read back now, so that every instance that runs the session (it is in the record) reports it.
    const ackWarning = ackOptionWarning(monitor, this.options.api.ackOptionDocumented === true);
    // Deciding and launching is exclusive with maintain() (and other starts): one pipeline per monitor.
    const launched = await this.exclusive(async (): Promise<SessionView | { record: SessionRecord; pipeline: MonitorPipeline }> => {
      if (this.closed) throw new ShuttingDownError();
      const again = this.running.get(monitorId);
      if (again && again.pipeline.state.state !== "failed") return this.view(again.record);
      if (again) {
        await again.pipeline.stop();
        this.running.delete(monitorId);
      }
      const recorded = await this.bucket.get(monitorId);
      const base: SessionRecord = recorded ?? {
        monitorId,
        startedTime: new Date().toISOString(),
        connection: { ...this.options.target },
      };
      const { ackWarning: _, ...rest } = base;
      const record: SessionRecord = {
        ...rest,
        ...(opts.includeRaw ? { includeRaw: true } : {}),
        ...(ackWarning ? { ackWarning } : {}),
      };
      const holder = await this.acquire(monitorId);
      if (holder) {
        // Another instance runs it; make sure it stays recorded and report where it runs.
        if (!recorded) await this.bucket.put(monitorId, record);
        return { ...this.view(record), instance: holder.instance };
      }
      return { record, pipeline: this.launch(record) };
    });
    if (!("pipeline" in launched)) return launched;
    const { record, pipeline } = launched;
    const state = await pipeline.settled(waitMs);
    if (state.state === "failed") {
      await pipeline.stop();
      this.running.delete(monitorId);
      await this.release(monitorId);
      throw new SessionRefusedError(monitorId, state.error);
    }
    await this.bucket.put(monitorId, record);
    this.log.info({ monitorId, state: state.state, connection: this.options.target }, "session started");
    return this.view(record);
  }

  /** Stops a session and removes its record; IdigiNotFoundError when there is neither. */
  async stop(monitorId: string): Promise<void> {
    const entry = this.running.get(monitorId);
    const deleted = await this.bucket.delete(monitorId);
    if (!entry && !deleted) throw new IdigiNotFoundError(`session for monitor ${monitorId}`);
    if (entry) {
      this.running.delete(monitorId);
      await entry.pipeline.stop();
      await this.release(monitorId);
    }
    // A session running on another instance stops there at its next lease renewal (it finds no record).
    this.log.info({ monitorId }, "session stopped");
  }

  /** Stops the session if there is one (DeleteMonitor); true when there was. */
  async forget(monitorId: string): Promise<boolean> {
    try {
      await this.stop(monitorId);
      return true;
    } catch (err) {
      if (err instanceof IdigiNotFoundError) return false;
      throw err;
    }
  }

  has(monitorId: string): boolean {
    return this.running.has(monitorId);
  }

  async isRecorded(monitorId: string): Promise<boolean> {
    return this.running.has(monitorId) || (await this.bucket.get(monitorId)) !== undefined;
  }

  /** Whether the monitor's session keeps each record's payload as sent (IDIGI_INCLUDE_RAW, or a raw watcher's session). */
  async keepsRaw(monitorId: string): Promise<boolean> {
    if (this.options.includeRaw) return true;
    const record = this.running.get(monitorId)?.record ?? (await this.bucket.get(monitorId));
    return record?.includeRaw === true;
  }

  private view(record: SessionRecord, holder?: SessionLease): SessionView {
    const p = this.running.get(record.monitorId)?.pipeline;
    return {
      record,
      connection: this.options.target,
      state: p?.state,
      instance: p ? this.options.instance : holder?.instance,
      stateTime: p?.stateTime,
      counters: p ? { ...p.counters } : undefined,
      pendingBlocks: p?.pendingBlocks ?? 0,
      heldBytes: p?.heldBytes ?? 0,
      atMemoryBudget: p?.atMemoryBudget ?? false,
    };
  }

  /**
   * Recorded sessions (KV) and running ones, by monitor id. While the bus is down (`recordsUnavailable`), the running
   * ones alone: that is when a monitor waits at its memory budget, and its state must still show.
   */
  async list(): Promise<{ sessions: SessionView[]; recordsUnavailable: boolean }> {
    const records = new Map<string, SessionRecord>();
    let recordsUnavailable = false;
    try {
      for (const [key, rec] of await this.bucket.entries()) records.set(key, rec);
    } catch (err) {
      if (!(err instanceof BusUnavailableError)) throw err;
      recordsUnavailable = true;
    }
    for (const [id, { record }] of this.running) if (!records.has(id)) records.set(id, record);
    const sessions: SessionView[] = [];
    for (const r of [...records.values()].sort((a, b) => Number(a.monitorId) - Number(b.monitorId))) {
      const holder = this.running.has(r.monitorId) ? undefined : await this.leases.get(r.monitorId);
      sessions.push(this.view(r, holder));
    }
    return { sessions, recordsUnavailable };
  }

  /** Counters and held bytes of the running pipelines, by monitor. */
  monitorCounters(): Array<{ monitorId: string; counters: MonitorCounters; heldBytes: number; atMemoryBudget: boolean }> {
    return [...this.running].map(([monitorId, { pipeline }]) => ({
      monitorId,
      counters: { ...pipeline.counters },
      heldBytes: pipeline.heldBytes,
      atMemoryBudget: pipeline.atMemoryBudget,
    }));
  }

  /** The running pipelines as status reports and /metrics show them: `monitor-<id>`, failed counting blocks. */
  counters(): PipelineCounters[] {
    return this.monitorCounters().map(({ monitorId, counters: c }) =>
      create(PipelineCountersSchema, {
        name: `monitor-${monitorId}`,
        received: BigInt(c.receivedEvents),
        delivered: BigInt(c.deliveredEvents),
        skipped: BigInt(c.skippedEvents),
        failed: BigInt(c.failedBatches),
        // Unacked blocks wait on the platform, not on the bus.
        pending: 0n,
        // The ack warning stands while nothing more recent went wrong: it is what status shows for the monitor.
        lastError: c.lastError ?? this.running.get(monitorId)?.record.ackWarning ?? "",
        ...(c.lastErrorTime ? { lastErrorTime: timestampFromDate(c.lastErrorTime) } : {}),
      }),
    );
  }

  /**
   * One round of lease upkeep: renews the leases of the sessions running here (stopping those whose record is gone
   * or whose lease another instance holds) and starts every recorded session whose lease is free, i.e. resumes
   * sessions after a restart and takes over those of an instance that died. Returns how many it started.
   */
  maintain(): Promise<number> {
    return this.exclusive(() => this.maintainOnce());
  }

  /** Says this instance is alive (for the others' fair share) and returns how many instances are. */
  private async liveReplicas(): Promise<number> {
    await this.leases.put(`${REPLICA_KEY_PREFIX}${this.lease.token}`, this.lease);
    let replicas = 0;
    for (const key of await this.leases.keys()) if (key.startsWith(REPLICA_KEY_PREFIX)) replicas++;
    return Math.max(1, replicas);
  }

  private async maintainOnce(): Promise<number> {
    // After close(): a round queued behind it must not write the replica key back, nor launch anything.
    if (this.closed) return 0;
    // A record under a replica key (only someone writing the bucket by hand can put one there) would take that key for
    // a monitor's lease: it is no session.
    const records = new Map(
      (await this.bucket.entries()).filter(([k]) => !k.startsWith(REPLICA_KEY_PREFIX)).map(([k, r]) => [k, r] as const),
    );
    const replicas = await this.liveReplicas();
    for (const [monitorId, entry] of [...this.running]) {
      if (this.closed) return 0;
      const holder = records.has(monitorId) ? await this.acquire(monitorId) : undefined;
      if (!records.has(monitorId) || holder) {
        this.log.info(
          { monitorId, holder: holder?.instance },
          records.has(monitorId) ? "lease lost; stopping here" : "session record gone; stopping",
        );
        this.running.delete(monitorId);
        await entry.pipeline.stop();
        if (!holder) await this.release(monitorId);
      }
    }
    // Refused for good (e.g. a DISABLED monitor, rotated credentials): try again now and then, it may have been fixed.
    const retryAfter = this.options.failedRetryMs ?? 60_000;
    for (const [monitorId, entry] of [...this.running]) {
      const { state, stateTime } = entry.pipeline;
      if (state.state === "failed" && Date.now() - stateTime.getTime() >= retryAfter && records.has(monitorId)) {
        this.log.info({ monitorId, error: state.error.message }, "retrying a failed session");
        this.running.delete(monitorId);
        await entry.pipeline.stop();
      }
    }
    // Fair share: with others alive an instance runs at most ceil(sessions / instances), so that replicas split the
    // monitors instead of the first one taking them all. Over its share (another instance came up), it hands the
    // newest over: stopping a pipeline publishes and acks what it took, and the platform replays the rest to the next
    // holder. Alone, its share is every session, so the sessions of an instance that died are taken over. They stop
    // together: a stop may wait for its blocks' publishes (up to the drain timeout), and a round that outlasts the lease
    // TTL loses this instance's other leases and its replica key.
    const share = fairShare(records.size, replicas);
    if (this.closed) return 0;
    const surplus = [...this.running].slice(share);
    for (const [monitorId] of surplus) this.running.delete(monitorId);
    await Promise.all(
      surplus.map(async ([monitorId, entry]) => {
        this.log.info({ monitorId, share, replicas }, "over this instance's fair share; handing the session over");
        await entry.pipeline.stop();
        await this.release(monitorId);
      }),
    );
    let started = 0;
    for (const [monitorId, record] of records) {
      if (this.closed || this.running.has(monitorId)) continue;
      if (this.running.size >= share) break;
      if (await this.acquire(monitorId)) continue;
      // Target, credentials and CA come from the current configuration (launch never reads the record's connection).
      this.launch(record);
      started++;
    }
    if (started > 0) this.log.info({ sessions: started }, "sessions resumed from KV");
    return started;
  }

  /** Runs maintain() every third of the lease lifetime until the signal aborts (or close()). */
  async run(signal: AbortSignal): Promise<void> {
    const every = Math.max(100, Math.floor(this.leaseTtlMs / 3));
    for (let failures = 0; !signal.aborted && !this.closed; ) {
      try {
        await this.maintain();
        failures = 0;
      } catch (err) {
        failures++;
        if (failures === 1 || failures % 10 === 0) this.log.warn({ err, failures }, "session upkeep failed; retrying");
      }
      try {
        await sleep(failures > 0 ? Math.min(every, backoffDelay(failures)) : every, signal);
      } catch {
        return;
      }
    }
  }

  /** Stops every running session (publishing what is queued first); records stay in KV for the next start. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopRetryLog?.();
    // After any start() or maintain() in progress, so nothing is launched behind our back.
    await this.exclusive(async () => {
      const all = [...this.running.values()];
      this.running.clear();
      await Promise.all(all.map((e) => e.pipeline.stop()));
      // Free the leases so another instance (a rolling update's new pod) takes over at once, not after the TTL; and it
      // no longer counts this one among the live when it computes its share.
      await Promise.all(all.map((e) => this.release(e.record.monitorId)));
      await this.leases.delete(`${REPLICA_KEY_PREFIX}${this.lease.token}`).catch((err: unknown) => {
        this.log.debug({ err }, "replica key not removed; it expires on its own");
      });
    });
  }
}
