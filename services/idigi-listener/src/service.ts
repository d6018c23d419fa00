import { readFileSync } from "node:fs";
import { IdigiListenerService } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import type { BackoffPolicy } from "@meridian/retry";
import { ConfigError, type Logger, serviceIdentity } from "@meridian/service-kit";
import { type BusService, type BusServiceOptions, startBusService } from "@meridian/service-kit/bus";
import { idigiListenerErrors, idigiListenerService } from "./api/index.js";
import { type IdigiListenerConfig, pushTarget } from "./config.js";
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
 * idigi-listener: the IdigiListenerService API, and push sessions (one per monitor) that publish to the bus, resumed
 * from the idigi_sessions KV bucket once the bus is reachable, with per-monitor counters in the status reports.
 */
export async function startIdigiListener(
  config: IdigiListenerConfig,
  logger: Logger,
  options: IdigiListenerOptions = {},
): Promise<IdigiListener> {
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
  return Object.assign(running, { sessions, api });
}
