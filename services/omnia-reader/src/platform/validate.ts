import { OmniaValidationError } from "./errors.js";
import { queryTime, toTimeNs } from "./time.js";
import {
  AGGREGATE_FUNCTIONS,
  type AggregatesQuery,
  type DatapointsQuery,
  type DatapointWrite,
  FEDERATION_SOURCES,
  type FirstLatestMultiItem,
  type FirstLatestQuery,
  type MultiQueryItem,
  type TimeInput,
  type TimeseriesCreate,
  type TimeseriesPatch,
  type TimeseriesQuery,
  type TimeseriesSearch,
} from "./types.js";

/** Query parameters as sent: arrays become repeated keys, booleans lowercase, undefined left out. */
export type QueryParams = Record<string, string | number | boolean | readonly (string | number)[] | undefined | null>;

/** The API's bounds (v1.5 changelog, wiki). */
export const MAX_LIMIT = 100_000;
export const MAX_MULTI_ITEMS = 100;
export const MAX_METADATA_KEYS = 17;
/** How many points one write request may carry. The API's own bound is undocumented: the read limit, to be safe. */
export const MAX_WRITE_POINTS = 100_000;
export const MAX_ID_LENGTH = 256;

const fail = (field: string, problem: string): never => {
  throw new OmniaValidationError(field, problem);
};

/** An id ready for a path segment: non-empty, bounded, percent-encoded. */
export function checkId(id: string, field = "id"): string {
  if (typeof id !== "string" || id.trim() === "") fail(field, "required");
  if (id.length > MAX_ID_LENGTH) fail(field, `at most ${MAX_ID_LENGTH} characters`);
  return encodeURIComponent(id);
}

export function checkIds(ids: readonly string[], field: string): string[] {
  if (!Array.isArray(ids) || ids.length === 0) fail(field, "at least one id");
  if (ids.length > 10_000) fail(field, `at most 10000, got ${ids.length}`);
  ids.forEach((id, i) => {
    checkId(id, `${field}[${i}]`);
  });
  return [...ids];
}

function checkLimit(limit: number | undefined, field: string, max = MAX_LIMIT): number | undefined {
  if (limit === undefined) return undefined;
  if (!Number.isInteger(limit) || limit < 1 || limit > max) fail(field, `must be an integer in 1..${max}, got ${limit}`);
  return limit;
}

function checkStatus(status: readonly number[] | undefined, field: string): readonly number[] | undefined {
  if (status === undefined) return undefined;
  if (!Array.isArray(status)) fail(field, "must be an array of status codes");
  if (status.length > 256) fail(field, "at most 256 status codes");
  status.forEach((s, i) => {
    if (!Number.isInteger(s) || s < 0 || s > 0xffffffff) fail(`${field}[${i}]`, `not a status code: ${s}`);
  });
  return status;
}

function checkWindow(start: TimeInput | undefined, end: TimeInput | undefined, startField: string, endField: string) {
  const s = start === undefined ? undefined : queryTime(start, startField);
  const e = end === undefined ? undefined : queryTime(end, endField);
  if (start !== undefined && end !== undefined && toTimeNs(start, startField) > toTimeNs(end, endField))
    fail(endField, `before ${startField}`);
  return { s, e };
}

function checkFederation(v: string | undefined): string | undefined {
  if (v !== undefined && !FEDERATION_SOURCES.includes(v as never))
    fail("federationSource", `must be one of ${FEDERATION_SOURCES.join(", ")}, got ${v}`);
  return v;
}

function checkToken(v: string | undefined, field = "continuationToken"): string | undefined {
  if (v !== undefined && (typeof v !== "string" || v.length > 64 * 1024)) fail(field, "must be a string of at most 64 KiB");
  return v;
}

const INTERVAL = /^[1-9]\d{0,8}(ms|s|m|h|d)$/;

function checkInterval(v: string | undefined, field: string): string | undefined {
  if (v !== undefined && !INTERVAL.test(v))
    fail(field, `must be <n><unit> with unit ms, s, m, h or d (e.g. 15m), got ${JSON.stringify(v)}`);
  return v;
}

function checkFunctions(fns: readonly string[] | undefined, field: string): readonly string[] {
  if (!Array.isArray(fns) || fns.length === 0) fail(field, `at least one of ${AGGREGATE_FUNCTIONS.join(", ")}`);
  (fns as readonly string[]).forEach((f, i) => {
    if (!AGGREGATE_FUNCTIONS.includes(f as never)) fail(`${field}[${i}]`, `must be one of ${AGGREGATE_FUNCTIONS.join(", ")}, got ${f}`);
  });
  return fns as readonly string[];
}

