import { clone, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { type Bus, MessageTooLargeError } from "@meridian/bus";
import { TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type BackoffPolicy, isRetryable, PollLoop, retry } from "@meridian/retry";
import type { Logger } from "pino";
import { OciNotAuthenticatedError, OciNotFoundError } from "../platform/errors.js";
import type { DataApiClient, DataPage, DigitalTwinsClient, JsonObject } from "../platform/types.js";
import type { CursorRecord, CursorStore } from "./cursors.js";
import {
  historizedEvents,
  integerContents,
  type MappedRows,
  payloadEvents,
  type RowsEvent,
  rowIdOf,
  type SourceDataSet,
  TIME_FIELD,
} from "./mapping.js";
import type { StoredTwin } from "./store.js";

/** ORDS reads: an outage is waited out within one poll for a few minutes, then the next poll starts again from the cursor. */
export const READ_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.3 };
export const READ_ATTEMPTS = 8;
/** Bus publishes and cursor writes: retried until the bus takes them or the poller stops (the cursor waits meanwhile). */
export const PUBLISH_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5_000, multiplier: 2, jitter: 0.3 };
/** Rows whose content is read at once (ORDS gives a raw or rejected row's content only one row at a time). */
const CONTENT_READS = 8;
/** Where a source's own dead letters go (deadletter.v1.<this>): rows that can never be a bus message. */
export const SOURCE_DEAD_LETTER_CONSUMER = "oci-twin-manager";

export interface PollerCounters {
  /** Rows read from ORDS. */
  received: number;
  /** Events the bus stored. */
  delivered: number;
  /** Events the bus already had (a republish after a crash) and rows that could not become an event. */
  skipped: number;
  /** Polls that failed (they start again from the cursor). */
  failed: number;
  polls: number;
  lastPollTime?: Date;
  lastError?: string;
  lastErrorTime?: Date;
}

export interface TwinPollerOptions {
  twin: StoredTwin;
  bus: Bus;
  /** The data API of the twin's domain (OciDomains.dataApi). */
  dataApi(iotDomainId: string): Promise<DataApiClient>;
  /** The model spec, for the contents whose values are integers; absent: every number is a double. */
  models?: Pick<DigitalTwinsClient, "getModelSpec"> | undefined;
  cursors: CursorStore;
  logger: Logger;
  /** OCI_SOURCE_PAGE_ROWS. */
  pageRows: number;
  /** OCI_SOURCE_POLL_MS: unless the twin's source has its own. */
  pollMs: number;
  readBackoff?: BackoffPolicy | undefined;
  readAttempts?: number | undefined;
  publishBackoff?: BackoffPolicy | undefined;
  now?: (() => Date) | undefined;
}

/** The data sets a twin's source asks for, in the order they are read. */
export function chosenDataSets(source: StoredTwin["source"]): SourceDataSet[] {
  if (!source) return [];
  const out: SourceDataSet[] = [];
  if (source.historized) out.push("historizedData");
  if (source.raw) out.push("rawData");
  if (source.rejected) out.push("rejectedData");
  return out;
}

/**
 * One twin's source: every poll interval, for each data set it publishes, reads the rows after its cursor (ascending
 * id, OCI_SOURCE_PAGE_ROWS a page) until none are left; publishes each page's events, then moves the cursor in KV
 * to the page's last row. Each event is its own bus message whose id is the event id (domain, data set, first row
 * id): a page read again after a crash between publish and cursor may hold more rows than the first time, so only
 * ids that do not depend on where a page ends make the republish a duplicate the bus drops.
 *
 * An observation (historized rows of one time) cut by a page end waits for the next page, which then starts with all
 * of it, unless the page holds nothing else. ORDS failing is retried with backoff (its Retry-After followed), a 401
 * once more (the data client renews its token on a 401); after that the poll fails and the next one starts again
 * from the cursor: no row is ever skipped.
 */
export class TwinPoller {
  readonly counters: PollerCounters = { received: 0, delivered: 0, skipped: 0, failed: 0, polls: 0 };
  /** Data sets whose last page said ORDS has more rows: the poller's pending count. */
  private readonly hasMore = new Set<SourceDataSet>();
  private readonly polls: PollLoop;
  private integerPaths: Promise<Set<string>> | undefined;
  private readonly log: Logger;
  twin: StoredTwin;

  constructor(private readonly o: TwinPollerOptions) {
    this.twin = o.twin;
    this.log = o.logger.child({ twin: o.twin.key });
    this.polls = new PollLoop({
      poll: (signal) => this.pollOnce(signal),
      intervalMs: () => this.twin.source?.pollIntervalMs || this.o.pollMs,
      onError: (err) => {
        this.counters.failed++;
        this.counters.lastError = (err as Error).message;
        this.counters.lastErrorTime = this.now();
        this.log.warn({ err: (err as Error).message }, "OCI source poll failed; the cursors stay, the next poll goes on from them");
      },
    });
  }

