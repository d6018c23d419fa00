/**
 * The HTTP fault switch: what a client's retry and timeout paths need to meet, for any emulator that speaks HTTP.
 * One settings object (`HttpFaultConfig`), armed through the admin surface; each request takes one unit of whichever
 * fault applies (`decide`), and `injectHttpFault` carries it out on the request.
 *
 * Precedence per request: latency (on top of anything), then drop, hang, status, partial body. A count left out means
 * "until cleared"; a count that reaches 0 disarms its fault.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { FaultConfigError } from "./errors.js";
import { drain, sendJson } from "./http.js";

export interface HttpFaultConfig {
  /** Delay before answering. */
  latencyMs?: number;
  latencyCount?: number;
  /** Answer this status (400–599) instead of processing the request. */
  status?: number;
  count?: number;
  /** Sent as `Retry-After` (seconds) with the injected status. */
  retryAfterSeconds?: number;
  /** Body of the injected status; default the emulator's own error body. */
  body?: unknown;
  /** Read the request, then destroy the socket without answering, this many times. */
  dropConnections?: number;
  /** Hold the request without answering for hangMs, then destroy the socket. */
  hangMs?: number;
  hangCount?: number;
  /** Process the request, but send only the first N bytes of the answer's body, then destroy the socket. */
  partialBodyBytes?: number;
  partialBodyCount?: number;
  /** Only requests whose path starts with this (any letter case). Default every request the emulator offers. */
  path?: string;
}

export type HttpFaultDecision =
  | { kind: "none"; latencyMs: number }
  | { kind: "drop"; latencyMs: number }
  | { kind: "hang"; latencyMs: number; hangMs: number }
  | { kind: "status"; latencyMs: number; status: number; retryAfterSeconds?: number; body?: unknown }
  | { kind: "partialBody"; latencyMs: number; bytes: number };

type Counter = "latencyCount" | "hangCount" | "count" | "partialBodyCount";

export class HttpFaultSwitch {
  private config: HttpFaultConfig = {};

  get(): HttpFaultConfig {
    return { ...this.config };
  }

  /** Merges `patch` into what is armed (fields given replace, others stay). */
  set(patch: HttpFaultConfig): HttpFaultConfig {
    this.config = { ...this.config, ...patch };
    return this.get();
  }

  clear(): void {
    this.config = {};
  }

  /** Whether any fault is armed (a `path` filter alone is not a fault). */
  get active(): boolean {
    return Object.keys(this.config).some((k) => k !== "path");
  }

  /** Takes one unit of whichever fault applies to a request for `path`. */
  decide(path = "/"): HttpFaultDecision {
    const c = this.config;
    if (!this.active) return { kind: "none", latencyMs: 0 };
    if (c.path && !path.toLowerCase().startsWith(c.path.toLowerCase())) return { kind: "none", latencyMs: 0 };
    let latencyMs = 0;
    if (c.latencyMs && this.take("latencyCount")) latencyMs = c.latencyMs;
    if (c.latencyCount === 0) {
      delete c.latencyMs;
      delete c.latencyCount;
    }
    if (c.dropConnections) {
      c.dropConnections--;
      if (c.dropConnections === 0) delete c.dropConnections;
      return { kind: "drop", latencyMs };
    }
    if (c.hangMs !== undefined && this.take("hangCount")) {
      const hangMs = c.hangMs;
      if (c.hangCount === 0) {
        delete c.hangMs;
        delete c.hangCount;
      }
      return { kind: "hang", latencyMs, hangMs };
    }
    if (c.status !== undefined && this.take("count")) {
      const d: HttpFaultDecision = { kind: "status", latencyMs, status: c.status, retryAfterSeconds: c.retryAfterSeconds, body: c.body };
      if (c.count === 0) {
        delete c.status;
        delete c.count;
        delete c.retryAfterSeconds;
        delete c.body;
      }
      return d;
    }
    if (c.partialBodyBytes !== undefined && this.take("partialBodyCount")) {
      const bytes = c.partialBodyBytes;
      if (c.partialBodyCount === 0) {
        delete c.partialBodyBytes;
        delete c.partialBodyCount;
      }
      return { kind: "partialBody", latencyMs, bytes };
    }
    return { kind: "none", latencyMs };
  }

  /** Decrements a counter if present; true when the fault fires (no counter = unlimited). */
  private take(counter: Counter): boolean {
    const n = this.config[counter];
    if (n === undefined) return true;
    if (n <= 0) return false;
    this.config[counter] = n - 1;
    return true;
  }
}

/** Parses one field an emulator adds to the fault settings; throws FaultConfigError naming `field`. */
export type FaultFieldParser<T> = (value: unknown, field: string) => T;

/** A whole number in [min, max]. */
export function intField(min = 0, max = Number.MAX_SAFE_INTEGER): FaultFieldParser<number> {
  return (value, field) => {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
      throw new FaultConfigError(field, `must be an integer in ${min}..${max}`);
    return value;
  };
}

