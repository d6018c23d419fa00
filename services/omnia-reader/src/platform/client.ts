import type { TokenCredential } from "@azure/identity";
import { type BackoffPolicy, readRetryAfter, retry } from "@meridian/retry";
import { Agent, type Dispatcher } from "undici";
import { type CredentialOptions, createCredential, type OmniaAuthConfig, TokenSource } from "./auth.js";
import { type OmniaEnvironmentInput, type ResolvedOmniaEnvironment, resolveEnvironment } from "./environments.js";
import {
  OmniaBadRequestError,
  OmniaCollectLimitError,
  OmniaConfigError,
  OmniaConflictError,
  type OmniaError,
  type OmniaErrorDetails,
  OmniaForbiddenError,
  OmniaNotFoundError,
  OmniaProtocolError,
  OmniaServerError,
  OmniaThrottledError,
  OmniaUnauthorizedError,
  OmniaValidationError,
} from "./errors.js";
import { type CompactDatapointsItem, compactToAggregates, compactToDatapoints, decodeCompactDatapoints } from "./protobuf.js";
import { formatTimeNs, parseTimeNs } from "./time.js";
import { type HttpResponse, httpExchange } from "./transport.js";
import type {
  AggregatePoint,
  AggregatesItem,
  AggregatesPage,
  AggregatesQuery,
  CallOptions,
  CollectOptions,
  Datapoint,
  DatapointsByNameQuery,
  DatapointsItem,
  DatapointsPage,
  DatapointsQuery,
  DatapointWrite,
  FacilityCount,
  FirstLatestMultiItem,
  FirstLatestQuery,
  MultiQueryItem,
  MultiQueryOptions,
  MultiQueryPage,
  MultiQueryResultItem,
  OmniaMessage,
  ReadOptions,
  SourceCount,
  StreamingSubscription,
  Timeseries,
  TimeseriesCreate,
  TimeseriesHistoryEntry,
  TimeseriesPage,
  TimeseriesPatch,
  TimeseriesQuery,
  TimeseriesSearch,
  WriteOptions,
  WriteResult,
} from "./types.js";
import {
  aggregatesQueryParams,
  checkConnectionString,
  checkFirstLatestItems,
  checkId,
  checkIds,
  checkMultiItems,
  checkTimeseriesCreate,
  checkTimeseriesPatch,
  checkWriteItems,
  datapointsQueryParams,
  firstLatestParams,
  multiItemBody,
  type QueryParams,
  timeseriesQueryParams,
  writeBody,
} from "./validate.js";

export interface OmniaClientOptions extends OmniaEnvironmentInput {
  /** How to get a token; or pass `credential` (takes precedence). */
  auth?: OmniaAuthConfig;
  credential?: TokenCredential;
  onDeviceCode?: CredentialOptions["onDeviceCode"];
  /** CA (PEM) to trust for the authority host (an Entra emulator). */
  authorityCaPem?: string;
  /** See CredentialOptions.disableInstanceDiscovery. */
  disableInstanceDiscovery?: boolean;
  /** CA (PEM) to trust for the Omnia API (an emulator, a TLS-inspecting proxy); ignored when `dispatcher` is given. */
  caPem?: string;
  /** Per-request timeout (ms). Default 60 000, 1 000..600 000. */
  timeoutMs?: number;
  /** Longest answer read, after decompression. Default 64 MiB, 1 KiB..1 GiB. */
  maxResponseBytes?: number;
  /** Tries per request including the first, on the retry set. Default 3, 1..10. */
  maxAttempts?: number;
  backoff?: BackoffPolicy;
  /**
   * Whether a 409 is retried. The python client retries it; for a create, a retry cannot help (name + facility exist),
   * so creates never retry it whatever this says. Default true (reads and writes).
   */
  retryConflict?: boolean;
  /** Media type a protobuf read asks for. Default `application/protobuf` (the wiki writes `application/x-protobuf`). */
  protobufMediaType?: "application/protobuf" | "application/x-protobuf" | "application/x-google-protobuf";
  userAgent?: string;
  dispatcher?: Dispatcher;
  /** Told of each retry (log it at warn); never given a token. */
  onRetry?: (event: { request: string; attempt: number; delayMs: number; error: Error }) => void;
}

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_ATTEMPTS = 3;
/** The python client's 0.5 s, 1 s, … (no jitter there; some here so that many readers do not retry in step). */
export const OMNIA_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.2 };
export const DEFAULT_COLLECT_MAX_ITEMS = 1_000_000;
export const MAX_COLLECT_ITEMS = 10_000_000;
export const DEFAULT_COLLECT_MAX_PAGES = 10_000;
export const USER_AGENT = "Meridian omnia-reader";

