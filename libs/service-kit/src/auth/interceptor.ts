import type { DescMessage, Message } from "@bufbuild/protobuf";
import { type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ContextValues, type Interceptor, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";
import { codeName, loggerKey } from "../interceptors.js";
import type { Logger } from "../logger.js";
import { accessRule, HEALTH_SERVICE, REFLECTION_SERVICES } from "./access.js";
import type { Authenticator, PeerCertificateIdentity } from "./authenticator.js";
import { type Caller, callerKey } from "./caller.js";
import { holds } from "./roles.js";

export interface CallerLimits {
  /** Token bucket per caller: calls per second and burst. */
  ratePerSecond: number;
  burst: number;
  /** Streaming calls one caller may hold open. */
  maxStreams: number;
}

export interface AuthInterceptorOptions {
  authenticator: Authenticator;
  reflection: "authenticated" | "open";
  limits: CallerLimits;
  /** The verified client certificate of the call, when the server has TLS with client authentication. */
  peer?: (values: ContextValues) => PeerCertificateIdentity | undefined;
  /** Called when a per-caller limit refuses a call (the server's limit metric and log). */
  onLimit?: (limit: "callerRate" | "callerStreams", caller: Caller) => void;
}

/** Buckets of callers that made no call for this long are forgotten, so the map stays small. */
const BUCKET_IDLE_MS = 60_000;
const MAX_TRACKED_CALLERS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
  streams: number;
}

/**
 * One interceptor does it all, in this order: health passes; the caller is authenticated (Authorization bearer
 * credential, or a verified client certificate); the method's role (declared in its contract) is checked; the
 * per-caller rate and stream limits apply; a call that changes something is written to the audit log.
 */
export function authInterceptor(options: AuthInterceptorOptions): Interceptor {
  const { authenticator, limits } = options;
  const buckets = new Map<string, Bucket>();

  const bucketOf = (caller: Caller, now: number): Bucket => {
    const key = `${caller.via}:${caller.name}`;
    let bucket = buckets.get(key);
    if (!bucket) {
      if (buckets.size >= MAX_TRACKED_CALLERS) {
        for (const [k, b] of buckets) if (b.streams === 0 && now - b.at > BUCKET_IDLE_MS) buckets.delete(k);
      }
      bucket = { tokens: limits.burst, at: now, streams: 0 };
      buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(limits.burst, bucket.tokens + ((now - bucket.at) / 1000) * limits.ratePerSecond);
    bucket.at = now;
    return bucket;
  };

  return (next) => async (req) => {
    const service = req.service.typeName;
    if (service === HEALTH_SERVICE) return next(req);
    const reflection = REFLECTION_SERVICES.has(service);
    if (reflection && options.reflection === "open") return next(req);

    const caller = await authenticator.authenticate(req.header.get("authorization"), options.peer?.(req.contextValues));
    req.contextValues.set(callerKey, caller);
    const rule = reflection ? undefined : accessRule(req.method);
    if (!reflection) {
      if (!rule) throw new ConnectError(`${req.method.name} declares no access rule`, Code.PermissionDenied);
      if (!holds(caller.roles, rule.role)) {
        throw new ConnectError(
          `caller "${caller.name}" lacks role "${rule.role}", which ${req.method.name} requires`,
          Code.PermissionDenied,
        );
      }
    }

    const bucket = bucketOf(caller, Date.now());
    if (bucket.tokens < 1) {
      options.onLimit?.("callerRate", caller);
      throw new ConnectError(
        `caller "${caller.name}" exceeded ${limits.ratePerSecond} calls per second; slow down and retry`,
        Code.ResourceExhausted,
      );
    }
    bucket.tokens -= 1;

    if (req.stream) {
      if (bucket.streams >= limits.maxStreams) {
        options.onLimit?.("callerStreams", caller);
        throw new ConnectError(
          `caller "${caller.name}" already holds ${limits.maxStreams} streams, its most; close one first`,
          Code.ResourceExhausted,
        );
      }
      bucket.streams++;
      let released = false;
      const release = () => {
        if (!released) bucket.streams--;
        released = true;
      };
      // Connect aborts the call's signal whenever the exchange ends (end, error, client gone, deadline, shutdown),
      // also when nobody ever reads the stream again, so the slot cannot leak.
      req.signal.addEventListener("abort", release, { once: true });
      let res: StreamResponse | UnaryResponse;
      try {
        res = await next(req);
      } catch (err) {
        release();
        throw err;
      }
      if (!res.stream) {
        release();
        return res;
      }
      const source = res.message;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* source;
          } finally {
            release();
          }
        })(),
      };
    }

    const audited = rule && !rule.skipAudit && req.method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
    const call = req.contextValues.get(loggerKey);
    // Audit lines are written at info: below it there is nothing to prepare.
    if (!audited || !call.enabled("info")) return next(req);
    const log: Logger = call.logger;
    const resource = resourceOf(req.method.input, req.message as Message);
    try {
      const res = await next(req);
      log.info({ audit: { caller: caller.name, via: caller.via, method: req.method.name, resource, result: "ok" } }, "audit");
      return res;
    } catch (err) {
      const code = err instanceof ConnectError ? codeName(err.code) : "internal";
      log.info({ audit: { caller: caller.name, via: caller.via, method: req.method.name, resource, result: code } }, "audit");
      throw err;
    }
  };
}

/**
 * Which resource a call is about, for the audit line: the request's `id` or `*_id` field, or the `id` of a message
 * field (CreateRoute's `route.id`). Ids are names chosen by the operator, never secrets.
 */
export function resourceOf(schema: DescMessage, message: Message): string | undefined {
  return idIn(reflect(schema, message), 2);
}

function idIn(r: ReflectMessage, depth: number): string | undefined {
  for (const field of r.fields) {
    if (field.fieldKind === "scalar" && typeof r.get(field) === "string" && (field.name === "id" || field.name.endsWith("_id"))) {
      const value = r.get(field) as string;
      if (value) return value.slice(0, 256);
    }
  }
  if (depth === 0) return undefined;
  for (const field of r.fields) {
    if (field.fieldKind === "message" && r.isSet(field)) {
      const inner = idIn(r.get(field) as ReflectMessage, depth - 1);
      if (inner) return inner;
    }
  }
  return undefined;
}
