import { readFileSync } from "node:fs";
import { fromJson } from "@bufbuild/protobuf";
import { type CreateMonitorRequest, CreateMonitorRequestSchema } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { ConfigError } from "@meridian/service-kit";
import { validateCreateMonitor } from "./api/validation.js";

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
