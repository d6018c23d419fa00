import { createHash } from "node:crypto";
import { OmfInvalidMessageError } from "./errors.js";
import type { OmfContainer, OmfIntegerFormat, OmfType, OmfTypeProperty, OmfValue, OmfVersion } from "./messages.js";

/**
 * Pure mapping from telemetry "point shapes" to OMF dynamic types and containers (no I/O).
 *
 * Ids satisfy the strictest of the backends' rules (notes §1.7):
 *  - PI Web API: none of `* ? ; { } [ ] \ ' " |`, no leading/trailing whitespace, not empty;
 *  - SDS (ADH/EDS): ≤ 100 chars, none of `/ : ? # [ ] @ ! $ & ' ( ) \ * + , ; = % < > |`, no leading `__`,
 *    not starting/ending with `.`, no `..`;
 *  - plus: no control characters or backtick (fledge), so names are also safe as PI point names.
 * A segment that had to be changed gets `_<8 hex of sha256(original)>` appended, so two different inputs
 * never sanitise to the same id. Backends compare ids case-insensitively: inputs that differ only in case
 * map to ids that the backend treats as equal.
 */

export type PointKind = "double" | "int" | "bool" | "string";
export interface PointSpec {
  name: string;
  kind: PointKind;
}
export type PointShape = readonly PointSpec[];

export interface SourceRef {
  platform: string;
  connection: string;
  device: string;
}

export interface TypeMappingOptions {
  /** Type id prefix. Default `meridian`. */
  prefix?: string;
  /** OMF version the type is for: 1.1+ makes value properties nullable (a missing point ⇒ null, not 0). Default 1.2. */
  omfVersion?: OmfVersion;
  /** Integer format. int64 (default) keeps range (PI maps it to a Float64 point); int32 gives PI Int32 points. */
  intFormat?: Extract<OmfIntegerFormat, "int64" | "int32">;
  /** Name of the index property. Default `Timestamp`. */
  indexName?: string;
}

export interface TypeMapping {
  typeId: string;
  /** 8 hex chars identifying the type, used in container ids. */
  typeTag: string;
  type: OmfType;
  indexName: string;
  /** point name → OMF property id. */
  propertyIds: ReadonlyMap<string, string>;
}

