import {
  type Bus,
  countFailure,
  type Delivery,
  type DurableConsumer,
  drainThroughOf,
  PermanentError,
  type RouteSinkCounters,
  RouteSinks,
  routeConsumer,
} from "@meridian/bus";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import type { BackoffPolicy } from "@meridian/retry";
import type { Logger } from "pino";
import { OmniaBadRequestError, OmniaConflictError, OmniaError, OmniaNotFoundError } from "../platform/index.js";
import { type SinkPoint, toSinkPoints } from "./mapping.js";
import type { OmniaApi } from "./omnia-api.js";

/** Omnia's bound of series per multi request. */
const MAX_SERIES_PER_CALL = 100;

export interface RouteSinkDeps {
  bus: Bus;
  api: OmniaApi;
  logger: Logger;
  ackWaitMs: number;
  /** Points per write-multiple call. */
  maxBatchPoints: number;
  backoff?: BackoffPolicy;
}

/**
 * One route into Omnia: its durable consumer (created at the next event published, or at the route's start_time) →
 * series found or created by name at the route's facility (cached) → write-multiple calls; the bus message is
 * acknowledged only after Omnia answered 200/202 for all of it. A 429 or an outage hands the message back for a later
 * redelivery (after Omnia's Retry-After when it sent one); what Omnia refuses for good (400, 404, 409) is dead-lettered.
 */
export class RouteSink {
  readonly counters: RouteSinkCounters = { received: 0, delivered: 0, skipped: 0, failed: 0 };
  readonly consumer: DurableConsumer;
  private readonly ac = new AbortController();
  private running: Promise<void> | undefined;
  /** Series ids by name at the route's facility. */
  private readonly ids = new Map<string, string>();
  /** A deleted (DRAINING) route's last stream sequence: what it still delivers. */
  readonly drainThrough: number | undefined;

  constructor(
    readonly route: Route,
    private readonly deps: RouteSinkDeps,
  ) {
    this.drainThrough = drainThroughOf(route);
    this.consumer = routeConsumer(deps.bus, route, Platform.OMNIA, {
      logger: deps.logger,
      ackWaitMs: deps.ackWaitMs,
      backoff: deps.backoff,
    });
  }

  get facility(): string {
    return this.route.sink?.target ?? "";
  }

  start(): void {
    this.running ??= this.consumer
      .run((d) => this.deliver(d), this.ac.signal)
      .catch((err) => {
        if (!this.ac.signal.aborted) this.deps.logger.error({ err, route: this.route.id }, "route sink stopped");
      });
  }

  async stop(): Promise<void> {
    this.ac.abort(new Error("stopping"));
    await this.running;
  }

  private async deliver(d: Delivery): Promise<void> {
    // Published after the route was deleted: not its backlog. Acknowledged unsent, so the drain can end.
    if (this.drainThrough !== undefined && d.streamSequence > this.drainThrough) return;
    const { points, skipped } = toSinkPoints(d.batch.events);
    try {
      const bySeries = new Map<string, SinkPoint[]>();
      for (const p of points) bySeries.set(p.name, [...(bySeries.get(p.name) ?? []), p]);
      await this.resolve([...bySeries.keys()], bySeries);
      const items = [...bySeries].map(([name, ps]) => ({
        id: this.ids.get(name)!,
        datapoints: ps.map((p) => ({ time: p.timeNs, value: p.value, status: p.status })),
      }));
      for (const chunk of chunks(items, this.deps.maxBatchPoints)) {
        d.working();
        await this.deps.api.writeMultipleDatapoints(chunk, { signal: this.ac.signal });
      }
      // Counted once it is in Omnia: a redelivered message is not received twice.
      this.counters.received += d.batch.events.length;
      this.counters.skipped += skipped;
      this.counters.delivered += points.length;
    } catch (err) {
      countFailure(this.counters, err);
      // Omnia refused the data or the series for good: retrying cannot help.
      if (err instanceof OmniaBadRequestError || err instanceof OmniaNotFoundError || err instanceof OmniaConflictError)
        throw new PermanentError(`Omnia refused the write: ${err.message}`, (err as OmniaError).platformMessage);
      throw err;
    }
  }

  /** Finds or creates the series not yet known (getoradd, at most 100 per call). */
  private async resolve(names: string[], points: Map<string, SinkPoint[]>): Promise<void> {
    const missing = names.filter((n) => !this.ids.has(n));
    for (let i = 0; i < missing.length; i += MAX_SERIES_PER_CALL) {
      const batch = missing.slice(i, i + MAX_SERIES_PER_CALL);
      const made = await this.deps.api.getOrAddTimeseries(
        batch.map((name) => {
          const unit = points.get(name)?.[0]?.unit;
          return { name, facility: this.facility, ...(unit ? { unit } : {}) };
        }),
        { signal: this.ac.signal },
      );
      for (const t of made) this.ids.set(t.name, t.id);
      for (const name of batch)
        if (!this.ids.has(name)) throw new OmniaError(`Omnia's getoradd did not return series ${name} at ${this.facility}`);
    }
  }
}

/** Series items cut so that no call carries more than `maxPoints` points nor more than 100 series. */
function* chunks<T extends { datapoints: unknown[] }>(items: T[], maxPoints: number): Generator<T[]> {
  let out: T[] = [];
  let n = 0;
  for (const item of items) {
    for (let i = 0; i < item.datapoints.length; i += maxPoints) {
      const part = { ...item, datapoints: item.datapoints.slice(i, i + maxPoints) };
      if (out.length > 0 && (n + part.datapoints.length > maxPoints || out.length >= MAX_SERIES_PER_CALL)) {
        yield out;
        out = [];
        n = 0;
      }
      out.push(part);
      n += part.datapoints.length;
    }
  }
  if (out.length > 0) yield out;
}

/**
 * One RouteSink per enabled route whose sink is Omnia (target = the facility), run by the bus's RouteSinks: restarted
 * when the route's source or facility changes (Omnia's sink reads no route options). A deleted route's consumer is
 * dropped with it; a DRAINING route delivers what was on the bus at the delete, then its consumer is deleted, which
 * tells the gateway the drain is over.
 */
export class SinkManager extends RouteSinks<RouteSink> {
  constructor(deps: RouteSinkDeps) {
    super({
      bus: deps.bus,
      platform: Platform.OMNIA,
      logger: deps.logger,
      create: (route) => new RouteSink(route, deps),
      describe: (sink) => ({ facility: sink.facility }),
      // A drained route's sink stays in list() and the status reports until the gateway removes the route.
      listDrained: true,
    });
  }
}
