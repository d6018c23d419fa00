import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Bus, routeBucket } from "@meridian/bus";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { type PipelineCounters, PipelineCountersSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { sleep } from "@meridian/retry";
import { type PipelineDeps, type PipelineSettings, pipelineSettings, RoutePipeline } from "./route-pipeline.js";

/**
 * Watches the `routes` bucket and runs one RoutePipeline per enabled route whose sink is an OMF endpoint:
 * started when the route appears, restarted when it changes, stopped when it is disabled or leaves OMF, and its
 * durable consumer deleted when the route is deleted.
 */
export class PipelineManager {
  private readonly pipelines = new Map<string, { pipeline: RoutePipeline; fingerprint: string; problems: string[] }>();
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
    const wanted = route && !route.disabled && route.sink?.platform === Platform.OMF && route.sink.target !== "";
    const fingerprint = wanted ? JSON.stringify({ s: route.source, t: route.sink?.target, o: route.options }) : "";
    if (current && current.fingerprint === fingerprint) return;
    if (current) {
      await current.pipeline.stop();
      this.pipelines.delete(key);
      this.deps.logger.info({ route: key }, "pipeline stopped");
      if (route === undefined) await current.pipeline.consumer.delete().catch(() => {});
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
    this.pipelines.set(key, { pipeline, fingerprint, problems });
    pipeline.start();
    this.deps.logger.info({ route: key, endpoint: pipeline.endpointId, settings }, "pipeline started");
  }

  /** The running pipelines, by route id. */
  list(): RoutePipeline[] {
    return [...this.pipelines.values()].map((p) => p.pipeline);
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
    await Promise.all(this.list().map((p) => p.stop()));
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