/** Max id length accepted everywhere (SDS stream/type ids). */
export const MAX_ID_LENGTH = 100;
const FORBIDDEN = /[\u0000-\u001f\u007f*?;{}[\]\\'"|/:#@!$&()+,=%<>`]/g;

const sha = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

function shortHash(s: string): string {
  return sha(s).slice(0, 8);
}

/**
 * Makes one id segment safe (see module doc). `maxLength` bounds the result; a changed or shortened segment
 * carries a hash of the original. `allowDots: false` also replaces `.` (used where `.` separates segments).
 */
export function sanitizeIdSegment(raw: string, maxLength = MAX_ID_LENGTH, options: { allowDots?: boolean } = {}): string {
  let s = raw.replace(FORBIDDEN, "_").trim();
  if (options.allowDots === false) s = s.replace(/\./g, "_");
  s = s.replace(/\.{2,}/g, (m) => "_".repeat(m.length));
  s = s.replace(/^\.+|\.+$/g, (m) => "_".repeat(m.length));
  s = s.replace(/^_{2,}/, "_");
  if (s === "") s = "_";
  if (s === raw && s.length <= maxLength) return s;
  const suffix = `_${shortHash(raw)}`;
  return `${s.slice(0, Math.max(1, maxLength - suffix.length)).replace(/[.\s]+$/, "")}${suffix}`;
}

const OMF_TYPE_OF: Record<
  PointKind,
  (intFormat: "int64" | "int32") => { type: "number" | "integer" | "boolean" | "string"; format?: "float64" | "int64" | "int32" }
> = {
  double: () => ({ type: "number", format: "float64" }),
  int: (intFormat) => ({ type: "integer", format: intFormat }),
  bool: () => ({ type: "boolean" }),
  string: () => ({ type: "string" }),
};

const KINDS: readonly PointKind[] = ["double", "int", "bool", "string"];

/**
 * Derives the OMF dynamic type for a point shape. Deterministic: the same names and kinds (in any order) with
 * the same options give the same id and definition; any change of names, kinds or options gives a new id.
 */
export function typeForShape(shape: PointShape, options: TypeMappingOptions = {}): TypeMapping {
  const prefix = options.prefix ?? "meridian";
  const version = options.omfVersion ?? "1.2";
  const intFormat = options.intFormat ?? "int64";
  const indexName = options.indexName ?? "Timestamp";
  const nullable = version !== "1.0";
  const problems: string[] = [];
  if (shape.length === 0) problems.push("points: at least one point is required");
  if (sanitizeIdSegment(prefix, 40) !== prefix) problems.push("prefix: must be a safe id segment of at most 40 characters");
  const seen = new Map<string, number>();
  shape.forEach((p, i) => {
    if (typeof p.name !== "string" || p.name === "") problems.push(`points[${i}].name: must be a non-empty string`);
    if (!KINDS.includes(p.kind)) problems.push(`points[${i}].kind: must be one of ${KINDS.join(", ")}`);
    const key = String(p.name).toLowerCase();
    const prior = seen.get(key);
    if (prior !== undefined)
      problems.push(`points[${i}].name: duplicates points[${prior}].name (names are case-insensitive on PI and SDS)`);
    else seen.set(key, i);
  });
  if (problems.length > 0) throw new OmfInvalidMessageError(problems);

  const sorted = [...shape].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const canonical = JSON.stringify({ v: 1, nullable, intFormat, indexName, points: sorted.map((p) => [p.name, p.kind]) });
  const digest = sha(canonical);
  const typeId = `${prefix}-${digest.slice(0, 16)}`;
  const typeTag = digest.slice(0, 8);

  const properties: Record<string, OmfTypeProperty> = {
    [indexName]: { type: "string", format: "date-time", isindex: true },
  };
  const propertyIds = new Map<string, string>();
  const used = new Set([indexName.toLowerCase()]);
  for (const p of sorted) {
    let id = sanitizeIdSegment(p.name);
    if (used.has(id.toLowerCase())) id = sanitizeIdSegment(`${id}_${shortHash(p.name)}`);
    used.add(id.toLowerCase());
    propertyIds.set(p.name, id);
    const t = OMF_TYPE_OF[p.kind](intFormat);
    properties[id] = nullable ? { ...t, type: [t.type, "null"] } : { ...t };
  }
  const type: OmfType = { id: typeId, classification: "dynamic", type: "object", properties };
  return { typeId, typeTag, type, indexName, propertyIds };
}

/**
 * Container id `{platform}.{connection}.{device}.{typeTag}` (each segment sanitised; ≤ 100 chars). PI names the
 * points `{containerId}.{propertyId}` (or `{containerId}` for a one-value type). The type tag makes a shape change
 * a new container instead of a 409 redefinition.
 */
export function containerIdFor(source: SourceRef, typeTag: string): string {
  const problems: string[] = [];
  for (const k of ["platform", "connection", "device"] as const) {
    if (typeof source[k] !== "string" || source[k].trim() === "") problems.push(`source.${k}: must be a non-empty string`);
  }
  if (!/^[0-9a-f]{8}$/.test(typeTag)) problems.push("typeTag: must be 8 lowercase hex characters");
  if (problems.length > 0) throw new OmfInvalidMessageError(problems);
  // `.` separates the segments, so it is replaced inside them (else a.b|c and a|b.c would collide).
  const segments = [source.platform, source.connection, source.device].map((s) =>
    sanitizeIdSegment(s, MAX_ID_LENGTH, { allowDots: false }),
  );
  const id = `${segments.join(".")}.${typeTag}`;
  if (id.length <= MAX_ID_LENGTH) return id;
  // Too long: keep a readable head, then a hash of the whole source, then the tag.
  const whole = `_${shortHash(JSON.stringify([source.platform, source.connection, source.device]))}.${typeTag}`;
  const head = segments
    .join(".")
    .slice(0, MAX_ID_LENGTH - whole.length)
    .replace(/[.\s]+$/, "");
  return `${head}${whole}`;
}

export interface ContainerMappingOptions {
  name?: string;
  description?: string;
  /** 1.2 only. */
  datasource?: string;
  metadata?: Readonly<Record<string, string>>;
}

/** The container message object for a source and a type mapping. */
export function containerFor(source: SourceRef, mapping: TypeMapping, options: ContainerMappingOptions = {}): OmfContainer {
  const c: { -readonly [K in keyof OmfContainer]: OmfContainer[K] } = {
    id: containerIdFor(source, mapping.typeTag),
    typeid: mapping.typeId,
  };
  if (options.name !== undefined) c.name = options.name;
  if (options.description !== undefined) c.description = options.description;
  if (options.datasource !== undefined) c.datasource = options.datasource;
  if (options.metadata !== undefined) c.metadata = options.metadata;
  return c;
}

/**
 * One container value: `{ <index>: ISO-8601 UTC, <propertyId>: value }`. Points not in the mapping are an error;
 * points missing from `values` are omitted (null on 1.1+ nullable types).
 */
export function valueFor(mapping: TypeMapping, timestamp: Date | string, values: Readonly<Record<string, unknown>>): OmfValue {
  const ts = typeof timestamp === "string" ? timestamp : timestamp.toISOString();
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(ts)) {
    throw new OmfInvalidMessageError(["timestamp: must be ISO-8601 UTC (YYYY-MM-DDThh:mm:ss[.fff]Z)"]);
  }
  const out: Record<string, unknown> = { [mapping.indexName]: ts };
  for (const [name, value] of Object.entries(values)) {
    const id = mapping.propertyIds.get(name);
    if (id === undefined) throw new OmfInvalidMessageError([`values.${name}: not a point of type ${mapping.typeId}`]);
    out[id] = value;
  }
  return out;
}
