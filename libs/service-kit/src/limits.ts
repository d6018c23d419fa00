import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "./logger.js";

/**
 * What one client, or many, may hold on the server's port. Every field has a default (DEFAULT_SERVER_LIMITS) and
 * bounds (SERVER_LIMIT_BOUNDS); startService refuses a value outside them. None of them is per caller: the server
 * knows no identity yet.
 */
export interface ServerLimits {
  /** Connections open on the port at once, both protocols. A connection beyond it is closed as soon as it is accepted. */
  maxConnections: number;
  /**
   * The first bytes of a connection (which tell HTTP/2 from HTTP/1.1, up to 24) must have arrived this long after it
   * was accepted, else it is closed.
   */
  firstBytesTimeoutMs: number;
  /**
   * HTTP/1.1: the first request head must be complete this long after the connection was accepted; a later one on a
   * kept-alive connection keepAliveTimeoutMs + headersTimeoutMs after the previous response ended. Else the client
   * gets 408 and the connection is closed. Bodies and responses are not timed: a server stream may run for hours.
   */
  headersTimeoutMs: number;
  /** HTTP/1.1: a kept-alive connection with no request for this long is closed. */
  keepAliveTimeoutMs: number;
  /** HTTP/2: streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused. */
  http2MaxConcurrentStreams: number;
  /** HTTP/2: a connection with no open stream for this long is closed with GOAWAY. A connection with a stream open is never idle. */
  http2IdleTimeoutMs: number;
  /**
   * Streaming calls (server, client and bidi streaming: Subscribe, Health/Watch, reflection) open at once over all
   * connections. Beyond it a new one fails at once with `resource_exhausted`; unary calls are not counted.
   */
  maxStreamingCalls: number;
}

export const DEFAULT_SERVER_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxConnections: 1_000,
  firstBytesTimeoutMs: 30_000,
  headersTimeoutMs: 20_000,
  keepAliveTimeoutMs: 5_000,
  // As many as the service takes streaming calls: the gateway carries every caller's calls to a backend over one
  // HTTP/2 connection, and a lower per-connection limit would queue unary calls behind long WatchEvents streams.
  http2MaxConcurrentStreams: 1_000,
  http2IdleTimeoutMs: 300_000,
  maxStreamingCalls: 1_000,
});

/** Inclusive [min, max] of each limit, integers. */
export const SERVER_LIMIT_BOUNDS: Readonly<Record<keyof ServerLimits, readonly [min: number, max: number]>> = Object.freeze({
  maxConnections: [1, 100_000],
  firstBytesTimeoutMs: [1_000, 300_000],
  headersTimeoutMs: [1_000, 300_000],
  keepAliveTimeoutMs: [1_000, 600_000],
  http2MaxConcurrentStreams: [1, 10_000],
  http2IdleTimeoutMs: [1_000, 3_600_000],
  maxStreamingCalls: [1, 100_000],
});

/** The limits with the defaults filled in; a value that is not an integer within its bounds throws a RangeError naming it. */
export function resolveLimits(given: Partial<ServerLimits> = {}): ServerLimits {
  const limits = { ...DEFAULT_SERVER_LIMITS };
  for (const [key, value] of Object.entries(given) as [keyof ServerLimits, number | undefined][]) {
    if (value === undefined) continue;
    const bounds = SERVER_LIMIT_BOUNDS[key];
    if (!bounds) throw new RangeError(`limits.${key}: not a server limit`);
    const [min, max] = bounds;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(`limits.${key}: must be an integer from ${min} to ${max}, got ${value}`);
    }
    limits[key] = value;
  }
  return limits;
}

/** At most one warning line per limit in this time, so a flood of refusals costs no more log than one. */
const LOG_EVERY_MS = 60_000;

/** Per-caller limits (auth settings CALLER_*), reported like the server's own. */
export type CallerLimitName = "callerRate" | "callerStreams";
export type LimitReporter = (limit: keyof ServerLimits | CallerLimitName, message: string) => void;

/**
 * Counts every time a limit is reached (`server_limit_hits_total{limit}`) and logs it at warn with the limit's value:
 * the first time at once, then at most once a minute per limit, with how many hits there were since the last line.
 */
export function limitReporter(logger: Logger, limits: ServerLimits, registry: Registry): LimitReporter {
  const hits = new Counter({
    name: "server_limit_hits_total",
    help: "Times a server limit was reached (a connection or stream refused or closed, or an HTTP/2 connection full), by limit.",
    labelNames: ["limit"],
    registers: [registry],
  });
  const last = new Map<keyof ServerLimits | CallerLimitName, { at: number; unlogged: number }>();
  return (limit, message) => {
    hits.inc({ limit });
    const state = last.get(limit) ?? { at: Number.NEGATIVE_INFINITY, unlogged: 0 };
    last.set(limit, state);
    state.unlogged++;
    const now = Date.now();
    if (now - state.at < LOG_EVERY_MS) return;
    logger.warn({ limit, value: (limits as unknown as Record<string, number | undefined>)[limit], hits: state.unlogged }, message);
    state.at = now;
    state.unlogged = 0;
  };
}

/**
 * The cap on streaming calls open at once, as the outermost interceptor: a refused call costs no handler, no
 * `rpc` log line and no per-call metric, only the limit report. A slot is given back when the call's signal aborts,
 * which Connect does whenever the exchange ends (normal end, error, client gone, deadline, shutdown), so a
 * stream that is never read cannot keep it.
 */
export function streamingCallLimit(
  max: number,
  report: LimitReporter,
  registry: Registry,
): { interceptor: Interceptor; open: () => number } {
  let open = 0;
  new Gauge({
    name: "server_streaming_calls",
    help: "Streaming calls open now (limited by maxStreamingCalls).",
    registers: [registry],
    collect() {
      this.set(open);
    },
  });
  const interceptor: Interceptor = (next) => async (req) => {
    if (req.method.methodKind === "unary") return next(req);
    if (open >= max) {
      report("maxStreamingCalls", `streaming call limit reached (${max} open): new streaming calls are refused with resource_exhausted`);
      throw new ConnectError(
        `server busy: ${max} streaming calls are open, the most this server takes at once; retry later`,
        Code.ResourceExhausted,
      );
    }
    open++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      open--;
    };
    if (req.signal.aborted) release();
    else req.signal.addEventListener("abort", release, { once: true });
    try {
      return await next(req);
    } catch (err) {
      release();
      throw err;
    }
  };
  return { interceptor, open: () => open };
}
