/** The datapoint operations: reads (raw, by name, multi, aggregates, first, latest), writes and deletes. */
import type { EmulatorContext } from "../context.js";
import { badRequest, messageModel, notFound } from "../errors.js";
import { type AggregateQuery, type ItemResult, parseFill, parseFunctions, readAggregates, readEdge, readRaw } from "../query.js";
import { type DataAnswer, dataJson, dataProtobuf } from "../render.js";
import type { Datapoint, Series } from "../store.js";
import { parseInterval } from "../time.js";
import type { Answer, Call } from "./call.js";
import { federation, intList, invalid, isObject, optBool, optInt, optString, optTime, timeValue } from "./request.js";

export function answerData(c: Call, a: DataAnswer, multi = false): Answer {
  if (c.protobuf) return { status: 200, bytes: dataProtobuf(a) };
  const json = dataJson(a, multi) as Record<string, unknown>;
  if (c.query.bool("debug")) json.debug = { traceId: c.traceId, operation: `${c.method} /${c.seg.join("/")}` };
  return { status: 200, json };
}

export function seriesOf(ctx: EmulatorContext, id: string): Series {
  const s = ctx.store.get(id);
  if (!s) throw notFound(`Timeseries with id '${id}' was not found.`);
  ctx.checkAccess(s);
  return s;
}

function interval(v: string | undefined): bigint | undefined {
  if (v === undefined || v === "") return undefined;
  const ns = parseInterval(v);
  if (ns === undefined) throw invalid(v, "processingInterval");
  return ns;
}

/** GET /{id}/data */
export function getData(ctx: EmulatorContext, c: Call, id: string): Answer {
  const fed = federation(c.query);
  const s = seriesOf(ctx, id);
  const r = readRaw(s, rawQuery(c), ctx.limits);
  return answerData(c, { items: [r], continuationToken: r.continuationToken, federated: fed });
}

function rawQuery(c: Call) {
  const q = c.query;
  return {
    start: q.time("startTime"),
    end: q.time("endTime"),
    status: q.ints("status"),
    includeOutsidePoints: q.bool("includeOutsidePoints"),
    limit: q.int("limit"),
    continuationToken: q.str("continuationToken"),
  };
}

/** GET /query/data?name&facility&terminal */
export function getDataByName(ctx: EmulatorContext, c: Call): Answer {
  const fed = federation(c.query);
  const name = c.query.str("name");
  const facility = c.query.str("facility");
  const terminal = c.query.str("terminal");
  if (!name) throw badRequest("The name field is required.");
  if (!facility) throw badRequest("The facility field is required.");
  const s = ctx.store.byName(name, facility);
  if (!s) throw notFound(`Timeseries '${name}' at facility '${facility}' was not found.`);
  ctx.checkAccess(s);
  const r = readRaw(s, rawQuery(c), ctx.limits);
  r.extra = { name: s.meta.name, facility: s.meta.facility, ...(terminal !== undefined ? { terminal } : {}) };
  return answerData(c, { items: [r], continuationToken: r.continuationToken, federated: fed });
}

/** GET /{id}/data/aggregates */
export function getAggregates(ctx: EmulatorContext, c: Call, id: string): Answer {
  const q = c.query;
  const fed = federation(q);
  const s = seriesOf(ctx, id);
  const aq: AggregateQuery = {
    start: q.time("startTime"),
    end: q.time("endTime"),
    status: q.ints("status"),
    functions: parseFunctions(q.list("aggregateFunction"), "aggregateFunction"),
    interval: interval(q.str("processingInterval")),
    fill: parseFill(q.str("fill")),
    alignToCache: q.bool("alignToCache"),
    limit: q.int("limit"),
    continuationToken: q.str("continuationToken"),
  };
  const r = readAggregates(s, aq, ctx.limits);
  return answerData(c, { items: [r], continuationToken: r.continuationToken, federated: fed });
}

