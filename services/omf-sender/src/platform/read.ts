import type { OmfClient } from "./client.js";
import { OmfNotFoundError, OmfUnexpectedReplyError } from "./errors.js";

/**
 * Read-back through each receiver's own REST API, as the reference sample's test.py reads (omf.md §3.4):
 * PI Web API `GET /dataservers?name=` → `Links.Points` → `GET {Points}?nameFilter=` → `Items[].Links.Value` /
 * `RecordedData`; SDS (Data Hub, EDS) `GET {namespace}/Types[/{id}]`, `/Streams[/{id}]`, `/Streams/{id}/Data?startIndex=
 * &endIndex=&count=` and `/Data/last`. Every request carries `Accept-Verbosity: verbose` (client.ts getJson), so SDS
 * does not leave out null and default values.
 */

/** A PI point (PI Web API) or an SDS stream (Data Hub, EDS). */
export interface ReadPoint {
  name: string;
  /** PI: `PointType` (Float64, Int32, String, Digital, Timestamp …); SDS: the stream's `TypeId`. */
  type: string;
  /** PI: the point's WebId; SDS: the stream id. */
  id: string;
  description?: string;
}

/** One recorded value. PI: `Timestamp` and `Value`; SDS: the event's index and the whole event. */
export interface ReadValue {
  timestamp: string;
  /** PI: the point's value (a digital state is `{Name, Value}`); SDS: the event as stored (every property). */
  value: unknown;
}

export interface ReadValues {
  values: ReadValue[];
  /** PI answered `Pt Created` (the point exists and holds no value yet) or SDS had no event. */
  noData: boolean;
  /** The read stopped at `maxCount`: there may be more in the window. */
  truncated: boolean;
}

export interface PageOptions {
  /** Items skipped (PI `startIndex`, SDS `skip`). */
  skip?: number;
  /** At most this many items (PI `maxCount`, SDS `count`). */
  count?: number;
  signal?: AbortSignal;
}

export interface ReadWindow {
  /** Inclusive ISO-8601 bounds; both unset with `last` reads the current (last) value only. */
  start?: string;
  end?: string;
  /** At most this many values. */
  maxCount?: number;
  /** The current (last) value only. */
  last?: boolean;
  signal?: AbortSignal;
}

/** A definition read back from SDS (`GET Types/{id}` / `Streams/{id}`), as the endpoint returned it. */
export interface SdsDefinition {
  id: string;
  /** Streams: the stream's type. */
  typeId?: string;
  body: Record<string, unknown>;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);

