import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { Bus } from "@meridian/bus";
import { DataFormat, type ReaderSpec } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { type BackoffPolicy, PollLoop, retry } from "@meridian/retry";
import type { Logger } from "pino";
import { nsFromDate, nsFromTimestamp, type SeriesInfo, toTelemetryEvents } from "./mapping.js";
import type { Datapoint, OmniaApi } from "./omnia-api.js";
import type { ReaderStore } from "./store.js";

export const DEFAULT_INTERVAL_SECONDS = 60;
export const DEFAULT_LAG_SECONDS = 60;
export const DEFAULT_PAGE_SIZE = 1000;
/** Events per bus message: a page of 100 000 points would not fit NATS's max_payload in one. */
export const MAX_EVENTS_PER_PUBLISH = 500;
/** How long cached metadata (name, facility, unit) is used before it is read again. */
const METADATA_TTL_MS = 10 * 60_000;

/** Omnia reads: a 429 storm or a 503 outage is waited out within one poll, up to a few minutes, then the next poll. */
export const READ_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.3 };
/** Bus publishes: retried until the bus takes them or the reader stops (the cursor does not move meanwhile). */
export const PUBLISH_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5_000, multiplier: 2, jitter: 0.3 };

export interface ReaderCounters {
  received: number;
  delivered: number;
  duplicates: number;
  failedPolls: number;
  polls: number;
  lastPollTime?: Date;
  lastError?: string;
  lastErrorTime?: Date;
}

export interface ReaderPipelineOptions {
  spec: ReaderSpec;
  api: OmniaApi;
  bus: Bus;
  store: ReaderStore;
  logger: Logger;
  maxSeries: number;
  maxPagesPerPoll: number;
  readBackoff?: BackoffPolicy;
  readAttempts?: number;
  publishBackoff?: BackoffPolicy;
  now?: () => Date;
}

/**
 * One reader: every interval, for each series it names, reads `[cursor, now − lag)` page by page, publishes each
 * page's points as events and only then moves the series' cursor in KV (to just after the page's last point, and to
 * the window's end after the last page). A stop or crash between a publish and the cursor write re-reads that page
 * next time; its events have the same ids, so the bus's dedupe window stores them once. The lag is how late a
 * point may arrive in Omnia and still be read.
 */
export class ReaderPipeline {
  readonly counters: ReaderCounters = { received: 0, delivered: 0, duplicates: 0, failedPolls: 0, polls: 0 };
  private readonly metadata = new Map<string, { info: SeriesInfo; at: number }>();
  private readonly polls: PollLoop;
  spec: ReaderSpec;

  constructor(private readonly o: ReaderPipelineOptions) {
    this.spec = o.spec;
    this.polls = new PollLoop({
      poll: async (signal) => {
        if (!this.spec.paused) await this.pollOnce(signal);
      },
      intervalMs: () => (this.spec.intervalSeconds ?? DEFAULT_INTERVAL_SECONDS) * 1000,
      onError: (err) => {
        this.counters.failedPolls++;
        this.counters.lastError = (err as Error).message;
        this.counters.lastErrorTime = this.now();
        this.o.logger.warn(
          { reader: this.id, err: (err as Error).message },
          "Omnia poll failed; the cursors stay, the next poll goes on from them",
        );
      },
    });
  }

  get id(): string {
    return this.spec.id;
  }

  get state(): string {
    if (this.spec.paused) return "paused";
    return this.counters.lastErrorTime && (!this.counters.lastPollTime || this.counters.lastErrorTime >= this.counters.lastPollTime)
      ? "failing"
      : "running";
  }

  start(): void {
    this.polls.start();
  }

  /** A changed spec (paused, lag, series) applies from the next poll; a resumed reader polls at once. */
  update(spec: ReaderSpec): void {
    this.spec = spec;
    this.polls.wake();
  }