  get key(): string {
    return this.twin.key;
  }

  get pending(): number {
    return this.hasMore.size;
  }

  start(): void {
    this.polls.start();
  }

  /** A changed source (data sets, interval) applies from the next poll, which starts at once. */
  update(twin: StoredTwin): void {
    if (twin.modelId !== this.twin.modelId) this.integerPaths = undefined;
    this.twin = twin;
    this.polls.wake();
  }

  /** Stops at once: a read in flight is aborted; what was published and not yet in the cursor is read again later. */
  stop(): Promise<void> {
    return this.polls.stop(new Error("source stopped"));
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** One poll of every data set the source publishes; the first failure is thrown after the others were read. */
  async pollOnce(signal: AbortSignal = this.polls.signal): Promise<void> {
    let firstError: unknown;
    for (const dataSet of chosenDataSets(this.twin.source)) {
      signal.throwIfAborted();
      try {
        await this.readDataSet(this.twin, dataSet, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        firstError ??= err;
        this.log.warn({ dataSet, err: (err as Error).message }, "OCI data set read failed");
      }
    }
    this.counters.polls++;
    this.counters.lastPollTime = this.now();
    if (firstError) throw firstError;
  }

  private async readDataSet(twin: StoredTwin, dataSet: SourceDataSet, signal: AbortSignal): Promise<void> {
    let cursor = await this.busRetry(() => this.o.cursors.get(twin.key, dataSet, twin.instanceId), signal);
    const api = await this.read(() => this.o.dataApi(twin.iotDomainId), signal);
    if (!cursor) {
      cursor = await this.firstCursor(api, twin, dataSet, signal);
      await this.saveCursor(twin, dataSet, cursor, signal);
    }
    for (;;) {
      signal.throwIfAborted();
      const after: number | undefined = cursor.lastRowId;
      const page: DataPage = await this.read(
        () =>
          api.query(
            dataSet,
            {
              digitalTwinInstanceId: twin.instanceId,
              filter: [after !== undefined ? { id: { $gt: after } } : { [TIME_FIELD[dataSet]]: { $gte: { $date: cursor!.startTime } } }],
              orderBy: { id: "asc" },
              limit: this.o.pageRows,
            },
            signal,
          ),
        signal,
      );
      // Only rows past the cursor, in id order, whatever the server sent.
      const rows: JsonObject[] = page.items
        .filter((r) => {
          const id = rowIdOf(r);
          return id !== undefined && (after === undefined || id > after);
        })
        .sort((a, b) => rowIdOf(a)! - rowIdOf(b)!);
      if (rows.length === 0) {
        this.hasMore.delete(dataSet);
        return;
      }
      const receivedTime = timestampNow();
      let mapped: MappedRows;
      let through: number = rowIdOf(rows.at(-1)!)!;
      if (dataSet === "historizedData") {
        mapped = historizedEvents(twin, rows, { integerPaths: await this.integerPathsOf(twin, signal), receivedTime });
        if (page.hasMore && mapped.events.length > 1) {
          // The last observation may go on in the next page: it is read whole from there.
          const cut = mapped.events.pop()!;
          through = Math.max(...rows.map((r) => rowIdOf(r)!).filter((id) => id < cut.firstRowId));
          mapped.skippedRowIds = mapped.skippedRowIds.filter((id) => id <= through);
        }
      } else {
        mapped = payloadEvents(twin, dataSet, await this.withContent(api, dataSet, rows, signal), { receivedTime });
      }
      const taken = rows.filter((r) => rowIdOf(r)! <= through).length;
      if (mapped.skippedRowIds.length > 0)
        this.log.warn(
          { dataSet, rowIds: mapped.skippedRowIds.slice(0, 20) },
          "ORDS rows without a readable id, time or path; not published",
        );
      await this.publish(mapped.events, signal);
      this.counters.received += taken;
      this.counters.skipped += mapped.skippedRowIds.length;
      cursor = { ...cursor, lastRowId: through, updated: this.now().toISOString() };
      await this.saveCursor(twin, dataSet, cursor, signal);
      if (page.hasMore) this.hasMore.add(dataSet);
      else {
        this.hasMore.delete(dataSet);
        return;
      }
    }
  }

  /**
   * Where a data set is first read from; kept, so a restart does not move it. With the source's start_time: the rows
   * observed from then (by the data set's time field), and by id once a row is on the bus. Without: after the highest
   * row id the twin's data set holds now, so what arrives later is read whatever its time says (a device whose clock is
   * behind, a historized row with an old time_observed that the adapter stores late). No row yet: after id 0, as ORDS
   * ids start at 1.
   */
  private async firstCursor(api: DataApiClient, twin: StoredTwin, dataSet: SourceDataSet, signal: AbortSignal): Promise<CursorRecord> {
    const now = this.now().toISOString();
    const startTime = twin.source?.startTime;
    if (startTime) return { instanceId: twin.instanceId, startTime, updated: now };
    const last = await this.read(
      () => api.query(dataSet, { digitalTwinInstanceId: twin.instanceId, orderBy: { id: "desc" }, limit: 1 }, signal),
      signal,
    );
    const lastRowId = Math.max(0, ...last.items.map((r) => rowIdOf(r) ?? 0));
    return { instanceId: twin.instanceId, lastRowId, startTime: now, updated: now };
  }

  /** A raw or rejected row's content, read one row at a time (a few at once); a row gone meanwhile keeps what the list had. */
  private async withContent(api: DataApiClient, dataSet: "rawData" | "rejectedData", rows: JsonObject[], signal: AbortSignal) {
    const out: JsonObject[] = new Array(rows.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < rows.length; i = next++) {
        const row = rows[i]!;
        if (row["content"] !== undefined) {
          out[i] = row;
          continue;
        }
        try {
          out[i] = await this.read(() => api.get(dataSet, rowIdOf(row)!, signal), signal);
        } catch (err) {
          // Its retention ran out between the list and the read: published as listed, without content.
          if (!(err instanceof OciNotFoundError)) throw err;
          this.log.warn({ dataSet, rowId: rowIdOf(row) }, "ORDS row gone before its content was read; published without it");
          out[i] = row;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONTENT_READS, rows.length) }, worker));
    return out;
  }

