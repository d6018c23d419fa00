import { readFileSync } from "node:fs";
import { fromJson } from "@bufbuild/protobuf";
import { type CreateMonitorRequest, CreateMonitorRequestSchema } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { ConfigError, type Logger } from "@meridian/service-kit";
import { monitorSpec, validateCreateMonitor } from "./api/index.js";
import type { SessionManager } from "./pipeline/manager.js";
import type { MonitorApi } from "./platform/index.js";

/**
 * Reads and validates IDIGI_MONITORS_FILE (`{"monitors": [CreateMonitorRequest, …]}`, proto JSON); a bad file stops
 * the start with a message naming the entry and field, as the gateway does with its routes file.
 */
export function readMonitorsFile(path: string): CreateMonitorRequest[] {
  let list: unknown;
  try {
    list = (JSON.parse(readFileSync(path, "utf8")) as { monitors?: unknown }).monitors;
  } catch (err) {
    throw new ConfigError(`IDIGI_MONITORS_FILE: ${path}: ${(err as Error).message}`, ["IDIGI_MONITORS_FILE"]);
  }
  if (!Array.isArray(list)) throw new ConfigError(`IDIGI_MONITORS_FILE: ${path}: "monitors" must be a list`, ["IDIGI_MONITORS_FILE"]);
  return list.map((entry, i) => {
    try {
      const req = fromJson(CreateMonitorRequestSchema, entry);
      validateCreateMonitor(req);
      return req;
    } catch (err) {
      throw new ConfigError(`IDIGI_MONITORS_FILE: ${path}: monitors[${i}]: ${(err as Error).message}`, ["IDIGI_MONITORS_FILE"]);
    }
  });
}

/**
 * Listens to the declared monitors: reuses a monitor with the same topic list (so a restart does not create another),
 * else creates it, and starts its session. Runs again after a failure (the platform may come up after us), going on
 * from the first monitor not yet done.
 */
export function monitorsApplier(monitors: CreateMonitorRequest[], api: MonitorApi, sessions: SessionManager, logger: Logger) {
  const pending = [...monitors];
  return async (): Promise<Record<string, unknown>> => {
    let reused = 0;
    while (pending.length > 0) {
      const req = pending[0]!;
      const existing = (await api.list({ topics: [...req.topics] }))[0];
      const monitor = existing ?? (await api.create(monitorSpec(req)));
      const session = await sessions.start(monitor.id);
      logger.info(
        { monitorId: monitor.id, topics: req.topics, reused: Boolean(existing), state: session.state?.state },
        "monitor from file",
      );
      if (existing) reused++;
      pending.shift();
    }
    return { monitors: monitors.length, reusedThisRun: reused };
  };
}
