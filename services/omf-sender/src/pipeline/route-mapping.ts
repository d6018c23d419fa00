import { RetryableError } from "@meridian/retry";
import type { OmfType, OmfTypeProperty } from "../platform/index.js";
import { MAX_ID_LENGTH, sanitizeIdSegment } from "../platform/index.js";

/**
 * A route's own OMF types and containers (route option `omfMapping`), in place of the generated ones: the OMF
 * sample's way of customising (your own type definitions, dynamic and static, your own container ids, your data in
 * their properties), fed from routed events instead of a hand-written get_data.
 *
 * ```json
 * { "types": [ <OMF type definitions, dynamic and static> ],
 *   "containers": [ { "id": "{device}.Power", "typeid": "PowerType", "name": "{device} power",
 *                     "when": { "idigi.resource": "DataPoint" },
 *                     "properties": { "Watts": "power", "Status": { "attribute": "state" }, "Site": { "template": "{connection}" } } } ],
 *   "static": [ { "typeid": "Device", "when": { "idigi.resource": "DeviceCore" },
 *                 "properties": { "DeviceId": { "template": "{device}" }, "Status": { "attribute": "connectionStatus" } } } ],
 *   "unmapped": "skip" }
 * ```
 *
 * Parsed and checked once, when the route is loaded; every problem names the option and the field.
 */

export const MAPPING_OPTION = "omfMapping";
/** The option is read into memory and walked for every event: bounded. */
export const MAX_MAPPING_BYTES = 64 * 1024;
const MAX_TYPES = 50;
const MAX_ENTRIES = 50;
const MAX_PROPERTIES = 200;
const MAX_WHEN = 10;
const MAX_TEMPLATE_LENGTH = 200;

export type ValueSource = { point: string } | { attribute: string } | { template: string };

/** One container (dynamic) or static instance entry: where each property's value comes from. */
export interface MappingEntry {
  /** `options.omfMapping.containers[i]` or `…static[i]`: where problems of this entry are reported. */
  readonly path: string;
  readonly type: OmfType;
  readonly indexName: string;
  /** Container id / name / description templates (dynamic entries only). */
  readonly id?: string;
  readonly name?: string;
  readonly description?: string;
  /** Event attributes that must hold these values for the entry to apply. */
  readonly when: ReadonlyArray<readonly [string, string]>;
  /** Property id → where its value comes from. */
  readonly properties: ReadonlyArray<readonly [string, ValueSource]>;
  /** True when at least one property reads the event (a point or an attribute), not only templates. */
  readonly readsEvent: boolean;
}

export interface RouteMapping {
  readonly types: ReadonlyMap<string, OmfType>;
  readonly containers: readonly MappingEntry[];
  readonly statics: readonly MappingEntry[];
  /** What happens to points no entry maps: `skip` (default) or `generated` (the generated types, as without a mapping). */
  readonly unmapped: "skip" | "generated";
}

/**
 * A route whose mapping cannot be used: its events wait on the bus (redelivered every 30 s) until the route is
 * corrected, rather than being written with the generated types somewhere the user did not ask for.
 */
export class RouteMappingError extends RetryableError {
  constructor(problem: string) {
    super(`route option ${MAPPING_OPTION}: ${problem} (events held until the route is corrected)`, 30_000);
    this.name = "RouteMappingError";
  }
}

