/**
 * Routing: `/_emulator` to the admin surface, `/plant/timeseries/v1.7|v1.6/...` through faults, auth and the
 * operation table; everything else 404 MessageModel. Paths match with or without a trailing slash.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type AdminSurface, injectHttpFault, isAdminPath, readBody, send, sendJson } from "@meridian/emulator-kit";
import type { Principal } from "./auth.js";
import type { EmulatorContext } from "./context.js";
import { ApiError, badRequest, messageModel } from "./errors.js";
import { wantsProtobuf } from "./protobuf.js";
import type { Answer, Call } from "./routes/call.js";
import * as data from "./routes/data.js";
import * as meta from "./routes/metadata.js";
import { Query } from "./routes/request.js";
import * as streaming from "./routes/streaming.js";

const BASE = /^\/plant\/timeseries\/v(1\.7|1\.6)(?=\/|$)/i;
const RESERVED = new Set(["search", "getoradd", "facets", "data", "query", "streaming"]);

type Handler = (ctx: EmulatorContext, c: Call) => Answer;
interface Route {
  operation: string;
  handle: Handler;
}

/** The operation for a method and path below the version, or a 404/405 ApiError. */
export function route(method: string, seg: string[]): Route {
  const s = seg.map((x) => x.toLowerCase());
  const n = s.length;
  const pick = (table: Record<string, Route>, path: string): Route => {
    const r = table[method];
    if (r) return r;
    throw new ApiError(405, `The method ${method} is not allowed on ${path}.`, { Allow: Object.keys(table).join(", ") });
  };
  const op = (name: string, handle: Handler): Route => ({ operation: name, handle });
  if (n === 0) return pick({ GET: op("GET /", meta.getAll), POST: op("POST /", meta.postTimeseries) }, "/");
  // A search query may hold slashes (`ASGB.17IIC1030/*/PRIM`), sent encoded or not.
  if (s[0] === "search")
    return pick({ GET: op("GET /search", (ctx, c) => meta.search(ctx, c, n > 1 ? seg.slice(1).join("/") : undefined)) }, "/search");
  if (s[0] === "getoradd" && n === 1) return pick({ POST: op("POST /getoradd", meta.getOrAdd) }, "/getoradd");
  if (s[0] === "facets" && n === 2 && (s[1] === "facility" || s[1] === "source")) {
    const kind = s[1];
    return pick({ GET: op(`GET /facets/${kind}`, (ctx, c) => meta.facets(ctx, c, kind)) }, `/facets/${kind}`);
  }
  if (s[0] === "data" && n === 1) return pick({ POST: op("POST /data", data.writeMultiple) }, "/data");
  if (s[0] === "query" && s[1] === "data") {
    if (n === 2)
      return pick({ GET: op("GET /query/data", data.getDataByName), POST: op("POST /query/data", data.postMultiData) }, "/query/data");
    if (n === 3 && (s[2] === "first" || s[2] === "latest")) {
      const which = s[2];
      return pick({ POST: op(`POST /query/data/${which}`, (ctx, c) => data.postMultiEdge(ctx, c, which)) }, `/query/data/${which}`);
    }
  }
  if (s[0] === "streaming") {
    if (s[1] === "subscriptions" && n === 2)
      return pick(
        {
          GET: op("GET /streaming/subscriptions", streaming.listSubscriptions),
          POST: op("POST /streaming/subscriptions", streaming.createSubscriptions),
        },
        "/streaming/subscriptions",
      );
    if (s[1] === "subscriptions" && n === 3)
      return pick(
        { DELETE: op("DELETE /streaming/subscriptions/{id}", (ctx, c) => streaming.deleteSubscription(ctx, c, seg[2]!)) },
        "/streaming/subscriptions/{id}",
      );
    if (s[1] === "destination" && n === 2)
      return pick({ POST: op("POST /streaming/destination", streaming.setDestination) }, "/streaming/destination");
  }
  if (!RESERVED.has(s[0]!)) {
    const id = seg[0]!;
    if (n === 1)
      return pick(
        {
          GET: op("GET /{id}", (ctx, c) => meta.getById(ctx, c, id)),
          PATCH: op("PATCH /{id}", (ctx, c) => meta.patchTimeseries(ctx, c, id)),
          PUT: op("PUT /{id}", (ctx, c) => meta.putTimeseries(ctx, c, id)),
          DELETE: op("DELETE /{id}", (ctx, c) => meta.deleteTimeseries(ctx, c, id)),
        },
        "/{id}",
      );
    if (n === 2 && s[1] === "history")
      return pick({ GET: op("GET /{id}/history", (ctx, c) => meta.getHistory(ctx, c, id)) }, "/{id}/history");
    if (n === 2 && s[1] === "data")
      return pick(
        {
          GET: op("GET /{id}/data", (ctx, c) => data.getData(ctx, c, id)),
          POST: op("POST /{id}/data", (ctx, c) => data.writeData(ctx, c, id)),
          DELETE: op("DELETE /{id}/data", (ctx, c) => data.deleteData(ctx, c, id)),
        },
        "/{id}/data",
      );
    if (n === 3 && s[1] === "data") {
      const sub = s[2];
      if (sub === "aggregates")
        return pick({ GET: op("GET /{id}/data/aggregates", (ctx, c) => data.getAggregates(ctx, c, id)) }, "/{id}/data/aggregates");
      if (sub === "first" || sub === "latest")
        return pick({ GET: op(`GET /{id}/data/${sub}`, (ctx, c) => data.getEdge(ctx, c, id, sub)) }, `/{id}/data/${sub}`);
    }
  }
  throw new ApiError(404, `Resource not found: /${seg.join("/")}.`);
}

