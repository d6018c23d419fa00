import { readFileSync } from "node:fs";
import { IdigiListenerService } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import type { BackoffPolicy } from "@meridian/retry";
import { ConfigError, type Logger, serviceIdentity } from "@meridian/service-kit";
import { type BusService, type BusServiceOptions, startBusService } from "@meridian/service-kit/bus";
import { Counter, Gauge } from "prom-client";
import { idigiListenerErrors, idigiListenerService } from "./api/index.js";
import { exposures, type IdigiListenerConfig, pushTarget } from "./config.js";
import { monitorsApplier, readMonitorsFile } from "./declared.js";
import { SessionManager } from "./pipeline/manager.js";
import { createMonitorApi, IdigiConfigError, type MonitorApi } from "./platform/index.js";

const SERVICE = serviceIdentity("idigi-listener", import.meta.url);

export interface IdigiListener extends BusService {
  sessions: SessionManager;
  api: MonitorApi;
}

export interface IdigiListenerOptions extends BusServiceOptions {
  /** How long StartSession waits for the push server's answer (default 10 s). */
  startWaitMs?: number;
  /** Push session reconnect backoff (default: the platform client's, 0.5 s doubling to 30 s). */
  reconnectBackoff?: BackoffPolicy;
  /** Session lease lifetime (default 15 s): how soon another instance takes over the sessions of one that died. */
  leaseTtlMs?: number;
  /** How long a recorded session the platform refused stays failed before it is tried again (default 60 s). */
  failedRetryMs?: number;
}