const PLACEHOLDERS = ["platform", "connection", "device"] as const;
export type TemplateSource = Readonly<Record<(typeof PLACEHOLDERS)[number], string>>;
const PLACEHOLDER = /\{([^{}]*)\}/g;
const SCALARS = new Set(["integer", "number", "string", "boolean"]);
const FORMATS: Record<string, ReadonlySet<string>> = {
  integer: new Set(["int64", "int32", "int16", "uint64", "uint32", "uint16"]),
  number: new Set(["float64", "float32", "float16"]),
  string: new Set(["date-time"]),
  boolean: new Set(),
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The property's scalar type (the non-null member of a nullable type), or undefined when it is none. */
export function scalarOf(p: OmfTypeProperty): string | undefined {
  const t = Array.isArray(p.type) ? p.type.filter((x) => x !== "null") : [p.type];
  return t.length === 1 && typeof t[0] === "string" && SCALARS.has(t[0]) ? t[0] : undefined;
}

function templateProblem(t: unknown, field: string): string | undefined {
  if (typeof t !== "string" || t.trim() === "") return `${field}: must be a non-empty string`;
  if (t.length > MAX_TEMPLATE_LENGTH) return `${field}: at most ${MAX_TEMPLATE_LENGTH} characters`;
  for (const m of t.matchAll(PLACEHOLDER)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(m[1]!))
      return `${field}: unknown placeholder {${m[1]}} (known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(", ")})`;
  }
  if (/[{}]/.test(t.replace(PLACEHOLDER, ""))) return `${field}: unbalanced { or }`;
  return undefined;
}

/**
 * `{platform}`, `{connection}` and `{device}` replaced by the event's source. In ids each value is made a safe id
 * segment first (the characters PI and SDS refuse replaced, a hash appended when anything changed), so a source
 * cannot put characters into an id that the endpoint would refuse.
 */
export function renderTemplate(template: string, source: TemplateSource, forId: boolean): string {
  return template.replace(PLACEHOLDER, (_, name: (typeof PLACEHOLDERS)[number]) =>
    forId ? sanitizeIdSegment(source[name], MAX_ID_LENGTH, { allowDots: false }) : source[name],
  );
}

function checkType(raw: unknown, at: string, problems: string[]): OmfType | undefined {
  if (!isRecord(raw)) {
    problems.push(`${at}: must be an OMF type object`);
    return undefined;
  }
  const before = problems.length;
  const id = raw["id"];
  if (typeof id !== "string" || id === "") problems.push(`${at}.id: required`);
  else if (id.startsWith("__")) problems.push(`${at}.id: must not start with "__" (reserved)`);
  else if (id.length > MAX_ID_LENGTH || sanitizeIdSegment(id) !== id)
    problems.push(
      `${at}.id: "${id}" is not an id PI and SDS both accept (at most ${MAX_ID_LENGTH} characters, none of * ? ; { } [ ] \\ ' " | / : # @ ! $ & ( ) + , = % < > \`)`,
    );
  const classification = raw["classification"];
  if (classification !== "dynamic" && classification !== "static") problems.push(`${at}.classification: must be dynamic or static`);
  if (raw["type"] !== undefined && raw["type"] !== "object") problems.push(`${at}.type: must be "object"`);
  if (raw["enum"] !== undefined) problems.push(`${at}.enum: enum types cannot be mapped to (use a property's enum)`);
  const props = raw["properties"];
  if (!isRecord(props) || Object.keys(props).length === 0) {
    problems.push(`${at}.properties: required, an object of properties`);
    return undefined;
  }
  if (Object.keys(props).length > MAX_PROPERTIES) problems.push(`${at}.properties: at most ${MAX_PROPERTIES}`);
  const indexes: string[] = [];
  const seen = new Set<string>();
  for (const [name, p] of Object.entries(props)) {
    const pat = `${at}.properties.${name}`;
    if (seen.has(name.toLowerCase())) problems.push(`${pat}: duplicates another property (names are case-insensitive on PI and SDS)`);
    seen.add(name.toLowerCase());
    if (!isRecord(p)) {
      problems.push(`${pat}: must be an object`);
      continue;
    }
    const prop = p as OmfTypeProperty;
    const scalar = scalarOf(prop);
    if (prop.reftypeid !== undefined || scalar === undefined)
      problems.push(`${pat}.type: must be integer, number, string or boolean (nullable allowed) in a route mapping`);
    else if (prop.format !== undefined && !FORMATS[scalar]!.has(prop.format))
      problems.push(`${pat}.format: "${prop.format}" is not a format of ${scalar}`);
    if (prop.enum !== undefined) {
      const ok =
        Array.isArray(prop.enum) &&
        prop.enum.length > 0 &&
        prop.enum.every((e) => typeof e === (scalar === "string" ? "string" : "number"));
      if (!ok || (scalar !== "string" && scalar !== "integer"))
        problems.push(
          `${pat}.enum: must be a non-empty array of ${scalar === "integer" ? "integers" : "strings"} on a string or integer property`,
        );
    }
    if (prop.isindex === true) {
      indexes.push(name);
      if (classification === "dynamic" && !(scalar === "string" && prop.format === "date-time"))
        problems.push(`${pat}: the index of a dynamic type must be a string of format date-time (the event's observed time)`);
      if (classification === "static" && !(scalar === "string" && prop.format === undefined))
        problems.push(`${pat}: the index of a static type must be a string without format`);
    }
  }
  if (indexes.length !== 1) problems.push(`${at}.properties: exactly one property must have isindex: true (found ${indexes.length})`);
  return problems.length === before ? (raw as unknown as OmfType) : undefined;
}