/** Statuses retried (the python client's set); 409 only when `retryConflict` and not a create. */
const RETRY_STATUSES = new Set([408, 425, 429, 502, 503, 504]);

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

interface CallSpec {
  method: Method;
  /** Relative to the base URL; "" is the base itself. */
  path: string;
  query?: QueryParams;
  body?: unknown;
  protobuf?: boolean;
  /** A create: a 409 is final. */
  create?: boolean;
  signal?: AbortSignal | undefined;
}

function bounded(field: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) throw new OmniaConfigError([`${field}: must be an integer in ${min}..${max}, got ${v}`]);
  return v;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** `{data: {items: [...]}}` (the documented envelope); tolerates `{items}` and a bare array. */
function itemsOf(body: unknown, request: string): unknown[] {
  if (Array.isArray(body)) return body;
  if (isObject(body)) {
    const data = body.data;
    if (isObject(data) && Array.isArray(data.items)) return data.items;
    if (Array.isArray(data)) return data;
    if (Array.isArray(body.items)) return body.items;
    if (data === null || data === undefined) return [];
  }
  throw new OmniaProtocolError(`${request}: answer has no data.items`);
}

function tokenOf(body: unknown): string | undefined {
  if (!isObject(body)) return undefined;
  const t = body.continuationToken;
  return typeof t === "string" && t !== "" ? t : undefined;
}

function jsonTimeNs(v: unknown, request: string): bigint {
  if (typeof v !== "string") throw new OmniaProtocolError(`${request}: datapoint without a time`);
  try {
    return parseTimeNs(v, "time");
  } catch {
    throw new OmniaProtocolError(`${request}: bad datapoint time ${JSON.stringify(v.slice(0, 64))}`);
  }
}

function num(v: unknown): number {
  return typeof v === "number" ? v : v === null || v === undefined ? Number.NaN : Number(v);
}

function jsonDatapoint(p: unknown, request: string): Datapoint {
  if (!isObject(p)) throw new OmniaProtocolError(`${request}: a datapoint is not an object`);
  const timeNs = jsonTimeNs(p.time, request);
  return { time: formatTimeNs(timeNs), timeNs, value: num(p.value), status: typeof p.status === "number" ? p.status : 0 };
}

const AGGREGATE_KEYS = ["avg", "min", "max", "sum", "stddev", "count", "first", "last", "value", "status"] as const;

function jsonAggregate(p: unknown, request: string): AggregatePoint {
  if (!isObject(p)) throw new OmniaProtocolError(`${request}: an aggregate point is not an object`);
  const timeNs = jsonTimeNs(p.time, request);
  const point: AggregatePoint = { time: formatTimeNs(timeNs), timeNs };
  for (const k of AGGREGATE_KEYS) if (p[k] !== undefined && p[k] !== null) point[k] = num(p[k]);
  return point;
}

function totalOf(item: Json): bigint | undefined {
  const t = item.totalCount ?? item.count;
  return typeof t === "number" && Number.isSafeInteger(t) ? BigInt(t) : typeof t === "string" && /^\d+$/.test(t) ? BigInt(t) : undefined;
}

function jsonDatapointsItem(raw: unknown, request: string): DatapointsItem {
  if (!isObject(raw)) throw new OmniaProtocolError(`${request}: an item is not an object`);
  const points = Array.isArray(raw.datapoints) ? raw.datapoints : [];
  const item: DatapointsItem = { id: str(raw.id) ?? "", datapoints: points.map((p) => jsonDatapoint(p, request)) };
  for (const k of ["name", "facility", "terminal"] as const) if (typeof raw[k] === "string") item[k] = raw[k] as string;
  const total = totalOf(raw);
  if (total !== undefined) item.totalCount = total;
  const token = tokenOf(raw);
  if (token !== undefined) item.continuationToken = token;
  return item;
}

function jsonAggregatesItem(raw: unknown, request: string): AggregatesItem {
  if (!isObject(raw)) throw new OmniaProtocolError(`${request}: an item is not an object`);
  const points = Array.isArray(raw.datapoints) ? raw.datapoints : Array.isArray(raw.aggregates) ? raw.aggregates : [];
  const item: AggregatesItem = { id: str(raw.id) ?? "", aggregates: points.map((p) => jsonAggregate(p, request)) };
  const total = totalOf(raw);
  if (total !== undefined) item.totalCount = total;
  const token = tokenOf(raw);
  if (token !== undefined) item.continuationToken = token;
  return item;
}

