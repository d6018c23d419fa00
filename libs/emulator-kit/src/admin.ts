/**
 * The `/_emulator` admin surface every emulator has: health, state, faults, reset and the CA, plus whatever routes an
 * emulator adds (emit, counters, ...). The kit owns the plumbing (matching, reading JSON, answering errors); the
 * emulator supplies its state document, its fault type and what each action does. No auth and never faulted: it is
 * how a test or an operator drives the emulator.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type Logger, pino } from "pino";
import { BadRequestError, BodyTooLargeError, EmulatorHttpError } from "./errors.js";
import { readBody, send, sendJson } from "./http.js";

export const ADMIN_PREFIX = "/_emulator";

/** True for `/_emulator` and everything below it (any letter case, as an operator may type it). */
export function isAdminPath(pathname: string): boolean {
  const p = pathname.toLowerCase();
  return p === ADMIN_PREFIX || p.startsWith(`${ADMIN_PREFIX}/`);
}

export type AdminMethod = "GET" | "POST" | "PUT" | "DELETE";

export interface AdminRequest {
  method: string;
  /** Below `/_emulator/`, lower case, no leading or trailing slash: `state`, `monitors/12/disable`. */
  path: string;
  /** Capture groups when the route's path is a RegExp. */
  params: string[];
  query: URLSearchParams;
  /** The body as a JSON object; `{}` when empty. Throws BadRequestError (field `body`) for anything else. */
  json(): Record<string, unknown>;
}

export interface AdminRoute {
  method: AdminMethod;
  /** Matched against `AdminRequest.path`: a string exactly, a RegExp anchored by the caller. */
  path: string | RegExp;
  /** The JSON body of a 200 answer. Throw an EmulatorHttpError for any other status. */
  handle(req: AdminRequest): unknown;
}

/** The emulator's own fault type behind `/_emulator/faults`. */
export interface AdminFaults<F> {
  /** Validates a request body; throws FaultConfigError (or another BadRequestError) naming the field. */
  parse(body: Record<string, unknown>): F;
  /** POST: arm the fault (merged into, or added to, what is armed). Returns the answer body. */
  add(fault: F): unknown;
  /** PUT: replace everything armed by this fault. Without it PUT is not routed. */
  replace?(fault: F): unknown;
  /** GET: what is armed. */
  list(): unknown;
  /** DELETE: disarm everything. Returns the answer body. */
  clear(): unknown;
}

export interface AdminSurfaceOptions<F> {
  /** GET /_emulator/state; `query` carries the emulator's own filters. */
  state(query: URLSearchParams): unknown;
  /** POST /_emulator/reset: forget everything the emulator was told or sent. Returns the answer body. */
  reset(): unknown;
  faults: AdminFaults<F>;
  /** GET /_emulator/ca.pem: the CA to trust, or undefined when TLS is off (404). */
  caPem?(): string | undefined;
  /** The emulator's own routes, matched after the common ones. */
  routes?: AdminRoute[];
  /** Largest admin request body. Default 1 MiB. */
  bodyLimit?: number;
  /** Where a failing handler is logged (a 500). Default silent. */
  logger?: Logger;
}

export interface AdminSurface {
  /** Answers one request whose path `isAdminPath`. Never throws: every failure becomes a JSON error answer. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
}

export function createAdminSurface<F>(options: AdminSurfaceOptions<F>): AdminSurface {
  const { faults } = options;
  const log = options.logger ?? pino({ level: "silent" });
  const bodyLimit = options.bodyLimit ?? 1024 * 1024;
  const routes: AdminRoute[] = [
    { method: "GET", path: "health", handle: () => ({ ok: true }) },
    { method: "GET", path: "state", handle: (r) => options.state(r.query) },
    { method: "POST", path: "reset", handle: () => options.reset() },
    { method: "GET", path: "faults", handle: () => faults.list() },
    { method: "POST", path: "faults", handle: (r) => faults.add(faults.parse(r.json())) },
    ...(faults.replace
      ? [{ method: "PUT" as const, path: "faults", handle: (r: AdminRequest) => faults.replace!(faults.parse(r.json())) }]
      : []),
    { method: "DELETE", path: "faults", handle: () => faults.clear() },
    ...(options.routes ?? []),
  ];

  const match = (method: string, path: string): { route: AdminRoute; params: string[] } | undefined => {
    for (const route of routes) {
      if (route.method !== method) continue;
      if (typeof route.path === "string") {
        if (route.path === path) return { route, params: [] };
        continue;
      }
      const m = route.path.exec(path);
      if (m) return { route, params: m.slice(1) };
    }
    return undefined;
  };

  return {
    async handle(req, res, url) {
      const method = req.method ?? "GET";
      const path = url.pathname
        .slice(ADMIN_PREFIX.length)
        .replace(/^\/+|\/+$/g, "")
        .toLowerCase();
      try {
        // Read first, whatever the route: an unread body would stall the next request on a keep-alive connection.
        const body = await readBody(req, bodyLimit);
        if (body.tooLarge) throw new BodyTooLargeError(bodyLimit);
        if (method === "GET" && path === "ca.pem" && options.caPem) {
          const pem = options.caPem();
          if (!pem) throw new EmulatorHttpError(404, "TLS is off");
          return send(res, 200, pem, "application/x-pem-file");
        }
        const found = match(method, path);
        if (!found) throw new EmulatorHttpError(404, `no such admin route ${method} ${ADMIN_PREFIX}/${path}`);
        const reply = await found.route.handle({
          method,
          path,
          params: found.params,
          query: url.searchParams,
          json: () => parseJsonObject(body.buf),
        });
        sendJson(res, 200, reply);
      } catch (err) {
        if (err instanceof EmulatorHttpError) return sendJson(res, err.status, { error: err.message, ...err.detail });
        log.error({ err, method, path }, "admin request failed");
        if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
        else res.destroy();
      }
    },
  };
}

function parseJsonObject(buf: Buffer): Record<string, unknown> {
  const text = buf.toString("utf8");
  if (!text.trim()) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BadRequestError("body", "must be a JSON object");
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new BadRequestError("body", "must be a JSON object");
  return value as Record<string, unknown>;
}
