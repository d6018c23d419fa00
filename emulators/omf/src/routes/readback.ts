import type { PropDef, TypeDef } from "../model.js";
import { defaultValue } from "../model.js";
import { deleteContainer } from "../process.js";
import type { Settings } from "../settings.js";
import { type ContainerRecord, isSubstituted, type PiPoint, type Scope, type StoredValue } from "../store.js";
import { keyToPiTime, parsePiTime, timeKey } from "../time.js";

export interface Reply {
  status: number;
  body?: unknown;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64url");
const unb64 = (s: string) => Buffer.from(s, "base64url").toString("utf8");
const piError = (status: number, msg: string): Reply => ({ status, body: { Errors: [msg] } });

// ------------------------------------------------------------------------------------------------ PI Web API

export interface PiReadContext {
  scope: Scope;
  /** e.g. https://host:port/piwebapi */
  base: string;
  dataServerName: string;
  /** What `/piwebapi/system` reports (the release the emulator poses as). */
  product: { title: string; version: string };
}

const dataServerWebId = (name: string) => `F1DS${b64(name.toUpperCase())}`;
const pointWebId = (p: PiPoint) => `F1DP${b64(p.key)}`;

function dataServer(c: PiReadContext) {
  const webId = dataServerWebId(c.dataServerName);
  return {
    WebId: webId,
    Id: "00000000-0000-0000-0000-00000000a1a1",
    Name: c.dataServerName,
    Path: `\\\\PIServers[${c.dataServerName}]`,
    IsConnected: true,
    ServerVersion: "3.4.445.688",
    ServerTime: new Date().toISOString(),
    Links: { Self: `${c.base}/dataservers/${webId}`, Points: `${c.base}/dataservers/${webId}/points` },
  };
}

function point(c: PiReadContext, p: PiPoint) {
  const webId = pointWebId(p);
  const s = `${c.base}/streams/${webId}`;
  return {
    WebId: webId,
    Id: p.id,
    Name: p.name,
    Path: `\\\\${c.dataServerName}\\${p.name}`,
    Descriptor: "",
    PointClass: "classic",
    PointType: p.pointType,
    DigitalSetName: p.pointType === "Digital" ? p.propertyId : "",
    EngineeringUnits: p.uom ?? "",
    Span: 100,
    Zero: 0,
    Step: false,
    Future: false,
    DisplayDigits: -5,
    Links: {
      Self: `${c.base}/points/${webId}`,
      DataServer: `${c.base}/dataservers/${dataServerWebId(c.dataServerName)}`,
      Value: `${s}/value`,
      EndValue: `${s}/end`,
      RecordedData: `${s}/recorded`,
    },
  };
}

function piValue(p: PiPoint, type: TypeDef, types: Map<string, TypeDef>, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  const prop = type.propById.get(p.propertyId);
  if (prop?.reftypeKey !== undefined) {
    const e = types.get(prop.reftypeKey);
    return { Name: e?.enumNames?.get(v as number) ?? String(v), Value: v, IsSystem: false };
  }
  switch (p.pointType) {
    case "Float32":
      return Math.fround(v as number);
    case "Digital":
      return { Name: v ? "True" : "False", Value: v ? 1 : 0, IsSystem: false };
    case "Timestamp": {
      const k = timeKey(String(v));
      return k ? keyToPiTime(k) : v;
    }
    default:
      return v;
  }
}

function timedValue(p: PiPoint, rec: ContainerRecord, types: Map<string, TypeDef>, key: string, value: StoredValue) {
  return {
    Timestamp: keyToPiTime(key),
    Value: piValue(p, rec.type, types, value[p.propertyId]),
    UnitsAbbreviation: p.uom ?? "",
    Good: true,
    Questionable: false,
    Substituted: isSubstituted(value),
    Annotated: false,
  };
}

const PT_CREATED = {
  Timestamp: "1970-01-01T00:00:00Z",
  Value: { Name: "Pt Created", Value: 248, IsSystem: true },
  UnitsAbbreviation: "",
  Good: false,
  Questionable: false,
  Substituted: false,
  Annotated: false,
};

function globToRegExp(glob: string): RegExp {
  const re = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "i");
}

