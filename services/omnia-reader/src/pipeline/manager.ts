import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Bus } from "@meridian/bus";
import type { ReaderSpec } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { type PipelineCounters, PipelineCountersSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import type { BackoffPolicy } from "@meridian/retry";
import type { Logger } from "pino";
import { ReaderNotFoundError, TooManyReadersError } from "./errors.js";
import type { OmniaApi } from "./omnia-api.js";
import { ReaderPipeline } from "./reader-pipeline.js";
import { type CursorRecord, ReaderStore } from "./store.js";

export interface ReaderManagerOptions {
  bus: Bus;
  api: OmniaApi;
  logger: Logger;
  maxReaders: number;
  maxSeries: number;
  maxPagesPerPoll: number;
  readBackoff?: BackoffPolicy;
  readAttempts?: number;
  now?: () => Date;
}

export interface ReaderView {
  spec: ReaderSpec;
  cursors: Map<string, CursorRecord>;
  pipeline?: ReaderPipeline;
}

/**
 * The readers: their specs in the omnia_readers bucket (so a restart, or another instance after a failover, runs the
 * same ones), one ReaderPipeline each on this instance. One instance runs the readers; a second replica would read
 * the same series and publish the same events, which the bus stores once, but at twice the Omnia cost.
 */
export class ReaderManager {
  readonly store: ReaderStore;
  private readonly pipelines = new Map<string, ReaderPipeline>();
  private stopped = false;

  constructor(private readonly o: ReaderManagerOptions) {
    this.store = new ReaderStore(o.bus);
  }

  /** Starts every stored reader. */
  async run(): Promise<void> {
    for (const [, spec] of await this.store.readers.entries()) this.startPipeline(spec);
  }

  private startPipeline(spec: ReaderSpec): void {
    if (this.stopped) return;
    const existing = this.pipelines.get(spec.id);
    if (existing) {
      existing.update(spec);
      return;
    }
    const p = new ReaderPipeline({
      spec,
      api: this.o.api,
      bus: this.o.bus,
      store: this.store,
      logger: this.o.logger,
      maxSeries: this.o.maxSeries,
      maxPagesPerPoll: this.o.maxPagesPerPoll,
      ...(this.o.readBackoff ? { readBackoff: this.o.readBackoff } : {}),
      ...(this.o.readAttempts ? { readAttempts: this.o.readAttempts } : {}),
      ...(this.o.now ? { now: this.o.now } : {}),
    });
    this.pipelines.set(spec.id, p);
    p.start();
  }

  /** Creates or replaces a reader (idempotent); its cursors stay. */
  async put(spec: ReaderSpec): Promise<ReaderView> {
    const known = await this.store.readers.get(spec.id);
    if (!known && (await this.store.readers.keys()).length >= this.o.maxReaders) throw new TooManyReadersError(this.o.maxReaders);
    await this.store.readers.put(spec.id, spec);
    this.startPipeline(spec);
    return this.get(spec.id);
  }

  async get(id: string): Promise<ReaderView> {
    const spec = await this.store.readers.get(id);
    if (!spec) throw new ReaderNotFoundError(id);
    const pipeline = this.pipelines.get(id);
    return { spec, cursors: await this.store.cursorsOf(id), ...(pipeline ? { pipeline } : {}) };
  }

  async list(): Promise<ReaderView[]> {
    const out: ReaderView[] = [];
    for (const id of await this.store.readers.keys()) {
      try {
        out.push(await this.get(id));
      } catch (err) {
        if (!(err instanceof ReaderNotFoundError)) throw err;
      }
    }
    return out;
  }

  async pause(id: string, paused: boolean): Promise<ReaderView> {
    const view = await this.get(id);
    view.spec.paused = paused;
    await this.store.readers.put(id, view.spec);
    this.startPipeline(view.spec);
    return this.get(id);
  }

  async delete(id: string): Promise<void> {
    const p = this.pipelines.get(id);
    this.pipelines.delete(id);
    await p?.stop();
    if (!(await this.store.readers.delete(id))) throw new ReaderNotFoundError(id);
    await this.store.deleteCursors(id);
  }

  pipeline(id: string): ReaderPipeline | undefined {
    return this.pipelines.get(id);
  }

  counters(): PipelineCounters[] {
    return [...this.pipelines.values()].map((p) =>
      create(PipelineCountersSchema, {
        name: `reader-${p.id}`,
        received: BigInt(p.counters.received),
        delivered: BigInt(p.counters.delivered),
        skipped: BigInt(p.counters.duplicates),
        failed: BigInt(p.counters.failedPolls),
        pending: 0n,
        lastError: p.counters.lastError ?? "",
        ...(p.counters.lastErrorTime ? { lastErrorTime: timestampFromDate(p.counters.lastErrorTime) } : {}),
      }),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.pipelines.values()].map((p) => p.stop()));
    this.pipelines.clear();
  }
}