/** One of the given strings. */
export function enumField<T extends string>(values: readonly T[]): FaultFieldParser<T> {
  return (value, field) => {
    if (typeof value !== "string" || !(values as readonly string[]).includes(value))
      throw new FaultConfigError(field, `must be one of ${values.join(", ")}`);
    return value as T;
  };
}

const pathField: FaultFieldParser<string> = (value, field) => {
  if (typeof value !== "string" || !value.startsWith("/")) throw new FaultConfigError(field, "must be a path starting with /");
  return value;
};

const HTTP_FIELDS: { [K in keyof HttpFaultConfig]-?: FaultFieldParser<NonNullable<HttpFaultConfig[K]>> } = {
  latencyMs: intField(),
  latencyCount: intField(),
  status: intField(400, 599),
  count: intField(),
  retryAfterSeconds: intField(),
  body: (value) => value as NonNullable<unknown>,
  dropConnections: intField(),
  hangMs: intField(),
  hangCount: intField(),
  partialBodyBytes: intField(),
  partialBodyCount: intField(),
  path: pathField,
};

/**
 * Validates untrusted fault settings (an admin request body, an environment variable). `extra` lists the fields an
 * emulator adds on top of the HTTP ones (its own filters, protocol-level faults); any other field is an error.
 */
export function parseHttpFaultConfig<E extends object = Record<never, never>>(
  input: unknown,
  extra?: { [K in keyof E]-?: FaultFieldParser<NonNullable<E[K]>> },
): HttpFaultConfig & E {
  if (!input || typeof input !== "object" || Array.isArray(input)) throw new FaultConfigError("body", "must be a JSON object");
  const parsers: Record<string, FaultFieldParser<unknown>> = { ...HTTP_FIELDS, ...extra };
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(input)) {
    const parse = parsers[field];
    if (!parse) throw new FaultConfigError(field, "is not a fault setting");
    if (value === undefined) continue;
    out[field] = parse(value, field);
  }
  return out as HttpFaultConfig & E;
}

export interface InjectOptions {
  /** Body of an injected status when the settings gave none: the emulator's own error shape. */
  statusBody?(status: number): unknown;
}

/**
 * Carries out a decision on the request: waits the latency, then drops, hangs or answers the status. Returns true
 * when the fault answered (the caller does nothing more), false when the caller processes the request as usual
 * (no fault, or a partial body: the answer it writes is cut short).
 */
export async function injectHttpFault(
  d: HttpFaultDecision,
  req: IncomingMessage,
  res: ServerResponse,
  options: InjectOptions = {},
): Promise<boolean> {
  if (d.latencyMs > 0) await sleep(d.latencyMs);
  switch (d.kind) {
    case "none":
      return false;
    case "partialBody":
      truncateResponse(res, d.bytes);
      return false;
    case "drop":
      await drain(req);
      req.socket.destroy();
      return true;
    case "hang": {
      await drain(req);
      // Held until the time is up, the client gives up, or the server closes (which destroys the socket).
      const gone = new Promise<void>((resolve) => req.socket.once("close", () => resolve()));
      const timer = new AbortController();
      await Promise.race([sleep(d.hangMs, undefined, { signal: timer.signal }).catch(() => {}), gone]);
      timer.abort();
      req.socket.destroy();
      return true;
    }
    case "status": {
      await drain(req);
      const headers: Record<string, string> = {};
      if (d.retryAfterSeconds !== undefined) headers["Retry-After"] = String(d.retryAfterSeconds);
      const body = d.body !== undefined ? d.body : (options.statusBody?.(d.status) ?? { error: `injected fault ${d.status}` });
      sendJson(res, d.status, body, headers);
      return true;
    }
  }
}

/**
 * Lets the first `bytes` bytes of the response body through, then ends the connection: the status line and headers
 * (Content-Length included) go out whole, so the client sees a body that stops short, not a refused request.
 */
export function truncateResponse(res: ServerResponse, bytes: number): void {
  let left = bytes;
  let cut = false;
  const write = res.write.bind(res) as (chunk: Buffer) => boolean;
  const hangUp = () => {
    if (cut) return;
    cut = true;
    res.flushHeaders();
    // end(), not destroy(): it sends what was written before the FIN, where destroy() could discard it.
    const socket = res.socket;
    socket?.end();
    setTimeout(() => socket?.destroy(), 1000).unref();
  };
  const pass = (chunk: unknown, encoding: unknown): void => {
    if (cut || chunk === undefined || chunk === null || typeof chunk === "function") return;
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : typeof chunk === "string"
        ? Buffer.from(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8")
        : Buffer.from(chunk as Uint8Array);
    const part = buf.subarray(0, Math.max(0, left));
    left -= part.length;
    if (part.length > 0) write(part);
    if (left <= 0) hangUp();
  };
  res.write = ((chunk: unknown, encoding?: unknown) => {
    pass(chunk, encoding);
    return true;
  }) as typeof res.write;
  res.end = ((chunk?: unknown, encoding?: unknown) => {
    pass(chunk, encoding);
    // Everything the handler wrote fit: still end without completing the body.
    hangUp();
    return res;
  }) as typeof res.end;
}
