import { create } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  CreatedDefinitionSchema,
  DefinitionKind,
  DefinitionOutcomeSchema,
  EndpointDefinitionSchema,
  type OmfSenderService,
  PointSchema,
  RecordedValueSchema,
} from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { type FieldViolation, invalidArgument, requestLogger } from "@meridian/service-kit";
import type { CreatedDefinition, DefinitionState } from "../pipeline/store.js";
import {
  deleteDefinitions,
  listPoints,
  listStreams,
  listTypes,
  type OmfClient,
  type OmfContainer,
  OmfError,
  type OmfType,
  type PageOptions,
  readValues,
  type SdsDefinition,
} from "../platform/index.js";
import { echoableMessage, echoText, redactor } from "./echo.js";

/**
 * Read-back and definitions: ListPoints, ReadValues, ListTypes, ListContainers (through the endpoint's REST API),
 * ListDefinitions and DeleteDefinitions (omf-sender's own record of what it created, then the endpoint).
 */

export const MAX_FILTER_CHARS = 256;
export const MAX_POINT_CHARS = 1000;
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_READ_VALUES = 10_000;
export const DEFAULT_READ_VALUES = 1000;
export const MAX_DELETE_DEFINITIONS = 10_000;
export const DEFAULT_DELETE_DEFINITIONS = 1000;
/** Page tokens are offsets; the largest an endpoint list or omf-sender's record can reach with room to spare. */
const MAX_OFFSET = 10_000_000;
/** The gateway's route ids (services/gateway validation): anything else names no route. */
const ROUTE_ID = /^[a-z][a-z0-9-]{0,62}$/;

/** An endpoint's answer to a read, its text redacted as every echo of an endpoint is; the error table maps its class. */
export class EndpointReadError extends Error {
  constructor(
    message: string,
    readonly endpointError: OmfError,
  ) {
    super(message, { cause: endpointError });
    this.name = "EndpointReadError";
  }
}

export interface ReadbackDeps {
  state: DefinitionState;
  /** The endpoint's client (not_found when there is none; the policy and secret are checked as for a send). */
  clientOf: (id: string) => Promise<OmfClient>;
}

type Handlers = Pick<
  ServiceImpl<typeof OmfSenderService>,
  "listPoints" | "readValues" | "listTypes" | "listContainers" | "listDefinitions" | "deleteDefinitions"
>;

interface Paging {
  skip: number;
  count: number;
}

function paging(violations: FieldViolation[], pageSize: number, pageToken: string): Paging {
  if (pageSize < 0 || pageSize > MAX_PAGE_SIZE)
    violations.push({ path: "page_size", reason: `must be 0 (${DEFAULT_PAGE_SIZE}) to ${MAX_PAGE_SIZE}` });
  let skip = 0;
  if (pageToken !== "") {
    if (!/^\d{1,8}$/.test(pageToken) || Number(pageToken) > MAX_OFFSET)
      violations.push({ path: "page_token", reason: "not a page token of this RPC (use next_page_token as returned)" });
    else skip = Number(pageToken);
  }
  return { skip, count: pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize };
}

const nextToken = (p: Paging, returned: number) => (returned >= p.count ? String(p.skip + returned) : "");

function filterViolations(violations: FieldViolation[], path: string, filter: string): void {
  if (filter.length > MAX_FILTER_CHARS) violations.push({ path, reason: `at most ${MAX_FILTER_CHARS} characters` });
  // Control characters would reach the endpoint's query string.
  if (/[\u0000-\u001f\u007f]/.test(filter)) violations.push({ path, reason: "must not contain control characters" });
}

function requireEndpoint(violations: FieldViolation[], id: string): void {
  if (id === "") violations.push({ path: "endpoint_id", reason: "required" });
}

/** ISO-8601 with 7 fractional digits (the receivers' 100 ns tick), as the window bound an endpoint reads. */
function isoTick(t: Timestamp): string {
  const base = timestampDate({ ...t, nanos: 0 } as Timestamp)
    .toISOString()
    .slice(0, 19);
  return `${base}.${String(t.nanos).padStart(9, "0").slice(0, 7)}Z`;
}

const KIND: Record<CreatedDefinition["kind"], DefinitionKind> = { type: DefinitionKind.TYPE, container: DefinitionKind.CONTAINER };

