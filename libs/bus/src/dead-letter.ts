import { headers, type MsgHdrs } from "nats";

/** Headers a dead letter carries, so an operator can see why and replay it. */
export const DEAD_LETTER_HEADERS = {
  reason: "Meridian-Dead-Letter-Reason",
  detail: "Meridian-Dead-Letter-Detail",
  consumer: "Meridian-Consumer",
  subject: "Meridian-Original-Subject",
  sequence: "Meridian-Original-Sequence",
  deliveries: "Meridian-Deliveries",
} as const;

/** Header values are one line, and the detail is capped so a dead letter always fits under max_payload. */
const MAX_DETAIL_CHARS = 4000;

/**
 * Something that can never be delivered, with why. A sink's consumer fills in where the message came from on the
 * bus; a source (data that never reached the bus) leaves those out and names its own facts in `headers`.
 */
export interface DeadLetter {
  /** Names the subject (`deadletter.v1.<consumer>`) and the Meridian-Consumer header: the sink or source that gave up. */
  consumer: string;
  /** The message as it was received, so it can be replayed unchanged. */
  data: Uint8Array;
  reason: string;
  /** E.g. the target platform's error body. */
  detail?: string;
  /** Where the original was on the telemetry stream (sinks). */
  original?: { subject: string; sequence: number; deliveries: number };
  /** Further headers a replay needs (the schema of the payload, a source's monitor and format). */
  headers?: Readonly<Record<string, string>>;
  /** Nats-Msg-Id, so a dead letter published twice (a retry after a lost ack) is stored once. */
  msgId?: string;
}

export function deadLetterHeaders(letter: DeadLetter): MsgHdrs {
  const h = headers();
  for (const [k, v] of Object.entries(letter.headers ?? {})) h.set(k, oneLine(v));
  h.set(DEAD_LETTER_HEADERS.reason, oneLine(letter.reason));
  if (letter.detail) h.set(DEAD_LETTER_HEADERS.detail, oneLine(letter.detail).slice(0, MAX_DETAIL_CHARS));
  h.set(DEAD_LETTER_HEADERS.consumer, letter.consumer);
  if (letter.original) {
    h.set(DEAD_LETTER_HEADERS.subject, letter.original.subject);
    h.set(DEAD_LETTER_HEADERS.sequence, String(letter.original.sequence));
    h.set(DEAD_LETTER_HEADERS.deliveries, String(letter.original.deliveries));
  }
  return h;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, " ");
}

/**
 * Headers of a dead letter replayed onto the telemetry stream. Only the durable consumer named in `consumer` delivers
 * it; every other consumer on its subject, and live telemetry, skip it (it was delivered there the first time).
 */
export const REPLAY_HEADERS = {
  consumer: "Meridian-Replay-Consumer",
  /** The dead letter's sequence on the DEADLETTER stream. */
  of: "Meridian-Replay-Of",
} as const;
export const REPLAY_CONSUMER_HEADER = REPLAY_HEADERS.consumer;

/** Nats-Msg-Id of a dead letter's replay: a concurrent or retried replay within the duplicate window is stored once. */
export function replayMsgId(deadLetterSequence: number): string {
  return `deadletter-replay:${deadLetterSequence}`;
}