function compactDatapointsItem(item: CompactDatapointsItem): DatapointsItem {
  return { id: item.id, datapoints: compactToDatapoints(item), totalCount: item.totalCount };
}

function compactAggregatesItem(item: CompactDatapointsItem): AggregatesItem {
  return { id: item.id, aggregates: compactToAggregates(item), totalCount: item.totalCount };
}

function withToken<P extends object>(page: P, token: string | undefined): P & { continuationToken?: string } {
  return token === undefined ? page : { ...page, continuationToken: token };
}

function federatedOf(body: unknown): { federated?: boolean } {
  return isObject(body) && typeof body.federated === "boolean" ? { federated: body.federated } : {};
}

function asTimeseries(raw: unknown, request: string): Timeseries {
  if (!isObject(raw) || typeof raw.id !== "string") throw new OmniaProtocolError(`${request}: a time series without an id`);
  return raw as unknown as Timeseries;
}

/** One decoded answer: JSON, or protobuf bytes already decoded. */
type Decoded =
  | { kind: "json"; status: number; body: unknown }
  | { kind: "protobuf"; status: number; dto: ReturnType<typeof decodeCompactDatapoints> };

/** The Omnia Timeseries API v1.7: metadata, datapoints (JSON and protobuf), writes and streaming subscriptions. */
export class OmniaClient {
  readonly environment: ResolvedOmniaEnvironment;
  private readonly tokens: TokenSource;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly maxAttempts: number;
  private readonly backoff: BackoffPolicy;
  private readonly protobufType: string;
  private readonly dispatcher: Dispatcher | undefined;

  constructor(readonly options: OmniaClientOptions) {
    this.environment = resolveEnvironment(options);
    this.timeoutMs = bounded("timeoutMs", options.timeoutMs, DEFAULT_TIMEOUT_MS, 1_000, 600_000);
    this.maxResponseBytes = bounded("maxResponseBytes", options.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES, 1024, 1024 ** 3);
    this.maxAttempts = bounded("maxAttempts", options.maxAttempts, DEFAULT_MAX_ATTEMPTS, 1, 10);
    this.backoff = options.backoff ?? OMNIA_BACKOFF;
    this.protobufType = options.protobufMediaType ?? "application/protobuf";
    const credential =
      options.credential ??
      (options.auth
        ? createCredential(options.auth, this.environment, {
            ...(options.onDeviceCode ? { onDeviceCode: options.onDeviceCode } : {}),
            ...(options.authorityCaPem ? { authorityCaPem: options.authorityCaPem } : {}),
            ...(options.disableInstanceDiscovery !== undefined ? { disableInstanceDiscovery: options.disableInstanceDiscovery } : {}),
          })
        : undefined);
    if (credential === undefined) throw new OmniaConfigError(["auth: one of auth or credential is required"]);
    this.tokens = new TokenSource(credential, this.environment.scope);
    this.dispatcher = options.dispatcher ?? (options.caPem ? new Agent({ connect: { ca: options.caPem } }) : undefined);
  }

  /** Closes the connections of the client's own dispatcher (one made for `caPem`); a given dispatcher is the caller's. */
  async close(): Promise<void> {
    if (this.dispatcher && this.dispatcher !== this.options.dispatcher) await this.dispatcher.close();
  }

  // ---- metadata ----

  async listTimeseries(query: TimeseriesQuery = {}, opts: CallOptions = {}): Promise<TimeseriesPage> {
    return this.timeseriesPage("", timeseriesQueryParams(query, false), opts);
  }

  async searchTimeseries(query: TimeseriesSearch, opts: CallOptions = {}): Promise<TimeseriesPage> {
    let path = "/search";
    if (query.query !== undefined) {
      if (query.query === "" || query.query.length > 1024) throw new OmniaValidationError("query", "must be 1..1024 characters");
      path = `/search/${encodeURIComponent(query.query)}`;
    }
    return this.timeseriesPage(path, timeseriesQueryParams(query, true), opts);
  }

  async getTimeseries(id: string, opts: CallOptions = {}): Promise<Timeseries> {
    return this.singleTimeseries({ method: "GET", path: `/${checkId(id)}`, signal: opts.signal });
  }

  async createTimeseries(item: TimeseriesCreate, opts: CallOptions = {}): Promise<Timeseries> {
    checkTimeseriesCreate(item, "item");
    return this.singleTimeseries({ method: "POST", path: "", body: item, create: true, signal: opts.signal });
  }

  async patchTimeseries(id: string, patch: TimeseriesPatch, opts: CallOptions = {}): Promise<Timeseries> {
    checkTimeseriesPatch(patch, "patch");
    return this.singleTimeseries({ method: "PATCH", path: `/${checkId(id)}`, body: patch, signal: opts.signal });
  }

