import { badRequest, type OmfFailure } from "./errors.js";
import type { Profile } from "./options.js";
import { DEFAULT_DATE_TIME, timeKey } from "./time.js";

/** What parsing needs to know about the request. */
export interface ParseContext {
  version: string;
  profile: Profile;
  /** Reject keywords newer than `version`. */
  strict: boolean;
}

export type BaseType = "integer" | "number" | "string" | "boolean" | "array" | "object";

export interface PropDef {
  id: string;
  type?: BaseType;
  format?: string;
  nullable: boolean;
  isindex: boolean;
  isname: boolean;
  isquality: boolean;
  uom?: string;
  name?: string;
  description?: string;
  reftypeid?: string;
  reftypeKey?: string;
}

export interface TypeDef {
  id: string;
  key: string;
  classification?: "dynamic" | "static";
  isEnum: boolean;
  enumNames?: Map<number, string>;
  version: string;
  name?: string;
  description?: string;
  properties: PropDef[];
  propById: Map<string, PropDef>;
  propByLower: Map<string, PropDef>;
  indexProps: PropDef[];
  canonical: string;
  raw: unknown;
}

export interface ContainerDef {
  id: string;
  key: string;
  typeid: string;
  typeKey: string;
  /** OMF 1.0/1.1 `typeversion` as sent (deprecated in 1.2). */
  typeversion?: string;
  name?: string;
  description?: string;
  tags?: unknown;
  metadata?: unknown;
  canonical: string;
  raw: unknown;
}

const FORMATS: Record<string, string[]> = {
  integer: ["int64", "int32", "int16", "uint64", "uint32", "uint16"],
  number: ["float64", "float32", "float16"],
  string: ["date-time"],
  boolean: [],
  array: [],
  object: ["dictionary"],
};
const DEFAULT_FORMAT: Record<string, string | undefined> = { integer: "int32", number: "float32" };

export const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** OMF keywords are case-insensitive: read an object's keys lower-cased (values untouched). */
export function lowerKeys(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) out[k.toLowerCase()] = o[k];
  return out;
}

const lc = (v: unknown) => (typeof v === "string" ? v.toLowerCase() : v);

function requireVersion(keyword: string, min: "1.1" | "1.2", ctx: ParseContext, where: string): void {
  if (ctx.strict && ctx.version < min) {
    throw badRequest(`The keyword '${keyword}' requires OMF version ${min} or later (request omfversion ${ctx.version}).`, {
      eventCode: 3002,
      reason: "Keyword not defined for this OMF version.",
      parameters: { Path: where, Keyword: keyword },
    });
  }
}