function checkSource(raw: unknown, at: string, problems: string[]): ValueSource | undefined {
  if (typeof raw === "string") {
    if (raw === "") problems.push(`${at}: a point name must not be empty`);
    return raw === "" ? undefined : { point: raw };
  }
  if (!isRecord(raw) || Object.keys(raw).length !== 1) {
    problems.push(`${at}: must be a point name, or one of {"point": name}, {"attribute": name}, {"template": text}`);
    return undefined;
  }
  const [k, v] = Object.entries(raw)[0]!;
  if (k === "template") {
    const p = templateProblem(v, `${at}.template`);
    if (p) problems.push(p);
    return p ? undefined : { template: v as string };
  }
  if ((k === "point" || k === "attribute") && typeof v === "string" && v !== "") return k === "point" ? { point: v } : { attribute: v };
  problems.push(`${at}: must be a point name, or one of {"point": name}, {"attribute": name}, {"template": text}`);
  return undefined;
}

function indexOf(type: OmfType): string {
  return Object.entries(type.properties ?? {}).find(([, p]) => p.isindex === true)![0];
}

function checkEntry(
  raw: unknown,
  at: string,
  kind: "dynamic" | "static",
  types: ReadonlyMap<string, OmfType>,
  problems: string[],
): MappingEntry | undefined {
  if (!isRecord(raw)) {
    problems.push(`${at}: must be an object`);
    return undefined;
  }
  const before = problems.length;
  const allowed = kind === "dynamic" ? ["id", "typeid", "name", "description", "when", "properties"] : ["typeid", "when", "properties"];
  for (const k of Object.keys(raw)) if (!allowed.includes(k)) problems.push(`${at}.${k}: unknown field (known: ${allowed.join(", ")})`);
  let idTemplate: string | undefined;
  if (kind === "dynamic") {
    const p = templateProblem(raw["id"], `${at}.id`);
    if (p) problems.push(p);
    else {
      idTemplate = raw["id"] as string;
      // The literal part must be an id the endpoints accept; placeholders are made safe when rendered.
      const sample = renderTemplate(idTemplate, { platform: "p", connection: "c", device: "d" }, true);
      if (sanitizeIdSegment(sample) !== sample) problems.push(`${at}.id: "${idTemplate}" holds characters PI or SDS refuse in an id`);
    }
    for (const k of ["name", "description"] as const) {
      if (raw[k] === undefined) continue;
      const q = templateProblem(raw[k], `${at}.${k}`);
      if (q) problems.push(q);
    }
  }
  const typeid = raw["typeid"];
  const type = typeof typeid === "string" ? types.get(typeid) : undefined;
  if (typeof typeid !== "string" || typeid === "") problems.push(`${at}.typeid: required`);
  else if (!type) problems.push(`${at}.typeid: "${typeid}" is not one of types[].id`);
  else if (type.classification !== kind)
    problems.push(
      `${at}.typeid: "${typeid}" is ${type.classification}; ${kind === "dynamic" ? "containers" : "static"} need a ${kind} type`,
    );
  const when: Array<[string, string]> = [];
  if (raw["when"] !== undefined) {
    const w = raw["when"];
    if (!isRecord(w) || Object.keys(w).length > MAX_WHEN || !Object.values(w).every((v) => typeof v === "string"))
      problems.push(`${at}.when: must be an object of at most ${MAX_WHEN} attribute names → string values`);
    else when.push(...(Object.entries(w) as Array<[string, string]>));
  }
  const props = raw["properties"];
  const properties: Array<[string, ValueSource]> = [];
  if (!isRecord(props) || Object.keys(props).length === 0) problems.push(`${at}.properties: required, property id → value source`);
  else if (type) {
    const index = indexOf(type);
    for (const [name, src] of Object.entries(props)) {
      const pat = `${at}.properties.${name}`;
      if (!type.properties?.[name]) problems.push(`${pat}: not a property of type "${type.id}"`);
      else if (kind === "dynamic" && name === index) problems.push(`${pat}: the index is the event's observed time, not mapped`);
      const s = checkSource(src, pat, problems);
      if (s) properties.push([name, s]);
    }
    if (kind === "static" && !(index in props))
      problems.push(`${at}.properties.${index}: required (the static type's index names the instance)`);
  }
  if (problems.length > before || !type) return undefined;
  return {
    path: at,
    type,
    indexName: indexOf(type),
    ...(idTemplate !== undefined ? { id: idTemplate } : {}),
    ...(typeof raw["name"] === "string" ? { name: raw["name"] } : {}),
    ...(typeof raw["description"] === "string" ? { description: raw["description"] } : {}),
    when,
    properties,
    readsEvent: properties.some(([, s]) => !("template" in s)),
  };
}

