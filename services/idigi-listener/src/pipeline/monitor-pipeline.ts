import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Bus } from "@meridian/bus";
import type { TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type BackoffPolicy, retry } from "@meridian/retry";
import type { Logger } from "pino";
import {
  IdigiAckError,
  type InvalidBatch,
  msgDocuments,
  type PayloadFormat,
  type PushBatch,
  PushSession,
  type PushSessionExtraOptions,
  type PushSessionOptions,
  type SessionState,
} from "../platform/index.js";
import { batchIdFor, toTelemetryEvents } from "./mapping.js";
import { RecentIds } from "./recent-ids.js";

/**
 * Each event's Msg as the platform sent it, for the raw payload; a block that cannot be split by Msg (never seen) gives
 * every event the whole block.
 */
function rawDocuments(batch: PushBatch): { documents: string[]; format: PayloadFormat } {
  const n = batch.events.length;
  const documents = msgDocuments(batch.document, batch.format, n) ?? new Array<string>(n).fill(batch.document.toString("utf8"));
  return { documents, format: batch.format };
}

/** Where blocks whose payload cannot be parsed go (with the reason in the headers), before they are acked. */
export const DEAD_LETTER_CONSUMER = "idigi-listener";

/** Bus publish retries: quick at first, then every few seconds while the bus is down (the block stays unacked). */
export const PUBLISH_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5_000, multiplier: 2, jitter: 0.3 };

/** What one monitor's pipeline did since it started. */
export interface MonitorCounters {
  receivedEvents: number;
  receivedBatches: number;
  /** Stored on the bus with at least one point, i.e. something a sink writes. */
  deliveredEvents: number;
  /** Stored on the bus but without a point (a DeviceCore record, a value of no known type): no sink writes it. */
  skippedEvents: number;
  duplicateEvents: number;
  failedBatches: number;
  connections: number;
  /** Times the monitor's blocks reached its memory budget (reading stopped until the bus took them). */
  memoryBudgetReached: number;
  lastError?: string;
  lastErrorTime?: Date;
}

export interface MonitorPipelineOptions {
  monitorId: string;
  bus: Bus;
  logger: Logger;
  session: PushSessionOptions & PushSessionExtraOptions;
  /** How many published event ids to remember (0 = none). */
  dedupeEvents: number;
  includeRaw: boolean;
  publishBackoff?: BackoffPolicy;
  /** How long stop() waits for queued blocks to be published and acked before closing anyway. */
  drainTimeoutMs?: number;
}

type Work = { kind: "batch"; batch: PushBatch; at: Date } | { kind: "invalid"; batch: InvalidBatch };

/**
 * One monitor's pipeline: its PushSession (reconnects with capped backoff, explicit acks) → map → bus.
 *
 * Blocks are pipelined: each is mapped and its publish sent as soon as it arrives, so the blocks the session holds
 * unacked (`maxUnacked`) are in flight to JetStream together and their publishes share the connection's writes; the
 * publishes go out in arrival order, so the bus stores a monitor's events in the platform's order (a publish retried
 * after a bus outage may land after a later block's). Acks go out in arrival order too, each only after its block and
 * every block before it was stored (or dead-lettered): a replayed block whose events are still in flight is therefore
 * never acked before they are stored. While the bus is down the publish is retried with backoff and nothing is acked,
 * so the session's `maxUnacked` and `maxHeldBytes` (the monitor's memory budget) stop it reading the socket and the
 * platform keeps (and on reconnect replays) what is unacked. An ack that cannot be sent because the connection has
 * gone is harmless: the platform replays that block, and its events are recognised (same content → same ids) by the
 * recent-id memory and, when the grouping is the same, by the bus's Nats-Msg-Id window.
 */
export class MonitorPipeline {
  readonly monitorId: string;
  readonly counters: MonitorCounters = {
    receivedEvents: 0,
    receivedBatches: 0,
    deliveredEvents: 0,
    skippedEvents: 0,
    duplicateEvents: 0,
    failedBatches: 0,
    connections: 0,
    memoryBudgetReached: 0,
  };
  private readonly session: PushSession;
  private readonly log: Logger;
  private readonly recent: RecentIds;
  /** Blocks taken on, in arrival order, each with its publish (started at once); acked from the head. */
  private readonly queue: Array<{ work: Work; done: Promise<boolean> }> = [];
  private readonly abort = new AbortController();
  private working: Promise<void> | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private stateValue: SessionState = { state: "idle" };
  private stateSince = new Date();
  private readonly stateWaiters = new Set<(s: SessionState) => void>();

