import type { Platform, Source, TelemetryBatch, TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type BackoffPolicy, backoffDelay, MAX_RETRY_AFTER_MS, retryHintOf, sleep } from "@meridian/retry";
import { AckPolicy, type ConsumerInfo, type ConsumerMessages, DeliverPolicy, type JsMsg, nanos } from "nats";
import type { Logger } from "pino";
import { type Bus, isNotFound, STREAMS } from "./bus.js";
import { decodeBatch, SCHEMA_HEADER } from "./codec.js";
import { REPLAY_CONSUMER_HEADER } from "./dead-letter.js";
import { PermanentError } from "./errors.js";
import { type EventFilter, platformOfToken, platformToken, sourceMatches, subjectMayHold } from "./subjects.js";
import { EndOfTurn } from "./turn.js";

/**
 * Redelivery delay for transient failures. The first retries are quick (a blip), later ones
 * settle at a minute: a platform that is down for hours is polled gently, and nothing is dropped,
 * because transient failures are never counted towards a dead letter.
 */
export const REDELIVERY_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 60_000, multiplier: 2, jitter: 0.2 };

/** The server's wait for an ack when the options name none. */
const DEFAULT_ACK_WAIT_MS = 30_000;

export interface DurableConsumerOptions {
  /** Durable name; also names the dead-letter subject. */
  durable: string;
  /** One subject filter (nats-server 2.9 has no multi-filter consumers). */
  filterSubject: string;
  /**
   * Only these events reach the handler (telemetrySelection's `events`, for a filter with a device): a message's other
   * events are dropped from its delivery, and a message with none of them is acknowledged without reaching it.
   */
  eventFilter?: EventFilter | undefined;
  stream?: string;
  /** Unacknowledged messages in flight: the only flow control towards a slow sink. */
  maxAckPending?: number;
  /** How long a delivery may take before the server redelivers it. */
  ackWaitMs?: number;
  /** Messages per pull. */
  pullBatch?: number;
  backoff?: BackoffPolicy;
  logger: Logger;
  /**
   * Where the consumer starts if it does not exist yet: at the first message stored at or after this time, or (unset)
   * at the next message published. Never at the start of the stream: that would replay all of it to whoever asks. A
   * consumer that exists keeps its position whatever this says.
   */
  startTime?: Date;
  /**
   * Where the consumer starts if it does not exist yet, as a stream sequence (wins over startTime): a route's consumer
   * made again after a change of source, at the first message stored after the change.
   */
  startSequence?: number;
  /**
   * Use the consumer only if it exists, never create it: deliveries() ends once it is gone. For a draining route,
   * whose consumer another replica may delete at any moment and which must not come back.
   */
  existingOnly?: boolean;
}

/** What a durable consumer still holds. */
export interface ConsumerBacklog {
  /** Matching messages not delivered yet. */
  pending: number;
  /** Delivered and not acknowledged yet (naks waiting for their redelivery included). */
  ackPending: number;
  /** Stream sequence of the last message delivered. */
  deliveredSequence: number;
}

/**
 * The durable consumer a sink service runs for a route: `<sink platform>-<route id>` (`omf-<id>` for OMF). The gateway
 * finds a route's backlog by it (a draining route's pending count, a purge), so sinks and gateway must agree.
 */
export function routeConsumerName(routeId: string, sinkPlatform: Platform): string {
  return `${platformToken(sinkPlatform)}-${routeId}`;
}

/**
 * The route and sink platform a route consumer's name stands for (the inverse of routeConsumerName), or undefined for
 * a name that is not one (a source's consumer name, an unknown platform).
 */
export function parseRouteConsumerName(name: string): { routeId: string; sinkPlatform: Platform } | undefined {
  const dash = name.indexOf("-");
  if (dash <= 0 || dash === name.length - 1) return undefined;
  const sinkPlatform = platformOfToken(name.slice(0, dash));
  return sinkPlatform === undefined ? undefined : { routeId: name.slice(dash + 1), sinkPlatform };
}

/**
 * A durable consumer's info, or undefined when it does not exist. nats-server (2.9) answers an info request that meets
 * the consumer while it is being deleted with an info holding none of its fields and no error: that consumer is gone
 * too (read as it was, its missing `delivered` failed the gateway's drain check and a test with a TypeError).
 */