/** Parses and checks the `omfMapping` option: the mapping, or every problem found (each naming the option's field). */
export function parseRouteMapping(text: string): { mapping?: RouteMapping; problems: string[] } {
  const at = `options.${MAPPING_OPTION}`;
  if (Buffer.byteLength(text, "utf8") > MAX_MAPPING_BYTES) return { problems: [`${at}: at most ${MAX_MAPPING_BYTES} bytes`] };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { problems: [`${at}: not JSON (${(err as Error).message})`] };
  }
  if (!isRecord(raw)) return { problems: [`${at}: must be a JSON object with types and containers and/or static`] };
  const problems: string[] = [];
  for (const k of Object.keys(raw))
    if (!["types", "containers", "static", "unmapped"].includes(k))
      problems.push(`${at}.${k}: unknown field (known: types, containers, static, unmapped)`);
  const types = new Map<string, OmfType>();
  const rawTypes = raw["types"];
  if (!Array.isArray(rawTypes) || rawTypes.length === 0 || rawTypes.length > MAX_TYPES)
    problems.push(`${at}.types: required, 1 to ${MAX_TYPES} OMF type definitions`);
  else
    rawTypes.forEach((t, i) => {
      const type = checkType(t, `${at}.types[${i}]`, problems);
      if (!type) return;
      if ([...types.keys()].some((k) => k.toLowerCase() === type.id.toLowerCase()))
        problems.push(`${at}.types[${i}].id: "${type.id}" is defined twice (ids are case-insensitive on PI and SDS)`);
      else types.set(type.id, type);
    });
  const entries = (key: "containers" | "static", kind: "dynamic" | "static"): MappingEntry[] => {
    const list = raw[key];
    if (list === undefined) return [];
    if (!Array.isArray(list) || list.length > MAX_ENTRIES) {
      problems.push(`${at}.${key}: must be an array of at most ${MAX_ENTRIES}`);
      return [];
    }
    return list.flatMap((e, i) => checkEntry(e, `${at}.${key}[${i}]`, kind, types, problems) ?? []);
  };
  const containers = entries("containers", "dynamic");
  const statics = entries("static", "static");
  if (raw["containers"] === undefined && raw["static"] === undefined) problems.push(`${at}: needs containers and/or static`);
  const unmapped = raw["unmapped"] ?? "skip";
  if (unmapped !== "skip" && unmapped !== "generated") problems.push(`${at}.unmapped: must be skip or generated`);
  if (problems.length > 0) return { problems };
  return { mapping: { types, containers, statics, unmapped: unmapped as "skip" | "generated" }, problems };
}

