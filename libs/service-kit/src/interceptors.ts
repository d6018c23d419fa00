import { randomUUID } from "node:crypto";
import type { HandlerContext, Interceptor, StreamResponse, UnaryResponse } from "@connectrpc/connect";
import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import type { Level } from "pino";
import { Counter, Histogram, type Registry } from "prom-client";
import { callerKey } from "./auth/caller.js";
import { createLogger, type Logger } from "./logger.js";

export const REQUEST_ID_HEADER = "x-request-id";

/**
 * The logger of one call: a pino child with `requestId` and `procedure`, made on first use, since a call that logs
 * nothing (most, at level warn) should not pay for one (pino serializes a child's fields when it is made).
 */
export class CallLog {
  #child: Logger | undefined;
  constructor(
    private readonly base: Logger,
    private readonly fields: Record<string, string> | undefined,
  ) {}
  get logger(): Logger {
    this.#child ??= this.fields ? this.base.child(this.fields) : this.base;
    return this.#child;
  }
  /** Whether a line at `level` would be written: check before building what only that line needs. */
  enabled(level: Level): boolean {
    return this.base.isLevelEnabled(level);
  }
}

/** The current call's CallLog, set by the logging interceptor. */
export const loggerKey = createContextKey<CallLog>(new CallLog(createLogger("service"), undefined), { description: "request logger" });
/** The per-call request id, set by the logging interceptor. */
export const requestIdKey = createContextKey<string>("", { description: "request id" });

/** The logger of the current call: use it in handlers so every line carries the request id. */
export function requestLogger(ctx: Pick<HandlerContext, "values">): Logger {
  return ctx.values.get(loggerKey).logger;
}

/** The current call's CallLog: for a hot path, to check the level before building a line. */
export function callLog(ctx: Pick<HandlerContext, "values">): CallLog {
  return ctx.values.get(loggerKey);
}

/** The id of the current call (from `x-request-id` or generated). */
export function requestId(ctx: Pick<HandlerContext, "values">): string {
  return ctx.values.get(requestIdKey);
}