export async function consumerInfo(bus: Bus, durable: string, stream: string = STREAMS.telemetry): Promise<ConsumerInfo | undefined> {
  try {
    const info = await bus.jsm().consumers.info(stream, durable);
    return info.delivered === undefined || info.config === undefined ? undefined : info;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** A durable consumer's backlog, or undefined when it does not exist. */
export async function consumerBacklog(bus: Bus, durable: string, stream: string = STREAMS.telemetry): Promise<ConsumerBacklog | undefined> {
  const info = await consumerInfo(bus, durable, stream);
  return info && { pending: info.num_pending, ackPending: info.num_ack_pending, deliveredSequence: info.delivered.stream_seq };
}

/**
 * Deletes a durable consumer and the backlog with it; returns what it held just before (undefined when there was no
 * such consumer). Messages acknowledged between that reading and the delete were delivered, so the count is an upper
 * bound of what was dropped.
 */
export async function deleteConsumer(bus: Bus, durable: string, stream: string = STREAMS.telemetry): Promise<ConsumerBacklog | undefined> {
  const held = await consumerBacklog(bus, durable, stream);
  if (!held) return undefined;
  try {
    await bus.jsm().consumers.delete(stream, durable);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  return held;
}

/**
 * True when every message of the consumer's filter up to stream sequence `lastSequence` has been acknowledged: the end
 * of a drain. Nothing is in flight, and either nothing is left or what is left came after `lastSequence`.
 */
export function deliveredThrough(backlog: ConsumerBacklog, lastSequence: number): boolean {
  return backlog.ackPending === 0 && (backlog.pending === 0 || backlog.deliveredSequence >= lastSequence);
}

/** One bus message handed to a sink, with the verbs that settle it. */
export interface Delivery {
  /** The message's events the consumer's event filter keeps (all of them without one). */
  readonly batch: TelemetryBatch;
  /** Where the message was stored: it names a device only when all its events are that device's; read their sources. */
  readonly subject: string;
  readonly streamSequence: number;
  /** 1 on first delivery. */
  readonly deliveryCount: number;
  readonly sizeBytes: number;
  ack(): void;
  /** Redeliver later: after `delayMs` (at most MAX_RETRY_AFTER_MS), or per the backoff policy. */
  retry(delayMs?: number): void;
  /** Extends the ack deadline while a slow send is in progress. */
  working(): void;
  /** Moves the message to the dead-letter subject with a reason, then stops its redelivery. */
  deadLetter(reason: string, detail?: string): Promise<void>;
}

/** The events of one device in a delivery, with their places in `batch.events`. */
export interface DeviceEvents {
  source: Source;
  events: TelemetryEvent[];
  indices: number[];
}

/**
 * A message's events by device, in order of first appearance: a message holds one publish call's events of one
 * (platform, connection), of one device or several. For sinks that address a device per event group. Events with no
 * source are left out.
 */
export function eventsByDevice(events: readonly TelemetryEvent[]): DeviceEvents[] {
  const first = events[0]?.source;
  if (
    first &&
    events.every(
      (e) => e.source?.device === first.device && e.source.connection === first.connection && e.source.platform === first.platform,
    )
  )
    return [{ source: first, events: [...events], indices: events.map((_, i) => i) }];
  const groups = new Map<string, DeviceEvents>();
  events.forEach((e, i) => {
    const s = e.source;
    if (!s) return;
    const key = `${s.platform}:${s.connection.length}:${s.connection}${s.device}`;
    const g = groups.get(key);
    if (g) {
      g.events.push(e);
      g.indices.push(i);
    } else groups.set(key, { source: s, events: [e], indices: [i] });
  });
  return [...groups.values()];
}

/** How many acknowledged Nats-Msg-Ids a consumer remembers to recognise a publish stored twice. */
const ACKED_IDS_KEPT = 10_000;

/**
 * A durable pull consumer on the telemetry stream with explicit acks. Survives reconnects, server
 * restarts and a consumer deleted behind its back (it is declared again).
 */
export class DurableConsumer {
  private readonly stream: string;
  private readonly log: Logger;
  /**
   * Nats-Msg-Id → stream sequence of the messages this instance acknowledged, the last ACKED_IDS_KEPT of them.
   * nats-server before its clustered de-dupe fix (2025) can store one publish twice across a stream leader election
   * despite its Nats-Msg-Id; the two copies sit next to each other in the stream, so a recent memory finds the second.
   */
  private readonly ackedIds = new Map<string, number>();

  constructor(
    private readonly bus: Bus,
    private readonly options: DurableConsumerOptions,
  ) {
    this.stream = options.stream ?? STREAMS.telemetry;
    this.log = options.logger.child({ consumer: options.durable });
  }

  get name(): string {
    return this.options.durable;
  }

  /**
   * Creates the durable consumer at its start position, or updates the settings of the one that exists (idempotent).
   * Returns false when it does not exist and `existingOnly` forbids creating it.
   */
  async declare(): Promise<boolean> {
    const jsm = this.bus.jsm();
    // Only what NATS lets a consumer change. Its deliver policy and start are not among them: an update naming them
    // fails ("deliver policy can not be updated") when they differ, and the position must survive restarts anyway.
    const settings = {
      filter_subject: this.options.filterSubject,
      max_ack_pending: this.options.maxAckPending ?? 1000,
      ack_wait: nanos(this.options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS),
      // Unlimited: only a handler's PermanentError dead-letters; an outage must not.
      max_deliver: -1,
    };
    const update = async () => {
      try {
        await jsm.consumers.update(this.stream, this.options.durable, settings);
      } catch (err) {
        // nats-server 2.9.10 refuses every change to a consumer made at a start time ("start time can not be
        // updated", the only start a route's first consumer has): it is used as it is. Its filter is never what
        // changes: a route's change of source makes a new consumer (routeConsumer).
        if (!/can not be updated/.test((err as Error).message)) throw err;
        this.log.warn(
          { err: (err as Error).message, wanted: settings },
          "nats-server refused to change the consumer's settings; using it as it is",
        );
      }
      return true;
    };
    if (await consumerBacklog(this.bus, this.options.durable, this.stream)) return update();
    if (this.options.existingOnly) return false;
    const start = this.options.startTime;
    const at = this.options.startSequence;
    try {
      await jsm.consumers.add(this.stream, {
        ...settings,
        durable_name: this.options.durable,
        ack_policy: AckPolicy.Explicit,
        ...(at !== undefined
          ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: at }
          : start
            ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start.toISOString() }
            : { deliver_policy: DeliverPolicy.New }),
      });
      this.log.info({ start: at !== undefined ? `sequence ${at}` : (start?.toISOString() ?? "new messages") }, "durable consumer created");
      return true;
    } catch (err) {
      // Another replica created it first (with other settings, or "new" resolved at another moment): use that one.
      if (await consumerBacklog(this.bus, this.options.durable, this.stream)) return update();
      throw err;
    }
  }

  /** Pending (not yet delivered) and unacknowledged counts, for status. */
  /** Undelivered and unacknowledged messages; none for a consumer that does not exist (or is being deleted). */
  async pending(): Promise<{ pending: number; ackPending: number }> {
    const held = await this.backlog();
    return { pending: held?.pending ?? 0, ackPending: held?.ackPending ?? 0 };
  }

  /** What the consumer still holds; undefined when it does not exist. */
  async backlog(): Promise<ConsumerBacklog | undefined> {
    return consumerBacklog(this.bus, this.options.durable, this.stream);
  }

  /** Deletes the consumer with its backlog; returns what it held (undefined when it did not exist). */
  async delete(): Promise<ConsumerBacklog | undefined> {
    return deleteConsumer(this.bus, this.options.durable, this.stream);
  }

  /**
   * Deliveries until the signal aborts (or, with `existingOnly`, the consumer is gone). Undecodable messages are
   * dead-lettered here, never shown to the handler. Every failure of the bus is retried with backoff.
   */
  async *deliveries(signal: AbortSignal): AsyncGenerator<Delivery> {
    this.bus.watchBacklog({ stream: this.stream, durable: this.options.durable, filterSubject: this.options.filterSubject }, signal);
    for (let attempt = 1; !signal.aborted; ) {
      let messages: ConsumerMessages | undefined;
      const stop = () => messages?.stop();
      try {
        await this.bus.ready;
        if (!(await this.declare())) {
          this.log.info("durable consumer gone; no more deliveries");
          break;
        }
        const consumer = await this.bus.js().consumers.get(this.stream, this.options.durable);
        messages = await consumer.consume({ max_messages: this.options.pullBatch ?? 256 });
        signal.addEventListener("abort", stop, { once: true });
        // An abort that came while the consumer was being set up fired before the listener existed: without this
        // check the loop below would wait for a message that may never come, and the caller's stop() with it.
        if (signal.aborted) break;
        void this.watchConsumer(messages);
        attempt = 1;
        for await (const m of messages) {
          const delivery = await this.toDelivery(m);
          if (delivery) yield delivery;
          if (signal.aborted) break;
        }
      } catch (err) {
        if (signal.aborted) break;
        this.log.warn({ err, attempt }, "consumer failed; retrying");
      } finally {
        signal.removeEventListener("abort", stop);
        messages?.stop();
      }
      if (signal.aborted) break;
      await sleep(backoffDelay(attempt++, { initialMs: 250, maxMs: 5000, multiplier: 2, jitter: 0.2 }), signal).catch(() => {});
    }
  }

  private rememberAcked(msgId: string, seq: number): void {
    this.ackedIds.set(msgId, seq);
    if (this.ackedIds.size > ACKED_IDS_KEPT) {
      const oldest = this.ackedIds.keys().next().value;
      if (oldest !== undefined) this.ackedIds.delete(oldest);
    }
  }

  // A consumer or stream that vanished (server restarted without its store) makes consume() spin;
  // stopping it sends deliveries() round its loop, which declares both again.
  private async watchConsumer(messages: ConsumerMessages): Promise<void> {
    for await (const s of await messages.status()) {
      if (s.type === "consumer_not_found" || s.type === "consumer_deleted" || s.type === "stream_not_found") {
        this.log.warn({ event: s.type }, "consumer lost; declaring it again");
        messages.stop();
        return;
      }
    }
  }

  private async toDelivery(m: JsMsg): Promise<Delivery | undefined> {
    // A dead letter replayed for another route's sink: this sink delivered (or skipped) the original already.
    const replayFor = m.headers?.get(REPLAY_CONSUMER_HEADER);
    if (replayFor && replayFor !== this.options.durable) {
      m.ack();
      this.log.debug({ seq: m.seq, replayFor }, "replay for another consumer; skipped");
      return undefined;
    }
    const events = this.options.eventFilter;
    // Another device's own message: acknowledged without decoding it.
    if (events && !subjectMayHold(m.subject, events)) {
      m.ack();
      return undefined;
    }
    const deliveryCount = m.info.deliveryCount;
    const msgId = m.headers?.get("Nats-Msg-Id");
    const twin = msgId ? this.ackedIds.get(msgId) : undefined;
    if (twin !== undefined && twin !== m.seq) {
      // The same publish stored a second time (see ackedIds): the first copy was handled and acknowledged here.
      m.ack();
      this.log.warn({ seq: m.seq, firstSeq: twin, msgId }, "the stream holds this publish twice (same Nats-Msg-Id); the copy is skipped");
      return undefined;
    }
    const deadLetter = async (reason: string, detail?: string) => {
      const schema = m.headers?.get(SCHEMA_HEADER);
      try {
        await this.bus.publishDeadLetter({
          consumer: this.options.durable,
          data: m.data,
          reason,
          ...(detail ? { detail } : {}),
          original: { subject: m.subject, sequence: m.seq, deliveries: deliveryCount },
          ...(schema ? { headers: { [SCHEMA_HEADER]: schema } } : {}),
          msgId: `${this.options.durable}:${m.seq}`,
        });
        m.term();
        this.log.warn({ seq: m.seq, subject: m.subject, reason }, "dead-lettered");
      } catch (err) {
        // Losing the reason would lose the data: keep it on the stream and try again later.
        this.log.error({ err, seq: m.seq }, "dead-letter publish failed; will retry the message");
        m.nak(backoffDelay(deliveryCount, this.options.backoff ?? REDELIVERY_BACKOFF));
      }
    };
    let batch: TelemetryBatch;
    try {
      batch = decodeBatch(m.data);
    } catch (err) {
      await deadLetter("undecodable message", (err as Error).message);
      return undefined;
    }
    if (events) {
      const kept = batch.events.filter((e) => sourceMatches(events, e.source));
      if (kept.length === 0) {
        m.ack();
        return undefined;
      }
      // A dead letter keeps the whole message (m.data): replayed to this consumer, it is filtered again.
      if (kept.length < batch.events.length) batch.events = kept;
    }
    return {
      batch,
      subject: m.subject,
      streamSequence: m.seq,
      deliveryCount,
      sizeBytes: m.data.length,
      ack: () => {
        m.ack();
        if (msgId) this.rememberAcked(msgId, m.seq);
      },
      retry: (delayMs) => {
        const delay = redeliveryDelay(delayMs ?? backoffDelay(deliveryCount, this.options.backoff ?? REDELIVERY_BACKOFF));
        m.nak(delay);
        this.bus.noteRedelivery(this.stream, this.options.durable, m.seq, delay);
      },
      working: () => m.working(),
      deadLetter,
    };
  }

  /**
   * Runs a handler per delivery, one at a time: success acks, PermanentError dead-letters with its
   * reason, anything else is retried later (the error's `retryAfterMs` wins over the backoff).
   */
  async run(handler: (d: Delivery) => Promise<void>, signal: AbortSignal): Promise<void> {
    for await (const d of this.deliveries(signal)) {
      await settle(d, () => handler(d), this.log);
    }
  }

  /**
   * As run(), with up to `maxInFlight` deliveries handled at once (a send that waits does not hold the others), and
   * resolves once every one started is settled. A delivery in progress for longer than a third of the ack wait is
   * marked working, in one sweep for all of them rather than a bus write per message (nearly every one is done long
   * before), so that the server does not redeliver a message still being sent. With `batchAcks`, the acks of the
   * deliveries settled within one turn of the event loop are sent together at the end of it (and any still queued
   * before this resolves).
   */
  async runParallel(handler: (d: Delivery) => Promise<void>, signal: AbortSignal, options: ParallelRunOptions): Promise<void> {
    const inProgress = new Map<Delivery, number>();
    const every = Math.max(100, Math.floor((this.options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS) / 3));
    const timer = setInterval(() => {
      const before = Date.now() - every;
      for (const [d, since] of inProgress) if (since <= before) d.working();
    }, every);
    timer.unref();
    const acks = new EndOfTurn<Delivery>((ds) => {
      for (const d of ds) d.ack();
    });
    const ack = options.batchAcks ? (d: Delivery) => acks.add(d) : undefined;
    let working = 0;
    let slotFree: (() => void) | undefined;
    let allDone: (() => void) | undefined;
    try {
      for await (const d of this.deliveries(signal)) {
        working++;
        inProgress.set(d, Date.now());
        void settle(d, () => handler(d), this.log, ack).finally(() => {
          inProgress.delete(d);
          working--;
          slotFree?.();
          slotFree = undefined;
          if (working === 0) allDone?.();
        });
        if (working >= options.maxInFlight) await new Promise<void>((r) => (slotFree = r));
      }
      if (working > 0) await new Promise<void>((r) => (allDone = r));
    } finally {
      clearInterval(timer);
      acks.flush();
    }
  }
}

export interface ParallelRunOptions {
  /** Deliveries handled at once. */
  maxInFlight: number;
  /**
   * Send the acks of the deliveries settled within one turn together, at its end, rather than each as its handler
   * resolves: the bus client writes what is queued within one turn at once, and a sink whose sends are answered one
   * by one (PUBACKs, HTTP responses) would otherwise start a write per ack. Default false: `ack()` at once.
   */
  batchAcks?: boolean | undefined;
}

/**
 * A nak delay NATS keeps as meant. A longer one than MAX_RETRY_AFTER_MS may outlive the stream's age limit (the message
 * expires with no dead letter and no log), and one past int64 nanoseconds wraps into an immediate redelivery.
 */
export function redeliveryDelay(ms: number): number {
  return Number.isNaN(ms) || ms <= 0 ? 0 : Math.min(Math.round(ms), MAX_RETRY_AFTER_MS);
}

/** Runs `work` and settles the delivery by its outcome; the one place that maps errors to ack verbs. */
export async function settle(
  d: Delivery,
  work: () => Promise<void>,
  log: Logger,
  ack: (d: Delivery) => void = (x) => x.ack(),
): Promise<void> {
  try {
    await work();
    ack(d);
  } catch (err) {
    if (err instanceof PermanentError) await d.deadLetter(err.message, err.detail);
    else {
      const hint = retryHintOf(err);
      if (hint?.clamped)
        log.warn(
          { seq: d.streamSequence, retryAfterRequestedMs: hint.requestedMs, retryAfterMs: hint.ms },
          "Retry-After longer than the cap; redelivering after the cap",
        );
      log.warn({ err: (err as Error).message, seq: d.streamSequence, deliveries: d.deliveryCount }, "delivery failed; will retry");
      d.retry(hint?.ms);
    }
  }
}