  async putTimeseries(id: string, item: TimeseriesCreate, opts: CallOptions = {}): Promise<Timeseries> {
    checkTimeseriesCreate(item, "item");
    return this.singleTimeseries({ method: "PUT", path: `/${checkId(id)}`, body: item, signal: opts.signal });
  }

  async deleteTimeseries(id: string, opts: CallOptions = {}): Promise<OmniaMessage> {
    return this.message({ method: "DELETE", path: `/${checkId(id)}`, signal: opts.signal });
  }

  async getOrAddTimeseries(items: readonly TimeseriesCreate[], opts: CallOptions = {}): Promise<Timeseries[]> {
    if (!Array.isArray(items) || items.length === 0) throw new OmniaValidationError("items", "at least one time series");
    if (items.length > 1000) throw new OmniaValidationError("items", `at most 1000 per request, got ${items.length}`);
    items.forEach((item, i) => {
      checkTimeseriesCreate(item, `items[${i}]`);
    });
    const request = "POST /getoradd";
    const body = await this.json({ method: "POST", path: "/getoradd", body: items, create: true, signal: opts.signal });
    return itemsOf(body, request).map((t) => asTimeseries(t, request));
  }

  async getFacilities(filter: { source?: string } = {}, opts: CallOptions = {}): Promise<FacilityCount[]> {
    const body = await this.json({ method: "GET", path: "/facets/facility", query: { source: filter.source }, signal: opts.signal });
    return itemsOf(body, "GET /facets/facility") as FacilityCount[];
  }

  async getSources(filter: { facility?: string } = {}, opts: CallOptions = {}): Promise<SourceCount[]> {
    const body = await this.json({ method: "GET", path: "/facets/source", query: { facility: filter.facility }, signal: opts.signal });
    return itemsOf(body, "GET /facets/source") as SourceCount[];
  }

  async getHistory(id: string, opts: CallOptions = {}): Promise<TimeseriesHistoryEntry[]> {
    const path = `/${checkId(id)}/history`;
    const body = await this.json({ method: "GET", path, signal: opts.signal });
    return itemsOf(body, `GET ${path}`) as TimeseriesHistoryEntry[];
  }

  // ---- datapoints ----

  async getDatapoints(id: string, query: DatapointsQuery = {}, opts: ReadOptions = {}): Promise<DatapointsPage> {
    const path = `/${checkId(id)}/data`;
    return this.datapointsPage({ method: "GET", path, query: datapointsQueryParams(query), signal: opts.signal }, opts);
  }

  async getDatapointsByName(query: DatapointsByNameQuery, opts: ReadOptions = {}): Promise<DatapointsPage> {
    if (typeof query.name !== "string" || query.name === "") throw new OmniaValidationError("name", "required");
    if (typeof query.facility !== "string" || query.facility === "") throw new OmniaValidationError("facility", "required");
    const params: QueryParams = { name: query.name, facility: query.facility, terminal: query.terminal, ...datapointsQueryParams(query) };
    return this.datapointsPage({ method: "GET", path: "/query/data", query: params, signal: opts.signal }, opts);
  }

  async getFirstDatapoint(id: string, query: FirstLatestQuery = {}, opts: ReadOptions = {}): Promise<Datapoint | undefined> {
    const path = `/${checkId(id)}/data/first`;
    const page = await this.datapointsPage({ method: "GET", path, query: firstLatestParams(query), signal: opts.signal }, opts);
    return page.items[0]?.datapoints[0];
  }

  async getLatestDatapoint(id: string, query: FirstLatestQuery = {}, opts: ReadOptions = {}): Promise<Datapoint | undefined> {
    const path = `/${checkId(id)}/data/latest`;
    const page = await this.datapointsPage({ method: "GET", path, query: firstLatestParams(query), signal: opts.signal }, opts);
    return page.items[0]?.datapoints[0];
  }

  async getFirstDatapoints(
    items: readonly FirstLatestMultiItem[],
    query: { federationSource?: FirstLatestQuery["federationSource"] } = {},
    opts: ReadOptions = {},
  ): Promise<DatapointsItem[]> {
    const body = checkFirstLatestItems(items);
    const params = firstLatestParams({ federationSource: query.federationSource });
    const page = await this.datapointsPage({ method: "POST", path: "/query/data/first", query: params, body, signal: opts.signal }, opts);
    return page.items;
  }

