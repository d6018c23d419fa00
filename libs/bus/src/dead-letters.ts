/** The DEADLETTER stream read, replayed and purged: what an operator does with what sinks and sources gave up on. */
import { randomBytes } from "node:crypto";
import { AckPolicy, type ConsumerConfig, DeliverPolicy, headers, type JsMsg, type MsgHdrs, nanos } from "nats";
import { type Bus, STREAMS } from "./bus.js";
import { SCHEMA_HEADER } from "./codec.js";
import { DEAD_LETTER_HEADERS, REPLAY_HEADERS, replayMsgId } from "./dead-letter.js";
import { isNotFound } from "./errors.js";
import { DEAD_LETTER_ROOT, deadLetterSubject, decodeToken, TELEMETRY_ROOT } from "./subjects.js";

/** A dead letter as the DEADLETTER stream holds it. */
export interface StoredDeadLetter {
  /** Its sequence on the DEADLETTER stream: its id. */
  sequence: number;
  /** When it was stored. */
  time: Date;
  /** The sink's consumer or the source that gave up (Meridian-Consumer, else the subject's last token). */
  consumer: string;
  reason: string;
  detail: string;
  /** Where the message was on the telemetry stream; undefined for a source's dead letter (it never reached the bus). */
  original: { subject: string; sequence: number; deliveries: number } | undefined;
  /** Every header it carries, first value of each. */
  headers: Record<string, string>;
  /** The message as it was received. */
  data: Uint8Array;
}

export interface DeadLetterPageOptions {
  /** First stream sequence to read (a previous page's `next`); wins over `since`. */
  fromSequence?: number | undefined;
  /** From the first dead letter stored at or after this time. */
  since?: Date | undefined;
  /** Only this consumer's dead letters (read through the subject filter, so the others are not even scanned). */
  consumer?: string | undefined;
  /** The page ends at the first dead letter stored at or after this time, and with it the reading (no `next`). */
  until?: Date | undefined;
  /** Matches a page holds at most. */
  limit: number;
  /** Dead letters a page reads at most, matching or not. */
  maxScanned: number;
  /** Further conditions; every dead letter read is a match when unset. Asked of a pull's dead letters at once. */
  match?: ((letter: StoredDeadLetter) => boolean | Promise<boolean>) | undefined;
}

export interface DeadLetterPage {
  letters: StoredDeadLetter[];
  /** Dead letters read for this page. */
  scanned: number;
  /** Where the next page starts; undefined when nothing further is stored. */
  next: number | undefined;
}

/** Messages asked for per pull while a page is read. */
const FETCH_BATCH = 256;
/** How long one pull may wait for messages the consumer said are there (they may have been purged meanwhile). */
const FETCH_EXPIRES_MS = 2000;
/** A reading consumer left behind by a process that died mid-page goes away by itself after this. */
const READER_INACTIVE_MS = 30_000;

/**
 * Reader and writer of the DEADLETTER stream. Pages are read through a short-lived consumer (no acks, in memory) that
 * says up front how many dead letters follow, so a page never waits for messages that are not there.
 */
export class DeadLetters {
  constructor(
    private readonly bus: Bus,
    readonly stream: string = STREAMS.deadLetter,
  ) {}

