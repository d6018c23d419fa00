import { readFileSync } from "node:fs";
import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Route, RouteSchema, RouteState } from "@meridian/contracts/meridian/route/v1/route_pb";
import {
  CreateRouteResponseSchema,
  DeleteRouteResponseSchema,
  GetRouteResponseSchema,
  ListRoutesResponseSchema,
  RouteService,
  UpdateRouteResponseSchema,
} from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { SourceFilterSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import YAML from "yaml";
import type { CliContext, Column } from "../kit/context.js";
import { CliError, EXIT } from "../kit/exit.js";
import { protoJson } from "../kit/output.js";
import { keyValues, when } from "../kit/parse.js";
import { PLATFORMS, platformName } from "./platform-names.js";

export interface RouteCreateOptions {
  file?: string;
  name?: string;
  sourcePlatform?: string;
  sourceConnection?: string;
  sourceDevice?: string;
  sink?: string;
  target?: string;
  option?: string[];
  disabled?: boolean;
  start?: Date;
}

export interface RouteUpdateOptions {
  name?: string;
  sourcePlatform?: string;
  sourceConnection?: string;
  sourceDevice?: string;
  option?: string[];
  removeOption?: string[];
  enable?: boolean;
  disable?: boolean;
  revision?: bigint;
}

const MAX_FILE_BYTES = 4 * 1024 * 1024;
const MAX_ROUTES_PER_FILE = 1000;

/** Routes from a file: one Route in proto JSON, a list of them, or {routes: [...]} (the gateway's ROUTES_FILE shape). */
export function routesFromFile(path: string, text: string): Route[] {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new CliError(`${path}: neither JSON nor YAML: ${(err as Error).message.split("\n")[0]}`, EXIT.usage);
  }
  const list: unknown[] = Array.isArray(doc)
    ? doc
    : doc && typeof doc === "object" && "routes" in doc && Array.isArray((doc as { routes: unknown }).routes)
      ? (doc as { routes: unknown[] }).routes
      : [doc];
  if (list.length === 0) throw new CliError(`${path}: holds no route`, EXIT.usage);
  if (list.length > MAX_ROUTES_PER_FILE) throw new CliError(`${path}: more than ${MAX_ROUTES_PER_FILE} routes`, EXIT.usage);
  return list.map((item, i) => {
    const where = list.length > 1 || Array.isArray(doc) ? `${path}: routes[${i}]` : path;
    if (!item || typeof item !== "object" || Array.isArray(item)) throw new CliError(`${where}: not a route (an object)`, EXIT.usage);
    try {
      return fromJson(RouteSchema, item as JsonValue);
    } catch (err) {
      throw new CliError(`${where}: ${(err as Error).message}`, EXIT.usage);
    }
  });
}

export function routeFromFlags(id: string | undefined, opts: RouteCreateOptions): Route {
  if (!id) throw new CliError("routes create: give the route's id, or --file", EXIT.usage);
  if (!opts.sink) throw new CliError("routes create: --sink <platform> is required (or --file)", EXIT.usage);
  if (!opts.target) throw new CliError("routes create: --target <name> is required (or --file)", EXIT.usage);
  return create(RouteSchema, {
    id,
    displayName: opts.name ?? "",
    source: {
      platform: opts.sourcePlatform ? PLATFORMS[opts.sourcePlatform] : 0,
      connection: opts.sourceConnection ?? "",
      device: opts.sourceDevice ?? "",
    },
    sink: { platform: PLATFORMS[opts.sink], target: opts.target },
    options: keyValues(opts.option, "--option"),
    disabled: opts.disabled === true,
    ...(opts.start ? { startTime: timestampFromDate(opts.start) } : {}),
  });
}

function source(r: Route): string {
  const s = r.source;
  if (!s) return "*";
  return [s.platform ? platformName(s.platform) : "*", s.connection || "*", s.device || "*"].join("/");
}