  async getLatestDatapoints(
    items: readonly FirstLatestMultiItem[],
    query: { federationSource?: FirstLatestQuery["federationSource"]; debug?: boolean } = {},
    opts: ReadOptions = {},
  ): Promise<DatapointsItem[]> {
    const body = checkFirstLatestItems(items);
    const params = firstLatestParams({ federationSource: query.federationSource, debug: query.debug });
    const page = await this.datapointsPage({ method: "POST", path: "/query/data/latest", query: params, body, signal: opts.signal }, opts);
    return page.items;
  }

  async queryDatapoints(items: readonly MultiQueryItem[], query: MultiQueryOptions = {}, opts: ReadOptions = {}): Promise<MultiQueryPage> {
    checkMultiItems(items);
    const params: QueryParams = {
      alignToCache: query.alignToCache,
      continuationToken: query.continuationToken,
      federationSource: query.federationSource,
      debug: query.debug,
    };
    const spec: CallSpec = { method: "POST", path: "/query/data", query: params, body: items.map(multiItemBody), signal: opts.signal };
    const request = "POST /query/data";
    const answer = await this.read(spec, opts);
    const used = new Set<number>();
    const kindOf = (id: string, i: number): "raw" | "aggregates" => {
      // The answer's items follow the request's, as far as is known; match by id when they do not line up.
      let at = items[i]?.id === id && !used.has(i) ? i : items.findIndex((it, j) => it.id === id && !used.has(j));
      if (at < 0) at = i;
      used.add(at);
      return (items[at]?.aggregateFunctions?.length ?? 0) > 0 ? "aggregates" : "raw";
    };
    if (answer.kind === "protobuf") {
      const out: MultiQueryResultItem[] = answer.dto.data.map((item, i) =>
        kindOf(item.id, i) === "aggregates"
          ? { kind: "aggregates", ...compactAggregatesItem(item) }
          : { kind: "raw", ...compactDatapointsItem(item) },
      );
      return withToken({ items: out }, answer.dto.continuationToken || undefined);
    }
    const out: MultiQueryResultItem[] = itemsOf(answer.body, request).map((raw, i) => {
      const id = isObject(raw) ? (str(raw.id) ?? "") : "";
      return kindOf(id, i) === "aggregates"
        ? { kind: "aggregates", ...jsonAggregatesItem(raw, request) }
        : { kind: "raw", ...jsonDatapointsItem(raw, request) };
    });
    return withToken({ items: out, ...federatedOf(answer.body) }, tokenOf(answer.body));
  }

  async getAggregates(id: string, query: AggregatesQuery, opts: ReadOptions = {}): Promise<AggregatesPage> {
    const path = `/${checkId(id)}/data/aggregates`;
    const answer = await this.read({ method: "GET", path, query: aggregatesQueryParams(query), signal: opts.signal }, opts);
    if (answer.kind === "protobuf") {
      return withToken({ items: answer.dto.data.map(compactAggregatesItem) }, answer.dto.continuationToken || undefined);
    }
    const items = itemsOf(answer.body, `GET ${path}`).map((raw) => jsonAggregatesItem(raw, `GET ${path}`));
    return withToken({ items, ...federatedOf(answer.body) }, tokenOf(answer.body));
  }

  async writeDatapoints(id: string, datapoints: readonly DatapointWrite[], opts: WriteOptions & CallOptions = {}): Promise<WriteResult> {
    const path = `/${checkId(id)}/data`;
    const body = { datapoints: writeBody(datapoints, "datapoints") };
    return this.write({ method: "POST", path, query: { async: opts.async }, body, signal: opts.signal });
  }

  async writeMultipleDatapoints(
    items: readonly { id: string; datapoints: readonly DatapointWrite[] }[],
    opts: WriteOptions & CallOptions = {},
  ): Promise<WriteResult> {
    const body = { items: checkWriteItems(items) };
    return this.write({ method: "POST", path: "/data", query: { async: opts.async }, body, signal: opts.signal });
  }

  async deleteDatapoints(
    id: string,
    range: { startTime: DatapointsQuery["startTime"]; endTime: DatapointsQuery["endTime"] },
    opts: CallOptions = {},
  ): Promise<OmniaMessage> {
    const path = `/${checkId(id)}/data`;
    if (range?.startTime === undefined) throw new OmniaValidationError("startTime", "required to delete a range");
    if (range.endTime === undefined) throw new OmniaValidationError("endTime", "required to delete a range");
    const query = datapointsQueryParams({ startTime: range.startTime, endTime: range.endTime });
    return this.message({ method: "DELETE", path, query, signal: opts.signal });
  }

  // ---- streaming ----