function checkFill(v: string | null | undefined, field: string) {
  if (v !== undefined && v !== null && (typeof v !== "string" || v.length === 0 || v.length > 64)) fail(field, "must be 1..64 characters");
  return v;
}

export function datapointsQueryParams(q: DatapointsQuery): Record<string, QueryParams[string]> {
  const { s, e } = checkWindow(q.startTime, q.endTime, "startTime", "endTime");
  return {
    startTime: s,
    endTime: e,
    status: checkStatus(q.status, "status"),
    includeOutsidePoints: q.includeOutsidePoints,
    limit: checkLimit(q.limit, "limit"),
    continuationToken: checkToken(q.continuationToken),
    federationSource: checkFederation(q.federationSource),
    debug: q.debug,
  };
}

export function aggregatesQueryParams(q: AggregatesQuery): QueryParams {
  const { s, e } = checkWindow(q.startTime, q.endTime, "startTime", "endTime");
  return {
    aggregateFunction: checkFunctions(q?.aggregateFunctions, "aggregateFunctions"),
    startTime: s,
    endTime: e,
    status: checkStatus(q.status, "status"),
    processingInterval: checkInterval(q.processingInterval, "processingInterval"),
    fill: checkFill(q.fill, "fill"),
    limit: checkLimit(q.limit, "limit"),
    alignToCache: q.alignToCache,
    continuationToken: checkToken(q.continuationToken),
    federationSource: checkFederation(q.federationSource),
    debug: q.debug,
  };
}

export function firstLatestParams(q: FirstLatestQuery): QueryParams {
  const { s, e } = checkWindow(q.afterTime, q.beforeTime, "afterTime", "beforeTime");
  return {
    afterTime: s,
    beforeTime: e,
    status: checkStatus(q.status, "status"),
    federationSource: checkFederation(q.federationSource),
    debug: q.debug,
  };
}

export function timeseriesQueryParams(q: TimeseriesSearch | TimeseriesQuery, search: boolean): QueryParams {
  const s = q as TimeseriesSearch;
  for (const k of ["name", "externalId", "source", "assetId", "facility", "description", "unit"] as const) {
    const v = s[k];
    if (v !== undefined && (typeof v !== "string" || v.length > 1024)) fail(k, "must be a string of at most 1024 characters");
  }
  return {
    name: s.name,
    externalId: s.externalId,
    source: s.source,
    assetId: s.assetId,
    facility: s.facility,
    ...(search ? { description: s.description, unit: s.unit } : {}),
    limit: checkLimit(s.limit, "limit"),
    continuationToken: checkToken(s.continuationToken),
  };
}

/** Multi-query items: 1..100, each checked, named by index. */
export function checkMultiItems(items: readonly MultiQueryItem[]): void {
  if (!Array.isArray(items) || items.length === 0) fail("items", "at least one item");
  if (items.length > MAX_MULTI_ITEMS) fail("items", `at most ${MAX_MULTI_ITEMS} per multi-query, got ${items.length}`);
  items.forEach((it, i) => {
    const f = `items[${i}]`;
    checkId(it?.id, `${f}.id`);
    checkWindow(it.startTime, it.endTime, `${f}.startTime`, `${f}.endTime`);
    checkLimit(it.limit, `${f}.limit`);
    checkStatus(it.statusFilter, `${f}.statusFilter`);
    if (it.aggregateFunctions !== undefined) checkFunctions(it.aggregateFunctions, `${f}.aggregateFunctions`);
    checkInterval(it.processingInterval, `${f}.processingInterval`);
    checkFill(it.fill, `${f}.fill`);
    checkToken(it.continuationToken, `${f}.continuationToken`);
  });
}

/** The body of one multi-query item (the body's names: `statusFilter`, `aggregateFunctions`). */
export function multiItemBody(it: MultiQueryItem): Record<string, unknown> {
  const out: Record<string, unknown> = { id: it.id };
  if (it.startTime !== undefined) out.startTime = queryTime(it.startTime, "startTime");
  if (it.endTime !== undefined) out.endTime = queryTime(it.endTime, "endTime");
  if (it.limit !== undefined) out.limit = it.limit;
  if (it.statusFilter !== undefined) out.statusFilter = [...it.statusFilter];
  if (it.includeOutsidePoints !== undefined) out.includeOutsidePoints = it.includeOutsidePoints;
  if (it.fill !== undefined) out.fill = it.fill;
  if (it.aggregateFunctions !== undefined) out.aggregateFunctions = [...it.aggregateFunctions];
  if (it.processingInterval !== undefined) out.processingInterval = it.processingInterval;
  if (it.continuationToken !== undefined) out.continuationToken = it.continuationToken;
  return out;
}

