/** The routes bucket turned into running sinks: the one route manager every sink service uses. */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Route, RouteDrainSchema, RouteSchema, RouteState } from "@meridian/contracts/meridian/route/v1/route_pb";
import { type PipelineCounters, PipelineCountersSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import type { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type BackoffPolicy, sleep } from "@meridian/retry";
import { DeliverPolicy } from "nats";
import type { Logger } from "pino";
import type { BacklogState } from "./backlog.js";
import type { Bus } from "./bus.js";
import {
  type ConsumerBacklog,
  consumerBacklog,
  consumerInfo,
  DurableConsumer,
  type DurableConsumerOptions,
  deleteConsumer,
  deliveredThrough,
  routeConsumerName,
} from "./consumer.js";
import { routeBucket } from "./mesh.js";
import { telemetrySelection } from "./subjects.js";

/** How often a draining route's consumer is asked whether its backlog is delivered. */
const DRAIN_CHECK_INTERVAL_MS = 1000;

/** What a sink has done since it started; `PipelineCounters` in the status reports. */
export interface RouteSinkCounters {
  received: number;
  delivered: number;
  skipped: number;
  failed: number;
  /** Events of messages delivered again, where the sink counts them apart from `received`. */
  redelivered?: number;
  lastError?: string | undefined;
  lastErrorTime?: Date | undefined;
}

/** A failed delivery in a sink's counters: one more failure, and its message and time as the last error. */
export function countFailure(counters: RouteSinkCounters, err: unknown, at: Date = new Date()): void {
  counters.failed++;
  counters.lastError = err instanceof Error ? err.message : String(err);
  counters.lastErrorTime = at;
}

/** A DRAINING route's last stream sequence, what its sink still delivers; undefined for a route that is not draining. */
export function drainThroughOf(route: Route): number | undefined {
  return route.state === RouteState.DRAINING ? Number(route.drain?.lastSequence ?? 0n) : undefined;
}

/** What a sink chooses of its route's consumer; the rest follows from the route. */
export type RouteConsumerOptions = Omit<
  DurableConsumerOptions,
  "durable" | "filterSubject" | "eventFilter" | "startTime" | "existingOnly" | "backoff"
> & {
  backoff?: BackoffPolicy | undefined;
};

/**
 * Which side of its route's source change a route's consumer is on: "previous" while it is the consumer from before
 * the change (it delivers what was stored up to the change by the previous source), "current" once it was made again
 * at the first message after the change (or when there is none: the sink makes that one). nats-server 2.9.10 cannot
 * change the filter of a consumer made at a start time, so a change of source is a new consumer, not an update.
 */
export async function sourceChangePhase(bus: Bus, route: Route, sinkPlatform: Platform): Promise<"previous" | "current" | "none"> {
  const change = route.sourceChange;
  if (!change) return "none";
  const info = await consumerInfo(bus, routeConsumerName(route.id, sinkPlatform));
  if (!info) return "current";
  const { config } = info;
  return config.deliver_policy === DeliverPolicy.StartSequence && config.opt_start_seq === Number(change.lastSequence) + 1
    ? "current"
    : "previous";
}

/** Whether a route's sink is past its source change: the consumer on the new source exists (the gateway then clears it). */
export async function sourceChangeDelivered(bus: Bus, route: Route, sinkPlatform: Platform): Promise<boolean> {
  if (!route.sourceChange) return true;
  if ((await consumerBacklog(bus, routeConsumerName(route.id, sinkPlatform))) === undefined) return false;
  return (await sourceChangePhase(bus, route, sinkPlatform)) === "current";
}

/**
 * Makes a route's consumer (on its source, at its start) unless it exists: what the gateway does before it fixes a
 * source change's sequence, so that a route no sink has consumed yet still delivers its previous source's events
 * stored before the change. Its ack settings are the defaults until the sink makes the consumer on the new source.
 */
export async function ensureRouteConsumer(bus: Bus, route: Route, sinkPlatform: Platform, logger: Logger): Promise<void> {
  const durable = routeConsumerName(route.id, sinkPlatform);
  if (await consumerBacklog(bus, durable)) return;
  await new DurableConsumer(bus, { durable, filterSubject: telemetrySelection(route.source).subject, logger, ...startOf(route) }).declare();
}

/**
 * The route its sink runs while the consumer from before a source change delivers what was stored up to it: the
 * previous source, draining through the change's sequence (later messages of that consumer are skipped: they are the
 * new consumer's to deliver, by the new source).
 */
function previousSourceView(route: Route): Route {
  return create(RouteSchema, {
    ...route,
    source: route.sourceChange?.previousSource,
    sourceChange: undefined,
    state: RouteState.DRAINING,
    drain: create(RouteDrainSchema, { lastSequence: route.sourceChange?.lastSequence ?? 0n }),
  });
}

function startOf(route: Route): { startTime?: Date } {
  if (route.startTime) return { startTime: timestampDate(route.startTime) };
  if (route.createTime) return { startTime: timestampDate(route.createTime) };
  return {};
}

/**
 * The durable consumer of a route's sink: `routeConsumerName(route.id, sinkPlatform)` on the route's source. Created
 * (the first time only) at the route's start_time, else at its create_time: what was published once CreateRoute
 * answered is the route's, however late the sink service gets to the route (busy, restarting, down). A route with
 * neither (written to the bucket by hand) starts at the next event. The stream's timestamps are the server's clock
 * and create_time the gateway's: they are compared as they are, so skew between the two moves the start by as much.
 * A draining route's consumer only takes what is left: a consumer another replica finished with (and deleted) must not
 * come back.
 */
export function routeConsumer(bus: Bus, route: Route, sinkPlatform: Platform, options: RouteConsumerOptions): DurableConsumer {
  const { backoff, ...rest } = options;
  const selection = telemetrySelection(route.source);
  return new DurableConsumer(bus, {
    ...rest,
    durable: routeConsumerName(route.id, sinkPlatform),
    filterSubject: selection.subject,
    eventFilter: selection.events,
    existingOnly: drainThroughOf(route) !== undefined,
    ...startOf(route),
    // Made again after a change of source: from the first message stored after it.
    ...(route.sourceChange ? { startSequence: Number(route.sourceChange.lastSequence) + 1 } : {}),
    ...(backoff ? { backoff } : {}),
  });
}

/** One route's sink as RouteSinks runs it: a service's own class, on the route's durable consumer. */
export interface RouteSink {
  readonly route: Route;
  /** A DRAINING route's last stream sequence (what it still delivers); undefined otherwise. */
  readonly drainThrough: number | undefined;
  readonly consumer: {
    backlog(): Promise<ConsumerBacklog | undefined>;
    delete(): Promise<ConsumerBacklog | undefined>;
  };
  readonly counters: RouteSinkCounters;
  start(): void;
  stop(): Promise<void>;
}

export interface RouteSinksOptions<S extends RouteSink> {
  bus: Bus;
  /** The sink platform whose routes are this service's (with a non-empty target). */
  platform: Platform;
  logger: Logger;
  /** Makes the sink of a wanted route; it is started right after. */
  create(route: Route): S;
  /**
   * What else of the route the sink depends on (e.g. its options), beyond source, target and drain: a change of it
   * restarts the sink.
   */
  fingerprint?(route: Route): string;
  /** Log fields naming what the sink writes to, for the "started" line. */
  describe?(sink: S): Record<string, unknown>;
  /**
   * Whether list() and counters() keep a drained route's sink (stopped, its consumer deleted) until the route leaves
   * the bucket. Default false: only sinks that run or drain.
   */
  listDrained?: boolean;
}

interface Running<S> {
  sink: S;
  fingerprint: string;
  /** Stops the drain watch of a draining route. */
  drain?: AbortController;
  /** The drain is over and the consumer gone; kept until the gateway removes the route, so it is not drained twice. */
  drained?: boolean;
  /** Set while the sink delivers the previous source of a route's source change: the route to run once that is done. */
  switchTo?: Route;
}

/**
 * Watches the `routes` bucket and runs one sink per route of this service's platform (non-empty target) that is
 * enabled or DRAINING: started when the route appears, restarted when it changes, stopped when it is disabled or
 * leaves the platform. A route the gateway marks DRAINING (deleted without purge) keeps its sink, disabled or not,
 * until everything up to the delete is delivered; then its consumer is deleted, which tells the gateway the drain is
 * over (it removes the route). A route gone from the bucket (purged, or drained) takes whatever consumer is left with
 * it. All of this state is on the bus (the route, the consumer), so a restart in the middle of a drain carries on.
 */
export class RouteSinks<S extends RouteSink> {
  private readonly sinks = new Map<string, Running<S>>();
  private readonly ac = new AbortController();
  private watching: Promise<void> | undefined;
  /** Serialises starts and stops. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly o: RouteSinksOptions<S>) {}

  start(): void {
    this.watching ??= this.watch();
  }

  private async watch(): Promise<void> {
    const signal = this.ac.signal;
    const log = this.o.logger.child({ component: "routes" });
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        await this.o.bus.ready;
        for await (const { key, value } of routeBucket(this.o.bus).watch(signal)) {
          attempt = 1;
          this.enqueue(key, () => this.apply(key, value));
        }
      } catch (err) {
        if (signal.aborted) break;
        log.warn({ err, attempt }, "watching routes failed; retrying");
      }
      await sleep(Math.min(5000, 250 * attempt), signal).catch(() => {});
    }
  }

  private enqueue(key: string, fn: () => Promise<void>): void {
    this.queue = this.queue.then(fn).catch((err) => this.o.logger.error({ err, route: key }, "applying a route change failed"));
  }

  private async apply(key: string, route: Route | undefined): Promise<void> {
    if (this.ac.signal.aborted) return;
    const current = this.sinks.get(key);
    const draining = route?.state === RouteState.DRAINING;
    const ours = route !== undefined && route.sink?.platform === this.o.platform && route.sink.target !== "";
    // Deleting a route means "deliver what it holds, then go": a disabled route drains too.
    const wanted = ours && (draining || !route.disabled);
    // A change of source the consumer is not past yet: the previous source is delivered first (through the change).
    const previous = wanted && !draining && (await sourceChangePhase(this.o.bus, route, this.o.platform)) === "previous";
    const fingerprint = wanted
      ? JSON.stringify({
          s: route.source,
          c: route.sourceChange ? `${route.sourceChange.lastSequence}${previous ? ":previous" : ""}` : "",
          t: route.sink?.target,
          d: draining ? String(route.drain?.lastSequence) : "",
          x: this.o.fingerprint?.(route) ?? "",
        })
      : "";
    if (current && current.fingerprint === fingerprint) return;
    if (current) {
      current.drain?.abort();
      await current.sink.stop();
      this.sinks.delete(key);
      this.o.logger.info({ route: key }, "route sink stopped");
    }
    if (route === undefined) {
      // Gone from the bucket: purged (the gateway already dropped the consumer) or drained. A consumer left over, e.g.
      // re-declared by a sink that had not heard of the purge yet, goes too.
      const left = await deleteConsumer(this.o.bus, routeConsumerName(key, this.o.platform)).catch((err) => {
        this.o.logger.warn({ err, route: key }, "deleting a deleted route's consumer failed");
        return undefined;
      });
      if (left) this.o.logger.info({ route: key, pending: left.pending + left.ackPending }, "route deleted: its durable consumer deleted");
      return;
    }
    if (!wanted) return;
    const sink = this.o.create(previous ? previousSourceView(route) : route);
    const running: Running<S> = { sink, fingerprint, ...(previous ? { switchTo: route } : {}) };
    this.sinks.set(key, running);
    sink.start();
    this.o.logger.info({ route: key, ...this.o.describe?.(sink), draining, previousSource: previous }, "route sink started");
    if (sink.drainThrough !== undefined) {
      running.drain = new AbortController();
      void this.watchDrain(key, running, sink.drainThrough, AbortSignal.any([this.ac.signal, running.drain.signal]));
    }
  }

  /** Waits until everything up to `lastSequence` is delivered (or the consumer is gone), then ends the drain. */
  private async watchDrain(key: string, running: Running<S>, lastSequence: number, signal: AbortSignal): Promise<void> {
    const log = this.o.logger.child({ route: key });
    log.info({ lastSequence }, "route deleted: delivering its backlog before its durable consumer is deleted");
    while (!signal.aborted) {
      await sleep(DRAIN_CHECK_INTERVAL_MS, signal).catch(() => {});
      if (signal.aborted) return;
      try {
        const backlog = await running.sink.consumer.backlog();
        if (backlog && !deliveredThrough(backlog, lastSequence)) continue;
      } catch (err) {
        log.warn({ err }, "reading a draining route's consumer failed; trying again");
        continue;
      }
      this.enqueue(key, () => this.endDrain(key, running));
      return;
    }
  }

  private async endDrain(key: string, running: Running<S>): Promise<void> {
    // Stopping: the drain is on the bus, the next start ends it.
    if (this.sinks.get(key) !== running || this.ac.signal.aborted) return;
    // Everything up to the delete is acknowledged: what the sink still pulls came later, and goes with the consumer.
    await running.sink.stop();
    const held = await running.sink.consumer.delete();
    if (running.switchTo) {
      // What the stream stored up to the change is delivered by the previous source; the new source's consumer starts
      // at the next sequence, so nothing is skipped or delivered twice across the two.
      this.sinks.delete(key);
      this.o.logger.info(
        { route: key, lastSequence: running.sink.drainThrough, skippedAfterChange: held ? held.pending + held.ackPending : 0 },
        "route's source change: the previous source's backlog is delivered; its consumer is made again on the new source",
      );
      await this.apply(key, running.switchTo);
      return;
    }
    running.drained = true;
    const { delivered, failed } = running.sink.counters;
    if (held)
      this.o.logger.info(
        { route: key, delivered, failed, publishedAfterDelete: held.pending + held.ackPending },
        "route drained: its backlog is delivered and its durable consumer deleted",
      );
    else
      this.o.logger.info(
        { route: key, delivered, failed },
        "route drained: its durable consumer was already gone (purged, or drained by another instance)",
      );
  }

  /** The sinks that run, draining ones included (and drained ones with `listDrained`). */
  list(): S[] {
    return [...this.sinks.values()].filter((r) => this.o.listDrained || !r.drained).map((r) => r.sink);
  }

  /** Every listed sink's counters, with its lag from the bus's last backlog check of its consumer. */
  counters(): PipelineCounters[] {
    return this.list().map((s) => pipelineCounters(s.route.id, s.counters, { backlog: this.backlogOf(s) }));
  }

  /** The bus's last backlog check of a sink's consumer; undefined while the sink does not deliver. */
  backlogOf(sink: S): BacklogState | undefined {
    return this.o.bus.backlogOf(routeConsumerName(sink.route.id, this.o.platform));
  }

  /** Stops watching and every sink (each hands back what it has not sent). */
  async stop(): Promise<void> {
    this.ac.abort(new Error("stopping"));
    await this.queue;
    await Promise.all([...this.sinks.values()].map((r) => r.sink.stop()));
    this.sinks.clear();
    await this.watching;
  }
}

/** What a pipeline's durable consumer adds to its counters in the status report. */
export interface PipelineConsumerState {
  /** Waiting on the bus for it now, where the service asks the consumer. */
  pending?: number | undefined;
  /** The bus's last backlog check of its consumer (`bus.backlogOf`): the lag. */
  backlog?: BacklogState | undefined;
}

/**
 * A sink's counters as the status report carries them. The lag is the age of the oldest message its consumer has not
 * acknowledged at the last backlog check; left unset before the first check, so that "not known yet" never reads as
 * "nothing waits".
 */
export function pipelineCounters(name: string, c: RouteSinkCounters, consumer: PipelineConsumerState = {}): PipelineCounters {
  const { backlog } = consumer;
  // Where the service does not ask its consumer, the last backlog check says what waits (undelivered and unacknowledged).
  const pending = consumer.pending ?? (backlog?.checkedAt ? backlog.pending + backlog.ackPending : undefined);
  return create(PipelineCountersSchema, {
    name,
    received: BigInt(c.received),
    delivered: BigInt(c.delivered),
    skipped: BigInt(c.skipped),
    failed: BigInt(c.failed),
    ...(c.redelivered !== undefined ? { redelivered: BigInt(c.redelivered) } : {}),
    ...(pending !== undefined ? { pending: BigInt(pending) } : {}),
    lastError: c.lastError ?? "",
    ...(c.lastErrorTime ? { lastErrorTime: timestampFromDate(c.lastErrorTime) } : {}),
    ...(backlog?.checkedAt ? { lag: durationFromMs(backlog.oldestUnackedAgeMs) } : {}),
  });
}