  private async integerPathsOf(twin: StoredTwin, signal: AbortSignal): Promise<Set<string>> {
    const models = this.o.models;
    if (!twin.modelId || !models) return new Set();
    const modelId = twin.modelId;
    // Read once per poller; a failure fails the poll (rather than publish a count as a double this time).
    this.integerPaths ??= this.read(() => models.getModelSpec(modelId), signal).then(integerContents);
    this.integerPaths.catch(() => {
      this.integerPaths = undefined;
    });
    return this.integerPaths;
  }

  /** ORDS: retryable errors with backoff (Retry-After followed), and a 401 once more after the client renewed its token. */
  private read<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    let renewed = false;
    return retry(fn, {
      policy: this.o.readBackoff ?? READ_BACKOFF,
      maxAttempts: this.o.readAttempts ?? READ_ATTEMPTS,
      signal,
      isRetryable: (err) => {
        if (isRetryable(err)) return true;
        if (!(err instanceof OciNotAuthenticatedError) || renewed) return false;
        renewed = true;
        return true;
      },
      onRetry: (err, attempt, delayMs) => this.log.info({ attempt, delayMs, err: (err as Error).message }, "ORDS request retried"),
    });
  }

  /** The bus: everything retried until it works or the poller stops, but a message that can never fit. */
  private busRetry<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    return retry(fn, {
      policy: this.o.publishBackoff ?? PUBLISH_BACKOFF,
      maxAttempts: Number.POSITIVE_INFINITY,
      signal,
      isRetryable: (err) => !(err instanceof MessageTooLargeError),
    });
  }

  private async saveCursor(twin: StoredTwin, dataSet: SourceDataSet, record: CursorRecord, signal: AbortSignal): Promise<void> {
    try {
      await this.busRetry(() => this.o.cursors.put(twin.key, dataSet, record), signal);
    } catch (err) {
      if (!signal.aborted) throw err;
      // Stopping right after a publish: one more try saves reading the page again (and the bus dropping it again).
      await this.o.cursors.put(twin.key, dataSet, record).catch(() => undefined);
    }
  }

  /** Every event as its own message, all in flight together; resolves once the bus stored each (or had it). */
  private async publish(events: RowsEvent[], signal: AbortSignal): Promise<void> {
    await Promise.all(
      events.map(async ({ event, firstRowId, lastRowId }) => {
        try {
          const r = await this.busRetry(() => this.o.bus.publishEvents([event], event.id), signal);
          if (r.duplicates > 0) this.counters.skipped++;
          else this.counters.delivered++;
        } catch (err) {
          if (!(err instanceof MessageTooLargeError)) throw err;
          // It can never fit: parked with what it came from (not its points, which made it too large), and the cursor goes on.
          const about = clone(TelemetryEventSchema, event);
          about.points = [];
          about.raw = undefined;
          await this.busRetry(
            () =>
              this.o.bus.publishDeadLetter({
                consumer: SOURCE_DEAD_LETTER_CONSUMER,
                data: toBinary(TelemetryEventSchema, about),
                reason: `event ${event.id} (rows ${firstRowId}..${lastRowId} of twin ${this.twin.key}) is larger than the bus's max_payload`,
                detail: err.message,
                msgId: `dl:${event.id}`,
              }),
            signal,
          );
          this.counters.skipped++;
          this.log.error({ eventId: event.id }, "OCI row larger than the bus's max_payload; dead-lettered without its points");
        }
      }),
    );
  }
}