/** W3C trace id of the caller's `traceparent`, else a fresh one. */
function traceIdOf(req: IncomingMessage): string {
  const tp = req.headers.traceparent;
  const m = typeof tp === "string" ? /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/i.exec(tp.trim()) : null;
  return m ? m[1]!.toLowerCase() : randomBytes(16).toString("hex");
}

export function createHandler(ctx: EmulatorContext, admin: AdminSurface) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const traceId = traceIdOf(req);
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://emulator");
    let operation = "(none)";
    let fault: string | undefined;
    const isAdmin = isAdminPath(url.pathname);
    res.on("finish", () => {
      if (isAdmin) return;
      ctx.counters.byStatus[res.statusCode] = (ctx.counters.byStatus[res.statusCode] ?? 0) + 1;
      ctx.opts.onRequest?.({
        method,
        path: url.pathname,
        operation,
        status: res.statusCode,
        ms: Math.round((performance.now() - started) * 10) / 10,
        traceId,
        fault,
      });
    });
    const fail = (err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof ApiError) return sendJson(res, err.status, messageModel(err.status, err.message, traceId), err.headers);
      sendJson(res, 500, messageModel(500, `Emulator error: ${(err as Error).message}`, traceId));
    };
    const run = async () => {
      if (isAdmin) return admin.handle(req, res, url);
      const m = BASE.exec(url.pathname);
      const apiPath = m ? url.pathname.slice(m[0].length) || "/" : url.pathname;
      // Routed (and counted) before faults, so a counter says how often a client called, faulted or not.
      let r: Route | undefined;
      let routeError: unknown;
      try {
        if (!m) throw new ApiError(404, `Resource not found: ${url.pathname}.`);
        r = route(method, segments(apiPath));
        operation = r.operation;
      } catch (err) {
        routeError = err;
        operation = `${method} (unknown)`;
      }
      ctx.count(operation, apiPath);
      const decision = ctx.faults.decide(method, url.pathname, apiPath);
      if (decision.latencyMs > 0) ctx.counters.faults.latency = (ctx.counters.faults.latency ?? 0) + 1;
      if (decision.kind !== "none") {
        fault = decision.script ? `script:${decision.kind}` : decision.kind;
        ctx.counters.faults[decision.kind] = (ctx.counters.faults[decision.kind] ?? 0) + 1;
      }
      if (decision.kind === "status" && (decision.emptyBody || decision.body !== undefined)) {
        // An injected answer of the gateway's own: empty (its 502 on a backend timeout), or whatever body was given.
        if (decision.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, decision.latencyMs));
        await readBody(req, 1024 * 1024);
        const headers: Record<string, string> =
          decision.retryAfterSeconds !== undefined ? { "Retry-After": String(decision.retryAfterSeconds) } : {};
        if (decision.emptyBody) return send(res, decision.status, "", "text/plain", headers);
        return sendJson(res, decision.status, decision.body, headers);
      }
      if (await injectHttpFault(decision, req, res, { statusBody: (status) => messageModel(status, faultMessage(status), traceId) }))
        return;
      if (!r) {
        await readBody(req, 1024 * 1024);
        throw routeError;
      }
      const seg = segments(apiPath);
      ctx.rateLimiter.take();
      const body = await readBody(req, ctx.opts.maxBodyBytes);
      let principal: Principal;
      try {
        principal = await ctx.auth.authenticate(req.headers.authorization);
      } catch (err) {
        ctx.counters.authRefusals++;
        throw err;
      }
      if (body.tooLarge) throw new ApiError(413, `The request body exceeds ${ctx.opts.maxBodyBytes} bytes.`);
      let parsed: { v: unknown } | undefined;
      const call: Call = {
        method,
        seg,
        query: new Query(url.searchParams),
        body: () => {
          if (!parsed) {
            const text = body.buf.toString("utf8");
            try {
              parsed = { v: text.trim() ? JSON.parse(text) : undefined };
            } catch {
              throw badRequest("The request body is not valid JSON.");
            }
          }
          return parsed.v;
        },
        protobuf: wantsProtobuf(req.headers.accept),
        principal,
        traceId,
      };
      const answer = r.handle(ctx, call);
      if (answer.bytes) return send(res, answer.status, Buffer.from(answer.bytes), "application/protobuf");
      sendJson(res, answer.status, answer.json);
    };
    run().catch(fail);
  };
}

function segments(apiPath: string): string[] {
  return apiPath
    .split("/")
    .filter(Boolean)
    .map((x) => {
      try {
        return decodeURIComponent(x);
      } catch {
        throw badRequest(`The path segment '${x}' is not valid.`);
      }
    });
}

function faultMessage(status: number): string {
  switch (status) {
    case 429:
      return "Rate limit is exceeded. Try again later.";
    case 502:
      return "Bad gateway.";
    case 503:
      return "Service unavailable.";
    case 504:
      return "Gateway timeout.";
    default:
      return `Injected fault ${status}.`;
  }
}
