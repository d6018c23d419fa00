import type { Bus } from "@meridian/bus";
import { jsonCodec, KvBucket } from "@meridian/bus";
import { type BackoffPolicy, backoffDelay, sleep } from "@meridian/retry";
import type { Logger } from "pino";
import type { PushTarget } from "../config.js";
import {
  type ConnectRefusedError,
  IdigiError,
  type MonitorApi,
  NotFoundError,
  type PemInput,
  type PushSessionOptions,
  type SessionState,
} from "../platform/index.js";
import { MonitorPipeline, type PipelineCounters } from "./monitor-pipeline.js";

/** KV bucket of the sessions to run: monitor id → where to connect (never a secret). */
export const SESSIONS_BUCKET = "idigi_sessions";

/** What survives a restart for one session. Credentials are configuration and never stored here. */
export interface SessionRecord {
  monitorId: string;
  /** ISO time StartSession was called. */
  startedTime: string;
  connection: PushTarget;
}

export interface SessionView {
  record: SessionRecord;
  /** Undefined when the session is recorded but not running on this instance. */
  state: SessionState | undefined;
  stateTime: Date | undefined;
  counters: PipelineCounters | undefined;
  pendingBlocks: number;
}

export interface SessionManagerOptions {
  bus: Bus;
  api: MonitorApi;
  logger: Logger;
  target: PushTarget;
  credentials: { username: string; password: string };
  ca?: PemInput[];
  maxUnacked: number;
  dedupeEvents: number;
  includeRaw: boolean;
  /** Reconnect backoff of the push sessions (default: the platform client's). */
  reconnectBackoff?: BackoffPolicy;
}

/** The session refused for good at connect time (bad credentials, unknown monitor): StartSession reports it. */
export class SessionRefusedError extends IdigiError {
  constructor(
    readonly monitorId: string,
    readonly refusal: ConnectRefusedError | Error,
  ) {
    super(`push session for monitor ${monitorId} was refused: ${refusal.message}`, { cause: refusal });
    this.name = "SessionRefusedError";
  }
}

/**
 * The running push sessions of this instance (one pipeline per monitor) and their record in the
 * `idigi_sessions` KV bucket, from which a restarted listener resumes them.
 */