function state(r: Route): string {
  if (r.state === RouteState.DRAINING) return "draining";
  return r.disabled ? "disabled" : "active";
}

const COLUMNS: Column<Route>[] = [
  { header: "id", value: (r) => r.id },
  { header: "source", value: source },
  { header: "sink", value: (r) => (r.sink ? platformName(r.sink.platform) : "") },
  { header: "target", value: (r) => r.sink?.target },
  {
    header: "state",
    value: state,
    colour: (r) => (r.state === RouteState.DRAINING ? "yellow" : r.disabled ? "gray" : "green"),
  },
  { header: "pending", value: (r) => r.drain?.pending, align: "right" },
  { header: "created", value: (r) => when(r.createTime ? timestampDate(r.createTime) : undefined) },
];

function routeObject(ctx: CliContext, r: Route): void {
  ctx.out.object({
    id: r.id,
    name: r.displayName,
    source: source(r),
    sink: r.sink ? `${platformName(r.sink.platform)} ${r.sink.target}` : "",
    options: Object.entries(r.options)
      .map(([k, v]) => `${k}=${v}`)
      .join(" "),
    state: ctx.out.paint(state(r), r.state === RouteState.DRAINING ? "yellow" : r.disabled ? "gray" : "green"),
    revision: r.revision,
    created: when(r.createTime ? timestampDate(r.createTime) : undefined),
    updated: when(r.updateTime ? timestampDate(r.updateTime) : undefined),
    "source change": r.sourceChange
      ? `from ${source(create(RouteSchema, { source: r.sourceChange.previousSource }))}, delivered by it up to sequence ${r.sourceChange.lastSequence}`
      : "",
    start: when(r.startTime ? timestampDate(r.startTime) : undefined),
    drain: r.drain
      ? `since ${when(r.drain.deleteTime ? timestampDate(r.drain.deleteTime) : undefined)}, ${r.drain.pending} pending, up to sequence ${r.drain.lastSequence}`
      : "",
  });
}

