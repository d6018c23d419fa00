/**
 * The starter every Meridian service that works on the bus shares (`@meridian/service-kit/bus`; a subpath so that
 * emulators, which use the server alone, never load NATS). It does the wiring each service used to repeat:
 * bus from the settings → server NOT_SERVING → health follows the bus → the bus drains last at shutdown → the
 * declared file applied once the bus is reachable (retried with the one backoff policy) → the service's own run
 * loop → status reports and /metrics from the pipeline counters. A service's service.ts keeps only what is its own.
 */

import { durationMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type Bus,
  BusPermissionError,
  BusUnavailableError,
  busFromConfig,
  KeyExistsError,
  MessageTooLargeError,
  NatsSettingsError,
  natsSettings,
  startStatusReporter,
} from "@meridian/bus";
import { Health, type PipelineCounters } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { retry } from "@meridian/retry";
import { Counter, Gauge } from "prom-client";
import { z } from "zod";
import { authSettings, serverAuth } from "./auth/index.js";
import { ConfigError, env } from "./config.js";
import type { ErrorTable } from "./errors.js";
import { DEFAULT_SERVER_LIMITS, SERVER_LIMIT_BOUNDS, type ServerLimits } from "./limits.js";
import type { Logger } from "./logger.js";
import type { ServiceIdentity } from "./main.js";
import { type RunningService, type ServiceOptions, startService } from "./server.js";
import { serverTlsFromSettings, tlsSettings } from "./tls.js";

/** A server limit as an environment setting, with the default and bounds the server itself enforces. */
function limitSetting(name: keyof ServerLimits) {
  const [min, max] = SERVER_LIMIT_BOUNDS[name];
  return z.coerce.number().int().min(min).max(max).default(DEFAULT_SERVER_LIMITS[name]);
}

/** The settings every bus service reads; spread into its own schema: `z.object({ ...serviceSettings(8081), ... })`. */
export function serviceSettings(defaultPort: number) {
  return {
    PORT: env.port(defaultPort),
    /** The server's limits (libs/service-kit README, "Limits"). */
    SERVER_MAX_CONNECTIONS: limitSetting("maxConnections"),
    SERVER_MAX_STREAMING_CALLS: limitSetting("maxStreamingCalls"),
    SERVER_HEADERS_TIMEOUT_MS: limitSetting("headersTimeoutMs"),
    SERVER_KEEP_ALIVE_TIMEOUT_MS: limitSetting("keepAliveTimeoutMs"),
    SERVER_HTTP2_MAX_CONCURRENT_STREAMS: limitSetting("http2MaxConcurrentStreams"),
    SERVER_HTTP2_IDLE_TIMEOUT_MS: limitSetting("http2IdleTimeoutMs"),
    /** TLS on the API port (libs/service-kit README, "TLS"): TLS_CERT_FILE, TLS_KEY_FILE, TLS_CLIENT_CA_FILE, TLS_CLIENT_AUTH. */
    ...tlsSettings,
    /** Who may call what: API keys, JWT bearer tokens, client certificates, per-caller limits (libs/service-kit README, "Authentication"). */
    ...authSettings,
    ...natsSettings,
    /** Names this instance in status reports and leases; the pod name on Kubernetes. */
    INSTANCE_ID: z
      .string()
      .min(1)
      .max(128)
      .default(process.env.HOSTNAME ?? "local"),
  };
}

const settingsSchema = z.object(serviceSettings(0));
export type ServiceSettings = z.infer<typeof settingsSchema>;

/** What the bus itself throws, as API codes; every bus service's last error table. */
export const busErrors: ErrorTable = (err) => {
  if (err instanceof BusUnavailableError) return new ConnectError(`event bus unavailable: ${err.message}`, Code.Unavailable);
  if (err instanceof MessageTooLargeError) return new ConnectError(err.message, Code.InvalidArgument);
  if (err instanceof KeyExistsError) return new ConnectError(err.message, Code.AlreadyExists);
  // The service's NATS user may not do this (e.g. publish another platform's telemetry); the bus logged the subject.
  if (err instanceof BusPermissionError) return new ConnectError(err.message, Code.PermissionDenied);
  return undefined;
};

/** A file of things the service declares at start (routes, endpoints, monitors): read and validated before start. */
export interface DeclaredFile {
  /** The setting that named the file (e.g. ROUTES_FILE), for the log. */
  setting: string;
  /** How many entries it holds; nothing is applied when 0. */
  entries: number;
  /** Applies the entries (idempotently: it runs again after a failure); returns a summary for the log line. */
  apply(signal: AbortSignal): Promise<Record<string, unknown>>;
  /** Whether `run` waits until the file is applied (e.g. pipelines need their endpoints). Default false. */
  runAfterApply?: boolean;
}