export class SessionManager {
  readonly bucket: KvBucket<SessionRecord>;
  private readonly running = new Map<string, { record: SessionRecord; pipeline: MonitorPipeline }>();
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly options: SessionManagerOptions) {
    this.bucket = new KvBucket(options.bus, SESSIONS_BUCKET, jsonCodec<SessionRecord>(), { history: 1 });
    this.log = options.logger.child({ component: "sessions" });
  }

  private launch(record: SessionRecord): MonitorPipeline {
    const o = this.options;
    const t = record.connection;
    const session: PushSessionOptions & { maxUnacked: number } = {
      host: t.host,
      port: t.port,
      tls: t.tls,
      ...(t.tls && !t.verifyCertificate ? { insecure: true } : {}),
      ...(t.tls && o.ca ? { ca: o.ca } : {}),
      username: o.credentials.username,
      password: o.credentials.password,
      monitorId: record.monitorId,
      maxUnacked: o.maxUnacked,
      ...(o.reconnectBackoff ? { backoff: o.reconnectBackoff } : {}),
    };
    const pipeline = new MonitorPipeline({
      monitorId: record.monitorId,
      bus: o.bus,
      logger: o.logger,
      session,
      dedupeEvents: o.dedupeEvents,
      includeRaw: o.includeRaw,
    });
    this.running.set(record.monitorId, { record, pipeline });
    pipeline.start();
    return pipeline;
  }

  /**
   * Starts a monitor's session (or returns the running one): checks the monitor on the platform, connects, waits
   * up to `waitMs` for the platform's answer, and records the session in KV unless the platform refused it.
   */
  async start(monitorId: string, waitMs = 10_000): Promise<SessionView> {
    const existing = this.running.get(monitorId);
    if (existing && existing.pipeline.state.state !== "failed") return this.view(existing.record);
    const monitor = await this.options.api.get(monitorId);
    if (monitor.transport && monitor.transport !== "tcp") {
      throw new IdigiError(`monitor ${monitorId} uses the ${monitor.transport} transport; only tcp monitors have push sessions`);
    }
    const again = this.running.get(monitorId);
    if (again && again.pipeline.state.state !== "failed") return this.view(again.record);
    if (again) {
      await again.pipeline.stop();
      this.running.delete(monitorId);
    }
    const record: SessionRecord = { monitorId, startedTime: new Date().toISOString(), connection: { ...this.options.target } };
    const pipeline = this.launch(record);
    const state = await pipeline.settled(waitMs);
    if (state.state === "failed") {
      await pipeline.stop();
      this.running.delete(monitorId);
      throw new SessionRefusedError(monitorId, state.error);
    }
    await this.bucket.put(monitorId, record);
    this.log.info({ monitorId, state: state.state, connection: record.connection }, "session started");
    return this.view(record);
  }

  /** Stops a session and removes its record; NotFoundError when there is neither. */
  async stop(monitorId: string): Promise<void> {
    const entry = this.running.get(monitorId);
    const deleted = await this.bucket.delete(monitorId);
    if (!entry && !deleted) throw new NotFoundError(`session for monitor ${monitorId}`);
    if (entry) {
      this.running.delete(monitorId);
      await entry.pipeline.stop();
    }
    this.log.info({ monitorId }, "session stopped");
  }

  /** Stops the session if there is one (DeleteMonitor); true when there was. */
  async forget(monitorId: string): Promise<boolean> {
    try {
      await this.stop(monitorId);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  has(monitorId: string): boolean {
    return this.running.has(monitorId);
  }

  async isRecorded(monitorId: string): Promise<boolean> {
    return this.running.has(monitorId) || (await this.bucket.get(monitorId)) !== undefined;
  }

  private view(record: SessionRecord): SessionView {
    const p = this.running.get(record.monitorId)?.pipeline;
    return {
      record,
      state: p?.state,
      stateTime: p?.stateTime,
      counters: p ? { ...p.counters } : undefined,
      pendingBlocks: p?.pendingBlocks ?? 0,
    };
  }

  /** Recorded sessions (KV) and running ones, by monitor id. */
  async list(): Promise<SessionView[]> {
    const records = new Map<string, SessionRecord>();
    for (const [key, rec] of await this.bucket.entries()) records.set(key, rec);
    for (const [id, { record }] of this.running) if (!records.has(id)) records.set(id, record);
    return [...records.values()].sort((a, b) => Number(a.monitorId) - Number(b.monitorId)).map((r) => this.view(r));
  }

  /** Counters of the running pipelines, for the status reporter. */
  counters(): Array<{ monitorId: string; counters: PipelineCounters }> {
    return [...this.running].map(([monitorId, { pipeline }]) => ({ monitorId, counters: { ...pipeline.counters } }));
  }

  /**
   * Starts every recorded session that is not running here, retrying the KV read until it works or the signal
   * aborts. Sessions are resumed without asking the REST API first: the push handshake tells about the monitor.
   */
  async resumeAll(signal: AbortSignal): Promise<number> {
    for (let attempt = 1; !signal.aborted && !this.closed; attempt++) {
      try {
        const entries = await this.bucket.entries();
        let n = 0;
        for (const [, record] of entries) {
          if (this.running.has(record.monitorId) || this.closed) continue;
          // Credentials and CA come from the current configuration; the recorded target is where the monitor lives.
          this.launch(record);
          n++;
        }
        if (n > 0) this.log.info({ sessions: n }, "sessions resumed from KV");
        return n;
      } catch (err) {
        const delay = backoffDelay(attempt);
        this.log.warn({ err, attempt, delayMs: delay }, "reading recorded sessions failed; retrying");
        try {
          await sleep(delay, signal);
        } catch {
          return 0;
        }
      }
    }
    return 0;
  }

  /** Stops every running session (publishing what is queued first); records stay in KV for the next start. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.running.values()];
    this.running.clear();
    await Promise.all(all.map((e) => e.pipeline.stop()));
  }
}