export function checkFirstLatestItems(items: readonly FirstLatestMultiItem[]): Record<string, unknown>[] {
  if (!Array.isArray(items) || items.length === 0) fail("items", "at least one item");
  if (items.length > MAX_MULTI_ITEMS) fail("items", `at most ${MAX_MULTI_ITEMS} per multi-query, got ${items.length}`);
  return items.map((it, i) => {
    checkId(it?.id, `items[${i}].id`);
    const { s, e } = checkWindow(it.startTime, it.endTime, `items[${i}].startTime`, `items[${i}].endTime`);
    const out: Record<string, unknown> = { id: it.id };
    if (s !== undefined) out.startTime = s;
    if (e !== undefined) out.endTime = e;
    return out;
  });
}

function checkMetadataFields(item: TimeseriesPatch, field: string): void {
  for (const k of ["name", "facility", "description", "unit", "assetId", "externalId"] as const) {
    const v = item[k];
    if (v !== undefined && (typeof v !== "string" || v.length > 1024)) fail(`${field}.${k}`, "must be a string of at most 1024 characters");
  }
  if (item.step !== undefined && typeof item.step !== "boolean") fail(`${field}.step`, "must be a boolean");
  if (item.metadata !== undefined) {
    if (typeof item.metadata !== "object" || item.metadata === null || Array.isArray(item.metadata))
      fail(`${field}.metadata`, "must be an object");
    const keys = Object.keys(item.metadata);
    if (keys.length > MAX_METADATA_KEYS) fail(`${field}.metadata`, `at most ${MAX_METADATA_KEYS} keys, got ${keys.length}`);
    for (const k of keys) if (typeof item.metadata[k] !== "string") fail(`${field}.metadata.${k}`, "must be a string");
  }
}

export function checkTimeseriesCreate(item: TimeseriesCreate, field: string): void {
  if (typeof item !== "object" || item === null) fail(field, "required");
  if (typeof item.name !== "string" || item.name.trim() === "") fail(`${field}.name`, "required");
  if (typeof item.facility !== "string" || item.facility.trim() === "") fail(`${field}.facility`, "required");
  checkMetadataFields(item, field);
}

export function checkTimeseriesPatch(patch: TimeseriesPatch, field: string): void {
  if (typeof patch !== "object" || patch === null || Object.keys(patch).length === 0) fail(field, "at least one field to change");
  if (patch.name !== undefined && patch.name.trim() === "") fail(`${field}.name`, "must not be empty");
  if (patch.facility !== undefined && patch.facility.trim() === "") fail(`${field}.facility`, "must not be empty");
  checkMetadataFields(patch, field);
}

/** Datapoints as the write body has them: time as Omnia's 7-digit UTC string. */
export function writeBody(points: readonly DatapointWrite[], field: string): { time: string; value: number; status: number }[] {
  if (!Array.isArray(points) || points.length === 0) fail(field, "at least one datapoint");
  if (points.length > MAX_WRITE_POINTS) fail(field, `at most ${MAX_WRITE_POINTS} per request, got ${points.length}`);
  return points.map((p, i) => {
    const f = `${field}[${i}]`;
    if (typeof p !== "object" || p === null) fail(f, "must be {time, value, status}");
    if (typeof p.value !== "number" || !Number.isFinite(p.value)) fail(`${f}.value`, `must be a finite number, got ${String(p.value)}`);
    if (!Number.isInteger(p.status) || p.status < 0 || p.status > 0xffffffff) fail(`${f}.status`, `not a status code: ${String(p.status)}`);
    return { time: queryTime(p.time, `${f}.time`), value: p.value, status: p.status };
  });
}

export function checkWriteItems(items: readonly { id: string; datapoints: readonly DatapointWrite[] }[]) {
  if (!Array.isArray(items) || items.length === 0) fail("items", "at least one item");
  let total = 0;
  return items.map((it, i) => {
    checkId(it?.id, `items[${i}].id`);
    const datapoints = writeBody(it.datapoints, `items[${i}].datapoints`);
    total += datapoints.length;
    if (total > MAX_WRITE_POINTS) fail("items", `at most ${MAX_WRITE_POINTS} datapoints per request in all`);
    return { id: it.id, datapoints };
  });
}

export function checkConnectionString(cs: string): void {
  // Never quoted in the error: it holds the Event Hub's key.
  if (typeof cs !== "string" || cs.trim() === "") fail("connectionString", "required");
  if (cs.length > 4096) fail("connectionString", "at most 4096 characters");
  if (!/Endpoint=/i.test(cs)) fail("connectionString", "not an Event Hub connection string (no Endpoint=)");
}
