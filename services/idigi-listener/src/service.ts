import { readFileSync } from "node:fs";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Bus, busFromConfig, startStatusReporter } from "@meridian/bus";
import type { CreateMonitorRequest } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { IdigiListenerService } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { Health } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import type { BackoffPolicy } from "@meridian/retry";
import { backoffDelay, sleep } from "@meridian/retry";
import { ConfigError, type Logger, type RunningService, startService } from "@meridian/service-kit";
import { idigiListenerService, monitorSpec } from "./api/index.js";
import { type IdigiListenerConfig, pushTarget } from "./config.js";
import { readMonitorsFile } from "./monitors-file.js";
import { SessionManager } from "./pipeline/manager.js";
import { createMonitorApi, IdigiConfigError, type MonitorApi } from "./platform/index.js";

export const SERVICE = "idigi-listener";
export const VERSION = "0.1.0";

export interface IdigiListener {
  service: RunningService;
  bus: Bus;
  sessions: SessionManager;
  api: MonitorApi;
  stop(): Promise<void>;
}

export interface IdigiListenerOptions {
  installSignalHandlers?: boolean;
  /** How long StartSession waits for the push server's answer (default 10 s). */
  startWaitMs?: number;
  /** Push session reconnect backoff (default: the platform client's, 0.5 s doubling to 30 s). */
  reconnectBackoff?: BackoffPolicy;
  /** Session lease lifetime (default 15 s): how soon another instance takes over the sessions of one that died. */
  leaseTtlMs?: number;
  /** How long a recorded session the platform refused stays failed before it is tried again (default 60 s). */
  failedRetryMs?: number;
  /** Status report interval (default: the bus library's). */
  statusIntervalMs?: number;
}

/**
 * Listens to the monitors of IDIGI_MONITORS_FILE: reuses a monitor with the same topic list (so a restart does not
 * create another), else creates it, and starts its session. Retries (the platform may come up after us) until done.
 */
async function applyMonitors(
  monitors: CreateMonitorRequest[],
  api: MonitorApi,
  sessions: SessionManager,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  const pending = [...monitors];
  for (let attempt = 1; pending.length > 0 && !signal.aborted; attempt++) {
    try {
      while (pending.length > 0) {
        const req = pending[0]!;
        const existing = (await api.list({ topics: [...req.topics] }))[0];
        const monitor = existing ?? (await api.create(monitorSpec(req)));
        const session = await sessions.start(monitor.id);
        logger.info(
          { monitorId: monitor.id, topics: req.topics, reused: Boolean(existing), state: session.state?.state },
          "monitor from file",
        );
        pending.shift();
      }
    } catch (err) {
      const delayMs = backoffDelay(attempt, { initialMs: 1000, maxMs: 30_000, multiplier: 2, jitter: 0.3 });
      logger.warn({ err, attempt, delayMs }, "applying IDIGI_MONITORS_FILE failed; retrying");
      try {
        await sleep(delayMs, signal);
      } catch {
        return;
      }
    }
  }
}

function readCa(path: string | undefined): string[] | undefined {
  if (!path) return undefined;
  try {
    return [readFileSync(path, "utf8")];
  } catch (err) {
    throw new ConfigError(`IDIGI_CA_FILE: cannot read ${path}: ${(err as Error).message}`, ["IDIGI_CA_FILE"]);
  }
}

/**
 * Starts idigi-listener: the IdigiListenerService API on one port, push sessions (one per monitor) that publish
 * to the bus, resumed from the idigi_sessions KV bucket once the bus is reachable, and per-monitor status reports.
 */