function msToKey(ms: number, end: boolean): string | undefined {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return undefined;
  const iso = d.toISOString();
  if (iso.length !== 24) return undefined;
  return `${iso.slice(0, 23)}${end ? "9999" : "0000"}Z`;
}

/** GET read-back under /piwebapi. `rest` is the path after /piwebapi (no trailing slash), lower-cased segments kept raw. */
export function piRead(c: PiReadContext, rest: string, q: URLSearchParams): Reply {
  const seg = rest.split("/").filter(Boolean);
  const s0 = seg[0]?.toLowerCase();
  if (seg.length === 0)
    return {
      status: 200,
      body: { Links: { Self: `${c.base}/`, DataServers: `${c.base}/dataservers`, Omf: `${c.base}/omf`, System: `${c.base}/system` } },
    };
  if (s0 === "system" && seg.length === 1)
    return {
      status: 200,
      body: {
        Links: { Self: `${c.base}/system` },
        ProductTitle: c.product.title,
        ProductVersion: c.product.version,
      },
    };
  if (s0 === "dataservers") {
    const expected = dataServerWebId(c.dataServerName);
    if (seg.length === 1) {
      const name = q.get("name") ?? q.get("path")?.replace(/^\\\\(PIServers\[)?|\]$/g, "");
      if (name !== null && name !== undefined) {
        if (name.toLowerCase() !== c.dataServerName.toLowerCase()) return piError(404, `PI Data Archive '${name}' not found.`);
        return { status: 200, body: dataServer(c) };
      }
      return { status: 200, body: { Links: {}, Items: [dataServer(c)] } };
    }
    if (seg[1] !== expected) return piError(404, "The specified WebId does not identify a PI Data Archive.");
    if (seg.length === 2) return { status: 200, body: dataServer(c) };
    if (seg.length === 3 && seg[2]!.toLowerCase() === "points") {
      const filter = globToRegExp(q.get("nameFilter") ?? q.get("namefilter") ?? "*");
      const startIndex = Number(q.get("startIndex") ?? 0) || 0;
      const maxCount = Number(q.get("maxCount") ?? 1000) || 1000;
      const items = [...c.scope.points.values()]
        .filter((p) => filter.test(p.name))
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
        .slice(startIndex, startIndex + maxCount)
        .map((p) => point(c, p));
      return { status: 200, body: { Links: {}, Items: items } };
    }
    return piError(404, "Not found.");
  }
  if (s0 === "points") {
    if (seg.length === 1) {
      const path = q.get("path");
      if (!path) return piError(400, "The 'path' parameter is required.");
      const name = path.split("\\").filter(Boolean).pop() ?? "";
      const p = c.scope.points.get(name.toLowerCase());
      return p ? { status: 200, body: point(c, p) } : piError(404, `PI Point not found '${path}'.`);
    }
    const p = findPoint(c, seg[1]!);
    if (!p) return piError(404, "The specified WebId does not identify a PI Point.");
    return { status: 200, body: point(c, p) };
  }
  if (s0 === "streams" && seg.length === 3) {
    const p = findPoint(c, seg[1]!);
    if (!p) return piError(404, "The specified WebId does not identify a PI Point.");
    const rec = c.scope.containers.get(p.containerKey);
    if (!rec) return piError(404, "The specified WebId does not identify a PI Point.");
    const op = seg[2]!.toLowerCase();
    if (op === "value" || op === "end") {
      const last = rec.series.last();
      return { status: 200, body: last ? timedValue(p, rec, c.scope.types, last.key, last.value) : PT_CREATED };
    }
    if (op === "recorded") {
      const now = Date.now();
      const start = parsePiTime(q.get("startTime") ?? "*-1d", now);
      const end = parsePiTime(q.get("endTime") ?? "*", now);
      if (start === undefined || end === undefined) return piError(400, "Cannot parse startTime or endTime.");
      const maxCount = Number(q.get("maxCount") ?? 1000) || 1000;
      const items = [];
      const sk = msToKey(start, false);
      const ek = msToKey(end, true);
      for (const { key, value } of rec.series.range(sk, ek)) {
        items.push(timedValue(p, rec, c.scope.types, key, value));
        if (items.length >= maxCount) break;
      }
      return { status: 200, body: { Links: {}, Items: items, UnitsAbbreviation: p.uom ?? "" } };
    }
  }
  return piError(404, "The requested resource was not found.");
}

