import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  AggregateRowSchema,
  CreateReaderRequestSchema,
  CreateTimeseriesRequestSchema,
  DeleteDataRequestSchema,
  type GetDataRequest,
  type OmniaReaderService,
  type ReaderSpec,
  SeriesDataSchema,
  WriteDataRequestSchema,
} from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import type { ReaderManager } from "../pipeline/manager.js";
import type { AuthPrompt, OmniaApi, TimeseriesCreate } from "../pipeline/omnia-api.js";
import type { AggregateFunction } from "../platform/index.js";
import { datapointToProto, readerToProto, timeOf, timeseriesFields, timeseriesToProto } from "./convert.js";
import {
  AGGREGATE_FUNCTIONS,
  MAX_ITEMS,
  MAX_NAME_LENGTH,
  MAX_POINTS_PER_WRITE,
  MAX_SELECTORS,
  READER_ID,
  Violations,
} from "./validation.js";

export interface OmniaReaderDeps {
  readers: ReaderManager;
  api: OmniaApi;
  /** The pending device-code sign-in, when OMNIA_AUTH_MODE=device-code waits for a person. */
  authPrompt: () => AuthPrompt | undefined;
}

export function validateReaderSpec(spec: ReaderSpec | undefined, path = "reader."): void {
  const v = new Violations();
  if (!spec) v.add("reader", "is required");
  else {
    if (!READER_ID.test(spec.id)) v.add(`${path}id`, "must be 1-64 of [A-Za-z0-9_-]");
    if (spec.series.length === 0) v.add(`${path}series`, "name at least one series");
    if (spec.series.length > MAX_SELECTORS) v.add(`${path}series`, `at most ${MAX_SELECTORS} selectors`);
    spec.series.forEach((s, i) => {
      const at = `${path}series[${i}]`;
      if (s.selector.case === "id") {
        if (s.selector.value === "") v.add(`${at}.id`, "must not be empty");
        else v.id(`${at}.id`, s.selector.value);
      } else if (s.selector.case === "query") {
        const q = s.selector.value;
        if (q.name === "") v.add(`${at}.query.name`, "is required (use * for every name)");
        if (q.name.length > MAX_NAME_LENGTH) v.add(`${at}.query.name`, `longer than ${MAX_NAME_LENGTH} characters`);
        if (q.facility.length > MAX_NAME_LENGTH) v.add(`${at}.query.facility`, `longer than ${MAX_NAME_LENGTH} characters`);
      } else v.add(at, "set id or query");
    });
    v.range(`${path}interval_seconds`, spec.intervalSeconds, 1, 86_400);
    v.range(`${path}lag_seconds`, spec.lagSeconds, 0, 86_400);
    v.range(`${path}page_size`, spec.pageSize, 1, 100_000);
    v.time(`${path}start_time`, spec.startTime);
  }
  v.throwIfAny();
}

function validateReaderId(id: string): void {
  const v = new Violations();
  if (!READER_ID.test(id)) v.add("id", "must be 1-64 of [A-Za-z0-9_-]");
  v.throwIfAny();
}

function validateGetData(req: GetDataRequest, v: Violations, path = ""): void {
  if (req.id === "") v.add(`${path}id`, "is required");
  else v.id(`${path}id`, req.id);
  v.limit(`${path}limit`, req.limit);
  v.window(path, req.startTime, req.endTime);
}