export async function startIdigiListener(
  config: IdigiListenerConfig,
  logger: Logger,
  options: IdigiListenerOptions = {},
): Promise<IdigiListener> {
  let api: MonitorApi;
  try {
    api = createMonitorApi({
      flavor: config.IDIGI_API,
      baseUrl: config.IDIGI_URL,
      username: config.IDIGI_USERNAME,
      password: config.IDIGI_PASSWORD,
    });
  } catch (err) {
    if (err instanceof IdigiConfigError) {
      const names = err.issues.map((i) =>
        i.field === "baseUrl" ? "IDIGI_URL" : i.field === "username" ? "IDIGI_USERNAME" : "IDIGI_PASSWORD",
      );
      throw new ConfigError(`invalid configuration: ${err.issues.map((i, n) => `${names[n]}: ${i.message}`).join("; ")}`, names);
    }
    throw err;
  }
  const ca = readCa(config.IDIGI_CA_FILE);
  const declaredMonitors = config.IDIGI_MONITORS_FILE ? readMonitorsFile(config.IDIGI_MONITORS_FILE) : [];
  const bus = busFromConfig(config, SERVICE, logger);
  const sessions = new SessionManager({
    bus,
    api,
    logger,
    target: pushTarget(config),
    credentials: { username: config.IDIGI_USERNAME, password: config.IDIGI_PASSWORD },
    ...(ca ? { ca } : {}),
    maxUnacked: config.IDIGI_MAX_UNACKED,
    dedupeEvents: config.IDIGI_DEDUPE_EVENTS,
    includeRaw: config.IDIGI_INCLUDE_RAW,
    ...(options.reconnectBackoff ? { reconnectBackoff: options.reconnectBackoff } : {}),
    instance: config.INSTANCE_ID,
    ...(options.leaseTtlMs ? { leaseTtlMs: options.leaseTtlMs } : {}),
    ...(options.failedRetryMs ? { failedRetryMs: options.failedRetryMs } : {}),
  });

  const service = await startService({
    name: SERVICE,
    version: VERSION,
    port: config.PORT,
    logger,
    initialStatus: "NOT_SERVING",
    ...(options.installSignalHandlers === undefined ? {} : { installSignalHandlers: options.installSignalHandlers }),
    routes: (router) => {
      router.service(
        IdigiListenerService,
        idigiListenerService({
          api,
          sessions,
          bus,
          instance: config.INSTANCE_ID,
          ...(options.startWaitMs !== undefined ? { startWaitMs: options.startWaitMs } : {}),
        }),
      );
    },
  });

  // Ready means the bus is reachable: without it nothing received could be stored (or acked).
  bus.onStatus((connected) => service.health.set("", connected ? "SERVING" : "NOT_SERVING"));
  // Sessions first (publish what is queued, ack it), then the bus.
  service.onShutdown(() => sessions.close());
  service.onShutdown(() => bus.close());

  void bus.ready.then(async () => {
    service.health.set("", bus.connected ? "SERVING" : "NOT_SERVING");
    if (declaredMonitors.length > 0) void applyMonitors(declaredMonitors, api, sessions, logger, service.shutdownSignal);
    // Resumes recorded sessions now, then keeps their leases (and takes over those of instances that died).
    await sessions.run(service.shutdownSignal);
  });

  startStatusReporter(bus, {
    service: SERVICE,
    instance: config.INSTANCE_ID,
    version: VERSION,
    signal: service.shutdownSignal,
    ...(options.statusIntervalMs ? { intervalMs: options.statusIntervalMs } : {}),
    collect: async () => ({
      health: bus.connected ? Health.SERVING : Health.NOT_SERVING,
      pipelines: sessions.counters().map(({ monitorId, counters: c }) => ({
        $typeName: "meridian.status.v1.PipelineCounters" as const,
        name: `monitor-${monitorId}`,
        received: BigInt(c.receivedEvents),
        delivered: BigInt(c.deliveredEvents),
        failed: BigInt(c.failedBatches),
        pending: 0n,
        lastError: c.lastError ?? "",
        ...(c.lastErrorTime ? { lastErrorTime: timestampFromDate(c.lastErrorTime) } : {}),
      })),
    }),
    onError: (err) => logger.warn({ err }, "status report failed"),
  });

  return { service, bus, sessions, api, stop: () => service.stop() };
}