  constructor(private readonly options: MonitorPipelineOptions) {
    this.monitorId = options.monitorId;
    this.log = options.logger.child({ monitorId: options.monitorId });
    this.recent = new RecentIds(options.dedupeEvents);
    this.session = new PushSession(options.session);
    this.session.on("state", (s) => this.onState(s));
    this.session.on("batch", (b) => this.enqueue({ kind: "batch", batch: b, at: new Date() }));
    this.session.on("invalidBatch", (b) => this.enqueue({ kind: "invalid", batch: b }));
    this.session.on("warning", (err) => this.log.warn({ err }, "push session warning"));
    this.session.on("heldBytes", ({ atLimit, heldBytes, maxHeldBytes }) => {
      if (atLimit) {
        this.counters.memoryBudgetReached++;
        this.noteError(`memory budget reached (${heldBytes} of ${maxHeldBytes} bytes held): socket not read until the bus takes them`);
        this.log.warn(
          { heldBytes, maxHeldBytes },
          "monitor at its memory budget; its socket is not read until the bus takes what it holds",
        );
      } else this.log.info({ heldBytes, maxHeldBytes }, "monitor below its memory budget again; reading its socket");
    });
  }

  /** Bytes of this monitor's blocks received and not yet published and acked (PushSession.heldBytes). */
  get heldBytes(): number {
    return this.session.heldBytes;
  }

  get atMemoryBudget(): boolean {
    return this.session.atHeldLimit;
  }

  get state(): SessionState {
    return this.stateValue;
  }

  get stateTime(): Date {
    return this.stateSince;
  }

  get pendingBlocks(): number {
    return this.session.pendingAcks.length;
  }

  start(): this {
    this.session.start();
    return this;
  }

  /** Resolves with the first `connected` or `failed` state, or the current state after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<SessionState> {
    const s = this.stateValue.state;
    if (s === "connected" || s === "failed" || s === "stopped") return this.stateValue;
    return new Promise((resolve) => {
      const done = (st: SessionState) => {
        clearTimeout(timer);
        this.stateWaiters.delete(done);
        resolve(st);
      };
      const timer = setTimeout(() => done(this.stateValue), timeoutMs);
      this.stateWaiters.add(done);
    });
  }

  private onState(s: SessionState): void {
    this.stateValue = s;
    this.stateSince = new Date();
    if (s.state === "connected") {
      this.counters.connections++;
      this.log.info({ connectionId: s.connectionId }, "push session connected");
    } else if (s.state === "disconnected") {
      this.log.warn({ reason: s.reason, retryInMs: s.retryInMs }, "push session disconnected");
      if (s.error) this.noteError(`disconnected: ${s.reason}`);
    } else if (s.state === "failed") {
      this.log.error({ err: s.error }, "push session failed");
      this.noteError(s.error.message);
    }
    if (s.state === "connected" || s.state === "failed" || s.state === "stopped") for (const w of [...this.stateWaiters]) w(s);
  }

  private noteError(message: string): void {
    this.counters.lastError = message;
    this.counters.lastErrorTime = new Date();
  }

  private enqueue(work: Work): void {
    // While stopping, blocks that were not taken on stay unacked: the platform replays them to the next session.
    if (this.stopping) return;
    this.queue.push({ work, done: this.store(work) });
    if (!this.working) this.working = this.drain();
  }

  /** Acks the blocks in arrival order, each once it and every block before it was stored (or dead-lettered). */
  private async drain(): Promise<void> {
    try {
      for (let head = this.queue[0]; head; head = this.queue[0]) {
        const ackable = await head.done;
        if (this.abort.signal.aborted) return;
        this.queue.shift();
        if (ackable) await this.ack(head.work.batch);
      }
    } finally {
      this.working = undefined;
    }
  }

  /**
   * Publishes a block (called as it arrives: its publish is sent before the next block's). Resolves whether it may be
   * acked: true once stored or dead-lettered; false when it must stay unacked (the pipeline stopped, or neither worked).
   * Never rejects.
   */
  private async store(w: Work): Promise<boolean> {
    let fresh: TelemetryEvent[] = [];
    try {
      if (w.kind === "invalid") await this.handleInvalid(w.batch);
      else {
        const published = this.handleBatch(w.batch, w.at);
        fresh = published.fresh;
        await published.stored;
      }
      return true;
    } catch (err) {
      // Not stored: a replay of these events must be published again, not taken for a duplicate.
      for (const e of fresh) this.recent.forget(e.id);
      if (this.abort.signal.aborted) return false;
      // Not a bus outage (those are retried inside): the block can never be published (e.g. it cannot be
      // encoded). Replaying it would fail the same way, so it is dead-lettered, then acked.
      this.counters.failedBatches++;
      this.noteError(`block ${w.batch.blockId}: ${(err as Error).message}`);
      this.log.error({ err, blockId: w.batch.blockId }, "block cannot be published; dead-lettering it");
      try {
        await this.deadLetter(w.batch, "iDigi block could not be published", (err as Error).message);
        return true;
      } catch (dlErr) {
        if (!this.abort.signal.aborted)
          this.log.error({ err: dlErr, blockId: w.batch.blockId }, "dead-lettering failed; block left unacked for replay");
        return false;
      }
    }
  }