  async listStreamingSubscriptions(opts: CallOptions = {}): Promise<StreamingSubscription[]> {
    const body = await this.json({ method: "GET", path: "/streaming/subscriptions", signal: opts.signal });
    return itemsOf(body, "GET /streaming/subscriptions") as StreamingSubscription[];
  }

  async createStreamingSubscriptions(ids: readonly string[], opts: CallOptions = {}): Promise<OmniaMessage> {
    const body = checkIds(ids, "ids").map((id) => ({ id }));
    return this.message({ method: "POST", path: "/streaming/subscriptions", body, signal: opts.signal });
  }

  async deleteStreamingSubscription(id: string, opts: CallOptions = {}): Promise<OmniaMessage> {
    return this.message({ method: "DELETE", path: `/streaming/subscriptions/${checkId(id)}`, signal: opts.signal });
  }

  async setStreamingDestination(connectionString: string, opts: CallOptions = {}): Promise<OmniaMessage> {
    checkConnectionString(connectionString);
    return this.message({ method: "POST", path: "/streaming/destination", body: { connectionString }, signal: opts.signal });
  }

  // ---- paging: the continuationToken loop done for the caller ----

  /** Pages of `GET /` (or `/search` with `search: true` or a `query`), following continuationToken to the end. */
  timeseriesPages(query: TimeseriesSearch & { search?: boolean }, opts: CallOptions = {}): AsyncGenerator<TimeseriesPage> {
    const search = query.search === true || query.query !== undefined || query.description !== undefined || query.unit !== undefined;
    return pages(query.continuationToken, (continuationToken) => {
      const q = { ...query, continuationToken };
      return search ? this.searchTimeseries(q, opts) : this.listTimeseries(q, opts);
    });
  }

  datapointPages(id: string, query: DatapointsQuery = {}, opts: ReadOptions = {}): AsyncGenerator<DatapointsPage> {
    return pages(query.continuationToken, (continuationToken) => this.getDatapoints(id, { ...query, continuationToken }, opts));
  }

  aggregatePages(id: string, query: AggregatesQuery, opts: ReadOptions = {}): AsyncGenerator<AggregatesPage> {
    return pages(query.continuationToken, (continuationToken) => this.getAggregates(id, { ...query, continuationToken }, opts));
  }

  /**
   * Pages of a multi-query. The overall `continuationToken` is sent back as the query parameter with the same items;
   * when there is none but JSON items carry their own token (unverified which of the two Omnia uses for multi-queries),
   * the next request asks again for just those items, each with its token.
   */
  async *multiQueryPages(
    items: readonly MultiQueryItem[],
    query: MultiQueryOptions = {},
    opts: ReadOptions = {},
  ): AsyncGenerator<MultiQueryPage> {
    let current: readonly MultiQueryItem[] = items;
    let token = query.continuationToken;
    const seen = new Set<string>();
    for (;;) {
      const page = await this.queryDatapoints(current, { ...query, continuationToken: token }, opts);
      yield page;
      if (page.continuationToken !== undefined) {
        if (seen.has(page.continuationToken)) throw new OmniaProtocolError("POST /query/data: the same continuationToken twice");
        seen.add(page.continuationToken);
        token = page.continuationToken;
        continue;
      }
      const more: MultiQueryItem[] = [];
      page.items.forEach((item, i) => {
        if (item.continuationToken === undefined) return;
        const key = `${item.id}\u0000${item.continuationToken}`;
        if (seen.has(key)) throw new OmniaProtocolError(`POST /query/data: the same continuationToken twice for ${item.id}`);
        seen.add(key);
        const asked = current[i]?.id === item.id ? current[i] : current.find((c) => c.id === item.id);
        if (asked) more.push({ ...asked, continuationToken: item.continuationToken });
      });
      if (more.length === 0) return;
      current = more;
      token = undefined;
    }
  }

  /** Every time series matching, at most `maxItems` (else OmniaCollectLimitError). */
  async collectTimeseries(query: TimeseriesSearch & { search?: boolean }, opts: CollectOptions = {}): Promise<Timeseries[]> {
    return collect(this.timeseriesPages(query, opts), (p) => p.items, opts);
  }

  /** Every datapoint of the window, at most `maxItems` points (else OmniaCollectLimitError). */
  async collectDatapoints(id: string, query: DatapointsQuery = {}, opts: CollectOptions & ReadOptions = {}): Promise<Datapoint[]> {
    return collect(this.datapointPages(id, query, opts), (p) => p.items.flatMap((i) => i.datapoints), opts);
  }

  // ---- the wire ----