/** GET /{id}/data/first and /{id}/data/latest */
export function getEdge(ctx: EmulatorContext, c: Call, id: string, which: "first" | "latest"): Answer {
  const fed = federation(c.query);
  const s = seriesOf(ctx, id);
  const r = readEdge(s, which, { after: c.query.time("afterTime"), before: c.query.time("beforeTime"), status: c.query.ints("status") });
  return answerData(c, { items: [r], continuationToken: null, federated: fed });
}

function multiItems(ctx: EmulatorContext, c: Call): Record<string, unknown>[] {
  let body = c.body();
  // The API takes a top-level array; `{items: [...]}` is tolerated.
  if (isObject(body) && Array.isArray(body.items)) body = body.items;
  if (!Array.isArray(body)) throw badRequest("The request body must be a JSON array of request items.");
  if (body.length === 0) throw badRequest("The request body must hold at least one request item.");
  if (body.length > ctx.opts.maxMultiItems)
    throw badRequest(`Too many items in request: ${body.length}. The maximum is ${ctx.opts.maxMultiItems} timeseries per request.`);
  return body.map((item, i) => {
    if (!isObject(item)) throw badRequest(`items[${i}] must be an object.`);
    if (typeof item.id !== "string" || item.id === "") throw badRequest(`items[${i}].id is required.`);
    return item;
  });
}

/** The overall token of a multi-query: where each unfinished item goes on. Opaque to clients. */
function encodeMultiToken(tokens: Map<number, string>): string | null {
  if (tokens.size === 0) return null;
  return Buffer.from(JSON.stringify({ m: Object.fromEntries(tokens) })).toString("base64url");
}

function decodeMultiToken(text: string): Record<string, string> {
  try {
    const t = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as { m?: Record<string, string> };
    if (t && isObject(t.m)) return t.m;
  } catch {
    // refused below
  }
  throw badRequest("Invalid continuationToken.");
}

/** POST /query/data */
export function postMultiData(ctx: EmulatorContext, c: Call): Answer {
  const fed = federation(c.query);
  const alignToCache = c.query.bool("alignToCache");
  const overall = c.query.str("continuationToken");
  const resume = overall ? decodeMultiToken(overall) : undefined;
  const items = multiItems(ctx, c);
  const results: ItemResult[] = [];
  const next = new Map<number, string>();
  items.forEach((item, i) => {
    const f = (k: string) => `items[${i}].${k}`;
    const s = seriesOf(ctx, item.id as string);
    const start = optTime(item.startTime, f("startTime"));
    const end = optTime(item.endTime, f("endTime"));
    const limit = optInt(item.limit, f("limit"));
    const status = intList(item.statusFilter, f("statusFilter"));
    const fns = item.aggregateFunctions;
    // With an overall token, an item it does not name is finished: it answers no points.
    let token = optString(item.continuationToken, f("continuationToken"));
    const finished = resume !== undefined && resume[String(i)] === undefined;
    if (resume) token = resume[String(i)];
    let r: ItemResult;
    if (fns !== undefined && fns !== null) {
      if (!Array.isArray(fns)) throw invalid(fns, f("aggregateFunctions"));
      r = readAggregates(
        s,
        {
          start,
          end,
          status,
          functions: parseFunctions(fns, f("aggregateFunctions")),
          interval: interval(optString(item.processingInterval, f("processingInterval"))),
          fill: parseFill(optString(item.fill, f("fill"))),
          alignToCache,
          limit,
          continuationToken: token,
        },
        ctx.limits,
      );
    } else {
      r = readRaw(
        s,
        {
          start,
          end,
          status,
          includeOutsidePoints: optBool(item.includeOutsidePoints, f("includeOutsidePoints")),
          limit,
          continuationToken: token,
        },
        ctx.limits,
      );
    }
    if (finished) r = { ...r, rows: [], continuationToken: null };
    if (r.continuationToken) next.set(i, r.continuationToken);
    results.push(r);
  });
  return answerData(c, { items: results, continuationToken: encodeMultiToken(next), federated: fed }, true);
}