function prop(o: Json, name: string): unknown {
  if (name in o) return o[name];
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(o)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function str(o: Json, name: string): string | undefined {
  const v = prop(o, name);
  return typeof v === "string" ? v : undefined;
}

function unexpected(client: OmfClient, what: string): OmfUnexpectedReplyError {
  return new OmfUnexpectedReplyError(`${client.name}: ${what}`, { endpoint: client.name });
}

/** `{base}/api/{v}/tenants/{t}/namespaces/{n}`: the SDS namespace the OMF resource writes to. */
function sdsBase(client: OmfClient): string {
  return client.omfUrl.replace(/\/omf$/, "");
}

const seg = encodeURIComponent;

/** PI point names take no wildcard characters (PI reserves `*` and `?`), so a name can stand in a nameFilter as is. */
const PI_WILDCARD = /[*?]/;

/**
 * Points (PI) or streams (SDS) whose name matches `nameFilter` (`*` any run, `?` one character, case-insensitive;
 * default every one), one page.
 */
export async function listPoints(client: OmfClient, nameFilter = "*", page: PageOptions = {}): Promise<ReadPoint[]> {
  if (client.kind === "pi") {
    const points = await piPointsLink(client, page.signal);
    const body = await client.getJson(points, {
      signal: page.signal,
      query: { nameFilter, startIndex: page.skip ?? 0, maxCount: page.count ?? 1000 },
    });
    return piItems(client, body).map((item) => piPoint(client, item));
  }
  const items = await sdsList(client, "Streams", nameFilter, page);
  return items.map((s) => ({
    name: str(s, "Name") ?? str(s, "Id")!,
    id: str(s, "Id")!,
    type: str(s, "TypeId") ?? "",
    ...(str(s, "Description") ? { description: str(s, "Description") } : {}),
  }));
}

/** SDS types (Data Hub, EDS) whose id matches `idFilter`, one page. PI Web API has no read path for OMF types. */
export async function listTypes(client: OmfClient, idFilter = "*", page: PageOptions = {}): Promise<SdsDefinition[]> {
  const items = await sdsList(client, "Types", idFilter, page);
  return items.map((t) => ({ id: str(t, "Id")!, body: t }));
}

/** SDS streams as definitions (the containers OMF created), one page. */
export async function listStreams(client: OmfClient, idFilter = "*", page: PageOptions = {}): Promise<SdsDefinition[]> {
  const items = await sdsList(client, "Streams", idFilter, page);
  return items.map((s) => ({ id: str(s, "Id")!, typeId: str(s, "TypeId"), body: s }));
}

/** `GET Types/{id}` (SDS). OmfNotFoundError when there is none. */
export async function getType(client: OmfClient, id: string, signal?: AbortSignal): Promise<SdsDefinition> {
  const body = await client.getJson(`${sdsBase(client)}/Types/${seg(id)}`, { signal });
  if (!isObject(body)) throw unexpected(client, `type "${id}": the reply is not a JSON object`);
  return { id: str(body, "Id") ?? id, body };
}

/** `GET Streams/{id}` (SDS). OmfNotFoundError when there is none. */
export async function getStream(client: OmfClient, id: string, signal?: AbortSignal): Promise<SdsDefinition> {
  const body = await client.getJson(`${sdsBase(client)}/Streams/${seg(id)}`, { signal });
  if (!isObject(body)) throw unexpected(client, `stream "${id}": the reply is not a JSON object`);
  return { id: str(body, "Id") ?? id, typeId: str(body, "TypeId"), body };
}

/**
 * Values of one point (PI, by exact name) or stream (SDS, by id): the current (last) one, or those recorded in
 * [start, end] (oldest first). OmfNotFoundError when there is no such point / stream.
 */
export async function readValues(client: OmfClient, name: string, window: ReadWindow = {}): Promise<ReadValues> {
  const maxCount = window.maxCount ?? 1000;
  if (client.kind === "pi") {
    const point = await piPointByName(client, name, window.signal);
    const links = isObject(prop(point, "Links")) ? (prop(point, "Links") as Json) : {};
    if (window.last) {
      const value = str(links, "Value");
      if (!value) throw unexpected(client, `point "${name}" has no Links.Value`);
      const v = await client.getJson(value, { signal: window.signal });
      if (!isObject(v)) throw unexpected(client, `the value of point "${name}" is not a JSON object`);
      if (isPtCreated(v)) return { values: [], noData: true, truncated: false };
      return { values: [piValue(v)], noData: false, truncated: false };
    }
    const recorded = str(links, "RecordedData");
    if (!recorded) throw unexpected(client, `point "${name}" has no Links.RecordedData`);
    const body = await client.getJson(recorded, {
      signal: window.signal,
      query: { startTime: window.start ?? "*-1d", endTime: window.end ?? "*", maxCount },
    });
    const items = piItems(client, body).filter((v) => !isPtCreated(v));
    return { values: items.map(piValue), noData: items.length === 0, truncated: items.length >= maxCount };
  }
  const stream = await getStream(client, name, window.signal);
  const key = await sdsIndexOf(client, stream, window.signal);
  const event = (e: unknown): ReadValue => {
    if (!isObject(e)) throw unexpected(client, `an event of stream "${name}" is not a JSON object`);
    const ts = key === undefined ? undefined : prop(e, key);
    return { timestamp: typeof ts === "string" ? ts : ts === undefined ? "" : String(ts), value: e };
  };
  const data = `${sdsBase(client)}/Streams/${seg(stream.id)}/Data`;
  if (window.last) {
    const e = await client.getJson(`${data}/last`, { signal: window.signal });
    if (e === undefined || e === null || (isObject(e) && Object.keys(e).length === 0))
      return { values: [], noData: true, truncated: false };
    return { values: [event(e)], noData: false, truncated: false };
  }
  const body = await client.getJson(data, {
    signal: window.signal,
    query: { startIndex: window.start, endIndex: window.end, count: maxCount },
  });
  if (!Array.isArray(body)) throw unexpected(client, `the data of stream "${name}" is not a JSON array`);
  const values = body.slice(0, maxCount).map(event);
  return { values, noData: values.length === 0, truncated: body.length >= maxCount };
}

// ------------------------------------------------------------------------------------------------ PI Web API

/** `GET /dataservers?name=` (the configured Data Archive) → `Links.Points`; without a name, the only one listed. */
async function piPointsLink(client: OmfClient, signal?: AbortSignal): Promise<string> {
  const config = client.config;
  const name = config.kind === "pi" ? config.dataServerName : undefined;
  let server: unknown;
  if (name !== undefined) server = await client.getJson(`${config.url}/dataservers`, { signal, query: { name } });
  else {
    const items = piItems(client, await client.getJson(`${config.url}/dataservers`, { signal }));
    if (items.length !== 1)
      throw new OmfUnexpectedReplyError(
        `${client.name}: PI Web API lists ${items.length} data servers; set the endpoint's data_server_name to say which one`,
        { endpoint: client.name },
      );
    server = items[0];
  }
  const links = isObject(server) ? prop(server, "Links") : undefined;
  const points = isObject(links) ? str(links, "Points") : undefined;
  if (!points) throw unexpected(client, "the data server has no Links.Points");
  return points;
}

async function piPointByName(client: OmfClient, name: string, signal?: AbortSignal): Promise<Json> {
  if (PI_WILDCARD.test(name)) throw new OmfNotFoundError(`${client.name}: a PI point name has no "*" or "?"`, { endpoint: client.name });
  const points = await piPointsLink(client, signal);
  const items = piItems(client, await client.getJson(points, { signal, query: { nameFilter: name, maxCount: 10 } }));
  const found = items.find((i) => str(i, "Name")?.toLowerCase() === name.toLowerCase());
  if (!found) throw new OmfNotFoundError(`${client.name}: no PI point named "${name}"`, { endpoint: client.name, status: 404 });
  return found;
}

function piItems(client: OmfClient, body: unknown): Json[] {
  const items = isObject(body) ? prop(body, "Items") : undefined;
  if (!Array.isArray(items)) throw unexpected(client, "the reply has no Items array");
  return items.filter(isObject);
}

function piPoint(client: OmfClient, item: Json): ReadPoint {
  const name = str(item, "Name");
  if (!name) throw unexpected(client, "a point without a Name");
  return {
    name,
    id: str(item, "WebId") ?? "",
    type: str(item, "PointType") ?? "",
    ...(str(item, "Descriptor") ? { description: str(item, "Descriptor") } : {}),
  };
}

/** The system digital state PI shows for a point created and never written. */
function isPtCreated(v: Json): boolean {
  const value = prop(v, "Value");
  return isObject(value) && str(value, "Name") === "Pt Created";
}

function piValue(v: Json): ReadValue {
  return { timestamp: str(v, "Timestamp") ?? "", value: prop(v, "Value") ?? null };
}

// ------------------------------------------------------------------------------------------------ SDS

/**
 * One page of an SDS collection. SDS pages with `skip` / `count` and searches with `query`; a server that ignores
 * either (answers more than `count`, or ids the filter does not match) is paged and filtered here instead, so
 * both readings give the same page.
 */
async function sdsList(client: OmfClient, collection: "Types" | "Streams", filter: string, page: PageOptions): Promise<Json[]> {
  if (client.kind === "pi")
    throw new OmfUnexpectedReplyError(`${client.name}: PI Web API has no SDS ${collection.toLowerCase()}; list its points instead`, {
      endpoint: client.name,
    });
  const skip = page.skip ?? 0;
  const count = page.count ?? 100;
  const query = filter === "*" ? undefined : `Id:${filter}`;
  const body = await client.getJson(`${sdsBase(client)}/${collection}`, { signal: page.signal, query: { query, skip, count } });
  if (!Array.isArray(body)) throw unexpected(client, `the ${collection} reply is not a JSON array`);
  const match = globMatcher(filter);
  const all = body.filter(isObject).filter((o) => typeof str(o, "Id") === "string");
  const matching = all.filter((o) => match(str(o, "Id")!));
  // More than asked for, or items the filter excludes: the server did neither, so do both here.
  if (all.length > count || matching.length !== all.length) return matching.slice(skip, skip + count);
  return matching;
}

/** The stream's index property (its type's key), to report each event's timestamp. */
async function sdsIndexOf(client: OmfClient, stream: SdsDefinition, signal?: AbortSignal): Promise<string | undefined> {
  if (!stream.typeId) return undefined;
  const type = await getType(client, stream.typeId, signal);
  const props = prop(type.body, "Properties");
  if (!Array.isArray(props)) return undefined;
  const key = props.filter(isObject).find((p) => prop(p, "IsKey") === true);
  return key ? str(key, "Id") : undefined;
}

/** `*` any run, `?` one character, case-insensitive (SDS ids and PI names are). */
export function globMatcher(glob: string): (s: string) => boolean {
  const re = new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
    "i",
  );
  return (s) => re.test(s);
}