  private async timeseriesPage(path: string, query: QueryParams, opts: CallOptions): Promise<TimeseriesPage> {
    const body = await this.json({ method: "GET", path, query, signal: opts.signal });
    const request = `GET ${path || "/"}`;
    const page: TimeseriesPage = { items: itemsOf(body, request).map((t) => asTimeseries(t, request)) };
    if (isObject(body) && typeof body.count === "number") page.count = body.count;
    return withToken(page, tokenOf(body));
  }

  /** A metadata answer holding one series: `{data: {items: [x]}}`, or the series itself. */
  private async singleTimeseries(spec: CallSpec): Promise<Timeseries> {
    const request = `${spec.method} ${spec.path || "/"}`;
    const body = await this.json(spec);
    if (isObject(body) && typeof body.id === "string") return body as unknown as Timeseries;
    const items = itemsOf(body, request);
    if (items.length === 0) throw new OmniaProtocolError(`${request}: answer holds no time series`);
    return asTimeseries(items[0], request);
  }

  private async datapointsPage(spec: CallSpec, opts: ReadOptions): Promise<DatapointsPage> {
    const answer = await this.read(spec, opts);
    if (answer.kind === "protobuf") {
      return withToken({ items: answer.dto.data.map(compactDatapointsItem) }, answer.dto.continuationToken || undefined);
    }
    const request = `${spec.method} ${spec.path}`;
    const items = itemsOf(answer.body, request).map((raw) => jsonDatapointsItem(raw, request));
    return withToken({ items, ...federatedOf(answer.body) }, tokenOf(answer.body));
  }

  private async read(spec: CallSpec, opts: ReadOptions): Promise<Decoded> {
    const format = opts.format ?? "json";
    if (format !== "json" && format !== "protobuf")
      throw new OmniaValidationError("format", `must be json or protobuf, got ${String(format)}`);
    const res = await this.call({ ...spec, protobuf: format === "protobuf" });
    // Asked for protobuf but answered in JSON (a gateway that ignores Accept): read what came.
    if (res.bytes !== undefined) return { kind: "protobuf", status: res.status, dto: decodeCompactDatapoints(res.bytes) };
    return { kind: "json", status: res.status, body: this.parseJson(res, `${spec.method} ${spec.path}`) };
  }

  private async json(spec: CallSpec): Promise<unknown> {
    const res = await this.call(spec);
    return this.parseJson(res, `${spec.method} ${spec.path || "/"}`);
  }

  private async message(spec: CallSpec): Promise<OmniaMessage> {
    const body = await this.json(spec);
    return messageOf(body);
  }

  private async write(spec: CallSpec): Promise<WriteResult> {
    const res = await this.call(spec);
    const body = res.text && res.text.trim() !== "" ? this.parseJson(res, `${spec.method} ${spec.path}`) : undefined;
    return { ...messageOf(body), httpStatus: res.status, accepted: res.status === 202 };
  }

  private parseJson(res: HttpResponse, request: string): unknown {
    const text = res.text ?? "";
    if (text.trim() === "") return undefined;
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new OmniaProtocolError(`${request}: answer is not JSON (${res.contentType || "no content type"})`, {
        status: res.status,
        request,
        cause: err,
      });
    }
  }

  private url(path: string, query: QueryParams | undefined): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined || v === null) continue;
      if (Array.isArray(v)) for (const x of v) qs.append(k, String(x));
      else qs.append(k, String(v));
    }
    const s = qs.toString();
    return `${this.environment.baseUrl}${path}${s ? `?${s}` : ""}`;
  }

  /** One request with retries on the retry set (Retry-After honoured) and one fresh token after a 401. */
  private async call(spec: CallSpec): Promise<HttpResponse> {
    const request = `${spec.method} ${spec.path || "/"}`;
    const url = this.url(spec.path, spec.query);
    const body = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    return retry(
      async () => {
        let res = await this.exchange(spec, url, body, request);
        if (res.status === 401) {
          this.tokens.invalidate();
          res = await this.exchange(spec, url, body, request);
        }
        if (res.status >= 200 && res.status < 300) return res;
        throw this.errorFor(res, request, spec);
      },
      {
        maxAttempts: this.maxAttempts,
        policy: this.backoff,
        ...(spec.signal ? { signal: spec.signal } : {}),
        onRetry: (err, attempt, delayMs) => this.options.onRetry?.({ request, attempt, delayMs, error: err as Error }),
      },
    );
  }

  private async exchange(spec: CallSpec, url: string, body: string | undefined, request: string): Promise<HttpResponse> {
    const token = await this.tokens.get(spec.signal);
    return httpExchange({
      method: spec.method,
      url,
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: spec.protobuf ? this.protobufType : "application/json",
        "user-agent": this.options.userAgent ?? USER_AGENT,
      },
      ...(body === undefined ? {} : { body }),
      timeoutMs: this.timeoutMs,
      maxResponseBytes: this.maxResponseBytes,
      ...(spec.signal ? { signal: spec.signal } : {}),
      ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
      request,
    });
  }

  private errorFor(res: HttpResponse, request: string, spec: CallSpec): OmniaError {
    const { message: platformMessage, traceId } = errorBody(res);
    const details: OmniaErrorDetails = { status: res.status, request, platformMessage, ...(traceId ? { traceId } : {}) };
    const text = `${request}: HTTP ${res.status}: ${platformMessage}${traceId ? ` (traceId ${traceId})` : ""}`;
    const retryAfter = readRetryAfter(res.headers.get("retry-after"));
    switch (res.status) {
      case 400:
        return new OmniaBadRequestError(text, details);
      case 401:
        return new OmniaUnauthorizedError(text, details);
      case 403:
        return new OmniaForbiddenError(text, details);
      case 404:
        return new OmniaNotFoundError(text, details);
      case 409:
        return new OmniaConflictError(text, { ...details, retryable: !spec.create && (this.options.retryConflict ?? true) });
      case 429:
        return new OmniaThrottledError(text, retryAfter, details);
    }
    if (RETRY_STATUSES.has(res.status)) return new OmniaServerError(text, { ...details, ...(retryAfter ? { retry: retryAfter } : {}) });
    if (res.status >= 500) return new OmniaServerError(text, { ...details, retryable: false });
    if (res.status >= 300 && res.status < 400) return new OmniaProtocolError(`${text} (redirects are not followed)`, details);
    return new OmniaBadRequestError(text, details);
  }
}

