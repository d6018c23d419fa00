/**
 * The DTDL checks a DigitalTwinModel create needs, the default adapter the platform generates for a model, and the
 * checks on an adapter's envelope and routes. Only what the OCI notes imply; DTDL features past that (extends,
 * schemas, semantic units) are carried through untouched.
 */

import { compileCondition, compileExpression, ExpressionError, parseJsonPath } from "./expressions.js";

export interface ModelContent {
  name: string;
  kind: "Telemetry" | "Property" | "Command" | "Relationship" | "Component";
  schema: unknown;
  historized: boolean;
}

export class DtdlError extends Error {
  override readonly name = "DtdlError";
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`${path}: ${detail}`);
  }
}

export class AdapterError extends Error {
  override readonly name = "AdapterError";
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

const KINDS = ["Telemetry", "Property", "Command", "Relationship", "Component"] as const;
const CONTEXTS = ["dtmi:dtdl:context;3", "dtmi:dtdl:context;2"];
const SEGMENT = "[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?";
const DTMI = new RegExp(`^dtmi:${SEGMENT}(?::${SEGMENT})*;[1-9][0-9]{0,8}(?:\\.[0-9]{1,6})?$`);
const NAME = /^[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?$/;
const MAX_DTMI_LENGTH = 2048;
const MAX_CONTENTS = 10_000;
const MAX_ROUTES = 128;
const MAX_MAPPINGS = 1_000;

/** DTDL primitive schemas and the JSON value each accepts (v3 adds the sized and unsigned integers, bytes, uuid). */
export const PRIMITIVE_SCHEMAS: Record<string, (v: unknown) => boolean> = {
  double: (v) => typeof v === "number",
  float: (v) => typeof v === "number",
  decimal: (v) => typeof v === "number",
  integer: isInteger,
  long: isInteger,
  short: isInteger,
  byte: isInteger,
  unsignedByte: (v) => isInteger(v) && v >= 0,
  unsignedShort: (v) => isInteger(v) && v >= 0,
  unsignedInteger: (v) => isInteger(v) && v >= 0,
  unsignedLong: (v) => isInteger(v) && v >= 0,
  boolean: (v) => typeof v === "boolean",
  string: (v) => typeof v === "string",
  bytes: (v) => typeof v === "string",
  uuid: (v) => typeof v === "string",
  date: (v) => typeof v === "string" && /^\d{4}-\d{2}-\d{2}$/.test(v),
  dateTime: (v) => typeof v === "string" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i.test(v),
  time: (v) => typeof v === "string" && /^\d{2}:\d{2}:\d{2}(?:\.\d+)?$/.test(v),
  duration: (v) =>
    typeof v === "string" && /^-?P(?!$)(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$/.test(v),
};
const COMPLEX_SCHEMAS = ["Object", "Array", "Map", "Enum"];

function isInteger(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v);
}

export function validateDtdl(spec: unknown): { specUri: string; displayName?: string; description?: string; contents: ModelContent[] } {
  if (!isObject(spec)) throw new DtdlError("spec", "must be a JSON object");
  const context = spec["@context"];
  const contexts = typeof context === "string" ? [context] : Array.isArray(context) ? context : undefined;
  if (!contexts) throw new DtdlError('spec["@context"]', "required (a string or an array)");
  if (!contexts.some((c) => CONTEXTS.includes(c))) throw new DtdlError('spec["@context"]', `must contain ${CONTEXTS.join(" or ")}`);
  if (!typeList(spec["@type"]).includes("Interface")) throw new DtdlError('spec["@type"]', 'must be "Interface"');
  const id = spec["@id"];
  if (typeof id !== "string") throw new DtdlError('spec["@id"]', "required (a DTMI)");
  if (id.length > MAX_DTMI_LENGTH || !DTMI.test(id))
    throw new DtdlError('spec["@id"]', `not a DTMI (dtmi:<segments>;<version>): ${JSON.stringify(id.slice(0, 128))}`);

  const rawContents = spec.contents ?? [];
  if (!Array.isArray(rawContents)) throw new DtdlError("spec.contents", "must be an array");
  if (rawContents.length > MAX_CONTENTS) throw new DtdlError("spec.contents", `more than ${MAX_CONTENTS} entries`);
  const seen = new Set<string>();
  const contents = rawContents.map((c, i) => {
    const content = validateContent(c, `spec.contents[${i}]`);
    if (seen.has(content.name)) throw new DtdlError(`spec.contents[${i}].name`, `duplicate name ${JSON.stringify(content.name)}`);
    seen.add(content.name);
    return content;
  });

  const displayName = localized(spec.displayName, "spec.displayName");
  const description = localized(spec.description, "spec.description");
  return {
    specUri: id,
    ...(displayName === undefined ? {} : { displayName }),
    ...(description === undefined ? {} : { description }),
    contents,
  };
}

function validateContent(c: unknown, path: string): ModelContent {
  if (!isObject(c)) throw new DtdlError(path, "must be an object");
  const types = typeList(c["@type"]);
  if (types.length === 0) throw new DtdlError(`${path}["@type"]`, "required (a string or an array of strings)");
  const kind = types.find((t): t is ModelContent["kind"] => (KINDS as readonly string[]).includes(t));
  if (!kind) throw new DtdlError(`${path}["@type"]`, `must include one of ${KINDS.join(", ")}`);
  const name = c.name;
  if (name === undefined) throw new DtdlError(`${path}.name`, "required");
  if (typeof name !== "string" || name.length > 64 || !NAME.test(name)) {
    throw new DtdlError(
      `${path}.name`,
      `${JSON.stringify(name)} is not a DTDL name (a letter, then letters, digits or '_', not ending in '_', at most 64)`,
    );
  }
  if (kind === "Telemetry" || kind === "Property") {
    if (c.schema === undefined) throw new DtdlError(`${path}.schema`, "required");
    validateSchema(c.schema, `${path}.schema`);
  }
  return { name, kind, schema: c.schema ?? null, historized: types.includes("Historized") };
}

function validateSchema(schema: unknown, path: string): void {
  if (typeof schema === "string") {
    // A DTMI names a schema defined elsewhere in the model (the Interface's `schemas`): accepted, not resolved.
    if (Object.hasOwn(PRIMITIVE_SCHEMAS, schema) || DTMI.test(schema)) return;
    throw new DtdlError(path, `unknown schema ${JSON.stringify(schema)} (primitives: ${Object.keys(PRIMITIVE_SCHEMAS).join(", ")})`);
  }
  if (!isObject(schema)) throw new DtdlError(path, "must be a primitive schema name or a schema object");
  if (!typeList(schema["@type"]).some((t) => COMPLEX_SCHEMAS.includes(t))) {
    throw new DtdlError(`${path}["@type"]`, `must be one of ${COMPLEX_SCHEMAS.join(", ")}`);
  }
}

function typeList(t: unknown): string[] {
  if (typeof t === "string") return [t];
  if (Array.isArray(t) && t.every((x) => typeof x === "string")) return t;
  return [];
}

function localized(v: unknown, path: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "string") return v;
  if (isObject(v)) {
    const text = v.en ?? Object.values(v)[0];
    if (typeof text === "string") return text;
  }
  throw new DtdlError(path, "must be a string or a language map of strings");
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------------------------
// Adapters

/** What the platform generates when an adapter is created with only a model reference (notes §1.3). */
export function defaultAdapter(contents: ModelContent[]): { inboundEnvelope: object; inboundRoutes: object[] } {
  const data: Record<string, unknown> = {};
  const payloadMapping: Record<string, string> = {};
  for (const c of contents) {
    if (c.kind !== "Telemetry" && c.kind !== "Property") continue;
    data[c.name] = zeroValue(c.schema);
    payloadMapping[`$.${c.name}`] = `$.${c.name}`;
  }
  if (!Object.hasOwn(data, "time")) data.time = 0;
  return {
    inboundEnvelope: {
      referenceEndpoint: "/",
      referencePayload: { dataFormat: "JSON", data },
      envelopeMapping: { timeObserved: "$.time" },
    },
    inboundRoutes: [{ condition: "*", payloadMapping }],
  };
}

function zeroValue(schema: unknown): unknown {
  if (typeof schema === "string") {
    const zeros: Record<string, unknown> = {
      boolean: false,
      string: "",
      bytes: "",
      uuid: "00000000-0000-0000-0000-000000000000",
      date: "1970-01-01",
      dateTime: "1970-01-01T00:00:00Z",
      time: "00:00:00",
      duration: "PT0S",
    };
    return Object.hasOwn(zeros, schema) ? zeros[schema] : Object.hasOwn(PRIMITIVE_SCHEMAS, schema) ? 0 : null;
  }
  if (isObject(schema)) {
    const types = typeList(schema["@type"]);
    if (types.includes("Array")) return [];
    if (types.includes("Enum")) {
      const first = Array.isArray(schema.enumValues) && isObject(schema.enumValues[0]) ? schema.enumValues[0].enumValue : undefined;
      return first ?? null;
    }
    return {};
  }
  return null;
}

export function validateAdapter(envelope: unknown, routes: unknown, contents: ModelContent[]): void {
  if (envelope !== undefined && envelope !== null) validateEnvelope(envelope);
  if (routes === undefined || routes === null) return;
  if (!Array.isArray(routes)) throw new AdapterError("inboundRoutes", "must be an array");
  if (routes.length > MAX_ROUTES) throw new AdapterError("inboundRoutes", `more than ${MAX_ROUTES} routes`);
  const names = new Set(contents.map((c) => c.name));
  routes.forEach((route, i) => {
    const at = `inboundRoutes[${i}]`;
    if (!isObject(route)) throw new AdapterError(at, "must be an object");
    if (route.condition === undefined || route.condition === null) throw new AdapterError(`${at}.condition`, "required");
    expression(route.condition, `${at}.condition`, compileCondition);
    if (route.description !== undefined && typeof route.description !== "string")
      throw new AdapterError(`${at}.description`, "must be a string");
    const mapping = route.payloadMapping;
    if (mapping === undefined || mapping === null) return;
    if (!isObject(mapping)) throw new AdapterError(`${at}.payloadMapping`, "must be an object of target path → expression");
    const entries = Object.entries(mapping);
    if (entries.length > MAX_MAPPINGS) throw new AdapterError(`${at}.payloadMapping`, `more than ${MAX_MAPPINGS} entries`);
    for (const [target, value] of entries) {
      const field = `${at}.payloadMapping[${JSON.stringify(target)}]`;
      const content = targetContent(target, field);
      if (!names.has(content)) throw new AdapterError(field, `${JSON.stringify(content)} is not a content of the model`);
      expression(value, field, compileExpression);
    }
  });
}

function validateEnvelope(envelope: unknown): void {
  if (!isObject(envelope)) throw new AdapterError("inboundEnvelope", "must be an object");
  const endpoint = envelope.referenceEndpoint;
  if (endpoint === undefined) throw new AdapterError("inboundEnvelope.referenceEndpoint", "required");
  if (typeof endpoint !== "string" || endpoint.length > 1024)
    throw new AdapterError("inboundEnvelope.referenceEndpoint", "must be a string of at most 1024 characters");
  const payload = envelope.referencePayload;
  if (payload !== undefined && payload !== null && (!isObject(payload) || payload.dataFormat !== "JSON")) {
    throw new AdapterError("inboundEnvelope.referencePayload", 'must be {"dataFormat": "JSON", "data": {...}}');
  }
  const mapping = envelope.envelopeMapping;
  if (mapping === undefined || mapping === null) return;
  if (!isObject(mapping)) throw new AdapterError("inboundEnvelope.envelopeMapping", "must be an object");
  for (const key of ["timeObserved", "target", "contentRoot"]) {
    if (mapping[key] !== undefined && mapping[key] !== null)
      expression(mapping[key], `inboundEnvelope.envelopeMapping.${key}`, compileExpression);
  }
}

function expression(v: unknown, field: string, compile: (e: string) => unknown): void {
  if (typeof v !== "string") throw new AdapterError(field, "must be an expression string");
  try {
    compile(v);
  } catch (e) {
    if (e instanceof ExpressionError) throw new AdapterError(field, e.message);
    throw e;
  }
}

/** The model content a payloadMapping target writes into: the first segment of `$.<content>[.<field>…]`. */
export function targetContent(target: string, field = "payloadMapping"): string {
  let path: ReturnType<typeof parseJsonPath>;
  try {
    path = parseJsonPath(target);
  } catch (e) {
    if (e instanceof ExpressionError) throw new AdapterError(field, `target must be a JsonPath like "$.<content>": ${e.message}`);
    throw e;
  }
  const first = path[0];
  if (typeof first !== "string") throw new AdapterError(field, 'target must name a model content ("$.<content>")');
  return first;
}
