import type { TokenCredential } from "@azure/identity";
import type { BackoffPolicy } from "@meridian/retry";
import type { Dispatcher } from "undici";
import type { CredentialOptions, OmniaAuthConfig } from "./auth.js";
import type { OmniaEnvironmentInput } from "./environments.js";
import type {
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

export interface OmniaClientOptions extends OmniaEnvironmentInput {
  /** How to get a token; or pass `credential` (takes precedence). */
  auth?: OmniaAuthConfig;
  credential?: TokenCredential;
  onDeviceCode?: CredentialOptions["onDeviceCode"];
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

function notImplemented(what: string): never {
  throw new Error(`OmniaClient.${what}: not implemented yet`);
}

/** The Omnia Timeseries API v1.7: metadata, datapoints (JSON and protobuf), writes and streaming subscriptions. */
export class OmniaClient {
  constructor(readonly options: OmniaClientOptions) {}

  // ---- metadata ----
  listTimeseries(_query: TimeseriesQuery = {}, _opts: CallOptions = {}): Promise<TimeseriesPage> {
    return notImplemented("listTimeseries");
  }
  searchTimeseries(_query: TimeseriesSearch, _opts: CallOptions = {}): Promise<TimeseriesPage> {
    return notImplemented("searchTimeseries");
  }
  getTimeseries(_id: string, _opts: CallOptions = {}): Promise<Timeseries> {
    return notImplemented("getTimeseries");
  }
  createTimeseries(_item: TimeseriesCreate, _opts: CallOptions = {}): Promise<Timeseries> {
    return notImplemented("createTimeseries");
  }
  patchTimeseries(_id: string, _patch: TimeseriesPatch, _opts: CallOptions = {}): Promise<Timeseries> {
    return notImplemented("patchTimeseries");
  }
  putTimeseries(_id: string, _item: TimeseriesCreate, _opts: CallOptions = {}): Promise<Timeseries> {
    return notImplemented("putTimeseries");
  }
  deleteTimeseries(_id: string, _opts: CallOptions = {}): Promise<OmniaMessage> {
    return notImplemented("deleteTimeseries");
  }
  getOrAddTimeseries(_items: readonly TimeseriesCreate[], _opts: CallOptions = {}): Promise<Timeseries[]> {
    return notImplemented("getOrAddTimeseries");
  }
  getFacilities(_filter: { source?: string } = {}, _opts: CallOptions = {}): Promise<FacilityCount[]> {
    return notImplemented("getFacilities");
  }
  getSources(_filter: { facility?: string } = {}, _opts: CallOptions = {}): Promise<SourceCount[]> {
    return notImplemented("getSources");
  }
  getHistory(_id: string, _opts: CallOptions = {}): Promise<TimeseriesHistoryEntry[]> {
    return notImplemented("getHistory");
  }

  // ---- datapoints ----
  getDatapoints(_id: string, _query: DatapointsQuery = {}, _opts: ReadOptions = {}): Promise<DatapointsPage> {
    return notImplemented("getDatapoints");
  }
  getDatapointsByName(_query: DatapointsByNameQuery, _opts: ReadOptions = {}): Promise<DatapointsPage> {
    return notImplemented("getDatapointsByName");
  }
  getFirstDatapoint(_id: string, _query: FirstLatestQuery = {}, _opts: ReadOptions = {}): Promise<Datapoint | undefined> {
    return notImplemented("getFirstDatapoint");
  }
  getLatestDatapoint(_id: string, _query: FirstLatestQuery = {}, _opts: ReadOptions = {}): Promise<Datapoint | undefined> {
    return notImplemented("getLatestDatapoint");
  }
  getFirstDatapoints(
    _items: readonly FirstLatestMultiItem[],
    _query: { federationSource?: FirstLatestQuery["federationSource"] } = {},
    _opts: ReadOptions = {},
  ): Promise<DatapointsItem[]> {
    return notImplemented("getFirstDatapoints");
  }
  getLatestDatapoints(
    _items: readonly FirstLatestMultiItem[],
    _query: { federationSource?: FirstLatestQuery["federationSource"]; debug?: boolean } = {},
    _opts: ReadOptions = {},
  ): Promise<DatapointsItem[]> {
    return notImplemented("getLatestDatapoints");
  }
  queryDatapoints(_items: readonly MultiQueryItem[], _query: MultiQueryOptions = {}, _opts: ReadOptions = {}): Promise<MultiQueryPage> {
    return notImplemented("queryDatapoints");
  }
  getAggregates(_id: string, _query: AggregatesQuery, _opts: ReadOptions = {}): Promise<AggregatesPage> {
    return notImplemented("getAggregates");
  }
  writeDatapoints(_id: string, _datapoints: readonly DatapointWrite[], _opts: WriteOptions & CallOptions = {}): Promise<WriteResult> {
    return notImplemented("writeDatapoints");
  }
  writeMultipleDatapoints(
    _items: readonly { id: string; datapoints: readonly DatapointWrite[] }[],
    _opts: WriteOptions & CallOptions = {},
  ): Promise<WriteResult> {
    return notImplemented("writeMultipleDatapoints");
  }
  deleteDatapoints(
    _id: string,
    _range: { startTime: DatapointsQuery["startTime"]; endTime: DatapointsQuery["endTime"] },
    _opts: CallOptions = {},
  ): Promise<OmniaMessage> {
    return notImplemented("deleteDatapoints");
  }

  // ---- streaming ----
  listStreamingSubscriptions(_opts: CallOptions = {}): Promise<StreamingSubscription[]> {
    return notImplemented("listStreamingSubscriptions");
  }
  createStreamingSubscriptions(_ids: readonly string[], _opts: CallOptions = {}): Promise<OmniaMessage> {
    return notImplemented("createStreamingSubscriptions");
  }
  deleteStreamingSubscription(_id: string, _opts: CallOptions = {}): Promise<OmniaMessage> {
    return notImplemented("deleteStreamingSubscription");
  }
  setStreamingDestination(_connectionString: string, _opts: CallOptions = {}): Promise<OmniaMessage> {
    return notImplemented("setStreamingDestination");
  }

  // ---- paging: the continuationToken loop done for the caller ----
  timeseriesPages(_query: TimeseriesSearch & { search?: boolean }, _opts: CallOptions = {}): AsyncGenerator<TimeseriesPage> {
    return notImplemented("timeseriesPages");
  }
  datapointPages(_id: string, _query: DatapointsQuery = {}, _opts: ReadOptions = {}): AsyncGenerator<DatapointsPage> {
    return notImplemented("datapointPages");
  }
  aggregatePages(_id: string, _query: AggregatesQuery, _opts: ReadOptions = {}): AsyncGenerator<AggregatesPage> {
    return notImplemented("aggregatePages");
  }
  multiQueryPages(
    _items: readonly MultiQueryItem[],
    _query: MultiQueryOptions = {},
    _opts: ReadOptions = {},
  ): AsyncGenerator<MultiQueryPage> {
    return notImplemented("multiQueryPages");
  }
  /** Every time series matching, at most `maxItems` (else OmniaCollectLimitError). */
  collectTimeseries(_query: TimeseriesSearch & { search?: boolean }, _opts: CollectOptions = {}): Promise<Timeseries[]> {
    return notImplemented("collectTimeseries");
  }
  /** Every datapoint of the window, at most `maxItems` points (else OmniaCollectLimitError). */
  collectDatapoints(_id: string, _query: DatapointsQuery = {}, _opts: CollectOptions & ReadOptions = {}): Promise<Datapoint[]> {
    return notImplemented("collectDatapoints");
  }
}
