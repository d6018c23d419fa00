/**
 * How far behind each durable consumer of this process is, checked against the stream: the age of its oldest
 * unacknowledged message, and whether the stream's limits discarded messages it had not acknowledged. NATS removes
 * such messages silently (an unacknowledged one counts as acknowledged, an undelivered one is skipped), so without
 * this check a sink that fell behind the stream's age or size limit loses telemetry with no trace.
 */
import type { JetStreamManager, MsgRequest } from "nats";
import type { Logger } from "pino";
import { isNotFound } from "./errors.js";

/** What the check needs of the bus. */
interface BusView {
  readonly connected: boolean;
  jsm(): JetStreamManager;
}

/** A durable consumer to keep an eye on. */
export interface BacklogTarget {
  stream: string;
  durable: string;
  filterSubject: string;
}

/** One consumer's backlog as of the last check. */
export interface BacklogState {
  consumer: string;
  stream: string;
  /** Age of the oldest message it has not acknowledged (delivered or not); 0 when it has none. */
  oldestUnackedAgeMs: number;
  /** Messages not yet delivered, and delivered but not yet acknowledged. */
  pending: number;
  ackPending: number;
  /** Checks that found the stream had discarded messages this consumer had not acknowledged. */
  discards: number;
  lastDiscardAt?: Date;
  checkedAt?: Date;
}

/** Something an operator should look at while the service keeps running; reported in the service's status. */
export interface BusWarning {
  kind: "backlog_age" | "discarded_unacknowledged";
  /** What it is about: the durable consumer's name. */
  subject: string;
  message: string;
  since: Date;
}

export interface BacklogOptions {
  /** A backlog older than this is warned about (BACKLOG_AGE_WARN_SECONDS). */
  warnAgeMs: number;
  /** How often every watched consumer is checked. */
  intervalMs: number;
  logger: Logger;
}

export const DEFAULT_BACKLOG_CHECK_INTERVAL_MS = 30_000;
/** How long a discard stays a warning in the status after it was found. */
export const DISCARD_WARNING_MS = 15 * 60_000;

interface Watched {
  target: BacklogTarget;
  users: number;
  state: BacklogState;
  /** What the last check saw: the oldest unacknowledged and the oldest undelivered message, and deliveries so far. */
  last?: { oldestUnacked?: number; oldestUndelivered?: number; deliveries: number };
  /** When the backlog first passed the age limit; unset while it is under. */
  oldSince?: Date;
  /** Messages this process handed back for redelivery, by stream sequence: when the server may deliver them again. */
  redeliveries: Map<number, number>;
}

/** A consumer newly watched is first checked this soon, then with the others every interval. */
const FIRST_CHECK_AFTER_MS = 1000;

/** Redeliveries remembered per consumer; beyond it the oldest are forgotten (a nak delay is at most minutes). */
const MAX_REDELIVERIES = 10_000;

export class BacklogMonitor {
  private readonly watched = new Map<string, Watched>();
  private timer: NodeJS.Timeout | undefined;
  private firstCheck: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(
    private readonly bus: BusView,
    private readonly options: BacklogOptions,
  ) {
    this.log = options.logger;
  }

  /** Checks the consumer from now until the signal aborts (a consumer of several loops is watched once). */
  watch(target: BacklogTarget, signal: AbortSignal): void {
    if (signal.aborted) return;
    const key = `${target.stream}/${target.durable}`;
    let w = this.watched.get(key);
    if (w) w.users++;
    else {
      w = {
        target,
        users: 1,
        state: { consumer: target.durable, stream: target.stream, oldestUnackedAgeMs: 0, pending: 0, ackPending: 0, discards: 0 },
        redeliveries: new Map(),
      };
      this.watched.set(key, w);
      // A new consumer's lag and pending are known within a second rather than after a whole interval: status reports
      // and `meridian status` show "-" until then.
      this.firstCheck ??= setTimeout(() => {
        this.firstCheck = undefined;
        void this.check();
      }, FIRST_CHECK_AFTER_MS).unref();
    }
    const entry = w;
    signal.addEventListener(
      "abort",
      () => {
        if (--entry.users === 0 && this.watched.get(key) === entry) this.watched.delete(key);
        if (this.watched.size === 0) this.stopTimer();
      },
      { once: true },
    );
    this.timer ??= setInterval(() => void this.check(), this.options.intervalMs).unref();
  }