  stop(): Promise<void> {
    return this.polls.stop(new Error("reader stopped"));
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** One poll of every series; exported for tests that drive polls themselves. */
  async pollOnce(signal: AbortSignal = this.polls.signal): Promise<void> {
    const spec = this.spec;
    const { series, error: resolveError } = await this.resolveSeries(spec, signal);
    const endNs = nsFromDate(this.now()) - BigInt(spec.lagSeconds ?? DEFAULT_LAG_SECONDS) * 1_000_000_000n;
    const startNs = spec.startTime ? nsFromTimestamp(spec.startTime) : undefined;
    let firstError: unknown = resolveError;
    for (const s of series) {
      signal.throwIfAborted();
      try {
        await this.readSeries(spec, s, startNs, endNs, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        firstError ??= err;
        this.o.logger.warn({ reader: spec.id, series: s.id, err: (err as Error).message }, "Omnia series read failed");
      }
    }
    this.counters.polls++;
    this.counters.lastPollTime = this.now();
    if (firstError) throw firstError;
  }

  private async readSeries(
    spec: ReaderSpec,
    s: SeriesInfo,
    startNs: bigint | undefined,
    endNs: bigint,
    signal: AbortSignal,
  ): Promise<void> {
    const stored = await this.o.store.getCursor(spec.id, s.id);
    // A series first seen starts at the reader's start_time, else now − lag: a new reader does not replay history.
    let cursor = stored ? BigInt(stored.cursorNs) : (startNs ?? endNs);
    if (!stored) await this.saveCursor(spec.id, s, cursor);
    if (cursor >= endNs) return;
    const format = spec.format === DataFormat.PROTOBUF ? "protobuf" : "json";
    // One query for the whole window, paged by Omnia's token (a token belongs to the query it came with); the
    // cursor moves behind each stored page, so a stop between pages resumes after the last stored point.
    const from = cursor;
    let token: string | undefined;
    for (let pages = 0; pages < this.o.maxPagesPerPoll; pages++) {
      const page = await retry(
        () =>
          this.o.api.getDatapoints(
            s.id,
            { startTime: from, endTime: endNs, limit: spec.pageSize ?? DEFAULT_PAGE_SIZE, ...(token ? { continuationToken: token } : {}) },
            { format, signal },
          ),
        this.readRetry(spec.id, s.id, signal),
      );
      const points: Datapoint[] = [];
      for (const item of page.items) for (const p of item.datapoints) if (p.timeNs >= from && p.timeNs < endNs) points.push(p);
      points.sort((a, b) => (a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : 0));
      this.counters.received += points.length;
      await this.publish(spec.id, s, points, signal);
      token = page.continuationToken || undefined;
      const last = points.at(-1);
      cursor = token ? (last && last.timeNs >= cursor ? last.timeNs + 1n : cursor) : endNs;
      await this.saveCursor(spec.id, s, cursor);
      if (!token) return;
    }
  }

  private readRetry(readerId: string, seriesId: string | undefined, signal: AbortSignal) {
    return {
      policy: this.o.readBackoff ?? READ_BACKOFF,
      maxAttempts: this.o.readAttempts ?? 8,
      signal,
      onRetry: (err: unknown, attempt: number, delayMs: number) =>
        this.o.logger.info({ reader: readerId, series: seriesId, attempt, delayMs, err: (err as Error).message }, "Omnia request retried"),
    };
  }

  private async saveCursor(readerId: string, s: SeriesInfo, cursorNs: bigint): Promise<void> {
    await retry(
      () =>
        this.o.store.putCursor(readerId, s.id, {
          cursorNs: cursorNs.toString(),
          name: s.name,
          facility: s.facility,
          updated: this.now().toISOString(),
        }),
      {
        policy: this.o.publishBackoff ?? PUBLISH_BACKOFF,
        maxAttempts: Number.POSITIVE_INFINITY,
        signal: this.polls.signal,
        isRetryable: () => true,
      },
    );
  }

  private async publish(readerId: string, s: SeriesInfo, points: Datapoint[], signal: AbortSignal): Promise<void> {
    const receivedTime = timestampNow();
    for (let i = 0; i < points.length; i += MAX_EVENTS_PER_PUBLISH) {
      const events = toTelemetryEvents(readerId, s, points.slice(i, i + MAX_EVENTS_PER_PUBLISH), receivedTime);
      const result = await retry(() => this.o.bus.publishEvents(events), {
        policy: this.o.publishBackoff ?? PUBLISH_BACKOFF,
        maxAttempts: Number.POSITIVE_INFINITY,
        signal,
      });
      if (result.duplicates > 0) this.counters.duplicates += events.length;
      else this.counters.delivered += events.length;
    }
  }

  /**
   * The series the reader names: ids as they are, queries resolved through search (paged), metadata cached. A selector
   * Omnia refuses (an unknown id, a 403) does not hold the others back: its error is returned beside what resolved.
   */
  private async resolveSeries(spec: ReaderSpec, signal: AbortSignal): Promise<{ series: SeriesInfo[]; error?: unknown }> {
    let error: unknown;
    const out = new Map<string, SeriesInfo>();
    const fresh = (id: string) => {
      const m = this.metadata.get(id);
      return m && Date.now() - m.at < METADATA_TTL_MS ? m.info : undefined;
    };
    const remember = (t: { id: string; name: string; facility: string; unit?: string | null }): SeriesInfo => {
      const info: SeriesInfo = { id: t.id, name: t.name, facility: t.facility, ...(t.unit ? { unit: t.unit } : {}) };
      this.metadata.set(t.id, { info, at: Date.now() });
      return info;
    };
    for (const sel of spec.series) {
      if (out.size >= this.o.maxSeries) break;
      try {
        await this.resolveSelector(spec, sel, out, fresh, remember, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        error ??= err;
        this.o.logger.warn({ reader: spec.id, selector: sel.selector, err: (err as Error).message }, "Omnia series selector failed");
      }
    }
    return { series: [...out.values()], ...(error ? { error } : {}) };
  }

  private async resolveSelector(
    spec: ReaderSpec,
    sel: ReaderSpec["series"][number],
    out: Map<string, SeriesInfo>,
    fresh: (id: string) => SeriesInfo | undefined,
    remember: (t: { id: string; name: string; facility: string; unit?: string | null }) => SeriesInfo,
    signal: AbortSignal,
  ): Promise<void> {
    if (sel.selector.case === "id") {
      const id = sel.selector.value;
      out.set(id, fresh(id) ?? remember(await retry(() => this.o.api.getTimeseries(id, { signal }), this.readRetry(spec.id, id, signal))));
    } else if (sel.selector.case === "query") {
      const q = sel.selector.value;
      let token: string | undefined;
      do {
        const page = await retry(
          () =>
            this.o.api.searchTimeseries(
              {
                name: q.name,
                ...(q.facility ? { facility: q.facility } : {}),
                limit: 1000,
                ...(token ? { continuationToken: token } : {}),
              },
              { signal },
            ),
          this.readRetry(spec.id, undefined, signal),
        );
        for (const t of page.items) if (out.size < this.o.maxSeries) out.set(t.id, remember(t));
        token = page.continuationToken || undefined;
      } while (token && out.size < this.o.maxSeries);
    }
  }
}
