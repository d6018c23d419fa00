import { create, type JsonObject } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Datapoint as DatapointMsg,
  DatapointSchema,
  type Reader,
  ReaderSchema,
  type Timeseries as TimeseriesMsg,
  TimeseriesSchema,
} from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import type { ReaderView } from "../pipeline/manager.js";
import { nsFromTimestamp, timestampFromNs } from "../pipeline/mapping.js";
import type { Datapoint, Timeseries, TimeseriesCreate } from "../pipeline/omnia-api.js";

export function readerToProto(view: ReaderView): Reader {
  const c = view.pipeline?.counters;
  return create(ReaderSchema, {
    spec: view.spec,
    cursors: [...view.cursors].map(([seriesId, r]) => ({
      seriesId,
      name: r.name,
      facility: r.facility,
      cursor: timestampFromNs(BigInt(r.cursorNs)),
    })),
    state: view.pipeline?.state ?? (view.spec.paused ? "paused" : "not_running"),
    ...(c?.lastPollTime ? { lastPollTime: timestampFromDate(c.lastPollTime) } : {}),
    lastError: c?.lastError ?? "",
    eventsPublished: BigInt(c?.delivered ?? 0),
  });
}

const KNOWN = new Set(["id", "name", "facility", "description", "unit", "assetId", "externalId", "source"]);

export function timeseriesToProto(t: Timeseries): TimeseriesMsg {
  const extra: JsonObject = {};
  for (const [k, v] of Object.entries(t)) if (!KNOWN.has(k) && v !== undefined) extra[k] = v as JsonObject[string];
  return create(TimeseriesSchema, {
    id: t.id,
    name: t.name ?? "",
    facility: t.facility ?? "",
    description: t.description ?? "",
    unit: t.unit ?? "",
    assetId: t.assetId ?? "",
    externalId: t.externalId ?? "",
    source: t.source ?? "",
    ...(Object.keys(extra).length > 0 ? { extra } : {}),
  });
}

/** The fields of a proto Timeseries that are set, as Omnia's create / patch body. */
export function timeseriesFields(t: TimeseriesMsg | undefined): Partial<TimeseriesCreate> {
  if (!t) return {};
  const out: Partial<TimeseriesCreate> = {};
  if (t.name) out.name = t.name;
  if (t.facility) out.facility = t.facility;
  if (t.description) out.description = t.description;
  if (t.unit) out.unit = t.unit;
  if (t.assetId) out.assetId = t.assetId;
  if (t.externalId) out.externalId = t.externalId;
  return out;
}

export function datapointToProto(p: Datapoint): DatapointMsg {
  return create(DatapointSchema, { time: timestampFromNs(p.timeNs), value: p.value, status: p.status });
}

/** A proto time as Omnia's time input: exact nanoseconds. */
export function timeOf(t: Timestamp | undefined): bigint | undefined {
  return t ? nsFromTimestamp(t) : undefined;
}
