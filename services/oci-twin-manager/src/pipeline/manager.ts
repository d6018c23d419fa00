import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Bus } from "@meridian/bus";
import { type PipelineCounters, PipelineCountersSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { type BackoffPolicy, sleep } from "@meridian/retry";
import type { Logger } from "pino";
import type { OciTwinManagerConfig } from "../config.js";
import type { DigitalTwinsClient } from "../platform/types.js";
import { CursorStore } from "./cursors.js";
import type { OciDomains } from "./domains.js";
import { OciRouteSinks } from "./route-sink.js";
import { chosenDataSets, TwinPoller } from "./source.js";
import type { StoredTwin, TwinStore } from "./store.js";

export interface OciPipelinesDeps {
  bus: Bus;
  store: Pick<TwinStore, "get" | "list" | "watch" | "deviceCredentials">;
  domains: Pick<OciDomains, "resolve" | "dataApi" | "device">;
  config: Pick<OciTwinManagerConfig, "OCI_SOURCE_POLL_MS" | "OCI_SOURCE_PAGE_ROWS" | "OCI_SINK_ACK_WAIT_MS" | "OCI_SINK_MAX_IN_FLIGHT">;
  logger: Logger;
  /** The control plane, for model specs (their integer contents become int64 points); absent: numbers are doubles. */
  models?: Pick<DigitalTwinsClient, "getModelSpec"> | undefined;
  /** Tests: faster backoffs. */
  readBackoff?: BackoffPolicy | undefined;
  readAttempts?: number | undefined;
  redeliveryBackoff?: BackoffPolicy | undefined;
}

/** What restarts a twin's poller (another instance, domain or model): the rest of a source change is an update. */
function identity(t: StoredTwin): string {
  return JSON.stringify([t.instanceId, t.iotDomainId, t.externalKey ?? "", t.modelId ?? ""]);
}

/**
 * The service's bus pipelines: a TwinPoller per twin whose source publishes a data set (from the oci_twins bucket:
 * what it holds at start, then its changes), and a route sink per route into OCI (the bus's RouteSinks). A twin whose
 * source is turned off or that is deleted stops at once; a deleted twin's cursors go with it.
 */
export class OciPipelines {
  readonly sinks: OciRouteSinks;
  readonly cursors: CursorStore;
  private readonly pollers = new Map<string, { poller: TwinPoller; identity: string }>();
  private readonly ac = new AbortController();
  private readonly log: Logger;
  /** Serialises starts and stops, as the watch delivers them. */
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly deps: OciPipelinesDeps) {
    this.log = deps.logger.child({ component: "oci-pipelines" });
    this.cursors = new CursorStore(deps.bus);
    this.sinks = new OciRouteSinks({
      bus: deps.bus,
      store: deps.store,
      domains: deps.domains,
      logger: deps.logger,
      ackWaitMs: deps.config.OCI_SINK_ACK_WAIT_MS,
      maxInFlight: deps.config.OCI_SINK_MAX_IN_FLIGHT,
      backoff: deps.redeliveryBackoff,
    });
  }

  /** Starts the route sinks and follows the twins until `signal` aborts or stop(); the watch is retried while the bus is down. */
  async run(signal?: AbortSignal): Promise<void> {
    if (this.stopped || signal?.aborted) return;
    signal?.addEventListener("abort", () => this.ac.abort(signal.reason), { once: true });
    this.sinks.start();
    const own = this.ac.signal;
    for (let attempt = 1; !own.aborted; attempt++) {
      try {
        await this.deps.bus.ready;
        // The watch gives what the bucket holds first, then each change.
        for await (const { key, twin } of this.deps.store.watch(own)) {
          attempt = 1;
          this.enqueue(key, () => this.apply(key, twin));
        }
      } catch (err) {
        if (own.aborted) break;
        this.log.warn({ err: (err as Error).message, attempt }, "watching twins failed; retrying");
      }
      await sleep(Math.min(5000, 250 * attempt), own).catch(() => {});
    }
    await this.queue;
  }

  private enqueue(key: string, fn: () => Promise<void>): void {
    this.queue = this.queue.then(fn).catch((err) => this.log.error({ err, twin: key }, "applying a twin change failed"));
  }

  private async apply(key: string, twin: StoredTwin | undefined): Promise<void> {
    if (this.stopped) return;
    const current = this.pollers.get(key);
    const wanted = twin !== undefined && chosenDataSets(twin.source).length > 0;
    if (current && wanted && current.identity === identity(twin)) {
      current.poller.update(twin);
      return;
    }
    if (current) {
      this.pollers.delete(key);
      await current.poller.stop();
      this.log.info({ twin: key }, "twin source stopped");
    }
    if (twin === undefined) {
      await this.cursors.deleteTwin(key).catch((err) => this.log.warn({ err, twin: key }, "deleting a deleted twin's cursors failed"));
      return;
    }
    if (!wanted || this.stopped) return;
    const poller = new TwinPoller({
      twin,
      bus: this.deps.bus,
      dataApi: (id) => this.deps.domains.dataApi(id),
      models: this.deps.models,
      cursors: this.cursors,
      logger: this.deps.logger,
      pageRows: this.deps.config.OCI_SOURCE_PAGE_ROWS,
      pollMs: this.deps.config.OCI_SOURCE_POLL_MS,
      readBackoff: this.deps.readBackoff,
      readAttempts: this.deps.readAttempts,
    });
    this.pollers.set(key, { poller, identity: identity(twin) });
    poller.start();
    this.log.info({ twin: key, dataSets: chosenDataSets(twin.source), instance: twin.instanceId }, "twin source started");
  }

  poller(key: string): TwinPoller | undefined {
    return this.pollers.get(key)?.poller;
  }

  counters(): PipelineCounters[] {
    const sources = [...this.pollers.values()].map(({ poller: p }) =>
      create(PipelineCountersSchema, {
        name: `twin-${p.key}`,
        received: BigInt(p.counters.received),
        delivered: BigInt(p.counters.delivered),
        skipped: BigInt(p.counters.skipped),
        failed: BigInt(p.counters.failed),
        pending: BigInt(p.pending),
        lastError: p.counters.lastError ?? "",
        ...(p.counters.lastErrorTime ? { lastErrorTime: timestampFromDate(p.counters.lastErrorTime) } : {}),
      }),
    );
    return [...this.sinks.counters(), ...sources];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ac.abort(new Error("stopping"));
    const pollers = [...this.pollers.values()];
    this.pollers.clear();
    await Promise.all([this.sinks.stop(), ...pollers.map(({ poller }) => poller.stop())]);
  }
}
