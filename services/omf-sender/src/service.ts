import { OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import type { BackoffPolicy } from "@meridian/retry";
import { ConfigError, isDevelopmentKey, type Logger, serviceIdentity } from "@meridian/service-kit";
import { type BusService, type BusServiceOptions, startBusService } from "@meridian/service-kit/bus";
import { omfSenderErrors, omfSenderService } from "./api/index.js";
import type { OmfSenderConfig } from "./config.js";
import { applyEndpoints, type DeclaredRules, declaredDefinitions, declaredUrls, readEndpointsFile } from "./declared.js";
import { CredentialKeyring, EndpointPolicy, EndpointRegistry } from "./pipeline/endpoints.js";
import { PipelineManager } from "./pipeline/manager.js";
import { EndpointStats } from "./pipeline/stats.js";
import { DefinitionState } from "./pipeline/store.js";

const SERVICE = serviceIdentity("omf-sender", import.meta.url);

export interface OmfSender extends BusService {
  registry: EndpointRegistry;
  pipelines: PipelineManager;
}

export interface OmfSenderOptions extends BusServiceOptions {
  /** Redelivery backoff for transient failures (tests shorten it); default the bus's REDELIVERY_BACKOFF. */
  redeliveryBackoff?: BackoffPolicy;
}

/**
 * omf-sender: the OmfSenderService API (endpoints, raw OMF, status) and one pipeline per OMF route from the bus.
 * The endpoints file is read before anything starts (a bad file is a ConfigError naming OMF_ENDPOINTS_FILE), and the
 * pipelines start once its endpoints are in, so that a route never runs ahead of its endpoint.
 */
export async function startOmfSender(config: OmfSenderConfig, logger: Logger, options: OmfSenderOptions = {}): Promise<OmfSender> {
  if (!config.OMF_CREDENTIALS_KEY && config.OMF_CREDENTIALS_PREVIOUS_KEYS.length > 0)
    throw new ConfigError(
      "OMF_CREDENTIALS_PREVIOUS_KEYS is set without OMF_CREDENTIALS_KEY: the current key seals, previous keys only open",
      ["OMF_CREDENTIALS_KEY", "OMF_CREDENTIALS_PREVIOUS_KEYS"],
    );
  const keyring = config.OMF_CREDENTIALS_KEY
    ? new CredentialKeyring(config.OMF_CREDENTIALS_KEY, config.OMF_CREDENTIALS_PREVIOUS_KEYS)
    : undefined;
  if (config.OMF_CREDENTIALS_KEY && isDevelopmentKey(config.OMF_CREDENTIALS_KEY))
    logger.warn("OMF_CREDENTIALS_KEY is the development key published with docker-compose.yml: anyone can decrypt what it seals");
  const rules: DeclaredRules = {
    allowInsecure: config.OMF_ALLOW_INSECURE_ENDPOINTS,
    caDir: config.OMF_CA_DIR,
    secretEnvPrefix: config.OMF_SECRET_ENV_PREFIX,
    secretDir: config.OMF_SECRET_DIR,
    // A reference of the endpoints file never reads the credentials keys, even from inside OMF_SECRET_DIR.
    protectedFiles: [process.env["OMF_CREDENTIALS_KEY_FILE"], process.env["OMF_CREDENTIALS_PREVIOUS_KEYS_FILE"]].filter(
      (f): f is string => !!f,
    ),
  };
  const declared = config.OMF_ENDPOINTS_FILE ? readEndpointsFile(config.OMF_ENDPOINTS_FILE, { hasKey: keyring !== undefined, rules }) : [];
  const policy = new EndpointPolicy({ ...rules, allowedHosts: config.OMF_ALLOWED_HOSTS, declaredUrls: declaredUrls(declared) });
  if (config.OMF_ALLOW_INSECURE_ENDPOINTS)
    logger.warn("OMF_ALLOW_INSECURE_ENDPOINTS is on: endpoints may turn TLS verification off and send over plain http");
  for (const d of declared) {
    const insecure = policy.insecureSettings(d.settings);
    if (insecure.length > 0) logger.warn({ endpoint: d.id, insecureSettings: insecure }, "declared endpoint with insecure settings");
  }
  logger.info(
    { allowedHosts: config.OMF_ALLOWED_HOSTS, declaredHosts: [...new Set(declaredUrls(declared).map((u) => new URL(u).host))] },
    "OMF endpoints may be on these hosts",
  );
  const defaultBytesHeld = config.OMF_MAX_BATCH_BYTES * (config.OMF_MAX_INFLIGHT_BATCHES + 1);
  if (defaultBytesHeld > config.OMF_PIPELINE_MEMORY_BYTES)
    throw new ConfigError(
      `OMF_MAX_BATCH_BYTES × (OMF_MAX_INFLIGHT_BATCHES + 1) = ${defaultBytesHeld} exceeds OMF_PIPELINE_MEMORY_BYTES=${config.OMF_PIPELINE_MEMORY_BYTES}`,
      ["OMF_MAX_BATCH_BYTES", "OMF_MAX_INFLIGHT_BATCHES", "OMF_PIPELINE_MEMORY_BYTES"],
    );
  if (declared.length > config.OMF_MAX_ENDPOINTS)
    throw new ConfigError(`OMF_ENDPOINTS_FILE: ${declared.length} endpoints, more than OMF_MAX_ENDPOINTS=${config.OMF_MAX_ENDPOINTS}`, [
      "OMF_ENDPOINTS_FILE",
      "OMF_MAX_ENDPOINTS",
    ]);
  let registry!: EndpointRegistry;
  let pipelines!: PipelineManager;

  const running = await startBusService(
    SERVICE,
    config,
    logger,
    (bus) => {
      registry = new EndpointRegistry(bus, { keyring, policy, declared: declaredDefinitions(declared), logger });
      const state = new DefinitionState(bus, config.OMF_MAX_CONTAINERS_PER_ENDPOINT);
      const stats = new EndpointStats();
      pipelines = new PipelineManager(
        bus,
        {
          bus,
          registry,
          state,
          stats,
          logger,
          ackWaitMs: config.OMF_ACK_WAIT_MS,
          flushMaxMs: config.OMF_FLUSH_MAX_MS,
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
        config.OMF_PIPELINE_MEMORY_BYTES,
      );
      return {
        routes: (router) =>
          router.service(
            OmfSenderService,
            omfSenderService({
              registry,
              state,
              stats,
              pipelines,
              maxEndpoints: config.OMF_MAX_ENDPOINTS,
              maxContainersPerEndpoint: config.OMF_MAX_CONTAINERS_PER_ENDPOINT,
            }),
          ),
        errors: [omfSenderErrors],
        declared: {
          setting: "OMF_ENDPOINTS_FILE",
          entries: declared.length,
          apply: () => applyEndpoints(registry, declared, logger),
          runAfterApply: true,
        },
        run: () => {
          pipelines.start();
          void warnInsecureStored(registry, logger);
        },
        counters: () => pipelines.counters(),
        // Pipelines hand their unsent deliveries back while the bus is still up.
        async stop() {
          await pipelines.stop();
          await registry.close();
        },
      };
    },
    options,
  );
  return Object.assign(running, { registry, pipelines });
}

/** Endpoints in the bucket with insecure settings, at warn, once at start (the declared ones were named before). */
async function warnInsecureStored(registry: EndpointRegistry, logger: Logger): Promise<void> {
  try {
    for (const e of await registry.list()) {
      if (registry.declared.has(e.id)) continue;
      const insecure = registry.insecureSettings(e);
      if (insecure.length > 0) logger.warn({ endpoint: e.id, insecureSettings: insecure }, "stored endpoint with insecure settings");
    }
  } catch (err) {
    logger.warn({ err }, "listing the stored endpoints for their insecure settings failed");
  }
}
