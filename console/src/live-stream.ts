import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Platform, TelemetryEvent } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { type ClientOf, describeError } from "./api.js";
import { RingBuffer } from "./ui/ring.js";

/** Ids remembered to skip an event a reopened stream sends again. */
export const SEEN_IDS = 50_000;
/**
 * Messages read from one Subscribe call before the page closes it and opens the next from the last event's time.
 *
 * Why: @connectrpc/connect 2.3.0 (protocol/run-call.js, runStreamingCall) races each read of a server stream against
 * one promise that settles only when the call ends (`Promise.race([it.next(), aborted])`). Every race leaves a
 * reaction on that promise, so a call holds ~120 bytes per message until it ends: a heap snapshot of the page after
 * 200,000 events held 200,000 PromiseReactions chained on it (issue 16). The library offers no way around the race,
 * so the page ends each call after this many messages and follows on with the next, as it does after a dropped
 * connection; the events the two calls share are skipped by id.
 *
 * Why 50,000 (~6 MB held at most, a new call every 50 s at 1k events/s): fewer calls mean fewer replays and consumers
 * at the gateway, and a call's response (~450 bytes a message in JSON: ~22 MB) outgrows the 20 MB that Chromium's
 * DevTools keeps of one response. With DevTools' network recording on (an open Network panel, or anything driving the
 * browser over DevTools, as bench:console does through Playwright) every shorter call's whole body is kept, up to
 * 200 MB: at 10,000 messages a call the page's renderer grew ~25 MiB/min in bench:console, at 60,000 it stayed flat.
 */
export const MESSAGES_PER_CALL = 50_000;

/**
 * The ids of the last `limit` events seen: bounded, oldest forgotten first. The order is kept in a ring rather than
 * by deleting a Set's first entry: V8 leaves a hole per deleted entry until it rehashes, and a new iterator walks
 * every hole from the start, so `set.values().next()` costs thousands of steps per event once the set is full.
 */
export class RecentIds {
  readonly #ids = new Set<string>();
  readonly #order: RingBuffer<string>;
  constructor(readonly limit: number) {
    this.#order = new RingBuffer(limit);
  }

  get size(): number {
    return this.#ids.size;
  }

  /** True when `id` is new (and now remembered); false when it was seen among the last `limit`. */
  add(id: string): boolean {
    if (this.#ids.has(id)) return false;
    if (this.#order.length === this.limit) this.#ids.delete(this.#order.at(0)!);
    this.#order.push(id);
    this.#ids.add(id);
    return true;
  }
}

export interface FollowOptions {
  client: ClientOf;
  filter: { platform: Platform; connection: string; device: string };
  /** Replay from this time; unset: events published from now on. */
  start?: Date;
  signal: AbortSignal;
  /** Each event once, in stream order. */
  onEvent: (event: TelemetryEvent) => void;
  /** What the stream is doing, said for a person. */
  onState: (text: string) => void;
  onAuthFailure: (message: string) => void;
  messagesPerCall?: number;
  seenIds?: number;
}

/**
 * Follows Subscribe until `signal` aborts: reopened after a failure (a gateway restart) from the last event's time,
 * with backoff, and after every `messagesPerCall` messages (see MESSAGES_PER_CALL); events already seen are skipped.
 * Stops for good on a refused key, a missing role or a filter the gateway refuses.
 */
export async function followTelemetry(o: FollowOptions): Promise<void> {
  const perCall = o.messagesPerCall ?? MESSAGES_PER_CALL;
  const seen = new RecentIds(o.seenIds ?? SEEN_IDS);
  let from = o.start;
  let delay = 500;
  while (!o.signal.aborted) {
    let read = 0;
    try {
      o.onState("Following the stream.");
      const stream = o
        .client(TelemetryService)
        .subscribe({ filter: o.filter, ...(from ? { startTime: timestampFromDate(from) } : {}) }, { signal: o.signal });
      for await (const { event } of stream) {
        delay = 500;
        if (event && seen.add(event.id)) {
          from = event.receivedTime
            ? timestampDate(event.receivedTime)
            : event.observedTime
              ? timestampDate(event.observedTime)
              : new Date();
          o.onEvent(event);
        }
        // Leaving the loop ends the call (the iterator's return), which releases what it held.
        if (++read >= perCall) break;
      }
      if (read >= perCall) continue;
      if (!o.signal.aborted) o.onState("The stream ended; reopening.");
    } catch (err) {
      if (o.signal.aborted) return;
      const code = ConnectError.from(err).code;
      if (code === Code.Unauthenticated) {
        o.onAuthFailure(describeError(err));
        o.onState(describeError(err));
        return;
      }
      if (code === Code.PermissionDenied || code === Code.InvalidArgument) {
        o.onState(describeError(err));
        return;
      }
      o.onState(`Reconnecting in ${(delay / 1000).toFixed(1)} s: ${describeError(err)}`);
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}