/** The parts that are the service's own, made once its bus exists. */
export interface BusServiceParts {
  /** Registers the service's Connect services. */
  routes(router: ConnectRouter): void;
  /** The service's error tables, tried before the bus's. */
  errors?: ErrorTable[];
  declared?: DeclaredFile;
  /** Starts the service's work once the bus is reachable (pipelines, sessions); may run until `signal` aborts. */
  run?(signal: AbortSignal): Promise<void> | void;
  /** The pipelines' counters, for status reports and /metrics. */
  counters?(): Promise<PipelineCounters[]> | PipelineCounters[];
  /** Stops the service's work at shutdown, before the bus drains (e.g. pipelines hand back unsent deliveries). */
  stop?(): Promise<void>;
  /** Plain HTTP routes served without authentication (ServiceOptions.httpRoutes), e.g. the gateway's API document. */
  httpRoutes?: ServiceOptions["httpRoutes"];
  /** Faster readers of Connect JSON requests (ServiceOptions.jsonRequestReaders), e.g. the gateway's Publish. */
  jsonRequestReaders?: ServiceOptions["jsonRequestReaders"];
}

/** What tests may change; a process takes the defaults. */
export interface BusServiceOptions {
  /** Default true: SIGTERM / SIGINT stop the service and exit. Tests pass false. */
  installSignalHandlers?: boolean;
  /** Status report interval (default the bus library's). */
  statusIntervalMs?: number;
}

export interface BusService {
  service: RunningService;
  bus: Bus;
  stop(): Promise<void>;
}

/** The bus from the settings; NATS settings that cannot work together are a ConfigError (exit 78) like any other. */
function busFromNatsSettings(config: ServiceSettings, name: string, logger: Logger): Bus {
  try {
    return busFromConfig(config, name, logger);
  } catch (err) {
    if (err instanceof NatsSettingsError) throw new ConfigError(err.message, err.settings);
    throw err;
  }
}

/** The one backoff for applying a declared file: the platform or the bus may come up after us. */
const DECLARED_BACKOFF = { initialMs: 500, maxMs: 10_000, multiplier: 2, jitter: 0.3 };

export async function startBusService(
  identity: ServiceIdentity,
  config: ServiceSettings,
  logger: Logger,
  setup: (bus: Bus) => BusServiceParts | Promise<BusServiceParts>,
  options: BusServiceOptions = {},
): Promise<BusService> {
  // Settings that contradict each other stop the start before anything connects.
  const tls = serverTlsFromSettings(config);
  const auth = serverAuth(config, logger);
  const bus = busFromNatsSettings(config, identity.name, logger);
  let parts: BusServiceParts;
  try {
    parts = await setup(bus);
  } catch (err) {
    auth.authenticator.close();
    await bus.close();
    throw err;
  }

  // A port that is taken or a TLS file that cannot be used: nothing the setup opened may stay open.
  const service = await startService({
    name: identity.name,
    auth,
    version: identity.version,
    port: config.PORT,
    logger,
    // Ready means the bus is reachable: without it nothing could be stored, acked or answered.
    initialStatus: "NOT_SERVING",
    errors: [...(parts.errors ?? []), busErrors],
    limits: {
      maxConnections: config.SERVER_MAX_CONNECTIONS,
      maxStreamingCalls: config.SERVER_MAX_STREAMING_CALLS,
      headersTimeoutMs: config.SERVER_HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: config.SERVER_KEEP_ALIVE_TIMEOUT_MS,
      http2MaxConcurrentStreams: config.SERVER_HTTP2_MAX_CONCURRENT_STREAMS,
      http2IdleTimeoutMs: config.SERVER_HTTP2_IDLE_TIMEOUT_MS,
    },
    tls,
    ...(options.installSignalHandlers === undefined ? {} : { installSignalHandlers: options.installSignalHandlers }),
    routes: (router) => parts.routes(router),
    ...(parts.httpRoutes ? { httpRoutes: parts.httpRoutes } : {}),
    ...(parts.jsonRequestReaders ? { jsonRequestReaders: parts.jsonRequestReaders } : {}),
  }).catch(async (err: unknown) => {
    auth.authenticator.close();
    await parts.stop?.().catch(() => {});
    await bus.close();
    throw err;
  });
  const signal = service.shutdownSignal;

  bus.onStatus((connected) => service.health.set("", connected ? "SERVING" : "NOT_SERVING"));
  // Stop order: the service's work first (it may still publish or nak), then the bus drains.
  if (parts.stop) service.onShutdown(parts.stop);
  service.onShutdown(() => bus.close());

  void bus.ready
    .then(async () => {
      service.health.set("", bus.connected ? "SERVING" : "NOT_SERVING");
      const declared = parts.declared;
      const applying = declared && declared.entries > 0 ? applyDeclared(declared, logger, signal) : Promise.resolve();
      if (declared?.runAfterApply) await applying;
      if (!signal.aborted) await parts.run?.(signal);
    })
    .catch((err: unknown) => {
      // The service's work is gone while its API still answers: not ready, so probes and the status say so.
      logger.error({ err }, "the service's run failed");
      service.health.set("", "NOT_SERVING");
    });

  const counters = async () => (parts.counters ? await parts.counters() : []);
  registerPipelineMetrics(service, counters);
  registerBacklogMetrics(service, bus);
  startStatusReporter(bus, {
    service: identity.name,
    instance: config.INSTANCE_ID,
    version: identity.version,
    signal,
    ...(options.statusIntervalMs ? { intervalMs: options.statusIntervalMs } : {}),
    collect: async () => ({ health: bus.connected ? Health.SERVING : Health.NOT_SERVING, pipelines: await counters() }),
    // A report cut off by the shutdown (the bus drains under it) is expected, not a fault to warn about.
    onError: (err) =>
      signal.aborted ? logger.debug({ err }, "status report cut off by the shutdown") : logger.warn({ err }, "status report failed"),
  });

  return { service, bus, stop: () => service.stop() };
}

