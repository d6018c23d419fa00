import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Bus, deleteConsumer, deliveredThrough, routeBucket, routeConsumerName } from "@meridian/bus";
import { type Route, RouteState } from "@meridian/contracts/meridian/route/v1/route_pb";
import { type PipelineCounters, PipelineCountersSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { sleep } from "@meridian/retry";
import { type PipelineDeps, type PipelineSettings, pipelineSettings, RoutePipeline } from "./route-pipeline.js";

/** How often a draining route's consumer is asked whether its backlog is delivered. */
const DRAIN_CHECK_INTERVAL_MS = 1000;

interface Running {
  pipeline: RoutePipeline;
  fingerprint: string;
  problems: string[];
  /** Stops the drain watch of a draining route. */
  drain?: AbortController;
  /** The drain is over and the consumer gone; kept until the gateway removes the route, so it is not drained twice. */
  drained?: boolean;
}

/**
 * Watches the `routes` bucket and runs one RoutePipeline per enabled route whose sink is an OMF endpoint: started
 * when the route appears, restarted when it changes, stopped when it is disabled or leaves OMF. A route the gateway
 * marks DRAINING (deleted without purge) keeps its pipeline, disabled or not, on the consumer that exists, until
 * everything up to the delete is delivered; then its consumer is deleted and the gateway removes the route. A route
 * gone from the bucket (purged, or drained) takes whatever consumer is left with it. All of this state is on the bus
 * (the route, the consumer), so a restart in the middle of a drain carries on with it.
 */
export class PipelineManager {
  private readonly pipelines = new Map<string, Running>();
  private readonly ac = new AbortController();
  private watching: Promise<void> | undefined;
  /** Serialises starts and stops. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly bus: Bus,
    private readonly deps: PipelineDeps,
    private readonly defaults: PipelineSettings,
    /** OMF_PIPELINE_MEMORY_BYTES: what one route's batches may hold at once. */
    private readonly memoryBudgetBytes: number,
  ) {}

  start(): void {
    this.watching ??= this.watch();
  }

  private async watch(): Promise<void> {
    const signal = this.ac.signal;
    const log = this.deps.logger.child({ component: "routes" });
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        await this.bus.ready;
        for await (const { key, value } of routeBucket(this.bus).watch(signal)) {
          attempt = 1;
          this.enqueue(() => this.apply(key, value));
        }
      } catch (err) {
        if (signal.aborted) break;
        log.warn({ err, attempt }, "watching routes failed; retrying");
      }
      await sleep(Math.min(5000, 250 * attempt), signal).catch(() => {});
    }
  }

  private enqueue(fn: () => Promise<void>): void {
    this.queue = this.queue.then(fn).catch((err) => this.deps.logger.error({ err }, "applying a route change failed"));
  }

  private async apply(key: string, route: Route | undefined): Promise<void> {
    if (this.ac.signal.aborted) return;
    const current = this.pipelines.get(key);
    const draining = route?.state === RouteState.DRAINING;
    const ours = route !== undefined && route.sink?.platform === Platform.OMF && route.sink.target !== "";
    // Deleting a route means "deliver what it holds, then go": a disabled route drains too.
    const wanted = ours && (draining || !route.disabled);
    const fingerprint = wanted
      ? JSON.stringify({ s: route.source, t: route.sink?.target, o: route.options, d: draining ? String(route.drain?.lastSequence) : "" })
      : "";
    if (current && current.fingerprint === fingerprint) return;
    if (current) {
      current.drain?.abort();
      await current.pipeline.stop();
      this.pipelines.delete(key);
      this.deps.logger.info({ route: key }, "pipeline stopped");
    }
    if (route === undefined) {
      // Gone from the bucket: purged (the gateway already dropped the consumer) or drained. A consumer left over, e.g.
      // re-declared by a pipeline that had not heard of the purge yet, goes too.
      const left = await deleteConsumer(this.bus, routeConsumerName(key, Platform.OMF)).catch((err) => {
        this.deps.logger.warn({ err, route: key }, "deleting a deleted route's consumer failed");
        return undefined;
      });
      if (left)
        this.deps.logger.info({ route: key, pending: left.pending + left.ackPending }, "route deleted: its durable consumer deleted");
      return;
    }
    if (!wanted) return;
    const parsed = pipelineSettings(route.options, this.defaults);
    const bounded = boundMemory(parsed.settings, this.memoryBudgetBytes);
    const settings = bounded.settings;
    const problems = bounded.problem ? [...parsed.problems, bounded.problem] : parsed.problems;
    const pipeline = new RoutePipeline(route, settings, this.deps);
    if (problems.length > 0) {
      pipeline.counters.lastError = `route options: ${problems.join("; ")} (defaults used)`;
      pipeline.counters.lastErrorTime = new Date();
      this.deps.logger.warn({ route: key, problems }, "route options invalid; defaults used");
    }
    const running: Running = { pipeline, fingerprint, problems };
    this.pipelines.set(key, running);
    pipeline.start();
    this.deps.logger.info({ route: key, endpoint: pipeline.endpointId, settings, draining }, "pipeline started");
    if (pipeline.drainThrough !== undefined) {
      running.drain = new AbortController();
      void this.watchDrain(key, running, pipeline.drainThrough, AbortSignal.any([this.ac.signal, running.drain.signal]));
    }
  }

  /** Waits until everything up to `lastSequence` is delivered (or the consumer is gone), then ends the drain. */
  private async watchDrain(key: string, running: Running, lastSequence: number, signal: AbortSignal): Promise<void> {
    const log = this.deps.logger.child({ route: key });
    log.info({ lastSequence }, "route deleted: delivering its backlog before its durable consumer is deleted");
    while (!signal.aborted) {
      await sleep(DRAIN_CHECK_INTERVAL_MS, signal).catch(() => {});
      if (signal.aborted) return;
      try {
        const backlog = await running.pipeline.consumer.backlog();
        if (backlog && !deliveredThrough(backlog, lastSequence)) continue;
      } catch (err) {
        log.warn({ err }, "reading a draining route's consumer failed; trying again");
        continue;
      }
      this.enqueue(() => this.endDrain(key, running));
      return;
    }
  }

  private async endDrain(key: string, running: Running): Promise<void> {
    if (this.pipelines.get(key) !== running || this.ac.signal.aborted) return;
    // Everything up to the delete is acknowledged: what the pipeline still pulls came later, and goes with the consumer.
    await running.pipeline.stop();
    const held = await running.pipeline.consumer.delete();
    running.drained = true;
    const { delivered, failed } = running.pipeline.counters;
    if (held)
      this.deps.logger.info(
        { route: key, delivered, failed, publishedAfterDelete: held.pending + held.ackPending },
        "route drained: its backlog is delivered and its durable consumer deleted",
      );
    else
      this.deps.logger.info(
        { route: key, delivered, failed },
        "route drained: its durable consumer was already gone (purged, or drained by another instance)",
      );
  }

  /** The running pipelines (draining ones included), by route id. */
  list(): RoutePipeline[] {
    return [...this.pipelines.values()].filter((p) => !p.drained).map((p) => p.pipeline);
  }

  async counters(): Promise<PipelineCounters[]> {
    return Promise.all(
      this.list().map(async (p) =>
        create(PipelineCountersSchema, {
          name: p.route.id,
          received: BigInt(p.counters.received),
          delivered: BigInt(p.counters.delivered),
          skipped: BigInt(p.counters.skipped),
          failed: BigInt(p.counters.failed),
          pending: BigInt(await p.pending()),
          lastError: p.counters.lastError,
          ...(p.counters.lastErrorTime ? { lastErrorTime: timestampFromDate(p.counters.lastErrorTime) } : {}),
        }),
      ),
    );
  }

  /** Stops watching and every pipeline (in-flight sends are aborted, unsent deliveries handed back). */
  async stop(): Promise<void> {
    this.ac.abort(new Error("stopping"));
    await this.queue;
    await Promise.all([...this.pipelines.values()].map((p) => p.pipeline.stop()));
    this.pipelines.clear();
    await this.watching;
  }
}

