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
