/** The platform's own words: shapes of the Omnia Timeseries API v1.7 as the client hands them out. */

/** Where Omnia reads from: the live historian (`IMS`), Omnia's own database (`TSDB`) or the lake (`DataLake`). */
export type FederationSource = "IMS" | "TSDB" | "DataLake";
export const FEDERATION_SOURCES: readonly FederationSource[] = ["IMS", "TSDB", "DataLake"];

/** Every aggregate function the API is known to offer (the wiki lists five, the python client adds sum, first, last). */
export type AggregateFunction = "avg" | "min" | "max" | "sum" | "stddev" | "count" | "first" | "last";
export const AGGREGATE_FUNCTIONS: readonly AggregateFunction[] = ["avg", "min", "max", "sum", "stddev", "count", "first", "last"];

/** How a read asks for its answer: JSON, or protobuf `CompactDatapointsDto` (times in exact int64 nanoseconds). */
export type ReadFormat = "json" | "protobuf";

/** A time the client sends: an RFC 3339 string (or a date-only `YYYY-MM-DD`), a Date, or nanoseconds since the epoch. */
export type TimeInput = string | Date | bigint;

/**
 * One datapoint, the same whichever format carried it. `timeNs` is exact (JSON's 7 fractional digits are 100 ns; the
 * protobuf's int64); `time` is RFC 3339 with 7 fractional digits (9 when the nanoseconds are not a multiple of 100).
 */
export interface Datapoint {
  time: string;
  timeNs: bigint;
  value: number;
  status: number;
}

/** One bucket of an aggregate read, stamped with the bucket's start; only the functions asked for are present. */
export interface AggregatePoint {
  time: string;
  timeNs: bigint;
  avg?: number;
  min?: number;
  max?: number;
  sum?: number;
  stddev?: number;
  count?: number;
  first?: number;
  last?: number;
  /** Some answers carry a value and status in aggregate points too. */
  value?: number;
  status?: number;
}

export interface DatapointsItem {
  id: string;
  datapoints: Datapoint[];
  /** By-name reads echo these. */
  name?: string;
  facility?: string;
  terminal?: string;
  /** Points the query matched (protobuf always, JSON when the API says); may exceed `datapoints.length`. */
  totalCount?: bigint;
  /** JSON multi-queries only: the per-item token (protobuf has none; page a protobuf multi-query by the overall token). */
  continuationToken?: string;
}

export interface AggregatesItem {
  id: string;
  aggregates: AggregatePoint[];
  totalCount?: bigint;
  continuationToken?: string;
}

/** A page of a datapoints read. `continuationToken` undefined ⇒ last page. */
export interface DatapointsPage {
  items: DatapointsItem[];
  continuationToken?: string;
  /** Whether the answer came from a federated source. */
  federated?: boolean;
}

export interface AggregatesPage {
  items: AggregatesItem[];
  continuationToken?: string;
  federated?: boolean;
}

/** A multi-query answer: each item raw or aggregated, as its request item asked. */
export type MultiQueryResultItem = ({ kind: "raw" } & DatapointsItem) | ({ kind: "aggregates" } & AggregatesItem);

export interface MultiQueryPage {
  items: MultiQueryResultItem[];
  continuationToken?: string;
  federated?: boolean;
}

/** Common query of raw datapoint reads (`GET /{id}/data`, `GET /query/data`). */
export interface DatapointsQuery {
  startTime?: TimeInput;
  endTime?: TimeInput;
  /** Status codes to keep (e.g. `[192]`, good only). */
  status?: readonly number[];
  includeOutsidePoints?: boolean;
  /** 1..100 000; the API's default is 1000. */
  limit?: number;
  continuationToken?: string;
  federationSource?: FederationSource;
  debug?: boolean;
}

export interface DatapointsByNameQuery extends DatapointsQuery {
  name: string;
  facility: string;
  terminal?: string;
}

export interface AggregatesQuery {
  /** At least one. */
  aggregateFunctions: readonly AggregateFunction[];
  startTime?: TimeInput;
  endTime?: TimeInput;
  status?: readonly number[];
  /** `<n><unit>` (`1s`, `15m`, `1h`, `20d`); none ⇒ one aggregate over the whole window. */
  processingInterval?: string;
  fill?: string;
  limit?: number;
  alignToCache?: boolean;
  continuationToken?: string;
  federationSource?: FederationSource;
  debug?: boolean;
}