const MiB = 1024 * 1024;

/**
 * Keeps one route's batches within the memory budget: a batch being filled plus `maxInflightBatches` being sent,
 * each up to `maxBatchBytes` of bus messages (their decoded form and the OMF body come on top, which is why the budget
 * is a fraction of the pod's memory). Fewer batches in flight first, smaller batches only if even one will not fit.
 */
export function boundMemory(settings: PipelineSettings, budgetBytes: number): { settings: PipelineSettings; problem?: string } {
  const held = (s: PipelineSettings) => s.maxBatchBytes * (s.maxInflightBatches + 1);
  if (held(settings) <= budgetBytes) return { settings };
  const bounded = { ...settings };
  bounded.maxInflightBatches = Math.max(1, Math.floor(budgetBytes / bounded.maxBatchBytes) - 1);
  if (held(bounded) > budgetBytes) bounded.maxBatchBytes = Math.max(1024, Math.floor(budgetBytes / 2));
  const mib = (n: number) => `${Math.round((n / MiB) * 10) / 10} MiB`;
  return {
    settings: bounded,
    problem:
      `options: maxBatchBytes × (maxInflightBatches + 1) = ${mib(held(settings))} exceeds OMF_PIPELINE_MEMORY_BYTES (${mib(budgetBytes)}); ` +
      `using maxBatchBytes ${bounded.maxBatchBytes}, maxInflightBatches ${bounded.maxInflightBatches}`,
  };
}