function findPoint(c: PiReadContext, webId: string): PiPoint | undefined {
  if (!webId.startsWith("F1DP")) return undefined;
  return c.scope.points.get(unb64(webId.slice(4)));
}

// ------------------------------------------------------------------------------------------------ SDS (ADH / EDS)

export interface SdsReadContext {
  scope: Scope;
  verbose: boolean;
  timestamps: Settings["sdsTimestamps"];
  tenant: string;
  namespace: string;
}

const sdsError = (status: number, error: string, reason: string): Reply => ({
  status,
  body: { OperationId: crypto.randomUUID(), Error: error, Reason: reason, Resolution: "Check the identifier.", Parameters: {} },
});

const CODE: Record<string, number> = {
  boolean: 3,
  int16: 7,
  uint16: 8,
  int32: 9,
  uint32: 10,
  int64: 11,
  uint64: 12,
  float16: 13,
  float32: 13,
  float64: 14,
  "date-time": 16,
  string: 18,
  array: 400,
  object: 402,
};

function sdsTypeCode(p: PropDef): number {
  if (p.reftypeKey !== undefined) return 610; // enum (SdsTypeCode Enum placeholder)
  const base = CODE[p.format ?? ""] ?? CODE[p.type ?? ""] ?? 1;
  // nullable value types use the Nullable* codes (base + 100) except string/array/object
  return p.nullable && base < 18 && p.type !== "string" ? base + 100 : base;
}

function sdsType(t: TypeDef) {
  let order = 0;
  return {
    Id: t.id,
    Name: t.name ?? t.id,
    Description: t.description ?? null,
    SdsTypeCode: 1,
    IsGenericType: false,
    IsReferenceType: false,
    Properties: t.properties.map((p) => ({
      Id: p.id,
      Name: p.name ?? p.id,
      Description: p.description ?? null,
      IsKey: p.isindex,
      ...(p.isindex && t.indexProps.length > 1 ? { Order: order++ } : {}),
      SdsType: { Id: `${p.format ?? p.type ?? p.reftypeid}`, SdsTypeCode: sdsTypeCode(p) },
      ...(p.uom ? { Uom: p.uom } : {}),
    })),
  };
}

function sdsStream(rec: ContainerRecord) {
  return {
    Id: rec.def.id,
    Name: rec.def.name ?? rec.def.id,
    Description: rec.def.description ?? null,
    TypeId: rec.type.id,
    Indexes: [],
  };
}

/** A date-time as SDS prints it: kept to 100 ns (7 digits), UTC, trimmed or fixed-width per the setting. */
function sdsTime(mode: Settings["sdsTimestamps"], s: string): string {
  if (mode === "asSent") return s;
  const k = timeKey(s);
  if (k === undefined) return s;
  return mode === "fixed7" ? k : keyToPiTime(k);
}

function renderEvent(c: SdsReadContext, rec: ContainerRecord, v: StoredValue): StoredValue {
  if (c.verbose && c.timestamps === "asSent") return v;
  const out: StoredValue = {};
  for (const p of rec.type.properties) {
    let x = v[p.id];
    if (!c.verbose && !p.isindex && (x === null || x === undefined || x === defaultValue(p))) continue;
    if (p.format === "date-time" && typeof x === "string") x = sdsTime(c.timestamps, x);
    out[p.id] = x;
  }
  return out;
}

function parseIndex(rec: ContainerRecord, s: string): string | undefined {
  const ix = rec.type.indexProps;
  if (ix.length !== 1) return s;
  const p = ix[0]!;
  if (p.format === "date-time") return timeKey(s);
  return s;
}

