import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { deleteConsumer, deliveredThrough, routeBucket, routeConsumerName } from "@meridian/bus";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { RouteState } from "@meridian/contracts/meridian/route/v1/route_pb";
import { type PipelineCounters, PipelineCountersSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { sleep } from "@meridian/retry";
import { RouteSink, type RouteSinkDeps } from "./route-sink.js";

/** How often a draining route's consumer is asked whether its backlog is delivered. */
const DRAIN_CHECK_INTERVAL_MS = 1000;

/**
 * Watches the routes bucket and runs one RouteSink per enabled route whose sink is IoT Central (target = application
 * id), restarted when the route changes. A route deleted with purge loses its consumer with it; a DRAINING route
 * delivers what was on the bus at the delete, then its consumer is deleted, which tells the gateway the drain is over.
 */
export class SinkManager {
  private readonly sinks = new Map<string, { sink: RouteSink; fingerprint: string }>();
  private readonly ac = new AbortController();
  private watching: Promise<void> | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly deps: RouteSinkDeps) {}

  start(): void {
    this.watching ??= this.watch();
  }

  private async watch(): Promise<void> {
    const signal = this.ac.signal;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        await this.deps.bus.ready;
        for await (const { key, value } of routeBucket(this.deps.bus).watch(signal)) {
          attempt = 1;
          this.queue = this.queue
            .then(() => this.apply(key, value))
            .catch((err) => this.deps.logger.error({ err, route: key }, "applying a route change failed"));
        }
      } catch (err) {
        if (signal.aborted) break;
        this.deps.logger.warn({ err, attempt }, "watching routes failed; retrying");
      }
      await sleep(Math.min(5000, 250 * attempt), signal).catch(() => {});
    }
  }

  private async apply(key: string, route: Route | undefined): Promise<void> {
    if (this.ac.signal.aborted) return;
    const current = this.sinks.get(key);
    const ours = route !== undefined && route.sink?.platform === Platform.IOT_CENTRAL && route.sink.target !== "";
    const wanted = ours && (route.state === RouteState.DRAINING || !route.disabled);
    const draining = route?.state === RouteState.DRAINING;
    const fingerprint = wanted
      ? JSON.stringify({
          s: route.source,
          t: route.sink?.target,
          o: Object.entries(route.options).sort(),
          d: draining ? String(route.drain?.lastSequence) : "",
        })
      : "";
    if (current && current.fingerprint === fingerprint) return;
    if (current) {
      await current.sink.stop();
      this.sinks.delete(key);
    }
    if (route === undefined) {
      // Gone from the bucket (purged or drained): a consumer left over goes too.
      await deleteConsumer(this.deps.bus, routeConsumerName(key, Platform.IOT_CENTRAL)).catch((err) =>
        this.deps.logger.warn({ err, route: key }, "deleting a deleted route's consumer failed"),
      );
      return;
    }
    if (!wanted) return;
    const sink = new RouteSink(route, this.deps);
    this.sinks.set(key, { sink, fingerprint });
    sink.start();
    this.deps.logger.info({ route: key, application: sink.applicationId, draining }, "IoT Central route started");
    if (sink.drainThrough !== undefined) void this.watchDrain(key, sink, sink.drainThrough);
  }

  private async watchDrain(key: string, sink: RouteSink, lastSequence: number): Promise<void> {
    const signal = this.ac.signal;
    while (!signal.aborted && this.sinks.get(key)?.sink === sink) {
      await sleep(DRAIN_CHECK_INTERVAL_MS, signal).catch(() => {});
      if (signal.aborted || this.sinks.get(key)?.sink !== sink) return;
      try {
        const backlog = await sink.consumer.backlog();
        if (backlog && !deliveredThrough(backlog, lastSequence)) continue;
      } catch (err) {
        this.deps.logger.warn({ err, route: key }, "reading a draining route's consumer failed; trying again");
        continue;
      }
      this.queue = this.queue.then(async () => {
        if (this.sinks.get(key)?.sink !== sink) return;
        await sink.stop();
        const held = await sink.consumer.delete();
        this.deps.logger.info(
          { route: key, delivered: sink.counters.delivered, publishedAfterDelete: held ? held.pending + held.ackPending : 0 },
          "route drained: its backlog is in IoT Central and its durable consumer deleted",
        );
      });
      return;
    }
  }

  list(): RouteSink[] {
    return [...this.sinks.values()].map((s) => s.sink);
  }

  counters(): PipelineCounters[] {
    return this.list().map((s) =>
      create(PipelineCountersSchema, {
        name: s.route.id,
        received: BigInt(s.counters.received),
        delivered: BigInt(s.counters.delivered),
        skipped: BigInt(s.counters.skipped),
        failed: BigInt(s.counters.failed),
        lastError: s.counters.lastError ?? "",
        ...(s.counters.lastErrorTime ? { lastErrorTime: timestampFromDate(s.counters.lastErrorTime) } : {}),
      }),
    );
  }

  async stop(): Promise<void> {
    this.ac.abort(new Error("stopping"));
    await this.queue;
    await Promise.all([...this.sinks.values()].map((s) => s.sink.stop()));
    this.sinks.clear();
    await this.watching;
  }
}