  noteRedelivery(stream: string, durable: string, seq: number, delayMs: number): void {
    const w = this.watched.get(`${stream}/${durable}`);
    if (!w) return;
    w.redeliveries.delete(seq);
    w.redeliveries.set(seq, Date.now() + delayMs);
    if (w.redeliveries.size > MAX_REDELIVERIES) w.redeliveries.delete(w.redeliveries.keys().next().value as number);
  }

  stop(): void {
    this.stopTimer();
    this.watched.clear();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.firstCheck) clearTimeout(this.firstCheck);
    this.timer = undefined;
    this.firstCheck = undefined;
  }

  /** Every watched consumer as of its last check. */
  snapshot(): BacklogState[] {
    return [...this.watched.values()].map((w) => ({ ...w.state }));
  }

  /** One consumer as of its last check; undefined while it is not watched. */
  stateOf(stream: string, durable: string): BacklogState | undefined {
    const w = this.watched.get(`${stream}/${durable}`);
    return w ? { ...w.state } : undefined;
  }

  warnings(now = new Date()): BusWarning[] {
    const out: BusWarning[] = [];
    for (const w of this.watched.values()) {
      const s = w.state;
      if (w.oldSince)
        out.push({
          kind: "backlog_age",
          subject: s.consumer,
          since: w.oldSince,
          message:
            `oldest unacknowledged message is ${formatAge(s.oldestUnackedAgeMs)} old (BACKLOG_AGE_WARN_SECONDS=${Math.round(this.options.warnAgeMs / 1000)}); ` +
            `${s.pending} waiting, ${s.ackPending} unacknowledged; at the ${s.stream} stream's age or size limit they are discarded`,
        });
      if (s.lastDiscardAt && now.getTime() - s.lastDiscardAt.getTime() < DISCARD_WARNING_MS)
        out.push({
          kind: "discarded_unacknowledged",
          subject: s.consumer,
          since: s.lastDiscardAt,
          message:
            `the ${s.stream} stream discarded messages this consumer had not acknowledged (found ${s.discards} times, last at ${s.lastDiscardAt.toISOString()}): ` +
            "telemetry was lost for its sink; give the stream more room (TELEMETRY_MAX_AGE_HOURS, TELEMETRY_MAX_BYTES) or the sink more capacity",
        });
    }
    return out;
  }

  /** Checks every watched consumer now (the timer does this every interval); one check at a time. */
  check(): Promise<void> {
    this.checking ??= this.checkAll().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async checkAll(): Promise<void> {
    if (!this.bus.connected) return;
    const streams = new Map<string, { first: number; last: number } | undefined>();
    for (const w of [...this.watched.values()]) {
      try {
        const stream = w.target.stream;
        if (!streams.has(stream)) {
          const info = await this.bus.jsm().streams.info(stream);
          streams.set(stream, { first: info.state.first_seq, last: info.state.last_seq });
        }
        const bounds = streams.get(stream);
        if (bounds) await this.checkOne(w, bounds);
      } catch (err) {
        if (isNotFound(err)) continue; // declared again by its consumer loop
        this.log.debug({ err, consumer: w.target.durable }, "backlog check failed");
      }
    }
  }

  private async checkOne(w: Watched, stream: { first: number; last: number }): Promise<void> {
    const jsm = this.bus.jsm();
    const info = await jsm.consumers.info(w.target.stream, w.target.durable);
    // An info without fields: the consumer is being deleted (see consumerInfo in consumer.ts).
    if (info.delivered === undefined) return;
    const now = new Date();
    const delivered = info.delivered.stream_seq;
    const deliveries = info.delivered.consumer_seq;
    const unacked = info.num_pending + info.num_ack_pending;

    // NATS removes a message from under a consumer without a trace: an unacknowledged one counts as acknowledged, an
    // undelivered one is skipped. So the loss is found by comparison with the last check: the stream now starts after
    // a message the consumer had not acknowledged then, and either that message had not been delivered and nothing
    // was delivered since (or the position is still before it), or the consumer is still behind: the stream's limit is
    // cutting into its backlog. Or a message this process handed back for a later redelivery is gone before it.
    const last = w.last;
    const undeliveredGone =
      last?.oldestUndelivered !== undefined &&
      stream.first > last.oldestUndelivered &&
      (delivered < last.oldestUndelivered || deliveries === last.deliveries);
    const unackedGone = last?.oldestUnacked !== undefined && stream.first > last.oldestUnacked && unacked > 0;
    // A message this process handed back for redelivery that is gone before the server could deliver it again: no one
    // can have acknowledged it.
    let handedBackGone = 0;
    for (const [seq, redeliverAt] of w.redeliveries) {
      if (redeliverAt <= now.getTime()) w.redeliveries.delete(seq);
      else if (seq < stream.first) {
        handedBackGone++;
        w.redeliveries.delete(seq);
      }
    }
    if (undeliveredGone || unackedGone || handedBackGone > 0) {
      w.state.discards++;
      w.state.lastDiscardAt = now;
      this.log.warn(
        {
          consumer: w.target.durable,
          stream: w.target.stream,
          oldestUnackedSeq: last?.oldestUnacked,
          oldestUndeliveredSeq: last?.oldestUndelivered,
          streamFirstSeq: stream.first,
          handedBackForRedelivery: handedBackGone,
          pending: info.num_pending,
          ackPending: info.num_ack_pending,
        },
        "the stream discarded messages this consumer had not acknowledged: telemetry lost for its sink",
      );
    }

    // The first message of the filter at or after a sequence (nats.js types lack next_by_subj; the server has it
    // since 2.9). Undefined when there is none.
    const firstFrom = async (seq: number) => {
      try {
        const request = { seq: Math.max(seq, stream.first), next_by_subj: w.target.filterSubject };
        return await jsm.streams.getMessage(w.target.stream, request as unknown as MsgRequest);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    };
    let ageMs = 0;
    const next: NonNullable<Watched["last"]> = { deliveries };
    if (unacked > 0) {
      const oldest = await firstFrom(info.ack_floor.stream_seq + 1);
      if (oldest) {
        ageMs = Math.max(0, now.getTime() - oldest.time.getTime());
        next.oldestUnacked = oldest.seq;
        if (info.num_pending > 0) next.oldestUndelivered = oldest.seq > delivered ? oldest.seq : (await firstFrom(delivered + 1))?.seq;
      }
    }
    w.last = next;
    Object.assign(w.state, { oldestUnackedAgeMs: ageMs, pending: info.num_pending, ackPending: info.num_ack_pending, checkedAt: now });

    if (ageMs > this.options.warnAgeMs) {
      if (!w.oldSince) {
        w.oldSince = now;
        this.log.warn(
          {
            consumer: w.target.durable,
            oldestUnackedAgeSeconds: Math.round(ageMs / 1000),
            warnAgeSeconds: Math.round(this.options.warnAgeMs / 1000),
            pending: info.num_pending,
            ackPending: info.num_ack_pending,
          },
          "consumer backlog older than BACKLOG_AGE_WARN_SECONDS",
        );
      }
    } else if (w.oldSince) {
      w.oldSince = undefined;
      this.log.info(
        { consumer: w.target.durable, oldestUnackedAgeSeconds: Math.round(ageMs / 1000) },
        "consumer backlog back under its age limit",
      );
    }
  }
}

function formatAge(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
