/**
 * One device message through a twin's adapter (notes §4): time observed from the envelope, the first route whose
 * condition holds, its payload mapping into model contents, and a type check against the DTDL primitives. The caller
 * stores the result as snapshot/historized rows, or the rejection as a rejectedData row.
 */

import { AdapterError, defaultAdapter, type ModelContent, PRIMITIVE_SCHEMAS } from "./dtdl.js";
import {
  compileCondition,
  compileExpression,
  type ExpressionContext,
  ExpressionError,
  type PathSegment,
  parseJsonPath,
} from "./expressions.js";
import { parseIsoMicros } from "./ords-filter.js";

export type NormalizeResult =
  | { ok: true; timeObservedMicros: bigint; values: Record<string, unknown> }
  | { ok: false; reasonCode: number; reasonMessage: string };

/** The only rejection the public material shows (§2.6); its wording is reproduced exactly. */
const EMPTY: NormalizeResult = { ok: false, reasonCode: 500, reasonMessage: "Normalization output is empty" };
/** Our choice for every other rejection: the notes mark other reason codes unverified. */
const INVALID = 400;

export function normalize(input: {
  payload: unknown;
  endpoint: string;
  timeReceivedMicros: bigint;
  // biome-ignore lint/suspicious/noExplicitAny: the stored adapter is JSON as the client sent it, validated by validateAdapter
  inboundEnvelope?: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  inboundRoutes?: any[];
  contents: ModelContent[];
}): NormalizeResult {
  const generated = input.inboundEnvelope && input.inboundRoutes ? undefined : defaultAdapter(input.contents);
  const envelope = input.inboundEnvelope ?? generated?.inboundEnvelope;
  const routes: unknown[] = input.inboundRoutes ?? generated?.inboundRoutes ?? [];
  const mapping = isObject(envelope) && isObject(envelope.envelopeMapping) ? envelope.envelopeMapping : {};
  try {
    const whole: ExpressionContext = { payload: input.payload, endpoint: input.endpoint };
    const time = timeObserved(mapping.timeObserved, whole, input.timeReceivedMicros);
    if (!time.ok) return time;
    const ctx: ExpressionContext =
      typeof mapping.contentRoot === "string"
        ? { payload: cached(mapping.contentRoot, compileExpression)(whole), endpoint: input.endpoint }
        : whole;
    const route = routes.find((r) => isObject(r) && typeof r.condition === "string" && cached(r.condition, compileCondition)(ctx));
    if (!isObject(route) || !isObject(route.payloadMapping)) return EMPTY;
    const values: Record<string, unknown> = {};
    for (const [target, expr] of Object.entries(route.payloadMapping)) {
      if (typeof expr !== "string") continue;
      const value = cached(expr, compileExpression)(ctx);
      // A missing source (JsonPath undefined, jq null) maps nothing rather than writing null into the twin.
      if (value === undefined || value === null) continue;
      setPath(values, cached(target, parseJsonPath), value);
    }
    if (Object.keys(values).length === 0) return EMPTY;
    const mismatch = checkTypes(values, input.contents);
    return mismatch ?? { ok: true, timeObservedMicros: time.micros, values };
  } catch (e) {
    if (e instanceof ExpressionError || e instanceof AdapterError) return { ok: false, reasonCode: INVALID, reasonMessage: e.message };
    throw e;
  }
}

function timeObserved(
  expr: unknown,
  ctx: ExpressionContext,
  received: bigint,
): { ok: true; micros: bigint } | { ok: false; reasonCode: number; reasonMessage: string } {
  if (typeof expr !== "string") return { ok: true, micros: received };
  const v = cached(expr, compileExpression)(ctx);
  if (v === undefined || v === null) return { ok: true, micros: received };
  if (typeof v === "number" && Number.isSafeInteger(v)) return { ok: true, micros: BigInt(v) };
  if (typeof v === "string") {
    try {
      return { ok: true, micros: parseIsoMicros(v) };
    } catch {
      // falls through to the rejection below
    }
  }
  return {
    ok: false,
    reasonCode: INVALID,
    reasonMessage: `timeObserved: expected epoch microseconds or an ISO-8601 time, got ${JSON.stringify(v).slice(0, 64)}`,
  };
}

function checkTypes(values: Record<string, unknown>, contents: ModelContent[]): NormalizeResult | undefined {
  for (const [name, value] of Object.entries(values)) {
    const content = contents.find((c) => c.name === name);
    if (!content) return { ok: false, reasonCode: INVALID, reasonMessage: `${name}: not a content of the model` };
    const expected = schemaName(content.schema);
    if (expected && !fits(content.schema, value)) {
      return { ok: false, reasonCode: INVALID, reasonMessage: `${name}: expected ${expected}, got ${jsonType(value)}` };
    }
  }
  return undefined;
}

function schemaName(schema: unknown): string | undefined {
  if (typeof schema === "string") return Object.hasOwn(PRIMITIVE_SCHEMAS, schema) ? schema : undefined;
  if (!isObject(schema)) return undefined;
  const t = Array.isArray(schema["@type"]) ? schema["@type"] : [schema["@type"]];
  return ["Object", "Array", "Map", "Enum"].find((x) => t.includes(x));
}

function fits(schema: unknown, value: unknown): boolean {
  if (typeof schema === "string") return PRIMITIVE_SCHEMAS[schema]!(value);
  switch (schemaName(schema)) {
    case "Object":
    case "Map":
      return isObject(value);
    case "Array":
      return Array.isArray(value);
    default:
      return typeof value === "string" || typeof value === "number";
  }
}

function setPath(root: Record<string, unknown>, path: PathSegment[], value: unknown): void {
  if (path.length === 0 || typeof path[0] !== "string") throw new AdapterError("payloadMapping", "a target must name a model content");
  let node: Record<string, unknown> | unknown[] = root;
  path.forEach((seg, i) => {
    if (i === path.length - 1) {
      (node as Record<string | number, unknown>)[seg] = value;
      return;
    }
    const current = (node as Record<string | number, unknown>)[seg];
    const wantArray = typeof path[i + 1] === "number";
    const child = wantArray ? (Array.isArray(current) ? current : []) : isObject(current) ? current : {};
    (node as Record<string | number, unknown>)[seg] = child;
    node = child;
  });
}

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

// Adapters are few and messages many: compile each expression once. Bounded so that adapters edited many times in a
// long-running emulator do not grow it without limit.
const compiled = new Map<string, unknown>();
const MAX_COMPILED = 2_000;

function cached<T>(expr: string, compile: (e: string) => T): T {
  const key = `${compile.name}\u0000${expr}`;
  let hit = compiled.get(key) as T | undefined;
  if (hit === undefined) {
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    hit = compile(expr);
    compiled.set(key, hit);
  }
  return hit;
}
