import { type Bus, pipelineCounters, RouteSinks } from "@meridian/bus";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import type { PipelineCounters } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type PipelineDeps, type PipelineSettings, pipelineSettings, RoutePipeline } from "./route-pipeline.js";

/**
 * One RoutePipeline per enabled route whose sink is an OMF endpoint, run by the bus's RouteSinks: started when the
 * route appears, restarted when it changes (its options included), stopped when it is disabled or leaves OMF. A route
 * the gateway marks DRAINING (deleted without purge) keeps its pipeline, disabled or not, on the consumer that exists,
 * until everything up to the delete is delivered; then its consumer is deleted and the gateway removes the route. A
 * route gone from the bucket (purged, or drained) takes whatever consumer is left with it.
 */
export class PipelineManager {
  private readonly routes: RouteSinks<RoutePipeline>;

  constructor(
    bus: Bus,
    private readonly deps: PipelineDeps,
    private readonly defaults: PipelineSettings,
    /** OMF_PIPELINE_MEMORY_BYTES: what one route's batches may hold at once. */
    private readonly memoryBudgetBytes: number,
  ) {
    this.routes = new RouteSinks({
      bus,
      platform: Platform.OMF,
      logger: deps.logger,
      create: (route) => this.pipeline(route),
      fingerprint: (route) => JSON.stringify(route.options),
      describe: (p) => ({ endpoint: p.endpointId, settings: p.settings }),
    });
  }

  /** The route's pipeline with its options, or the defaults where they are invalid (named in its last error). */
  private pipeline(route: Route): RoutePipeline {
    const parsed = pipelineSettings(route.options, this.defaults);
    const bounded = boundMemory(parsed.settings, this.memoryBudgetBytes);
    const problems = bounded.problem ? [...parsed.problems, bounded.problem] : parsed.problems;
    // The route's view of the definitions state records it as the creator of what it sends first (clean-up by route).
    const pipeline = new RoutePipeline(route, bounded.settings, { ...this.deps, state: this.deps.state.forRoute(route.id) });
    if (problems.length > 0) {
      // A bad omfMapping is not replaced by a default: the route's events wait until it is corrected.
      const outcome = bounded.settings.mappingProblem ? "events held until omfMapping is corrected; other defaults used" : "defaults used";
      pipeline.counters.lastError = `route options: ${problems.join("; ")} (${outcome})`;
      pipeline.counters.lastErrorTime = new Date();
      this.deps.logger.warn({ route: route.id, problems }, "route options invalid; defaults used");
    }
    return pipeline;
  }

  start(): void {
    this.routes.start();
  }

  /** The running pipelines (draining ones included), by route id. */
  list(): RoutePipeline[] {
    return this.routes.list();
  }

  async counters(): Promise<PipelineCounters[]> {
    return Promise.all(
      this.list().map(async (p) =>
        pipelineCounters(p.route.id, p.counters, { pending: await p.pending(), backlog: this.routes.backlogOf(p) }),
      ),
    );
  }

  /** Stops watching and every pipeline (in-flight sends are aborted, unsent deliveries handed back). */
  async stop(): Promise<void> {
    await this.routes.stop();
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
