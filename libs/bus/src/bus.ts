import { createHash } from "node:crypto";
import type { TelemetryBatch, TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import {
  type ConnectionOptions,
  connect,
  DeliverPolicy,
  DiscardPolicy,
  ErrorCode,
  headers,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  nanos,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "nats";
import type { Logger } from "pino";
import { decodeBatch, encodeBatch, makeBatch, SCHEMA_HEADER, TELEMETRY_BATCH_SCHEMA } from "./codec.js";
import { type DeadLetter, deadLetterHeaders } from "./dead-letter.js";
import { BusUnavailableError, MessageTooLargeError } from "./errors.js";
import {
  DEAD_LETTER_ROOT,
  deadLetterSubject,
  sourceMatches,
  TELEMETRY_ROOT,
  telemetryFilterSubject,
  telemetrySubject,
} from "./subjects.js";

export const STREAMS = { telemetry: "TELEMETRY", deadLetter: "DEADLETTER" } as const;

export interface StreamLimits {
  /** How long the telemetry stream keeps events for a sink that is down: its catch-up horizon. */
  telemetryMaxAgeMs: number;
  telemetryMaxBytes: number;
  deadLetterMaxAgeMs: number;
  /** Size limit of the dead letters; when it is reached the oldest go first (see declareStreams). */
  deadLetterMaxBytes: number;
  /** 1 locally, 3 on a production cluster. */
  replicas: number;
  /** Window in which a repeated Nats-Msg-Id is recognised as a duplicate. */
  duplicateWindowMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  telemetryMaxAgeMs: 72 * 3600_000,
  telemetryMaxBytes: 1024 ** 3,
  deadLetterMaxAgeMs: 30 * 24 * 3600_000,
  deadLetterMaxBytes: 1024 ** 3,
  replicas: 1,
  duplicateWindowMs: 2 * 60_000,
};

export interface BusOptions {
  servers: string | string[];
  /** Client name shown by the server; use the service name. */
  name: string;
  logger: Logger;
  user?: string;
  pass?: string;
  token?: string;
  /** PEM file of a CA to trust for TLS to NATS. */
  tlsCaFile?: string;
  streams?: Partial<StreamLimits>;
  /** Whether this process declares the streams (a service that only reads may leave it to others). */
  declareStreams?: boolean;
  /** How long a JetStream publish may wait for its ack. */
  publishTimeoutMs?: number;
}

export interface PublishResult {
  /** Bus messages written and those the bus already had (same Nats-Msg-Id within the window). */
  stored: number;
  duplicates: number;
}

export interface SubscribeOptions {
  /** Replay from this time; unset means only what is published from now on. */
  startTime?: Date;
  signal?: AbortSignal;
}

type StatusListener = (connected: boolean) => void;

/**
 * The one NATS helper. Connecting never fails: an unreachable server is retried forever in the
 * background while `connected` is false, so a service can start, report not-ready and recover.
 */
export class Bus {
  readonly limits: StreamLimits;
  readonly ready: Promise<void>;
  private nc: NatsConnection | undefined;
  private jsClient: JetStreamClient | undefined;
  private jsmClient: JetStreamManager | undefined;
  private isConnected = false;
  private closed = false;
  private readonly listeners = new Set<StatusListener>();
  private readonly log: Logger;

  private constructor(private readonly options: BusOptions) {
    this.limits = { ...DEFAULT_STREAM_LIMITS, ...options.streams };
    this.log = options.logger.child({ component: "bus" });
    this.ready = this.start();
    // ready is awaited by whoever needs it; an unobserved rejection must not crash the process.
    this.ready.catch(() => {});
  }

  static connect(options: BusOptions): Bus {
    return new Bus(options);
  }

  get connected(): boolean {
    return this.isConnected;
  }

  onStatus(listener: StatusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setConnected(value: boolean): void {
    if (this.isConnected === value) return;
    this.isConnected = value;
    for (const l of this.listeners) l(value);
  }

  private async start(): Promise<void> {
    const opts: ConnectionOptions = {
      servers: this.options.servers,
      name: this.options.name,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      pingInterval: 10_000,
      ...(this.options.user ? { user: this.options.user, pass: this.options.pass } : {}),
      ...(this.options.token ? { token: this.options.token } : {}),
      ...(this.options.tlsCaFile ? { tls: { caFile: this.options.tlsCaFile } } : {}),
    };
    this.log.info({ servers: this.options.servers }, "connecting to NATS");
    const nc = await connect(opts);
    if (this.closed) {
      await nc.close();
      return;
    }
    this.nc = nc;
    this.jsClient = nc.jetstream({ timeout: this.options.publishTimeoutMs ?? 5000 });
    this.jsmClient = await nc.jetstreamManager({ timeout: this.options.publishTimeoutMs ?? 5000 });
    await this.declareStreamsWithRetry();
    this.setConnected(true);
    this.log.info({ server: nc.getServer() }, "connected to NATS");
    void this.watchStatus(nc);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        this.log.warn({ server: s.data }, "NATS disconnected");
        this.setConnected(false);
      } else if (s.type === "reconnect") {
        this.log.info({ server: s.data }, "NATS reconnected");
        // A server that lost its store (no volume) comes back without our streams.
        await this.declareStreamsWithRetry();
        this.setConnected(true);
      }
    }
  }

  private async declareStreamsWithRetry(): Promise<void> {
    if (this.options.declareStreams === false) return;
    for (let attempt = 1; !this.closed; attempt++) {
      try {
        await this.declareStreams();
        return;
      } catch (err) {
        this.log.warn({ err, attempt }, "declaring streams failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * attempt)));
      }
    }
  }

  /** Creates or updates the telemetry and dead-letter streams (idempotent). */
  async declareStreams(): Promise<void> {
    const l = this.limits;
    await this.ensureStream({
      name: STREAMS.telemetry,
      subjects: [`${TELEMETRY_ROOT}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(l.telemetryMaxAgeMs),
      max_bytes: l.telemetryMaxBytes,
      duplicate_window: nanos(l.duplicateWindowMs),
      num_replicas: l.replicas,
    });
    await this.ensureStream({
      name: STREAMS.deadLetter,
      subjects: [`${DEAD_LETTER_ROOT}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      // Full, the oldest dead letters make room. Refusing new ones instead would fail every sink's dead-letter
      // publish, so each would redeliver its poison message forever and a source would hold its platform's acks.
      discard: DiscardPolicy.Old,
      max_age: nanos(l.deadLetterMaxAgeMs),
      max_bytes: l.deadLetterMaxBytes,
      duplicate_window: nanos(l.duplicateWindowMs),
      num_replicas: l.replicas,
    });
  }

  private async ensureStream(config: Partial<StreamConfig> & { name: string }): Promise<void> {
    const jsm = this.jsm();
    try {
      await jsm.streams.info(config.name);
      await jsm.streams.update(config.name, config);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams.add(config);
    }
  }

  /** The JetStream client; throws BusUnavailableError while disconnected. */
  js(): JetStreamClient {
    if (!this.jsClient || !this.nc || this.nc.isClosed()) throw new BusUnavailableError();
    return this.jsClient;
  }

  jsm(): JetStreamManager {
    if (!this.jsmClient || !this.nc || this.nc.isClosed()) throw new BusUnavailableError();
    return this.jsmClient;
  }

  connection(): NatsConnection {
    if (!this.nc || this.nc.isClosed()) throw new BusUnavailableError();
    return this.nc;
  }

  /** Publishes one batch with Nats-Msg-Id = batch id; a repeat within the window is a no-op. */
  async publishBatch(subject: string, batch: TelemetryBatch): Promise<{ seq: number; duplicate: boolean }> {
    if (!this.isConnected) throw new BusUnavailableError();
    const h = headers();
    h.set(SCHEMA_HEADER, TELEMETRY_BATCH_SCHEMA);
    const data = encodeBatch(batch);
    try {
      const ack = await this.js().publish(subject, data, { msgID: batch.id, headers: h });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      throw this.publishError(err, subject, data.length);
    }
  }

  /**
   * Stores a dead letter on `deadletter.v1.<consumer>` with the reason in its headers: how a sink gives up on a
   * message and how a source parks data that can never become telemetry. Fails like `publishBatch`
   * (BusUnavailableError while the bus is down, MessageTooLargeError), so the caller keeps the original until it is stored.
   */
  async publishDeadLetter(letter: DeadLetter): Promise<{ seq: number; duplicate: boolean }> {
    if (!this.isConnected) throw new BusUnavailableError();
    const subject = deadLetterSubject(letter.consumer);
    try {
      const ack = await this.js().publish(subject, letter.data, {
        headers: deadLetterHeaders(letter),
        ...(letter.msgId === undefined ? {} : { msgID: letter.msgId }),
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      throw this.publishError(err, subject, letter.data.length);
    }
  }

  private publishError(err: unknown, subject: string, bytes: number): Error {
    if (err instanceof BusUnavailableError) return err;
    if ((err as { code?: string }).code === ErrorCode.MaxPayloadExceeded) return new MessageTooLargeError(subject, bytes, { cause: err });
    return new BusUnavailableError(`publish to ${subject} failed: ${(err as Error).message}`, { cause: err });
  }

  /**
   * Publishes events as one bus message per subject (device), keeping their order. The message id
   * is derived from `batchId` when the source has one (an iDigi block, an Omnia page), else from
   * the event ids, so publishing the same events again is recognised as a duplicate.
   */
  async publishEvents(events: TelemetryEvent[], batchId?: string): Promise<PublishResult> {
    const groups = new Map<string, TelemetryEvent[]>();
    for (const e of events) {
      if (!e.source) throw new Error(`event ${e.id} has no source`);
      const subject = telemetrySubject(e.source);
      const list = groups.get(subject);
      if (list) list.push(e);
      else groups.set(subject, [e]);
    }
    const results = await Promise.all(
      [...groups].map(([subject, group]) => {
        const id =
          batchId === undefined
            ? digest(`${subject}\n${group.map((e) => e.id).join("\n")}`)
            : groups.size === 1
              ? batchId
              : `${batchId}:${digest(subject).slice(0, 16)}`;
        return this.publishBatch(subject, makeBatch(id, group));
      }),
    );
    const duplicates = results.filter((r) => r.duplicate).length;
    return { stored: results.length - duplicates, duplicates };
  }

  /**
   * Live events matching the filter, in stream order (an ordered consumer: no server-side state to
   * clean up, re-created by the client after a reconnect without gaps).
   */
  async *subscribe(filter: Parameters<typeof telemetryFilterSubject>[0], options: SubscribeOptions = {}): AsyncGenerator<TelemetryEvent> {
    await this.ready;
    const consumer = await this.js().consumers.get(STREAMS.telemetry, {
      filterSubjects: telemetryFilterSubject(filter),
      ...(options.startTime
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: options.startTime.toISOString() }
        : { deliver_policy: DeliverPolicy.New }),
    });
    const messages = await consumer.consume({ max_messages: 512 });
    const stop = () => messages.stop();
    options.signal?.addEventListener("abort", stop, { once: true });
    try {
      for await (const m of messages) {
        const batch = decodeBatch(m.data);
        for (const event of batch.events) {
          if (sourceMatches(filter as never, event.source)) yield event;
        }
      }
    } finally {
      options.signal?.removeEventListener("abort", stop);
      messages.stop();
    }
  }

  /** Drains subscriptions and closes; safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.setConnected(false);
    const nc = this.nc;
    if (nc && !nc.isClosed()) {
      try {
        await nc.drain();
      } catch (err) {
        this.log.warn({ err }, "NATS drain failed; closing");
        await nc.close();
      }
    }
  }
}

function digest(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 32);
}

export function isNotFound(err: unknown): boolean {
  const e = err as { code?: string; api_error?: { err_code?: number; code?: number }; message?: string };
  return e?.api_error?.code === 404 || e?.code === "404" || /not found/i.test(e?.message ?? "");
}