  /** One dead letter, or undefined when the stream no longer holds it (purged, or past its age). */
  async get(sequence: number): Promise<StoredDeadLetter | undefined> {
    try {
      const m = await this.bus.jsm().streams.getMessage(this.stream, { seq: sequence });
      return parse(m.seq, m.subject, m.time, m.header, m.data);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** A page of dead letters in stream order, from `fromSequence` (or `since`, or the start). */
  async page(options: DeadLetterPageOptions): Promise<DeadLetterPage> {
    const jsm = this.bus.jsm();
    const name = `dlq-read-${randomBytes(6).toString("hex")}`;
    const start: Partial<ConsumerConfig> = options.fromSequence
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: options.fromSequence }
      : options.since
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: options.since.toISOString() }
        : { deliver_policy: DeliverPolicy.All };
    const info = await jsm.consumers.add(this.stream, {
      name,
      ack_policy: AckPolicy.None,
      mem_storage: true,
      inactive_threshold: nanos(READER_INACTIVE_MS),
      filter_subject: options.consumer === undefined ? `${DEAD_LETTER_ROOT}.>` : deadLetterSubject(options.consumer),
      ...start,
    });
    const page: DeadLetterPage = { letters: [], scanned: 0, next: undefined };
    let remaining = info.num_pending;
    let last = 0;
    let ended = false;
    try {
      const consumer = await this.bus.js().consumers.get(this.stream, name);
      reading: while (remaining > 0) {
        const want = Math.min(FETCH_BATCH, remaining, options.maxScanned - page.scanned);
        const batch: Array<{ letter: StoredDeadLetter; pending: number }> = [];
        for await (const m of await consumer.fetch({ max_messages: want, expires: FETCH_EXPIRES_MS })) {
          batch.push({ letter: fromJsMsg(m), pending: m.info.pending });
          if (batch.length === want) break;
        }
        // Told there were more, and none came: they were purged meanwhile.
        if (batch.length === 0) break;
        // A match may read elsewhere (a replay record): a pull's worth is asked at once, not one after the other.
        const match = options.match;
        const matches = match ? await Promise.all(batch.map((b) => match(b.letter))) : undefined;
        for (const [i, { letter, pending }] of batch.entries()) {
          remaining = pending;
          if (options.until && letter.time >= options.until) {
            ended = true;
            break reading;
          }
          page.scanned++;
          last = letter.sequence;
          if (!matches || matches[i]) page.letters.push(letter);
          if (page.letters.length >= options.limit || page.scanned >= options.maxScanned) break reading;
        }
      }
    } finally {
      await jsm.consumers.delete(this.stream, name).catch(() => {});
    }
    if (!ended && remaining > 0 && last > 0) page.next = last + 1;
    return page;
  }

  /** Removes one dead letter; false when the stream did not hold it. */
  async delete(sequence: number): Promise<boolean> {
    try {
      return await this.bus.jsm().streams.deleteMessage(this.stream, sequence, false);
    } catch (err) {
      // nats-server 2.9 answers a sequence it does not hold with 500 "no message found", or "stream store EOF" past
      // the last one (err_code 10057, message delete failed).
      if (isNotFound(err) || /no message found|stream store eof/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  /** Removes every dead letter of one consumer, or (undefined) every dead letter; how many were removed. */
  async purge(consumer?: string): Promise<number> {
    const r = await this.bus.jsm().streams.purge(this.stream, consumer === undefined ? undefined : { filter: deadLetterSubject(consumer) });
    return r.purged;
  }

  /**
   * Puts a sink's dead letter back on its original telemetry subject for `consumer` only (REPLAY_HEADERS), with its
   * schema header, under Nats-Msg-Id `deadletter-replay:<sequence>`: a second replay within the stream's duplicate
   * window is not stored again (`duplicate`, and the first one's sequence).
   */
  async replay(letter: StoredDeadLetter, consumer: string): Promise<{ subject: string; seq: number; duplicate: boolean }> {
    const subject = letter.original?.subject;
    if (!subject?.startsWith(`${TELEMETRY_ROOT}.`))
      throw new Error(`dead letter ${letter.sequence} has no telemetry subject to be replayed on`);
    const h = headers();
    const schema = letter.headers[SCHEMA_HEADER];
    if (schema) h.set(SCHEMA_HEADER, schema);
    h.set(REPLAY_HEADERS.consumer, consumer);
    h.set(REPLAY_HEADERS.of, String(letter.sequence));
    const r = await this.bus.publishReplay(subject, letter.data, h, replayMsgId(letter.sequence));
    return { subject, ...r };
  }
}

function fromJsMsg(m: JsMsg): StoredDeadLetter {
  return parse(m.seq, m.subject, new Date(Math.floor(m.info.timestampNanos / 1e6)), m.headers, m.data);
}

function parse(sequence: number, subject: string, time: Date, h: MsgHdrs | undefined, data: Uint8Array): StoredDeadLetter {
  const all: Record<string, string> = {};
  for (const k of h?.keys() ?? []) all[k] = h?.get(k) ?? "";
  const get = (name: string) => h?.get(name) ?? "";
  const originalSubject = get(DEAD_LETTER_HEADERS.subject);
  return {
    sequence,
    time,
    consumer: get(DEAD_LETTER_HEADERS.consumer) || decodeToken(subject.slice(DEAD_LETTER_ROOT.length + 1)),
    reason: get(DEAD_LETTER_HEADERS.reason),
    detail: get(DEAD_LETTER_HEADERS.detail),
    original: originalSubject
      ? {
          subject: originalSubject,
          sequence: Number(get(DEAD_LETTER_HEADERS.sequence)) || 0,
          deliveries: Number(get(DEAD_LETTER_HEADERS.deliveries)) || 0,
        }
      : undefined,
    headers: all,
    data,
  };
}