/** A source value as the event holds it. */
export type SourceValue =
  | { kind: "double"; value: number }
  | { kind: "int"; value: bigint }
  | { kind: "bool"; value: boolean }
  | { kind: "string"; value: string };

const INT_RANGE: Record<string, readonly [bigint, bigint]> = {
  int16: [-(2n ** 15n), 2n ** 15n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint16: [0n, 2n ** 16n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};
const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^[+-]?\d+$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const show = (v: SourceValue) => `${v.kind} ${v.kind === "string" ? JSON.stringify(v.value) : String(v.value)}`;

/**
 * Converts a value to the OMF type of the property it is mapped to, or says why it cannot be (the caller refuses the
 * event). Nothing is rounded: a double goes into an integer property only when it is a whole number in the format's
 * range (3.0 → 3; 3.5 is refused), because a rounded value would be stored as if it had been measured. Strings
 * (attributes, string points) are parsed for number, integer and boolean properties; a boolean into an integer
 * property is 1 / 0; anything into a string property is its text; an enum takes its own spelling of a value that
 * matches case-insensitively (`true` → `"True"`).
 */
export function convertValue(v: SourceValue, p: OmfTypeProperty): { value: unknown } | { problem: string } {
  const scalar = scalarOf(p);
  const refuse = (why: string) => ({ problem: `${show(v)} does not fit ${scalar}${p.format ? ` (${p.format})` : ""}: ${why}` });
  let out: unknown;
  switch (scalar) {
    case "number": {
      if (v.kind === "double") out = Number.isFinite(v.value) ? v.value : null;
      else if (v.kind === "int") out = Number(v.value);
      else if (v.kind === "string" && NUMERIC.test(v.value.trim())) out = Number(v.value.trim());
      else return refuse("not a number");
      break;
    }
    case "integer": {
      let n: bigint;
      if (v.kind === "int") n = v.value;
      else if (v.kind === "bool") n = v.value ? 1n : 0n;
      else if (v.kind === "double") {
        if (!Number.isInteger(v.value)) return refuse("not a whole number (values are never rounded)");
        n = BigInt(v.value);
      } else if (INTEGER.test(v.value.trim())) n = BigInt(v.value.trim());
      else return refuse("not a whole number (values are never rounded)");
      const [min, max] = INT_RANGE[p.format ?? "int32"]!;
      if (n < min || n > max) return refuse(`out of range ${min}..${max}`);
      // JSON has no 64-bit integers: beyond 2^53 the number sent is the nearest double.
      out = Number(n);
      break;
    }
    case "boolean": {
      if (v.kind === "bool") out = v.value;
      else if (v.kind === "int" && (v.value === 0n || v.value === 1n)) out = v.value === 1n;
      else if (v.kind === "double" && (v.value === 0 || v.value === 1)) out = v.value === 1;
      else if (v.kind === "string" && /^(true|false)$/i.test(v.value.trim())) out = v.value.trim().toLowerCase() === "true";
      else return refuse("not true or false");
      break;
    }
    case "string": {
      out = v.kind === "string" ? v.value : String(v.value);
      if (p.format === "date-time" && !DATE_TIME.test(out as string)) return refuse("not an ISO-8601 UTC time");
      break;
    }
    default:
      return refuse("unsupported property type");
  }
  if (p.enum !== undefined && out !== null) {
    const match = p.enum.find((e) =>
      typeof e === "string" && typeof out === "string" ? e.toLowerCase() === out.toLowerCase() : e === out,
    );
    if (match === undefined) return refuse(`not one of the enum ${JSON.stringify(p.enum)}`);
    out = match;
  }
  return { value: out };
}