/** GET read-back below `{base}` = /api/v1/tenants/{t}/namespaces/{n}. `seg` are the path segments after base. */
export function sdsRead(c: SdsReadContext, seg: string[], q: URLSearchParams): Reply {
  const s0 = seg[0]?.toLowerCase();
  if (seg.length === 0) return { status: 200, body: { Id: c.namespace, TenantId: c.tenant, Description: "", State: "Active" } };
  if (s0 === "types") {
    if (seg.length === 1) return { status: 200, body: [...c.scope.types.values()].filter((t) => !t.isEnum).map(sdsType) };
    const t = c.scope.types.get(seg[1]!.toLowerCase());
    if (!t || seg.length > 2) return sdsError(404, "Type not found", `No type with id '${seg[1]}'.`);
    return { status: 200, body: sdsType(t) };
  }
  if (s0 === "streams") {
    if (seg.length === 1) return { status: 200, body: [...c.scope.containers.values()].map(sdsStream) };
    const rec = c.scope.containers.get(seg[1]!.toLowerCase());
    if (!rec) return sdsError(404, "Stream not found", `No stream with id '${seg[1]}'.`);
    if (seg.length === 2) return { status: 200, body: sdsStream(rec) };
    const s2 = seg[2]!.toLowerCase();
    if (seg.length === 3 && s2 === "tags") return { status: 200, body: rec.def.tags ?? [] };
    if (seg.length === 3 && s2 === "metadata") return { status: 200, body: rec.def.metadata ?? {} };
    if (s2 !== "data") return sdsError(404, "Not found", "Unknown stream resource.");
    const s3 = seg[3]?.toLowerCase();
    if (s3 === "last" || s3 === "first") {
      const e = s3 === "last" ? rec.series.last() : rec.series.first();
      return e ? { status: 200, body: renderEvent(c, rec, e.value) } : { status: 204 };
    }
    if (seg.length === 3) {
      const index = q.get("index");
      if (index !== null) {
        const k = parseIndex(rec, index);
        const vs = k === undefined ? undefined : rec.series.entries.get(k);
        return { status: 200, body: vs ? vs.map((v) => renderEvent(c, rec, v)) : [] };
      }
      const startIndex = q.get("startIndex");
      const endIndex = q.get("endIndex");
      const count = q.get("count");
      const sk = startIndex === null ? undefined : parseIndex(rec, startIndex);
      const ek = endIndex === null ? undefined : parseIndex(rec, endIndex);
      if ((startIndex !== null && sk === undefined) || (endIndex !== null && ek === undefined))
        return sdsError(400, "Invalid index", "startIndex/endIndex cannot be parsed for the stream's index type.");
      const max = count === null ? 250_000 : Number(count) || 0;
      const out: StoredValue[] = [];
      for (const { value } of rec.series.range(sk, ek)) {
        if (out.length >= max) break;
        out.push(renderEvent(c, rec, value));
      }
      return { status: 200, body: out };
    }
  }
  return sdsError(404, "Not found", "The requested resource was not found.");
}

/**
 * SDS REST deletes: `DELETE …/Types/{id}` (409 while a stream uses the type) and `DELETE …/Streams/{id}` (its data
 * goes with it); 204 when done, 404 when there is nothing by that id.
 */
export function sdsDelete(c: Pick<SdsReadContext, "scope">, seg: string[]): Reply {
  const s0 = seg[0]?.toLowerCase();
  if (seg.length !== 2 || (s0 !== "types" && s0 !== "streams"))
    return sdsError(405, "Method not allowed", "Only types and streams can be deleted.");
  const key = seg[1]!.toLowerCase();
  if (s0 === "streams") {
    const rec = c.scope.containers.get(key);
    if (!rec) return sdsError(404, "Stream not found", `No stream with id '${seg[1]}'.`);
    deleteContainer(c.scope, rec);
    return { status: 204 };
  }
  const t = c.scope.types.get(key);
  if (!t) return sdsError(404, "Type not found", `No type with id '${seg[1]}'.`);
  const users = [...c.scope.containers.values()].filter((r) => r.type.key === key).map((r) => r.def.id);
  if (users.length > 0)
    return {
      status: 409,
      body: {
        OperationId: crypto.randomUUID(),
        Error: "The type is in use",
        Reason: `Type '${t.id}' is referenced by stream(s) ${users.map((u) => `'${u}'`).join(", ")}.`,
        Resolution: "Delete the streams that use the type first.",
        Parameters: { TypeId: t.id },
      },
    };
  c.scope.types.delete(key);
  return { status: 204 };
}