/** `invalid_argument` style names, as the Connect protocol writes codes. */
export function codeName(code: Code | undefined): string {
  if (code === undefined) return "ok";
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** Codes that say the caller did something wrong (or gave up): logged at info, not warn. */
const CALLER_CODES = new Set<Code>([
  Code.Canceled,
  Code.InvalidArgument,
  Code.NotFound,
  Code.AlreadyExists,
  Code.PermissionDenied,
  Code.FailedPrecondition,
  Code.Aborted,
  Code.OutOfRange,
  Code.Unauthenticated,
]);

/** Procedures polled by probes and tools: their successful calls are logged at debug only. */
const QUIET_SERVICES = new Set([
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
]);

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export interface InterceptorOptions {
  /**
   * The server's shutdown signal. A call that ends normally after its signal was aborted was ended by
   * the client (canceled) or by its deadline, unless the server is shutting down (then it is "ok":
   * a stream the server ends at shutdown ends cleanly for the client too).
   */
  shutdownSignal?: AbortSignal;
}

/** What ended a call: undefined for ok, else the error (a ConnectError for cancel and deadline). */
type Outcome = { error: unknown } | undefined;

function outcomeOfNormalEnd(signal: AbortSignal, shutdown: AbortSignal | undefined): Outcome {
  if (!signal.aborted || shutdown?.aborted) return undefined;
  const reason: unknown = signal.reason;
  if (reason instanceof ConnectError && (reason.code === Code.Canceled || reason.code === Code.DeadlineExceeded)) return { error: reason };
  return { error: new ConnectError("the client went away", Code.Canceled) };
}

/**
 * Calls `done` once when the call ends: for unary calls when the handler returns or throws, for
 * streaming calls when the response stream ends, fails or is abandoned by the client.
 * `map` may replace an error on its way to the client.
 */
function observe(
  response: UnaryResponse | StreamResponse,
  signal: AbortSignal,
  options: InterceptorOptions,
  done: (outcome: Outcome) => void,
  map: (error: unknown) => unknown = (e) => e,
): UnaryResponse | StreamResponse {
  if (!response.stream) {
    done(outcomeOfNormalEnd(signal, options.shutdownSignal));
    return response;
  }
  const source = response.message;
  async function* wrapped() {
    let finished = false;
    try {
      yield* source;
      finished = true;
      done(outcomeOfNormalEnd(signal, options.shutdownSignal));
    } catch (err) {
      finished = true;
      done({ error: err });
      throw map(err);
    } finally {
      // Left without an end or an error: the consumer stopped reading, i.e. the client went away.
      if (!finished) done({ error: new ConnectError("the client went away", Code.Canceled) });
    }
  }
  return { ...response, message: wrapped() };
}

/**
 * One log line per call (`rpc`), with requestId, procedure, code and durationMs. Request bodies and
 * headers are never logged. An error that is not a ConnectError is a bug: it is logged at error level
 * with its stack, and the client gets a bare `internal` error. The request id comes from the
 * `x-request-id` header when it looks like one (so a caller's id follows the call) and is echoed back.
 */
export function loggingInterceptor(logger: Logger, options: InterceptorOptions = {}): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const procedure = `/${req.service.typeName}/${req.method.name}`;
    const incoming = req.header.get(REQUEST_ID_HEADER);
    const id = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const call = new CallLog(logger, { requestId: id, procedure });
    req.contextValues.set(loggerKey, call);
    req.contextValues.set(requestIdKey, id);
    const quiet = QUIET_SERVICES.has(req.service.typeName);

    let logged = false;
    const finish = (outcome: Outcome) => {
      if (logged) return;
      logged = true;
      const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
      const err = outcome?.error;
      // Set by the auth interceptor once the caller is known; a refused call has none.
      const caller = req.contextValues.get(callerKey).name || undefined;
      if (outcome === undefined) {
        const level = quiet ? "debug" : "info";
        if (call.enabled(level)) call.logger[level]({ code: "ok", durationMs, caller }, "rpc");
      } else if (err instanceof ConnectError) {
        const fields = { code: codeName(err.code), durationMs, caller, error: err.rawMessage };
        if (CALLER_CODES.has(err.code)) call.logger.info(fields, "rpc");
        else call.logger.warn(fields, "rpc");
      } else {
        call.logger.error({ code: "internal", durationMs, caller, err }, "rpc failed with an unexpected error");
      }
    };
    const hide = (err: unknown): unknown => {
      const out = err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal);
      out.metadata.set(REQUEST_ID_HEADER, id);
      return out;
    };

    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (err) {
      finish({ error: err });
      throw hide(err);
    }
    res.header.set(REQUEST_ID_HEADER, id);
    return observe(res, req.signal, options, finish, hide);
  };
}

export interface RpcMetrics {
  started: Counter<"procedure">;
  handled: Counter<"procedure" | "code">;
  duration: Histogram<"procedure" | "code">;
}

/** rpc_server_* metrics in the given registry, labelled by procedure (`/pkg.Service/Method`) and code. */
export function createRpcMetrics(registry: Registry): RpcMetrics {
  return {
    started: new Counter({
      name: "rpc_server_started_total",
      help: "RPCs started on the server.",
      labelNames: ["procedure"],
      registers: [registry],
    }),
    handled: new Counter({
      name: "rpc_server_handled_total",
      help: "RPCs completed on the server, by status code.",
      labelNames: ["procedure", "code"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "rpc_server_duration_seconds",
      help: "Time from the start of an RPC to its end (for streams: the end of the response stream).",
      labelNames: ["procedure", "code"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
  };
}

/** Counts every call and times it; errors that are not ConnectErrors count as `internal`. */
export function metricsInterceptor(metrics: RpcMetrics, options: InterceptorOptions = {}): Interceptor {
  return (next) => async (req) => {
    const procedure = `/${req.service.typeName}/${req.method.name}`;
    const end = metrics.duration.startTimer({ procedure });
    metrics.started.inc({ procedure });
    let counted = false;
    const finish = (outcome: Outcome) => {
      if (counted) return;
      counted = true;
      const err = outcome?.error;
      const code = outcome === undefined ? "ok" : err instanceof ConnectError ? codeName(err.code) : "internal";
      metrics.handled.inc({ procedure, code });
      end({ code });
    };
    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (err) {
      finish({ error: err });
      throw err;
    }
    return observe(res, req.signal, options, finish);
  };
}