/** The monitor REST client from the settings; its complaints name the settings, not the client's option names. */
function monitorApiFrom(config: IdigiListenerConfig): MonitorApi {
  try {
    return createMonitorApi({
      flavor: config.IDIGI_API,
      baseUrl: config.IDIGI_URL,
      username: config.IDIGI_USERNAME,
      password: config.IDIGI_PASSWORD,
    });
  } catch (err) {
    if (!(err instanceof IdigiConfigError)) throw err;
    const setting = (field: string) => (field === "baseUrl" ? "IDIGI_URL" : field === "username" ? "IDIGI_USERNAME" : "IDIGI_PASSWORD");
    const names = err.issues.map((i) => setting(i.field));
    throw new ConfigError(`invalid configuration: ${err.issues.map((i, n) => `${names[n]}: ${i.message}`).join("; ")}`, names);
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
 * Refuses settings that send the account's credentials unprotected unless IDIGI_ALLOW_INSECURE says the operator
 * means it; then says so at warn. Returns what is exposed, for ListSessions.
 */
function checkExposures(config: IdigiListenerConfig, logger: Logger): string[] {
  const found = exposures(config);
  if (found.length === 0) return [];
  const settings = [...new Set(found.map((e) => e.setting))];
  if (!config.IDIGI_ALLOW_INSECURE)
    throw new ConfigError(
      `${settings.join(", ")}: the iDigi credentials would be sent unprotected (${found.map((e) => e.what).join("; ")}); ` +
        "use https:// and TLS, or set IDIGI_ALLOW_INSECURE=true where that is meant (an emulator, debugging)",
      [...settings, "IDIGI_ALLOW_INSECURE"],
    );
  logger.warn(
    { insecure: found.map((e) => e.what), settings },
    "IDIGI_ALLOW_INSECURE: the iDigi credentials are sent unprotected; anyone on the path can read or take them",
  );
  return found.map((e) => e.what);
}

/** Per-monitor memory on /metrics, read at scrape time from the same pipelines as ListSessions. */
function registerMemoryMetrics(listener: IdigiListener, budgetBytes: number): void {
  const registers = [listener.service.metrics];
  const monitors = () => listener.sessions.monitorCounters();
  new Gauge({
    name: "meridian_idigi_monitor_memory_budget_bytes",
    help: "IDIGI_MONITOR_MEMORY_BYTES: what one monitor's blocks may hold before its socket is not read.",
    registers,
  }).set(budgetBytes);
  new Gauge({
    name: "meridian_idigi_monitor_held_bytes",
    help: "Bytes a monitor's blocks hold, received and not yet published and acknowledged.",
    labelNames: ["monitor"],
    registers,
    collect() {
      this.reset();
      for (const m of monitors()) this.set({ monitor: m.monitorId }, m.heldBytes);
    },
  });
  new Gauge({
    name: "meridian_idigi_monitor_at_memory_budget",
    help: "1 while a monitor is at its memory budget: its socket is not read until the bus takes what it holds.",
    labelNames: ["monitor"],
    registers,
    collect() {
      this.reset();
      for (const m of monitors()) this.set({ monitor: m.monitorId }, m.atMemoryBudget ? 1 : 0);
    },
  });
  new Counter({
    name: "meridian_idigi_monitor_memory_budget_reached_total",
    help: "Times a monitor reached its memory budget since its session started on this instance.",
    labelNames: ["monitor"],
    registers,
    collect() {
      this.reset();
      for (const m of monitors()) this.inc({ monitor: m.monitorId }, m.counters.memoryBudgetReached);
    },
  });
}

/**
 * idigi-listener: the IdigiListenerService API, and push sessions (one per monitor) that publish to the bus, resumed
 * from the idigi_sessions KV bucket once the bus is reachable, with per-monitor counters in the status reports.
 */
export async function startIdigiListener(
  config: IdigiListenerConfig,
  logger: Logger,
  options: IdigiListenerOptions = {},
): Promise<IdigiListener> {
  const insecure = checkExposures(config, logger);
  const api = monitorApiFrom(config);
  const ca = readCa(config.IDIGI_CA_FILE);
  const declared = config.IDIGI_MONITORS_FILE ? readMonitorsFile(config.IDIGI_MONITORS_FILE) : [];
  if (declared.length > config.IDIGI_MAX_MONITORS)
    throw new ConfigError(`IDIGI_MONITORS_FILE: ${declared.length} monitors, more than IDIGI_MAX_MONITORS=${config.IDIGI_MAX_MONITORS}`, [
      "IDIGI_MONITORS_FILE",
      "IDIGI_MAX_MONITORS",
    ]);
  let sessions!: SessionManager;

  const running = await startBusService(
    SERVICE,
    config,
    logger,
    (bus) => {
      sessions = new SessionManager({
        bus,
        api,
        logger,
        target: pushTarget(config),
        credentials: { username: config.IDIGI_USERNAME, password: config.IDIGI_PASSWORD },
        ...(ca ? { ca } : {}),
        maxUnacked: config.IDIGI_MAX_UNACKED,
        memoryBudgetBytes: config.IDIGI_MONITOR_MEMORY_BYTES,
        dedupeEvents: config.IDIGI_DEDUPE_EVENTS,
        includeRaw: config.IDIGI_INCLUDE_RAW,
        ...(options.reconnectBackoff ? { reconnectBackoff: options.reconnectBackoff } : {}),
        instance: config.INSTANCE_ID,
        ...(options.leaseTtlMs ? { leaseTtlMs: options.leaseTtlMs } : {}),
        ...(options.failedRetryMs ? { failedRetryMs: options.failedRetryMs } : {}),
      });
      return {
        routes: (router) =>
          router.service(
            IdigiListenerService,
            idigiListenerService({
              api,
              sessions,
              bus,
              instance: config.INSTANCE_ID,
              maxMonitors: config.IDIGI_MAX_MONITORS,
              insecure,
              memoryBudgetBytes: config.IDIGI_MONITOR_MEMORY_BYTES,
              ...(options.startWaitMs !== undefined ? { startWaitMs: options.startWaitMs } : {}),
            }),
          ),
        errors: [idigiListenerErrors],
        // Applied beside the resumed sessions: a monitor the platform keeps refusing must not hold the others back.
        declared: { setting: "IDIGI_MONITORS_FILE", entries: declared.length, apply: monitorsApplier(declared, api, sessions, logger) },
        // Resumes recorded sessions now, then keeps their leases (and takes over those of instances that died).
        run: (signal) => sessions.run(signal),
        counters: () => sessions.counters(),
        // Sessions publish what is queued and ack it before the bus drains.
        stop: () => sessions.close(),
      };
    },
    options,
  );
  const listener = Object.assign(running, { sessions, api });
  registerMemoryMetrics(listener, config.IDIGI_MONITOR_MEMORY_BYTES);
  return listener;
}
