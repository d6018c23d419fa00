/** Timeseries metadata: list, search (`*` wildcards), by id, create, patch, put, delete, get-or-add, facets, history. */
import { randomUUID } from "node:crypto";
import type { EmulatorContext } from "../context.js";
import { ApiError, badRequest, messageModel } from "../errors.js";
import { checkLimit } from "../query.js";
import { type HistoryEntry, type Series, type TimeseriesMeta, wildcardMatcher } from "../store.js";
import { formatTime, msToNs } from "../time.js";
import type { Answer, Call } from "./call.js";
import { seriesOf } from "./data.js";
import { invalid, isObject } from "./request.js";

const FILTERS = ["name", "externalId", "source", "assetId", "facility", "description", "unit"] as const;

function list(ctx: EmulatorContext, c: Call, nameQuery?: string): Answer {
  const q = c.query;
  const tests: ((s: Series) => boolean)[] = [];
  if (nameQuery !== undefined) {
    const m = wildcardMatcher(nameQuery);
    tests.push((s) => m(s.meta.name));
  }
  for (const f of FILTERS) {
    const v = q.str(f);
    if (v === undefined || v === "") continue;
    if (f === "facility" && !v.includes("*")) {
      // Facility codes are case-insensitive and interchangeable with their SAP / STID / NPD aliases.
      const code = ctx.store.facility(v)?.code ?? v;
      tests.push((s) => s.meta.facility.toLowerCase() === code.toLowerCase());
      continue;
    }
    const m = wildcardMatcher(v);
    tests.push((s) => m(s.meta[f]));
  }
  const limit = checkLimit(q.int("limit"), {
    ...ctx.limits,
    defaultLimit: ctx.opts.defaultMetadataLimit,
    maxLimit: ctx.opts.maxMetadataLimit,
  });
  const matched = ctx.store.ordered().filter((s) => ctx.allowed(s) && tests.every((t) => t(s)));
  const token = q.str("continuationToken");
  const offset = token ? decodeOffset(token) : 0;
  const page = matched.slice(offset, offset + limit);
  const more = offset + limit < matched.length;
  return {
    status: 200,
    json: {
      data: { items: page.map((s) => s.meta) },
      count: page.length,
      continuationToken: more ? Buffer.from(JSON.stringify({ o: offset + limit })).toString("base64url") : null,
    },
  };
}

function decodeOffset(text: string): number {
  try {
    const t = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as { o?: unknown };
    if (typeof t.o === "number" && Number.isInteger(t.o) && t.o >= 0) return t.o;
  } catch {
    // refused below
  }
  throw badRequest("Invalid continuationToken.");
}

/** GET base URL */
export const getAll = (ctx: EmulatorContext, c: Call) => list(ctx, c);
/** GET /search and /search/{query} */
export const search = (ctx: EmulatorContext, c: Call, query?: string) => list(ctx, c, query);

const single = (meta: TimeseriesMeta, status = 200): Answer => ({
  status,
  json: { data: { items: [meta] }, count: 1, continuationToken: null },
});

export function getById(ctx: EmulatorContext, _c: Call, id: string): Answer {
  return single(seriesOf(ctx, id).meta);
}

export function getHistory(ctx: EmulatorContext, _c: Call, id: string): Answer {
  return { status: 200, json: { data: { items: seriesOf(ctx, id).history } } };
}

const now = () => formatTime(msToNs(Date.now()));

type Fields = Partial<Omit<TimeseriesMeta, "id" | "source" | "createdTime" | "changedTime">>;

/** Validates the writable fields present in a body; `full` requires name and facility. */
function fields(ctx: EmulatorContext, body: unknown, full: boolean): Fields {
  if (!isObject(body)) throw badRequest("The request body must be a timeseries object.");
  const out: Fields = {};
  const str = (k: "name" | "description" | "unit" | "assetId" | "facility" | "externalId" | "standardUnit") => {
    const v = body[k];
    if (v === undefined) return;
    if (v !== null && typeof v !== "string") throw invalid(v, k);
    (out as Record<string, unknown>)[k] = v;
  };
  for (const k of ["name", "description", "unit", "assetId", "facility", "externalId", "standardUnit"] as const) str(k);
  if (body.step !== undefined) {
    if (typeof body.step !== "boolean") throw invalid(body.step, "step");
    out.step = body.step;
  }
  if (body.metadata !== undefined && body.metadata !== null) {
    if (!isObject(body.metadata)) throw invalid(body.metadata, "metadata");
    const entries = Object.entries(body.metadata);
    if (entries.length > ctx.opts.maxCustomMetadata)
      throw badRequest(`metadata: at most ${ctx.opts.maxCustomMetadata} custom key/value pairs are allowed.`);
    for (const [k, v] of entries) if (typeof v !== "string") throw invalid(v, `metadata.${k}`);
    out.metadata = body.metadata as Record<string, string>;
  }
  if (full || out.name !== undefined) if (!out.name) throw badRequest("The Name field is required.");
  if (full || out.facility !== undefined) {
    if (!out.facility) throw badRequest("The Facility field is required.");
    const f = ctx.store.facility(out.facility);
    if (!f) throw badRequest("Facility not found.");
    out.facility = f.code;
  }
  return out;
}