/** POST /query/data/first and /query/data/latest: items name id and optionally a window (startTime/endTime or afterTime/beforeTime). */
export function postMultiEdge(ctx: EmulatorContext, c: Call, which: "first" | "latest"): Answer {
  const fed = federation(c.query);
  const items = multiItems(ctx, c);
  const results = items.map((item, i) => {
    const f = (k: string) => `items[${i}].${k}`;
    const s = seriesOf(ctx, item.id as string);
    return readEdge(s, which, {
      after: optTime(item.afterTime ?? item.startTime, f(item.afterTime !== undefined ? "afterTime" : "startTime")),
      before: optTime(item.beforeTime ?? item.endTime, f(item.beforeTime !== undefined ? "beforeTime" : "endTime")),
      status: intList(item.statusFilter, f("statusFilter")),
    });
  });
  return answerData(c, { items: results, continuationToken: null, federated: fed });
}

function parsePoints(ctx: EmulatorContext, v: unknown, field: string): Datapoint[] {
  if (!Array.isArray(v)) throw badRequest(`${field} must be an array of datapoints.`);
  if (v.length > ctx.opts.maxWritePoints) throw badRequest(`${field}: at most ${ctx.opts.maxWritePoints} datapoints per request.`);
  return v.map((p, i) => {
    const f = `${field}[${i}]`;
    if (!isObject(p)) throw badRequest(`${f} must be an object.`);
    const t = timeValue(p.time, `${f}.time`);
    if (typeof p.value !== "number" || !Number.isFinite(p.value)) throw invalid(p.value, `${f}.value`);
    const status = p.status === undefined || p.status === null ? 192 : p.status;
    if (typeof status !== "number" || !Number.isInteger(status) || status < 0 || status > 0xffffffff)
      throw invalid(p.status, `${f}.status`);
    // JSON carries 100 ns: what is stored is what a JSON read gives back.
    return { t: t - (((t % 100n) + 100n) % 100n), value: p.value, status };
  });
}

function writeAnswer(c: Call, count: number): Answer {
  const async = c.query.bool("async") ?? false;
  return async
    ? { status: 202, json: messageModel(202, "Accepted", c.traceId) }
    : { status: 200, json: messageModel(200, `Stored ${count} datapoints.`, c.traceId) };
}

/** POST /{id}/data */
export function writeData(ctx: EmulatorContext, c: Call, id: string): Answer {
  const s = seriesOf(ctx, id);
  const body = c.body();
  if (!isObject(body)) throw badRequest("The request body must be an object with datapoints.");
  const points = parsePoints(ctx, body.datapoints, "datapoints");
  writeAnswer(c, 0); // a bad `async` is refused before anything is stored
  ctx.write(s, points);
  return writeAnswer(c, points.length);
}

/** POST /data */
export function writeMultiple(ctx: EmulatorContext, c: Call): Answer {
  const body = c.body();
  if (!isObject(body) || !Array.isArray(body.items)) throw badRequest("The request body must be an object with items.");
  let total = 0;
  // Everything is checked before anything is stored.
  const batches = body.items.map((item, i) => {
    if (!isObject(item) || typeof item.id !== "string") throw badRequest(`items[${i}].id is required.`);
    const points = parsePoints(ctx, item.datapoints, `items[${i}].datapoints`);
    total += points.length;
    if (total > ctx.opts.maxWritePoints) throw badRequest(`At most ${ctx.opts.maxWritePoints} datapoints per request.`);
    return { s: seriesOf(ctx, item.id), points };
  });
  writeAnswer(c, 0);
  for (const b of batches) ctx.write(b.s, b.points);
  return writeAnswer(c, total);
}

/** DELETE /{id}/data?startTime&endTime: start inclusive, end exclusive. */
export function deleteData(ctx: EmulatorContext, c: Call, id: string): Answer {
  const s = seriesOf(ctx, id);
  const start = c.query.time("startTime");
  const end = c.query.time("endTime");
  if (start === undefined) throw badRequest("The startTime field is required.");
  if (end === undefined) throw badRequest("The endTime field is required.");
  if (end < start) throw badRequest("endTime must be later than startTime.");
  const n = s.deleteRange(start, end);
  ctx.counters.pointsDeleted += n;
  return { status: 200, json: messageModel(200, `Deleted ${n} datapoints.`, c.traceId) };
}
