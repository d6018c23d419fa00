import type { Logger } from "pino";

/** What a request's log entry must say for logRequests to pick its level; the rest of it is logged as it is. */
export interface LoggedRequest {
  status: number;
  /** The fault injected into it, if any. */
  fault?: string | undefined;
}

/**
 * A stand-alone emulator's onRequest: a line per request, at info when it failed or a fault was injected (what someone
 * reading the log looks for), at debug otherwise (a busy client would flood it).
 */
export function logRequests(log: Pick<Logger, "info" | "debug">): (entry: LoggedRequest) => void {
  return (entry) => {
    if (entry.status >= 400 || entry.fault) log.info(entry, "request");
    else log.debug(entry, "request");
  };
}