/** `{statusCode, message, traceId}`; a body that is not JSON is quoted (an APIM 502 comes empty or in HTML). */
function errorBody(res: HttpResponse): { message: string; traceId?: string } {
  const text = res.text ?? (res.bytes ? `<${res.bytes.length} bytes of ${res.contentType}>` : "");
  try {
    const body = JSON.parse(text) as unknown;
    if (isObject(body) && typeof body.message === "string") {
      const traceId = str(body.traceId) ?? str(body.activityId);
      return traceId ? { message: body.message, traceId } : { message: body.message };
    }
  } catch {
    // not JSON: quoted below
  }
  return { message: `Could not load response, raw response: '${text.slice(0, 500)}'` };
}

function messageOf(body: unknown): OmniaMessage {
  if (!isObject(body)) return {};
  const out: OmniaMessage = {};
  if (typeof body.statusCode === "number") out.statusCode = body.statusCode;
  if (typeof body.message === "string") out.message = body.message;
  if (typeof body.traceId === "string") out.traceId = body.traceId;
  return out;
}

/** Follows `continuationToken` until the last page; a token seen twice is a loop and an error. */
async function* pages<P extends { continuationToken?: string }>(
  first: string | undefined,
  fetchPage: (token: string | undefined) => Promise<P>,
): AsyncGenerator<P> {
  const seen = new Set<string>();
  let token = first;
  for (;;) {
    const page = await fetchPage(token);
    yield page;
    token = page.continuationToken;
    if (token === undefined) return;
    if (seen.has(token)) throw new OmniaProtocolError("the same continuationToken twice: the pages would never end");
    seen.add(token);
  }
}

/** Everything of every page, bounded: past `maxItems` or `maxPages`, OmniaCollectLimitError. */
export async function collect<P, T>(
  iter: AsyncIterable<P>,
  itemsOfPage: (page: P) => readonly T[],
  opts: CollectOptions = {},
): Promise<T[]> {
  const maxItems = opts.maxItems ?? DEFAULT_COLLECT_MAX_ITEMS;
  const maxPages = opts.maxPages ?? DEFAULT_COLLECT_MAX_PAGES;
  if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > MAX_COLLECT_ITEMS)
    throw new OmniaValidationError("maxItems", `must be an integer in 1..${MAX_COLLECT_ITEMS}, got ${maxItems}`);
  if (!Number.isInteger(maxPages) || maxPages < 1)
    throw new OmniaValidationError("maxPages", `must be a positive integer, got ${maxPages}`);
  const out: T[] = [];
  let n = 0;
  for await (const page of iter) {
    if (++n > maxPages) throw new OmniaCollectLimitError("pages", maxPages);
    for (const item of itemsOfPage(page)) {
      if (out.length >= maxItems) throw new OmniaCollectLimitError("items", maxItems);
      out.push(item);
    }
  }
  return out;
}