  /** Publishes a block's raw payload to `deadletter.v1.idigi-listener` with the reason in the headers. */
  private async deadLetter(batch: PushBatch | InvalidBatch, reason: string, detail: string): Promise<void> {
    await this.publish(() =>
      this.options.bus.publishDeadLetter({
        consumer: DEAD_LETTER_CONSUMER,
        data: batch.rawBytes,
        reason,
        detail,
        // What a replay needs to parse the payload again.
        headers: {
          "Meridian-Idigi-Monitor": this.monitorId,
          "Meridian-Idigi-Format": batch.format,
          "Meridian-Idigi-Compressed": String(batch.compressed),
        },
      }),
    );
  }

  /**
   * Maps a block and sends its publish now (synchronously, so publishes leave in arrival order). Its fresh events are
   * remembered at once, so that a replay arriving while they are in flight is not published again; the ack of that
   * replay waits behind this block (drain).
   */
  private handleBatch(batch: PushBatch, at: Date): { fresh: TelemetryEvent[]; stored: Promise<void> } {
    this.counters.receivedBatches++;
    this.counters.receivedEvents += batch.events.length;
    const events = toTelemetryEvents(this.monitorId, batch.events, {
      receivedTime: timestampFromDate(at),
      ...(this.options.includeRaw ? { raw: rawDocuments(batch) } : {}),
    });
    // Remembered as they are checked, so a second copy within the block is known too; a block longer than the memory
    // could forget its own first copy before the second, and keeps its own set as well.
    const inBlock = events.length > this.recent.capacity ? new Set<string>() : undefined;
    const fresh = events.filter((e) => {
      if (!this.recent.add(e.id)) return false;
      if (inBlock === undefined) return true;
      if (inBlock.has(e.id)) return false;
      inBlock.add(e.id);
      return true;
    });
    const known = events.length - fresh.length;
    this.counters.duplicateEvents += known;
    if (fresh.length === 0) return { fresh, stored: Promise.resolve() };
    const publishing = this.publish(() => this.options.bus.publishEvents(fresh, batchIdFor(this.monitorId, fresh)));
    const stored = publishing.then((result) => {
      if (result.stored === 0 && result.duplicates > 0) this.counters.duplicateEvents += fresh.length;
      else {
        let skipped = 0;
        for (const e of fresh) if (e.points.length === 0) skipped++;
        this.counters.skippedEvents += skipped;
        this.counters.deliveredEvents += fresh.length - skipped;
      }
      if (this.log.isLevelEnabled("debug"))
        this.log.debug({ blockId: batch.blockId, events: fresh.length, known, ...result }, "block published");
    });
    return { fresh, stored };
  }

  private async handleInvalid(batch: InvalidBatch): Promise<void> {
    this.counters.receivedBatches++;
    this.counters.failedBatches++;
    this.noteError(`block ${batch.blockId}: ${batch.error.message}`);
    this.log.error({ blockId: batch.blockId, err: batch.error }, "unparseable block; dead-lettering it");
    await this.deadLetter(batch, `unparseable iDigi block: ${batch.error.code}`, batch.error.message);
  }

  /**
   * Retries while the bus is unavailable (BusUnavailableError says `retryable`), until it works or the pipeline
   * stops. Other errors are final: a message over max_payload (MessageTooLargeError) must not hold the block, and
   * the socket, forever.
   */
  private publish<T>(fn: () => Promise<T>): Promise<T> {
    return retry(fn, {
      maxAttempts: Number.POSITIVE_INFINITY,
      policy: this.options.publishBackoff ?? PUBLISH_BACKOFF,
      signal: this.abort.signal,
      onRetry: (err, attempt, delayMs) => {
        this.counters.failedBatches++;
        this.noteError((err as Error).message);
        if (attempt === 1 || attempt % 10 === 0)
          this.log.warn({ err, attempt, delayMs }, "bus publish failed; block stays unacked, retrying");
      },
    });
  }

  private async ack(batch: PushBatch | InvalidBatch): Promise<void> {
    try {
      await batch.ack();
    } catch (err) {
      // The connection the block came on is gone: the platform replays it, and it is recognised then.
      if (err instanceof IdigiAckError)
        this.log.debug({ blockId: batch.blockId, reason: err.reason }, "ack not sent; block will be replayed");
      else this.log.warn({ err, blockId: batch.blockId }, "ack failed; block will be replayed");
    }
  }

  /**
   * Stops taking new blocks, lets the queued ones be published and acked (up to drainTimeoutMs), then closes the
   * session. Unacked blocks stay with the platform for the next session.
   */
  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopping = true;
      this.stopped = (async () => {
        const working = this.working;
        if (working) {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<"timeout">((r) => {
            timer = setTimeout(() => r("timeout"), this.options.drainTimeoutMs ?? 5_000);
          });
          const outcome = await Promise.race([working.then(() => "done" as const), timeout]);
          clearTimeout(timer);
          if (outcome === "timeout") this.log.warn("stopping with blocks still being published; they stay unacked");
        }
        this.abort.abort(new Error("pipeline stopped"));
        await this.session.stop();
        await this.working;
      })();
    }
    return this.stopped;
  }
}
