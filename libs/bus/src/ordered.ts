/**
 * Meridian's ordered consumer: a stream's messages on one filter subject, each once and in stream order, for live
 * views (Subscribe, watchCommands, watchWritableProperties).
 *
 * Why not the nats client's `consumers.get(stream, opts).consume()`: it trusts the server to end every pull request
 * with a status carrying the count it left undelivered, and feeds its iterator as fast as the server sends. A pull
 * that ends without that status (nats-server 2.9 drops a request that expired while it was delivering, without a
 * word) leaves the client counting messages that will never come: it pulls no more, the server has no request so
 * sends no heartbeat either, and the stream stops until the client's heartbeat check fires after 2 × idle_heartbeat
 * (30 s with the default 30 s expiry), then resumes with nothing lost. Here every pull has a deadline the client
 * keeps itself, and the number of messages asked for is bounded by what the caller has not taken yet.
 *
 * The consumer is ephemeral (AckNone, memory storage, one replica, short inactive threshold): it holds no state
 * worth keeping. When a message is missing (consumer sequence gap), heartbeats stop while a pull is open, the
 * consumer is gone, or the connection comes back, a new one is created from the stream sequence after the last
 * message handed out.
 */
import { backoffDelay } from "@meridian/retry";
import {
  AckPolicy,
  type ConsumerConfig,
  createInbox,
  DeliverPolicy,
  type JetStreamManager,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type NatsError,
  nanos,
  nuid,
  type Subscription,
} from "nats";
import type { Logger } from "pino";
import { isPermissionError } from "./errors.js";

/** A message of the stream as the ordered consumer hands it out. */
export interface StreamMessage {
  subject: string;
  data: Uint8Array;
  /** Stream sequence. */
  seq: number;
  headers?: MsgHdrs;
}

export interface OrderedOptions {
  stream: string;
  filterSubject: string;
  /** From this time on; unset: only what is stored from now on. */
  startTime?: Date;
  signal?: AbortSignal;
  /**
   * How long one pull request stays open on the server (ms). A pull that ends unannounced is noticed by this
   * deadline at the latest, or after three missed heartbeats (a fifth of it, at most 500 ms) if sooner.
   */
  expiresMs?: number;
  /** Messages asked for but not yet taken by the caller, at most (bounds memory per live view). */
  maxMessages?: number;
}

export const ORDERED_LIMITS = {
  expiresMs: { min: 1000, max: 60_000, default: 5000 },
  maxMessages: { min: 2, max: 10_000, default: 512 },
} as const;

/** JetStream API prefix of the connection's own account (no domain: Meridian's deployments use none). */
const API_PREFIX = "$JS.API";
/** How often open pulls are checked for their deadline and for missed heartbeats (ms). */
const TICK_MS = 100;
/** Re-creating a consumer that could not be created (server restarting, stream not back yet). */
const RECREATE_BACKOFF = { initialMs: 100, maxMs: 2000, multiplier: 2, jitter: 0.2 };