const PI_RESERVED = /[*?;{}[\]\\'"|]/;
const SDS_FORBIDDEN = /[/:?#[\]@!$&'()\\*+,;=%<>|]/;

/**
 * Identifier rules: PI Web API reserved characters / whitespace / empty (-1007/-1006/-1009); SDS id rules for
 * ADH/EDS (ADH converts `/` to `\` first). Returns the id to store.
 */
export function checkId(raw: unknown, what: string, profile: Profile, field = "id"): string {
  if (typeof raw !== "string") throw badRequest(`The ${what} '${field}' is required and must be a string.`, { eventCode: 3003 });
  if (profile === "pi") {
    if (raw === "") throw badRequest(`The ${what} ${field} is empty.`, { eventCode: -1009, parameters: { Field: field } });
    if (raw.trim() !== raw)
      throw badRequest(`The ${what} ${field} '${raw}' has leading or trailing whitespace.`, {
        eventCode: -1006,
        parameters: { Field: field },
      });
    if (PI_RESERVED.test(raw))
      throw badRequest(`The ${what} ${field} '${raw}' contains a reserved character (* ? ; { } [ ] \\ ' " |).`, {
        eventCode: -1007,
        parameters: { Field: field },
      });
    return raw;
  }
  const id = profile === "adh" ? raw.replaceAll("/", "\\") : raw;
  const forbidden = profile === "adh" ? /[:?#[\]@!$&'()*+,;=%<>|]/ : SDS_FORBIDDEN;
  if (id === "" || id.length > 100 || forbidden.test(id) || id.startsWith(".") || id.endsWith(".") || id.includes(".."))
    throw badRequest(`The ${what} ${field} '${raw}' is not a valid SDS identifier.`, {
      error: "Invalid identifier",
      resolution:
        "Identifiers are at most 100 characters, must not contain / : ? # [ ] @ ! $ & ' ( ) \\ * + , ; = % < > |, nor start or end with '.'",
    });
  return id;
}

function parseProperty(id: string, rawDef: unknown, ctx: ParseContext, typeId: string): PropDef {
  const where = `${typeId}.properties.${id}`;
  if (!isPlainObject(rawDef)) throw badRequest(`Property '${id}' of type '${typeId}' must be an object.`, { eventCode: 3003 });
  const d = lowerKeys(rawDef);
  const p: PropDef = { id, nullable: false, isindex: d.isindex === true, isname: d.isname === true, isquality: d.isquality === true };
  if (d.isquality !== undefined) requireVersion("isquality", "1.2", ctx, where);
  for (const k of ["minimum", "maximum", "interpolation"]) if (d[k] !== undefined) requireVersion(k, "1.2", ctx, where);
  if (d.uom !== undefined) {
    requireVersion("uom", "1.1", ctx, where);
    if (typeof d.uom === "string") p.uom = d.uom;
  }
  if (typeof d.name === "string") p.name = d.name;
  if (typeof d.description === "string") p.description = d.description;
  if (d.reftypeid !== undefined) {
    requireVersion("reftypeid", "1.2", ctx, where);
    if (typeof d.reftypeid !== "string" || d.reftypeid === "") throw badRequest(`Property '${id}': reftypeid must be a non-empty string.`);
    p.reftypeid = d.reftypeid;
    p.reftypeKey = d.reftypeid.toLowerCase();
    return p;
  }
  let t = d.type;
  if (Array.isArray(t)) {
    requireVersion("nullable type array", "1.1", ctx, where);
    const parts = t.map(lc);
    const nonNull = parts.filter((x) => x !== "null");
    if (nonNull.length !== 1 || parts.length > 2)
      throw badRequest(`Property '${id}': a type array must be one type plus "null".`, { eventCode: 3003 });
    p.nullable = parts.includes("null");
    t = nonNull[0];
  }
  t = lc(t);
  if (typeof t !== "string" || !(t in FORMATS))
    throw badRequest(`Property '${id}' of type '${typeId}' has an unsupported type '${String(d.type)}'.`, {
      eventCode: 3003,
      parameters: { Property: id },
    });
  p.type = t as BaseType;
  if (t === "string" || t === "array" || t === "object") p.nullable = true; // inherently nullable
  if (d.format !== undefined) {
    const f = lc(d.format);
    if (typeof f !== "string" || !FORMATS[t]!.includes(f))
      throw badRequest(`Property '${id}' of type '${typeId}' has format '${String(d.format)}', not valid for type '${t}'.`, {
        eventCode: 3003,
        parameters: { Property: id },
      });
    p.format = f;
  } else if (DEFAULT_FORMAT[t]) p.format = DEFAULT_FORMAT[t];
  if (t === "array" && d.items === undefined) throw badRequest(`Property '${id}': arrays need 'items'.`);
  return p;
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (isPlainObject(v)) {
    const keys = Object.keys(v)
      .filter((k) => v[k] !== undefined && v[k] !== null && v[k] !== false)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** Parses and validates a type message element (profile-independent rules + PI rules). */
export function parseType(raw: unknown, ctx: ParseContext, types: Map<string, TypeDef>): TypeDef {
  if (!isPlainObject(raw)) throw badRequest("A type definition must be a JSON object.", { eventCode: 3003 });
  const d = lowerKeys(raw);
  const id = checkId(d.id, "type", ctx.profile);
  if (id.startsWith("__"))
    throw badRequest(`Type id '${id}' must not start with '__' (reserved for predefined types).`, { eventCode: 3003 });
  const isEnum = d.enum !== undefined;
  if (isEnum) requireVersion("enum", "1.2", ctx, id);
  if (d.extrapolation !== undefined) requireVersion("extrapolation", "1.2", ctx, id);
  const classification = lc(d.classification);
  if (classification !== undefined && classification !== "dynamic" && classification !== "static")
    throw badRequest(`Type '${id}': classification must be 'dynamic' or 'static'.`, { eventCode: 3003 });
  if (classification === undefined && !isEnum) throw badRequest(`Type '${id}': 'classification' is required.`, { eventCode: 3003 });
  if (!isEnum && lc(d.type) !== "object") throw badRequest(`Type '${id}': 'type' must be 'object'.`, { eventCode: 3003 });
  if (d.version !== undefined && (typeof d.version !== "string" || !/^\d+(\.\d+){0,3}$/.test(d.version)))
    throw badRequest(`Type '${id}': version must look like x.x.x.x.`, { eventCode: 3003 });

  const properties: PropDef[] = [];
  let enumNames: Map<number, string> | undefined;
  if (isEnum) {
    const e = isPlainObject(d.enum) ? lowerKeys(d.enum) : undefined;
    if (!e || !Array.isArray(e.values)) throw badRequest(`Enum type '${id}' needs enum.values.`, { eventCode: 3003 });
    enumNames = new Map();
    for (const v of e.values) {
      const ev = isPlainObject(v) ? lowerKeys(v) : {};
      if (typeof ev.name !== "string" || !Number.isInteger(ev.value))
        throw badRequest(`Enum type '${id}': each value needs name and integer value.`);
      enumNames.set(ev.value as number, ev.name);
    }
  } else {
    if (!isPlainObject(d.properties) || Object.keys(d.properties).length === 0)
      throw badRequest(`Type '${id}': 'properties' is required.`, { eventCode: 3003 });
    for (const [pid, pdef] of Object.entries(d.properties)) {
      if (ctx.profile === "pi") checkId(pid, "property", "pi");
      const p = parseProperty(pid, pdef, ctx, id);
      if (p.reftypeKey !== undefined) {
        if (p.reftypeKey === id.toLowerCase()) throw badRequest(`Type '${id}': property '${pid}' references its own type.`);
        const ref = types.get(p.reftypeKey);
        if (!ref) throw badRequest(`Type '${id}': reftypeid '${p.reftypeid}' of property '${pid}' is not defined.`);
        if (ctx.profile === "pi" && !ref.isEnum) throw badRequest(`PI Web API supports reftypeid only for enum types (property '${pid}').`);
      }
      properties.push(p);
    }
  }
  const indexProps = properties.filter((p) => p.isindex);

  if (ctx.profile === "pi" && !isEnum) {
    for (const p of properties) {
      if (p.type === "array" || p.type === "object" || p.format === "float16")
        throw badRequest(`PI Web API does not support ${p.format ?? p.type} properties (property '${p.id}' of type '${id}').`, {
          eventCode: 3003,
        });
    }
    if (indexProps.length !== 1) throw badRequest(`Type '${id}' must have exactly one index property (PI Web API).`, { eventCode: 3003 });
    const ix = indexProps[0]!;
    if (classification === "dynamic" && !(ix.type === "string" && ix.format === "date-time"))
      throw badRequest(`Dynamic type '${id}': the index property must be a string with format date-time.`, { eventCode: 3003 });
    if (classification === "static" && !(ix.type === "string" && ix.format === undefined))
      throw badRequest(`Static type '${id}': the index property must be a string without format.`, { eventCode: 3003 });
    if (properties.filter((p) => p.isname).length > 1) throw badRequest(`Type '${id}': at most one isname property.`);
  } else if (!isEnum && classification === "dynamic" && indexProps.length === 0) {
    throw badRequest(`Type '${id}' has no index property (isindex).`, { error: "Type has no key", eventCode: 3003 });
  }

  const propById = new Map(properties.map((p) => [p.id, p]));
  const propByLower = new Map(properties.map((p) => [p.id.toLowerCase(), p]));
  const version = typeof d.version === "string" ? d.version : "1.0.0.0";
  const canonical = canonicalJson({
    id: id.toLowerCase(),
    version,
    classification,
    type: lc(d.type),
    name: d.name,
    description: d.description,
    tags: d.tags,
    metadata: d.metadata,
    extrapolation: lc(d.extrapolation),
    enum: d.enum,
    properties: properties.map((p) => [p.id, { ...p, reftypeKey: undefined, reftypeid: p.reftypeKey }]),
  });
  return {
    id,
    key: id.toLowerCase(),
    classification: classification as TypeDef["classification"],
    isEnum,
    enumNames,
    version,
    name: typeof d.name === "string" ? d.name : undefined,
    description: typeof d.description === "string" ? d.description : undefined,
    properties,
    propById,
    propByLower,
    indexProps,
    canonical,
    raw,
  };
}

export function parseContainer(raw: unknown, ctx: ParseContext): ContainerDef {
  if (!isPlainObject(raw)) throw badRequest("A container definition must be a JSON object.", { eventCode: 3003 });
  const d = lowerKeys(raw);
  const id = checkId(d.id, "container", ctx.profile);
  const typeid = checkId(d.typeid, "container", ctx.profile, "typeid");
  if (d.indexes !== undefined) requireVersion("indexes", "1.1", ctx, id);
  for (const k of ["extrapolation", "propertyoverrides", "datasource"]) if (d[k] !== undefined) requireVersion(k, "1.2", ctx, id);
  if (d.name !== undefined && ctx.profile === "pi") checkId(d.name, "container", "pi", "name");
  const canonical = canonicalJson({
    id: id.toLowerCase(),
    typeid: typeid.toLowerCase(),
    name: d.name,
    description: d.description,
    datasource: d.datasource,
    tags: d.tags,
    metadata: d.metadata,
    indexes: d.indexes,
    extrapolation: lc(d.extrapolation),
    propertyoverrides: d.propertyoverrides,
  });
  return {
    id,
    key: id.toLowerCase(),
    typeid,
    typeKey: typeid.toLowerCase(),
    typeversion: typeof d.typeversion === "string" ? d.typeversion : undefined,
    name: typeof d.name === "string" ? d.name : undefined,
    description: typeof d.description === "string" ? d.description : undefined,
    tags: d.tags,
    metadata: d.metadata,
    canonical,
    raw,
  };
}

const INT_RANGE: Record<string, [number, number]> = {
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  int64: [-(2 ** 63), 2 ** 63 - 1],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
  uint64: [0, 2 ** 64 - 1],
};
const FLOAT_MAX: Record<string, number> = { float16: 65504, float32: 3.4028234663852886e38, float64: Number.MAX_VALUE };

/** The value a property gets when a data value omits it. */
export function defaultValue(p: PropDef): unknown {
  if (p.nullable && p.type !== "string") return null;
  switch (p.type) {
    case "integer":
    case "number":
      return 0;
    case "boolean":
      return false;
    case "string":
      return p.format === "date-time" ? DEFAULT_DATE_TIME : null;
    case undefined:
      return p.reftypeid !== undefined ? 0 : null;
    default:
      return null;
  }
}

function unparseable(p: PropDef, v: unknown, where: string): OmfFailure {
  return badRequest(
    `Invalid value type for the property '${p.id}': ${JSON.stringify(v)} is not ${p.format ?? p.type ?? "an enum value"}.`,
    {
      eventCode: 3003,
      error: "Invalid value type for the property",
      parameters: { Property: p.id, Path: where },
    },
  );
}

/** Checks one property value against its definition (3003 wrong JSON type, 3004 out of range). */
export function checkValue(p: PropDef, v: unknown, where: string, types: Map<string, TypeDef>): void {
  if (v === null) {
    if (p.nullable) return;
    throw unparseable(p, v, where);
  }
  if (p.reftypeKey !== undefined) {
    const ref = types.get(p.reftypeKey);
    if (ref?.isEnum) {
      if (!Number.isInteger(v)) throw unparseable(p, v, where);
      if (ref.enumNames && !ref.enumNames.has(v as number))
        throw badRequest(`The specified value is outside the allowable range for '${p.id}'.`, {
          eventCode: 3004,
          parameters: { Property: p.id },
        });
    }
    return;
  }
  switch (p.type) {
    case "integer": {
      if (typeof v !== "number" || !Number.isInteger(v)) throw unparseable(p, v, where);
      const [lo, hi] = INT_RANGE[p.format ?? "int32"]!;
      if (v < lo || v > hi)
        throw badRequest(`The specified value is outside the allowable range for '${p.id}' (${p.format}).`, {
          eventCode: 3004,
          parameters: { Property: p.id, Path: where },
        });
      return;
    }
    case "number": {
      if (typeof v !== "number") throw unparseable(p, v, where);
      if (Math.abs(v) > FLOAT_MAX[p.format ?? "float32"]!)
        throw badRequest(`The specified value is outside the allowable range for '${p.id}' (${p.format}).`, {
          eventCode: 3004,
          parameters: { Property: p.id, Path: where },
        });
      return;
    }
    case "string":
      if (typeof v !== "string") throw unparseable(p, v, where);
      if (p.format === "date-time" && timeKey(v) === undefined) throw unparseable(p, v, where);
      return;
    case "boolean":
      if (typeof v !== "boolean") throw unparseable(p, v, where);
      return;
    case "array":
      if (!Array.isArray(v)) throw unparseable(p, v, where);
      return;
    case "object":
      if (!isPlainObject(v)) throw unparseable(p, v, where);
      return;
  }
}

const dv = new DataView(new ArrayBuffer(8));
function numberKey(n: number): string {
  dv.setFloat64(0, n);
  let hi = dv.getUint32(0);
  let lo = dv.getUint32(4);
  if (hi & 0x80000000) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
  } else hi = (hi | 0x80000000) >>> 0;
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

/** Sortable storage key of one value's index properties (compound index joined in order of appearance). */
export function indexKey(type: TypeDef, value: Record<string, unknown>, where: string): string {
  let key = "";
  for (let i = 0; i < type.indexProps.length; i++) {
    const p = type.indexProps[i]!;
    const v = value[p.id];
    if (v === undefined || v === null)
      throw badRequest(`The value has no index property '${p.id}'.`, { eventCode: 3003, parameters: { Property: p.id, Path: where } });
    let part: string;
    if (p.type === "string" && p.format === "date-time") {
      const k = typeof v === "string" ? timeKey(v) : undefined;
      if (k === undefined)
        throw badRequest(`The index '${p.id}' value ${JSON.stringify(v)} is not an ISO-8601 UTC timestamp.`, {
          eventCode: 3003,
          error: "Invalid value type for the property",
          parameters: { Property: p.id, Path: where },
        });
      part = k;
    } else if (typeof v === "number") part = numberKey(v);
    else part = String(v);
    key = i === 0 ? part : `${key}\u0000${part}`;
  }
  return key;
}