export async function createRoutes(ctx: CliContext, id: string | undefined, opts: RouteCreateOptions): Promise<void> {
  let routes: Route[];
  if (opts.file) {
    let text: string;
    try {
      const buf = readFileSync(opts.file);
      if (buf.length > MAX_FILE_BYTES) throw new CliError(`${opts.file}: larger than 4 MiB`, EXIT.usage);
      text = buf.toString("utf8");
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`${opts.file}: cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
    }
    routes = routesFromFile(opts.file, text);
    if (id) {
      if (routes.length > 1) throw new CliError(`${opts.file}: holds ${routes.length} routes; an id argument names one`, EXIT.usage);
      routes[0]!.id = id;
    }
  } else {
    routes = [routeFromFlags(id, opts)];
  }
  const client = ctx.client(RouteService);
  const created: Route[] = [];
  for (const route of routes) {
    const res = await client.createRoute({ route }, { signal: ctx.signal });
    created.push(res.route ?? route);
  }
  if (ctx.out.format !== "table") {
    // Flags: one CreateRoute call, its response ({"route": ...}). A file: one call per route, {"routes": [...]}.
    if (opts.file) ctx.out.object({ routes: created.map((r) => protoJson(RouteSchema, r)) });
    else ctx.out.object(protoJson(CreateRouteResponseSchema, create(CreateRouteResponseSchema, { route: created[0] })));
    return;
  }
  for (const r of created)
    ctx.out.note(`route ${r.id} created: ${source(r)} → ${r.sink ? platformName(r.sink.platform) : ""} ${r.sink?.target ?? ""}`);
}

export async function listRoutes(ctx: CliContext): Promise<void> {
  const res = await ctx.client(RouteService).listRoutes({}, { signal: ctx.signal });
  const routes = [...res.routes].sort((a, b) => a.id.localeCompare(b.id));
  // The key is there when the list is empty too, so that `jq '.routes[]'` works on any answer.
  ctx.out.list(routes, COLUMNS, protoJson(ListRoutesResponseSchema, create(ListRoutesResponseSchema, { routes })));
}

export async function getRoute(ctx: CliContext, id: string): Promise<void> {
  const res = await ctx.client(RouteService).getRoute({ id }, { signal: ctx.signal });
  if (!res.route) throw new CliError(`route ${id}: the gateway answered without it`, EXIT.error);
  if (ctx.out.format !== "table") ctx.out.object(protoJson(GetRouteResponseSchema, res));
  else routeObject(ctx, res.route);
}

/**
 * The route as read with the flags' changes; what a flag does not name stays. `any` as --source-platform matches every
 * platform; an empty --source-connection or --source-device likewise.
 */
export function routeWithChanges(read: Route, opts: RouteUpdateOptions): Route {
  if (opts.enable && opts.disable) throw new CliError("routes update: --enable or --disable, not both", EXIT.usage);
  const route = create(RouteSchema, read);
  const source = create(SourceFilterSchema, read.source ?? {});
  if (opts.sourcePlatform !== undefined) source.platform = opts.sourcePlatform === "any" ? 0 : (PLATFORMS[opts.sourcePlatform] ?? 0);
  if (opts.sourceConnection !== undefined) source.connection = opts.sourceConnection;
  if (opts.sourceDevice !== undefined) source.device = opts.sourceDevice;
  route.source = source;
  if (opts.name !== undefined) route.displayName = opts.name;
  const options = { ...read.options };
  for (const key of opts.removeOption ?? []) {
    if (!(key in options)) throw new CliError(`routes update: --remove-option ${key}: route ${read.id} has no such option`, EXIT.usage);
    delete options[key];
  }
  route.options = { ...options, ...keyValues(opts.option, "--option") };
  if (opts.enable) route.disabled = false;
  if (opts.disable) route.disabled = true;
  return route;
}

/**
 * GetRoute, the flags' changes, UpdateRoute at the revision read (or --revision, the one the caller read before): a
 * route changed in between is refused by the gateway (aborted, exit 6), never overwritten.
 */
export async function updateRoute(ctx: CliContext, id: string, opts: RouteUpdateOptions): Promise<void> {
  const client = ctx.client(RouteService);
  const read = (await client.getRoute({ id }, { signal: ctx.signal })).route;
  if (!read) throw new CliError(`route ${id}: the gateway answered without it`, EXIT.error);
  const route = routeWithChanges(read, opts);
  const res = await client.updateRoute({ route, revision: opts.revision ?? read.revision }, { signal: ctx.signal });
  if (ctx.out.format !== "table") {
    ctx.out.object(protoJson(UpdateRouteResponseSchema, res));
    return;
  }
  const r = res.route ?? route;
  const change = r.sourceChange;
  ctx.out.note(
    `route ${id} updated (revision ${r.revision}): ${source(r)} → ${r.sink ? platformName(r.sink.platform) : ""} ${r.sink?.target ?? ""}` +
      (change ? `; what was stored up to sequence ${change.lastSequence} is still delivered by the previous source` : ""),
  );
}

export async function deleteRoute(ctx: CliContext, id: string, opts: { purge?: boolean }): Promise<void> {
  const res = await ctx.client(RouteService).deleteRoute({ id, purge: opts.purge === true }, { signal: ctx.signal });
  if (ctx.out.format !== "table") {
    ctx.out.object(protoJson(DeleteRouteResponseSchema, res));
    return;
  }
  const r = res.route;
  if (opts.purge) ctx.out.note(`route ${id} purged: ${res.dropped} messages dropped`);
  else if (r?.state === RouteState.DRAINING && r.drain) {
    ctx.out.note(
      `route ${id} draining: its sink delivers ${r.drain.pending} pending messages (up to sequence ${r.drain.lastSequence}), then it is gone`,
    );
  } else ctx.out.note(`route ${id} deleted`);
}