function duplicate(ctx: EmulatorContext, name: string, facility: string, except?: string): void {
  const other = ctx.store.byName(name, facility);
  if (other && other.meta.id !== except)
    throw new ApiError(409, `Attempt to store timeseries '${name}' from '${facility}' which already exists`);
}

function create(ctx: EmulatorContext, c: Call, f: Fields): Series {
  duplicate(ctx, f.name!, f.facility!);
  const t = now();
  const meta: TimeseriesMeta = {
    id: randomUUID(),
    name: f.name!,
    description: f.description ?? null,
    step: f.step ?? false,
    unit: f.unit ?? null,
    standardUnit: f.standardUnit ?? f.unit ?? null,
    assetId: f.assetId ?? null,
    facility: f.facility!,
    externalId: f.externalId ?? null,
    source: ctx.opts.createdSource,
    createdTime: t,
    changedTime: t,
    metadata: f.metadata ?? {},
  };
  const s = ctx.store.add(meta);
  record(s, c, Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, { oldValue: null, newValue: v }])), t);
  return s;
}

function record(s: Series, c: Call, changes: HistoryEntry["changes"], t: string): void {
  if (Object.keys(changes).length > 0) s.history.push({ changedBy: c.principal.subject, changedTime: t, changes });
}

/** POST base URL */
export function postTimeseries(ctx: EmulatorContext, c: Call): Answer {
  const s = create(ctx, c, fields(ctx, c.body(), true));
  return single(s.meta, 201);
}

/** POST /getoradd: an array of items; each is found by name and facility, or created. */
export function getOrAdd(ctx: EmulatorContext, c: Call): Answer {
  const body = c.body();
  if (!Array.isArray(body)) throw badRequest("The request body must be a JSON array of timeseries.");
  if (body.length > ctx.opts.maxMetadataLimit) throw badRequest(`At most ${ctx.opts.maxMetadataLimit} timeseries per request.`);
  const parsed = body.map((item) => fields(ctx, item, true));
  const items = parsed.map((f) => {
    const found = ctx.store.byName(f.name!, f.facility!);
    if (found) {
      ctx.checkAccess(found);
      return found.meta;
    }
    return create(ctx, c, f).meta;
  });
  return { status: 200, json: { data: { items }, count: items.length, continuationToken: null } };
}

function update(ctx: EmulatorContext, c: Call, id: string, full: boolean): Answer {
  const s = seriesOf(ctx, id);
  const f = fields(ctx, c.body(), full);
  const next: TimeseriesMeta = full
    ? {
        ...s.meta,
        name: f.name!,
        facility: f.facility!,
        description: f.description ?? null,
        step: f.step ?? false,
        unit: f.unit ?? null,
        standardUnit: f.standardUnit ?? f.unit ?? null,
        assetId: f.assetId ?? null,
        externalId: f.externalId ?? null,
        metadata: f.metadata ?? {},
      }
    : { ...s.meta, ...f };
  duplicate(ctx, next.name, next.facility, s.meta.id);
  const changes: HistoryEntry["changes"] = {};
  for (const k of Object.keys(next) as (keyof TimeseriesMeta)[]) {
    if (JSON.stringify(next[k]) !== JSON.stringify(s.meta[k])) changes[k] = { oldValue: s.meta[k], newValue: next[k] };
  }
  const t = now();
  if (Object.keys(changes).length > 0) next.changedTime = t;
  s.meta = next;
  record(s, c, changes, t);
  return single(s.meta);
}

/** PATCH /{id}: fields left out stay. */
export const patchTimeseries = (ctx: EmulatorContext, c: Call, id: string) => update(ctx, c, id, false);
/** PUT /{id}: every field is overwritten. */
export const putTimeseries = (ctx: EmulatorContext, c: Call, id: string) => update(ctx, c, id, true);

export function deleteTimeseries(ctx: EmulatorContext, c: Call, id: string): Answer {
  const s = seriesOf(ctx, id);
  ctx.store.delete(s.meta.id);
  ctx.store.subscriptions.delete(s.meta.id.toLowerCase());
  return { status: 200, json: messageModel(200, `Timeseries '${s.meta.id}' deleted.`, c.traceId) };
}

/** GET /facets/facility?source= and /facets/source?facility= */
export function facets(ctx: EmulatorContext, c: Call, kind: "facility" | "source"): Answer {
  const source = c.query.str("source");
  const facilityArg = c.query.str("facility");
  const facility = facilityArg ? (ctx.store.facility(facilityArg)?.code ?? facilityArg) : undefined;
  const counts = new Map<string, number>();
  for (const s of ctx.store.series.values()) {
    if (!ctx.allowed(s)) continue;
    if (kind === "facility" && source && s.meta.source.toLowerCase() !== source.toLowerCase()) continue;
    if (kind === "source" && facility && s.meta.facility.toLowerCase() !== facility.toLowerCase()) continue;
    const key = kind === "facility" ? s.meta.facility : s.meta.source;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const items = [...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, count]) => ({ [kind]: k, count }));
  return { status: 200, json: { data: { items } } };
}