function bounded(name: keyof typeof ORDERED_LIMITS, value: number | undefined): number {
  const { min, max, default: fallback } = ORDERED_LIMITS[name];
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`ordered consumer: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

interface Pull {
  remaining: number;
  deadline: number;
}

/** Stream and consumer sequences from a JetStream message's reply subject (`$JS.ACK.…`), both server formats. */
export function parseAckSubject(reply: string | undefined): { consumer: string; streamSeq: number; deliverySeq: number } | undefined {
  if (!reply) return undefined;
  const t = reply.split(".");
  // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>, or with <domain>.<account hash> after ACK.
  const at = t.length === 9 ? 0 : t.length >= 11 ? 2 : -1;
  if (at < 0 || t[0] !== "$JS" || t[1] !== "ACK") return undefined;
  const streamSeq = Number(t[5 + at]);
  const deliverySeq = Number(t[6 + at]);
  if (!Number.isSafeInteger(streamSeq) || !Number.isSafeInteger(deliverySeq)) return undefined;
  return { consumer: t[3 + at] as string, streamSeq, deliverySeq };
}

export class OrderedConsumer implements AsyncIterable<StreamMessage> {
  private readonly expiresMs: number;
  private readonly heartbeatMs: number;
  private readonly maxMessages: number;
  private readonly inbox: string;
  private readonly namePrefix = nuid.next();
  private serial = 0;
  private sub: Subscription | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** The connection's status events; stopping it removes this consumer's listener from the connection. */
  private status: (AsyncIterable<{ type: string }> & { stop?: () => void }) | undefined;
  private consumer: string | undefined;
  /** Stream sequence of the last message queued for the caller: a new consumer starts after it. */
  private lastSeq = 0;
  private nextDeliverySeq = 1;
  private readonly queue: StreamMessage[] = [];
  private readonly pulls = new Map<string, Pull>();
  private pullCount = 0;
  private outstanding = 0;
  /** When the server last said anything to an open pull (message, heartbeat, status), or the first was opened. */
  private lastHeard = 0;
  private disconnected = false;
  private recreating: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private done = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    inboxPrefix: string | undefined,
    private readonly options: OrderedOptions,
    private readonly log: Logger,
  ) {
    this.expiresMs = bounded("expiresMs", options.expiresMs);
    this.maxMessages = bounded("maxMessages", options.maxMessages);
    // Three missed heartbeats mean the pull is gone: frequent enough to notice it within a second and a half.
    this.heartbeatMs = Math.min(500, Math.floor(this.expiresMs / 5));
    this.inbox = createInbox(inboxPrefix);
  }

  /** Creates the first consumer; resolves once messages stored from now on (or from `startTime`) will be seen. */
  async start(): Promise<void> {
    this.sub = this.nc.subscribe(`${this.inbox}.*`, { callback: (err, m) => this.onMessage(err, m) });
    try {
      await this.create(true);
    } catch (err) {
      this.close();
      throw err;
    }
    this.watchConnection();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.pull();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamMessage> {
    try {
      for (;;) {
        if (this.failure) throw this.failure;
        if (this.done) return;
        const m = this.queue.shift();
        if (m) {
          this.pull();
          yield m;
          continue;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      this.close();
    }
  }

  /** Stops pulling and deletes the consumer (the server would after its inactive threshold anyway). */
  close(): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.timer);
    this.sub?.unsubscribe();
    this.status?.stop?.();
    this.deleteConsumer();
    this.wake?.();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.close();
  }

  private consumerConfig(first: boolean): Partial<ConsumerConfig> {
    const config: Partial<ConsumerConfig> = {
      name: `${this.namePrefix}_${++this.serial}`,
      filter_subject: this.options.filterSubject,
      ack_policy: AckPolicy.None,
      max_deliver: 1,
      mem_storage: true,
      num_replicas: 1,
      // A caller that stops taking messages stops pulling; the consumer goes after this and is re-created on demand.
      inactive_threshold: nanos(Math.max(10_000, 3 * this.expiresMs)),
    };
    if (!first) return { ...config, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.lastSeq + 1 };
    if (this.options.startTime) {
      return { ...config, deliver_policy: DeliverPolicy.StartTime, opt_start_time: this.options.startTime.toISOString() };
    }
    return { ...config, deliver_policy: DeliverPolicy.New };
  }

  private async create(first: boolean): Promise<void> {
    const ci = await this.jsm.consumers.add(this.options.stream, this.consumerConfig(first));
    // The server reports where the new consumer starts (New, StartTime): a re-creation continues from there even
    // when no message came in between.
    if (first) this.lastSeq = ci.delivered.stream_seq;
    this.consumer = ci.name;
    this.nextDeliverySeq = 1;
    this.lastHeard = Date.now();
  }

  private deleteConsumer(): void {
    const name = this.consumer;
    this.consumer = undefined;
    if (!name || this.nc.isClosed()) return;
    this.jsm.consumers.delete(this.options.stream, name).catch(() => {
      // Gone already, or unreachable: its inactive threshold removes it.
    });
  }

  /** Replaces the consumer with one starting after the last message queued; retried until it works or the caller stops. */
  private recreate(reason: string): void {
    if (this.recreating || this.done) return;
    this.log.debug(
      { stream: this.options.stream, filter: this.options.filterSubject, reason, after: this.lastSeq },
      "re-creating ordered consumer",
    );
    this.pulls.clear();
    this.outstanding = 0;
    this.deleteConsumer();
    this.recreating = (async () => {
      for (let attempt = 1; !this.done; attempt++) {
        try {
          await this.create(false);
          return;
        } catch (err) {
          if (isPermissionError(err)) {
            this.fail(err as Error);
            return;
          }
          if (attempt === 5)
            this.log.warn({ err, stream: this.options.stream, attempt }, "ordered consumer cannot be re-created yet; retrying");
          await new Promise((r) => setTimeout(r, backoffDelay(attempt, RECREATE_BACKOFF)));
        }
      }
    })().finally(() => {
      this.recreating = undefined;
      this.pull();
    });
  }

  /** Asks for as many messages as the caller has room for, once at least half of the window is free. */
  private pull(): void {
    if (this.done || !this.consumer || this.recreating || this.disconnected) return;
    const free = this.maxMessages - this.queue.length - this.outstanding;
    if (free < this.maxMessages / 2) return;
    const reply = `${this.inbox}.${++this.pullCount}`;
    const now = Date.now();
    if (this.pulls.size === 0) this.lastHeard = now;
    this.pulls.set(reply, { remaining: free, deadline: now + this.expiresMs });
    this.outstanding += free;
    const request = { batch: free, expires: nanos(this.expiresMs), idle_heartbeat: nanos(this.heartbeatMs) };
    try {
      this.nc.publish(`${API_PREFIX}.CONSUMER.MSG.NEXT.${this.options.stream}.${this.consumer}`, JSON.stringify(request), { reply });
    } catch (err) {
      // Closed connection: the caller's loop ends with it.
      this.fail(err as Error);
    }
  }

  private endPull(reply: string): void {
    const p = this.pulls.get(reply);
    if (!p) return;
    this.pulls.delete(reply);
    this.outstanding -= p.remaining;
  }

  private onMessage(err: NatsError | null, m: Msg): void {
    if (this.done) return;
    if (err) {
      this.fail(err);
      return;
    }
    if (m.subject.startsWith(`${this.inbox}.`)) {
      this.onStatus(m);
      return;
    }
    const info = parseAckSubject(m.reply);
    if (!info || info.consumer !== this.consumer) return; // from a consumer replaced meanwhile
    this.lastHeard = Date.now();
    // Pulls are served in the order they were sent; the count only decides when to ask for more.
    for (const [reply, p] of this.pulls) {
      if (--p.remaining <= 0) {
        this.pulls.delete(reply);
      }
      this.outstanding--;
      break;
    }
    if (info.deliverySeq !== this.nextDeliverySeq) {
      this.recreate(`consumer sequence ${info.deliverySeq}, expected ${this.nextDeliverySeq}`);
      return;
    }
    this.nextDeliverySeq++;
    this.lastSeq = info.streamSeq;
    this.queue.push({ subject: m.subject, data: m.data, seq: info.streamSeq, ...(m.headers ? { headers: m.headers } : {}) });
    this.wake?.();
  }

  private onStatus(m: Msg): void {
    if (!this.pulls.has(m.subject)) return; // a pull ended already (deadline) or of a replaced consumer
    this.lastHeard = Date.now();
    const code = m.headers?.code ?? 0;
    if (code === 100) return; // idle heartbeat: the pull is open
    this.endPull(m.subject);
    const description = (m.headers?.description ?? "").toLowerCase();
    // 404/503: no such consumer (deleted behind our back, server restarted); 409 consumer deleted, leadership change,
    // server shutdown: this consumer will deliver no more.
    if (code === 404 || code === 503 || (code === 409 && !description.includes("exceeded"))) {
      this.recreate(`${code} ${description}`);
      return;
    }
    // 408: expired (or another ending the next pull replaces).
    this.pull();
  }

  private tick(): void {
    if (this.done || this.recreating || this.disconnected) return;
    const now = Date.now();
    let ended = false;
    for (const [reply, p] of this.pulls) {
      if (p.deadline <= now) {
        this.endPull(reply);
        ended = true;
      }
    }
    if (this.pulls.size > 0 && now - this.lastHeard > 3 * this.heartbeatMs) {
      this.recreate("no heartbeat");
      return;
    }
    if (ended) this.pull();
  }

  private watchConnection(): void {
    const status = this.nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
    this.status = status;
    void (async () => {
      for await (const s of status) {
        if (this.done) return;
        if (s.type === "disconnect") {
          this.disconnected = true;
        } else if (s.type === "reconnect") {
          this.disconnected = false;
          // A memory consumer does not survive a server restart; a live one may have lost our open pulls.
          this.recreate("reconnected");
        }
      }
    })().catch(() => {});
  }
}

/** The messages of an ordered consumer until the signal aborts or the caller stops iterating. */
export async function* orderedMessages(
  nc: NatsConnection,
  jsm: JetStreamManager,
  inboxPrefix: string | undefined,
  options: OrderedOptions,
  log: Logger,
): AsyncGenerator<StreamMessage> {
  const consumer = new OrderedConsumer(nc, jsm, inboxPrefix, options, log);
  if (options.signal?.aborted) return;
  await consumer.start();
  const stop = () => consumer.close();
  if (options.signal?.aborted) stop();
  options.signal?.addEventListener("abort", stop, { once: true });
  try {
    yield* consumer;
  } finally {
    options.signal?.removeEventListener("abort", stop);
    consumer.close();
  }
}