/** `GET /{id}/data/first|latest`. */
export interface FirstLatestQuery {
  afterTime?: TimeInput;
  beforeTime?: TimeInput;
  status?: readonly number[];
  federationSource?: FederationSource;
  debug?: boolean;
}

/** One item of `POST /query/data` (≤ 100 per request). With `aggregateFunctions` the item returns aggregates. */
export interface MultiQueryItem {
  id: string;
  startTime?: TimeInput;
  endTime?: TimeInput;
  limit?: number;
  statusFilter?: readonly number[];
  includeOutsidePoints?: boolean;
  fill?: string | null;
  aggregateFunctions?: readonly AggregateFunction[];
  processingInterval?: string;
  continuationToken?: string;
}

export interface MultiQueryOptions {
  alignToCache?: boolean;
  continuationToken?: string;
  federationSource?: FederationSource;
  debug?: boolean;
}

/** One item of `POST /query/data/first|latest`. */
export interface FirstLatestMultiItem {
  id: string;
  startTime?: TimeInput;
  endTime?: TimeInput;
}

export interface DatapointWrite {
  time: TimeInput;
  value: number;
  status: number;
}

export interface WriteOptions {
  /** `true`: Omnia only checks permission and answers 202; the data is stored later. */
  async?: boolean;
}

/** The answer to a write or delete: the API's message, and whether it was only accepted (async, 202). */
export interface OmniaMessage {
  statusCode?: number;
  message?: string;
  traceId?: string;
}

export interface WriteResult extends OmniaMessage {
  /** HTTP status of the answer (200/201 committed, 202 accepted only). */
  httpStatus: number;
  accepted: boolean;
}

/** A time series' metadata. */
export interface Timeseries {
  id: string;
  name: string;
  facility: string;
  description?: string | null;
  step?: boolean | null;
  unit?: string | null;
  standardUnit?: string | null;
  assetId?: string | null;
  externalId?: string | null;
  source?: string | null;
  createdTime?: string;
  changedTime?: string;
  metadata?: Record<string, string> | null;
}

/** What creating (POST, getoradd) or replacing (PUT) a time series sends. `name` and `facility` are required. */
export interface TimeseriesCreate {
  name: string;
  facility: string;
  description?: string;
  step?: boolean;
  unit?: string;
  assetId?: string;
  externalId?: string;
  /** At most 17 custom keys. */
  metadata?: Record<string, string>;
}

/** PATCH: fields left out are unchanged. */
export type TimeseriesPatch = Partial<TimeseriesCreate>;

export interface TimeseriesPage {
  items: Timeseries[];
  count?: number;
  continuationToken?: string;
}

/** `GET /` (list). Values may carry `*` wildcards. */
export interface TimeseriesQuery {
  name?: string;
  externalId?: string;
  source?: string;
  assetId?: string;
  facility?: string;
  /** 1..1000 per page (the archived SDK's bound). */
  limit?: number;
  continuationToken?: string;
}

/** `GET /search` or `GET /search/{query}`. Values may carry `*` wildcards anywhere. */
export interface TimeseriesSearch extends TimeseriesQuery {
  /** Put in the path (`/search/ASGB.17IIC1030*`). */
  query?: string;
  description?: string;
  unit?: string;
}

export interface TimeseriesHistoryEntry {
  changedBy?: string;
  changedTime?: string;
  changes?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface FacilityCount {
  facility: string;
  count: number;
}

export interface SourceCount {
  source: string;
  count: number;
}

export interface StreamingSubscription {
  id: string;
  customerId?: string;
  [key: string]: unknown;
}

/** Every call takes a signal; aborting ends the call (and its retries) with the signal's reason. */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface ReadOptions extends CallOptions {
  /** Default `json`. */
  format?: ReadFormat;
}

/** Bounds of the collect-all helpers, so that a forgotten window cannot fill memory. */
export interface CollectOptions extends CallOptions {
  /** Stop (with OmniaCollectLimitError) past this many items/points. Default 1 000 000, at most 10 000 000. */
  maxItems?: number;
  /** Stop past this many pages. Default 10 000. */
  maxPages?: number;
}