/** meridian.omnia.v1.OmniaReaderService: readers, and Omnia's verbs passed through with the service's credential. */
export function omniaReaderService({ readers, api, authPrompt }: OmniaReaderDeps): ServiceImpl<typeof OmniaReaderService> {
  return {
    async createReader(req) {
      validateReaderSpec(req.reader);
      const v = new Violations();
      v.required(CreateReaderRequestSchema, req);
      v.throwIfAny();
      return { reader: readerToProto(await readers.put(req.reader!)) };
    },
    async listReaders() {
      return { readers: (await readers.list()).map(readerToProto) };
    },
    async getReader(req) {
      validateReaderId(req.id);
      return { reader: readerToProto(await readers.get(req.id)) };
    },
    async deleteReader(req) {
      validateReaderId(req.id);
      await readers.delete(req.id);
      return {};
    },
    async pauseReader(req) {
      validateReaderId(req.id);
      return { reader: readerToProto(await readers.pause(req.id, req.paused)) };
    },
    async getAuthPrompt() {
      const p = authPrompt();
      if (!p) return {};
      // Entra ID's device codes last 15 minutes.
      return {
        userCode: p.userCode,
        verificationUri: p.verificationUri,
        message: p.message,
        expiresTime: timestampFromDate(new Date(p.since.getTime() + 15 * 60_000)),
      };
    },

    async searchTimeseries(req, ctx) {
      const v = new Violations();
      v.limit("limit", req.limit);
      v.throwIfAny();
      const page = await api.searchTimeseries(
        {
          ...(req.name ? { name: req.name } : {}),
          ...(req.facility ? { facility: req.facility } : {}),
          ...(req.source ? { source: req.source } : {}),
          ...(req.description ? { description: req.description } : {}),
          ...(req.unit ? { unit: req.unit } : {}),
          ...(req.assetId ? { assetId: req.assetId } : {}),
          ...(req.externalId ? { externalId: req.externalId } : {}),
          ...(req.limit !== undefined ? { limit: req.limit } : {}),
          ...(req.continuationToken ? { continuationToken: req.continuationToken } : {}),
        },
        { signal: ctx.signal },
      );
      return { items: page.items.map(timeseriesToProto), continuationToken: page.continuationToken ?? "" };
    },
    async getTimeseries(req, ctx) {
      const v = new Violations();
      if (req.id === "") v.add("id", "is required");
      else v.id("id", req.id);
      v.throwIfAny();
      return { timeseries: timeseriesToProto(await api.getTimeseries(req.id, { signal: ctx.signal })) };
    },
    async createTimeseries(req, ctx) {
      const v = new Violations();
      v.required(CreateTimeseriesRequestSchema, req);
      if (!req.timeseries?.name) v.add("timeseries.name", "is required");
      if (!req.timeseries?.facility) v.add("timeseries.facility", "is required");
      v.throwIfAny();
      const item = timeseriesFields(req.timeseries) as TimeseriesCreate;
      const created = req.getOrAdd
        ? (await api.getOrAddTimeseries([item], { signal: ctx.signal }))[0]
        : await api.createTimeseries(item, { signal: ctx.signal });
      return created ? { timeseries: timeseriesToProto(created) } : {};
    },
    async updateTimeseries(req, ctx) {
      const v = new Violations();
      if (req.id === "") v.add("id", "is required");
      else v.id("id", req.id);
      v.throwIfAny();
      return { timeseries: timeseriesToProto(await api.patchTimeseries(req.id, timeseriesFields(req.timeseries), { signal: ctx.signal })) };
    },
    async deleteTimeseries(req, ctx) {
      const v = new Violations();
      if (req.id === "") v.add("id", "is required");
      else v.id("id", req.id);
      v.throwIfAny();
      await api.deleteTimeseries(req.id, { signal: ctx.signal });
      return {};
    },
    async getData(req, ctx) {
      const v = new Violations();
      validateGetData(req, v);
      v.throwIfAny();
      const page = await api.getDatapoints(
        req.id,
        {
          ...(req.startTime ? { startTime: timeOf(req.startTime)! } : {}),
          ...(req.endTime ? { endTime: timeOf(req.endTime)! } : {}),
          ...(req.limit !== undefined ? { limit: req.limit } : {}),
          ...(req.status.length > 0 ? { status: req.status } : {}),
          ...(req.includeOutsidePoints ? { includeOutsidePoints: true } : {}),
          ...(req.continuationToken ? { continuationToken: req.continuationToken } : {}),
        },
        { signal: ctx.signal },
      );
      const points = page.items.flatMap((i) => i.datapoints);
      return {
        data: create(SeriesDataSchema, { id: req.id, datapoints: points.map(datapointToProto) }),
        continuationToken: page.continuationToken ?? "",
      };
    },
    async getAggregates(req, ctx) {
      const v = new Violations();
      if (req.id === "") v.add("id", "is required");
      else v.id("id", req.id);
      if (req.aggregateFunctions.length === 0)
        v.add("aggregate_functions", "name at least one of avg, min, max, sum, stddev, count, first, last");
      req.aggregateFunctions.forEach((f, i) => {
        if (!AGGREGATE_FUNCTIONS.has(f))
          v.add(`aggregate_functions[${i}]`, `"${f}" is not one of avg, min, max, sum, stddev, count, first, last`);
      });
      v.interval("processing_interval", req.processingInterval);
      v.limit("limit", req.limit);
      v.window("", req.startTime, req.endTime);
      v.throwIfAny();
      const page = await api.getAggregates(
        req.id,
        {
          aggregateFunctions: req.aggregateFunctions as AggregateFunction[],
          ...(req.startTime ? { startTime: timeOf(req.startTime)! } : {}),
          ...(req.endTime ? { endTime: timeOf(req.endTime)! } : {}),
          ...(req.processingInterval ? { processingInterval: req.processingInterval } : {}),
          ...(req.limit !== undefined ? { limit: req.limit } : {}),
          ...(req.continuationToken ? { continuationToken: req.continuationToken } : {}),
        },
        { signal: ctx.signal },
      );
      const rows = page.items.flatMap((i) =>
        i.aggregates.map((a) => {
          const values: Record<string, number> = {};
          for (const f of req.aggregateFunctions) {
            const x = a[f as AggregateFunction];
            if (typeof x === "number" || typeof x === "bigint") values[f] = Number(x);
          }
          return create(AggregateRowSchema, { time: timestampFromDate(new Date(Number(a.timeNs / 1_000_000n))), values });
        }),
      );
      return { id: req.id, rows, continuationToken: page.continuationToken ?? "" };
    },
    async getFirstOrLatest(req, ctx) {
      const v = new Violations();
      if (req.id === "") v.add("id", "is required");
      else v.id("id", req.id);
      v.time("after_time", req.afterTime);
      v.time("before_time", req.beforeTime);
      v.throwIfAny();
      const query = {
        ...(req.afterTime ? { afterTime: timeOf(req.afterTime)! } : {}),
        ...(req.beforeTime ? { beforeTime: timeOf(req.beforeTime)! } : {}),
      };
      const page = req.latest
        ? await api.getLatestDatapoint(req.id, query, { signal: ctx.signal })
        : await api.getFirstDatapoint(req.id, query, { signal: ctx.signal });
      return page ? { datapoint: datapointToProto(page) } : {};
    },
    async getMultiData(req, ctx) {
      const v = new Violations();
      if (req.items.length === 0) v.add("items", "name at least one series");
      if (req.items.length > MAX_ITEMS) v.add("items", `at most ${MAX_ITEMS} series per request (Omnia's bound), got ${req.items.length}`);
      req.items.forEach((item, i) => {
        validateGetData(item, v, `items[${i}].`);
      });
      v.throwIfAny();
      const page = await api.queryDatapoints(
        req.items.map((item) => ({
          id: item.id,
          ...(item.startTime ? { startTime: timeOf(item.startTime)! } : {}),
          ...(item.endTime ? { endTime: timeOf(item.endTime)! } : {}),
          ...(item.limit !== undefined ? { limit: item.limit } : {}),
          ...(item.status.length > 0 ? { statusFilter: item.status } : {}),
          ...(item.includeOutsidePoints ? { includeOutsidePoints: true } : {}),
          ...(item.continuationToken ? { continuationToken: item.continuationToken } : {}),
        })),
        {},
        { signal: ctx.signal },
      );
      return {
        data: page.items.flatMap((i) =>
          i.kind === "raw" ? [create(SeriesDataSchema, { id: i.id, datapoints: i.datapoints.map(datapointToProto) })] : [],
        ),
        continuationToken: page.continuationToken ?? "",
      };
    },
    async writeData(req, ctx) {
      const v = new Violations();
      v.required(WriteDataRequestSchema, req);
      if (req.items.length > MAX_ITEMS) v.add("items", `at most ${MAX_ITEMS} series per request, got ${req.items.length}`);
      let total = 0;
      req.items.forEach((item, i) => {
        if (item.id === "") v.add(`items[${i}].id`, "is required");
        else v.id(`items[${i}].id`, item.id);
        item.datapoints.forEach((p, j) => {
          if (!p.time) v.add(`items[${i}].datapoints[${j}].time`, "is required");
          else v.time(`items[${i}].datapoints[${j}].time`, p.time);
          if (!Number.isFinite(p.value)) v.add(`items[${i}].datapoints[${j}].value`, "must be a finite number");
        });
        total += item.datapoints.length;
      });
      if (total > MAX_POINTS_PER_WRITE) v.add("items", `at most ${MAX_POINTS_PER_WRITE} datapoints per request, got ${total}`);
      v.throwIfAny();
      await api.writeMultipleDatapoints(
        req.items.map((i) => ({
          id: i.id,
          datapoints: i.datapoints.map((p) => ({ time: timeOf(p.time)!, value: p.value, status: p.status })),
        })),
        { signal: ctx.signal, async: req.async },
      );
      return {};
    },
    async deleteData(req, ctx) {
      const v = new Violations();
      v.required(DeleteDataRequestSchema, req);
      if (req.id) v.id("id", req.id);
      v.window("", req.startTime, req.endTime);
      v.throwIfAny();
      await api.deleteDatapoints(req.id, { startTime: timeOf(req.startTime)!, endTime: timeOf(req.endTime)! }, { signal: ctx.signal });
      return {};
    },
  };
}