export function readbackHandlers(deps: ReadbackDeps): Handlers {
  /** Runs a read against the endpoint; its errors come back as EndpointReadError with the text redacted. */
  const read = async <T>(client: OmfClient, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof OmfError) throw new EndpointReadError(echoText(echoableMessage(err) ?? err.name, redactor(client)), err);
      throw err;
    }
  };
  /** ListTypes and ListContainers: a page of the SDS definitions whose id matches the filter, from an SDS endpoint. */
  const sdsListing = async (
    rpc: string,
    req: { endpointId: string; idFilter: string; pageSize: number; pageToken: string },
    list: (client: OmfClient, idFilter: string, page: PageOptions) => Promise<SdsDefinition[]>,
    signal: AbortSignal,
  ) => {
    const violations: FieldViolation[] = [];
    requireEndpoint(violations, req.endpointId);
    filterViolations(violations, "id_filter", req.idFilter);
    const page = paging(violations, req.pageSize, req.pageToken);
    if (violations.length > 0) invalidArgument(violations);
    const client = await deps.clientOf(req.endpointId);
    if (client.kind === "pi")
      throw new ConnectError(
        `${rpc}: PI Web API has no read path for OMF types or containers; ListPoints lists its points, ListDefinitions what omf-sender created there`,
        Code.FailedPrecondition,
      );
    const items = await read(client, () => list(client, req.idFilter || "*", { ...page, signal }));
    return {
      definitions: items.map((d) => create(EndpointDefinitionSchema, { id: d.id, typeId: d.typeId ?? "", json: JSON.stringify(d.body) })),
      nextPageToken: nextToken(page, items.length),
    };
  };
  const routeViolations = (violations: FieldViolation[], routeId: string) => {
    if (routeId !== "" && !ROUTE_ID.test(routeId)) violations.push({ path: "route_id", reason: "not a route id" });
  };

  return {
    async listPoints(req, ctx) {
      const violations: FieldViolation[] = [];
      requireEndpoint(violations, req.endpointId);
      filterViolations(violations, "name_filter", req.nameFilter);
      const page = paging(violations, req.pageSize, req.pageToken);
      if (violations.length > 0) invalidArgument(violations);
      const client = await deps.clientOf(req.endpointId);
      const points = await read(client, () =>
        listPoints(client, req.nameFilter || "*", { skip: page.skip, count: page.count, signal: ctx.signal }),
      );
      return {
        points: points.map((p) => create(PointSchema, { name: p.name, id: p.id, type: p.type, description: p.description ?? "" })),
        nextPageToken: nextToken(page, points.length),
      };
    },

    async readValues(req, ctx) {
      const violations: FieldViolation[] = [];
      requireEndpoint(violations, req.endpointId);
      if (req.point === "") violations.push({ path: "point", reason: "required" });
      else if (req.point.length > MAX_POINT_CHARS) violations.push({ path: "point", reason: `at most ${MAX_POINT_CHARS} characters` });
      if (req.maxCount < 0 || req.maxCount > MAX_READ_VALUES)
        violations.push({ path: "max_count", reason: `must be 0 (${DEFAULT_READ_VALUES}) to ${MAX_READ_VALUES}` });
      if (req.last && (req.startTime || req.endTime))
        violations.push({ path: "last", reason: "reads the current value only: leave start_time and end_time unset" });
      for (const [path, t] of [
        ["start_time", req.startTime],
        ["end_time", req.endTime],
      ] as const)
        if (t && (t.nanos < 0 || t.nanos > 999_999_999 || Number.isNaN(timestampDate(t).getTime())))
          violations.push({ path, reason: "not a valid time" });
      if (req.startTime && req.endTime && timestampDate(req.startTime) > timestampDate(req.endTime))
        violations.push({ path: "end_time", reason: "before start_time" });
      if (violations.length > 0) invalidArgument(violations);
      const client = await deps.clientOf(req.endpointId);
      const r = await read(client, () =>
        readValues(client, req.point, {
          last: req.last,
          ...(req.startTime ? { start: isoTick(req.startTime) } : {}),
          ...(req.endTime ? { end: isoTick(req.endTime) } : {}),
          maxCount: req.maxCount || DEFAULT_READ_VALUES,
          signal: ctx.signal,
        }),
      );
      return {
        values: r.values.map((v) => create(RecordedValueSchema, { timestamp: v.timestamp, valueJson: JSON.stringify(v.value ?? null) })),
        noData: r.noData,
        truncated: r.truncated,
      };
    },

    async listTypes(req, ctx) {
      const { definitions, nextPageToken } = await sdsListing("ListTypes", req, listTypes, ctx.signal);
      return { types: definitions, nextPageToken };
    },

    async listContainers(req, ctx) {
      const { definitions, nextPageToken } = await sdsListing("ListContainers", req, listStreams, ctx.signal);
      return { containers: definitions, nextPageToken };
    },

    async listDefinitions(req) {
      const violations: FieldViolation[] = [];
      requireEndpoint(violations, req.endpointId);
      routeViolations(violations, req.routeId);
      const page = paging(violations, req.pageSize, req.pageToken);
      if (violations.length > 0) invalidArgument(violations);
      const client = await deps.clientOf(req.endpointId);
      const all = await deps.state.created(req.endpointId, client, req.routeId || undefined);
      const slice = all.slice(page.skip, page.skip + page.count);
      return {
        definitions: slice.map((d) =>
          create(CreatedDefinitionSchema, {
            kind: KIND[d.kind],
            id: d.id,
            typeId: d.typeId ?? "",
            routeId: d.route ?? "",
            createTime: timestampFromDate(new Date(d.at)),
          }),
        ),
        nextPageToken: page.skip + slice.length < all.length ? String(page.skip + slice.length) : "",
      };
    },

    async deleteDefinitions(req, ctx) {
      const violations: FieldViolation[] = [];
      requireEndpoint(violations, req.endpointId);
      routeViolations(violations, req.routeId);
      if (req.maxDefinitions < 0 || req.maxDefinitions > MAX_DELETE_DEFINITIONS)
        violations.push({ path: "max_definitions", reason: `must be 0 (${DEFAULT_DELETE_DEFINITIONS}) to ${MAX_DELETE_DEFINITIONS}` });
      if (violations.length > 0) invalidArgument(violations);
      const client = await deps.clientOf(req.endpointId);
      const routeId = req.routeId || undefined;
      const all = await deps.state.created(req.endpointId, client);
      const mine = routeId === undefined ? all : all.filter((d) => d.route === routeId);
      const containers = mine.filter((d) => d.kind === "container");
      const goingContainers = new Set(containers.map((c) => c.id.toLowerCase()));
      // A route's clean-up keeps a type that a container it does not remove still uses (on PI its delete would fail).
      const stillUsed = new Set(
        all
          .filter((d) => d.kind === "container" && !goingContainers.has(d.id.toLowerCase()))
          .map((d) => d.typeId?.toLowerCase())
          .filter((t): t is string => t !== undefined),
      );
      const types = mine.filter((d) => d.kind === "type");
      const inUse = routeId === undefined ? [] : types.filter((t) => stillUsed.has(t.id.toLowerCase()));
      const candidates = [...containers, ...types.filter((t) => !inUse.includes(t))];
      const limit = req.maxDefinitions || DEFAULT_DELETE_DEFINITIONS;
      const batch = candidates.slice(0, limit);
      const remaining = candidates.length - batch.length;
      const inUseResults = inUse.map((t) => create(DefinitionOutcomeSchema, { kind: KIND.type, id: t.id, outcome: "in_use" }));
      if (req.dryRun)
        return {
          results: [
            ...batch.map((d) => create(DefinitionOutcomeSchema, { kind: KIND[d.kind], id: d.id, outcome: "would_delete" })),
            ...inUseResults,
          ],
          deleted: 0,
          failed: 0,
          remaining,
          dryRun: true,
        };
      const defOf = (d: CreatedDefinition) => d.def ?? (d.kind === "container" ? { id: d.id, typeid: d.typeId ?? "" } : { id: d.id });
      const outcomes = await deleteDefinitions(
        client,
        batch.filter((d) => d.kind === "container").map((d) => defOf(d) as OmfContainer),
        batch.filter((d) => d.kind === "type").map((d) => defOf(d) as OmfType),
        ctx.signal,
      );
      const gone = outcomes.filter((o) => o.outcome !== "failed");
      await deps.state.forget(
        req.endpointId,
        client,
        gone.filter((o) => o.kind === "type").map((o) => o.id),
        gone.filter((o) => o.kind === "container").map((o) => o.id),
      );
      const redact = redactor(client);
      const results = outcomes.map((o) =>
        create(DefinitionOutcomeSchema, {
          kind: KIND[o.kind],
          id: o.id,
          outcome: o.outcome,
          error:
            o.outcome === "failed" ? echoText(echoableMessage(o.error) ?? "internal error (omf-sender's log has the details)", redact) : "",
        }),
      );
      const failed = outcomes.length - gone.length;
      const log = requestLogger(ctx as HandlerContext);
      for (const o of outcomes)
        if (o.outcome === "failed" && echoableMessage(o.error) === undefined)
          log.error({ err: o.error, endpointId: req.endpointId, id: o.id }, "DeleteDefinitions failed unexpectedly");
      log.info(
        { endpointId: req.endpointId, routeId, deleted: gone.length, failed, remaining, inUse: inUse.length },
        "OMF definitions deleted",
      );
      return { results: [...results, ...inUseResults], deleted: gone.length, failed, remaining, dryRun: false };
    },
  };
}
