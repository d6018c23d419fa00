import { type Bus, busFromConfig, startStatusReporter } from "@meridian/bus";
import { OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { Health } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import type { BackoffPolicy } from "@meridian/retry";
import { type Logger, type RunningService, startService } from "@meridian/service-kit";
import { omfSenderService } from "./api/index.js";
import type { OmfSenderConfig } from "./config.js";
import { CredentialCipher, EndpointRegistry } from "./endpoints.js";
import { applyEndpoints, readEndpointsFile } from "./endpoints-file.js";
import { PipelineManager } from "./pipeline/manager.js";
import { EndpointStats } from "./pipeline/stats.js";
import { DefinitionState } from "./pipeline/store.js";

export const SERVICE = "omf-sender";
export const VERSION = "0.1.0";

export interface OmfSender {
  service: RunningService;
  bus: Bus;
  registry: EndpointRegistry;
  pipelines: PipelineManager;
  stop(): Promise<void>;
}

export interface OmfSenderOptions {
  installSignalHandlers?: boolean;
  /** Redelivery backoff for transient failures (tests shorten it); default the bus's REDELIVERY_BACKOFF. */
  redeliveryBackoff?: BackoffPolicy;
  /** Status report interval (default the bus's). */
  statusIntervalMs?: number;
}

/**
 * omf-sender: the OmfSenderService API (endpoints, raw OMF, status) and one pipeline per OMF route from the bus.
 * The endpoints file is read before anything starts (a bad file is a ConfigError naming OMF_ENDPOINTS_FILE).
 */
export async function startOmfSender(config: OmfSenderConfig, logger: Logger, options: OmfSenderOptions = {}): Promise<OmfSender> {
  const cipher = config.OMF_CREDENTIALS_KEY ? new CredentialCipher(config.OMF_CREDENTIALS_KEY) : undefined;
  const declared = config.OMF_ENDPOINTS_FILE ? readEndpointsFile(config.OMF_ENDPOINTS_FILE, { hasKey: cipher !== undefined }) : [];
  const bus = busFromConfig(config, SERVICE, logger);
  const registry = new EndpointRegistry(bus, cipher);
  const state = new DefinitionState(bus);
  const stats = new EndpointStats();
  const pipelines = new PipelineManager(
    bus,
    {
      bus,
      registry,
      state,
      stats,
      logger,
      ackWaitMs: config.OMF_ACK_WAIT_MS,
      ...(options.redeliveryBackoff ? { backoff: options.redeliveryBackoff } : {}),
    },
    {
      maxBatchEvents: config.OMF_MAX_BATCH_EVENTS,
      maxBatchBytes: config.OMF_MAX_BATCH_BYTES,
      lingerMs: config.OMF_LINGER_MS,
      maxInflightBatches: config.OMF_MAX_INFLIGHT_BATCHES,
      dataAction: "auto",
      intFormat: "int64",
    },
  );

  const service = await startService({
    name: SERVICE,
    version: VERSION,
    port: config.PORT,
    logger,
    initialStatus: "NOT_SERVING",
    ...(options.installSignalHandlers === undefined ? {} : { installSignalHandlers: options.installSignalHandlers }),
    routes: (router) => {
      router.service(OmfSenderService, omfSenderService({ registry, state, stats, pipelines }));
    },
  });

  bus.onStatus((connected) => service.health.set("", connected ? "SERVING" : "NOT_SERVING"));
  // Stop order: pipelines hand their unsent deliveries back while the bus is still up, then the bus drains.
  service.onShutdown(async () => {
    await pipelines.stop();
    await registry.close();
  });
  service.onShutdown(() => bus.close());

  void bus.ready.then(async () => {
    service.health.set("", bus.connected ? "SERVING" : "NOT_SERVING");
    for (let attempt = 1; declared.length > 0 && !service.shutdownSignal.aborted; attempt++) {
      try {
        const applied = await applyEndpoints(registry, declared);
        logger.info({ file: config.OMF_ENDPOINTS_FILE, ...applied }, "endpoints file applied");
        break;
      } catch (err) {
        logger.warn({ err, attempt }, "applying endpoints file failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * attempt)));
      }
    }
    if (!service.shutdownSignal.aborted) pipelines.start();
  });

  startStatusReporter(bus, {
    service: SERVICE,
    instance: config.INSTANCE_ID,
    version: VERSION,
    signal: service.shutdownSignal,
    ...(options.statusIntervalMs ? { intervalMs: options.statusIntervalMs } : {}),
    collect: async () => ({
      health: bus.connected ? Health.SERVING : Health.NOT_SERVING,
      pipelines: await pipelines.counters(),
    }),
    onError: (err) => logger.warn({ err }, "status report failed"),
  });

  return { service, bus, registry, pipelines, stop: () => service.stop() };
}