async function applyDeclared(declared: DeclaredFile, logger: Logger, signal: AbortSignal): Promise<void> {
  try {
    const summary = await retry(() => declared.apply(signal), {
      policy: DECLARED_BACKOFF,
      maxAttempts: Number.POSITIVE_INFINITY,
      signal,
      isRetryable: () => !signal.aborted,
      onRetry: (err, attempt, delayMs) =>
        logger.warn({ err, attempt, delayMs, setting: declared.setting }, "applying the declared file failed; retrying"),
    });
    logger.info({ setting: declared.setting, ...summary }, "declared file applied");
  } catch (err) {
    if (!signal.aborted) logger.error({ err, setting: declared.setting }, "applying the declared file failed");
  }
}

/**
 * The pipeline counters as Prometheus series, read at scrape time from the same source as the status reports, so
 * /metrics and GetStatus never disagree.
 */
function registerPipelineMetrics(service: RunningService, counters: () => Promise<PipelineCounters[]>): void {
  // One read per scrape serves every series (omf-sender's counters ask the bus for consumer info).
  let latest: Promise<PipelineCounters[]> | undefined;
  const read = () => {
    latest ??= counters().finally(() => setTimeout(() => (latest = undefined), 1000).unref());
    return latest;
  };
  new Counter({
    name: "meridian_pipeline_events_total",
    help: "Events per pipeline by outcome: received (distinct messages), delivered, skipped (nothing to deliver), failed and redelivered (messages delivered again, not in received).",
    labelNames: ["pipeline", "outcome"],
    registers: [service.metrics],
    async collect() {
      this.reset();
      for (const p of await read()) {
        this.inc({ pipeline: p.name, outcome: "received" }, Number(p.received));
        this.inc({ pipeline: p.name, outcome: "delivered" }, Number(p.delivered));
        this.inc({ pipeline: p.name, outcome: "skipped" }, Number(p.skipped));
        this.inc({ pipeline: p.name, outcome: "failed" }, Number(p.failed));
        this.inc({ pipeline: p.name, outcome: "redelivered" }, Number(p.redelivered));
      }
    },
  });
  new Gauge({
    name: "meridian_pipeline_pending",
    help: "Messages waiting on the bus for the pipeline (its durable consumer's pending count), where known.",
    labelNames: ["pipeline"],
    registers: [service.metrics],
    async collect() {
      this.reset();
      for (const p of await read()) this.set({ pipeline: p.name }, Number(p.pending));
    },
  });
  new Gauge({
    name: "meridian_pipeline_lag_seconds",
    help: "Age of the oldest message waiting for the pipeline (unacknowledged or not yet delivered) as of the bus's last backlog check; 0 when nothing waits. Only pipelines with a durable consumer.",
    labelNames: ["pipeline"],
    registers: [service.metrics],
    async collect() {
      this.reset();
      // A pipeline without a known lag (a source, or before the first check) has no series rather than a 0 that reads as "caught up".
      for (const p of await read()) if (p.lag) this.set({ pipeline: p.name }, durationMs(p.lag) / 1000);
    },
  });
}

/**
 * The bus's backlog check of this process's durable consumers (BACKLOG_AGE_WARN_SECONDS; libs/bus README "Backlog"),
 * as of its last check. Each instance reports what it found, so sum or max across instances as the alert needs.
 */
function registerBacklogMetrics(service: RunningService, bus: Bus): void {
  new Gauge({
    name: "meridian_bus_consumer_backlog_age_seconds",
    help: "Age of the oldest message a durable consumer has not acknowledged (0 when it has none).",
    labelNames: ["consumer"],
    registers: [service.metrics],
    collect() {
      this.reset();
      for (const b of bus.backlog()) this.set({ consumer: b.consumer }, b.oldestUnackedAgeMs / 1000);
    },
  });
  new Counter({
    name: "meridian_bus_consumer_discards_total",
    help: "Checks that found the stream had discarded messages a durable consumer had not acknowledged: telemetry lost for its sink.",
    labelNames: ["consumer"],
    registers: [service.metrics],
    collect() {
      this.reset();
      for (const b of bus.backlog()) this.inc({ consumer: b.consumer }, b.discards);
    },
  });
}
