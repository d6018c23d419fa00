import { setTimeout as sleep } from "node:timers/promises";
import { clone, create, equals } from "@bufbuild/protobuf";
import { timestampDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Bus,
  type ConsumerBacklog,
  consumerBacklog,
  deleteConsumer,
  ensureRouteConsumer,
  KeyChangedError,
  KeyExistsError,
  routeBucket,
  routeConsumerName,
  STREAMS,
  sourceChangeDelivered,
} from "@meridian/bus";
import {
  type Route,
  RouteDrainSchema,
  RouteSchema,
  RouteSourceChangeSchema,
  RouteState,
  SinkTargetSchema,
} from "@meridian/contracts/meridian/route/v1/route_pb";
import type { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform, SourceFilterSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { type FieldViolation, invalidArgument, type Logger, requestLogger } from "@meridian/service-kit";
import { validateRoute } from "./validation.js";

export interface RouteLimits {
  /** Routes the mesh may hold (MAX_ROUTES): each is a durable consumer and a pipeline in a sink service. */
  maxRoutes: number;
}

/** Clocks of callers and the gateway differ by a little; a start_time this far ahead is still "now". */
const START_TIME_SKEW_MS = 60_000;

/** How often the gateway looks for draining routes whose sink has finished (and removes them). */
export const DRAIN_SWEEP_INTERVAL_MS = 5_000;

export function routeService(bus: Bus, limits: RouteLimits): ServiceImpl<typeof RouteService> {
  const routes = routeBucket(bus);
  const requireId = (id: string) => {
    if (!id) invalidArgument([{ path: "id", reason: "required" }]);
  };
  return {
    async createRoute(req, ctx) {
      validateRoute(req.route);
      await checkStartTime(bus, req.route);
      // What a caller may not set: when the route was made, and the drain (a route starts active).
      const route = create(RouteSchema, {
        ...req.route,
        createTime: timestampNow(),
        state: RouteState.ACTIVE,
        drain: undefined,
        revision: 1n,
        updateTime: undefined,
        sourceChange: undefined,
      });
      // Checked before the create: two creates at the same moment may both pass, so the bound can be exceeded by the
      // number of concurrent callers, never by a loop of one.
      const count = (await routes.keys()).length;
      if (count >= limits.maxRoutes)
        throw new ConnectError(
          `route quota reached: ${count} of MAX_ROUTES=${limits.maxRoutes}; delete a route first`,
          Code.ResourceExhausted,
        );
      try {
        await routes.create(route.id, route);
      } catch (err) {
        if (!(err instanceof KeyExistsError)) throw err;
        const existing = await routes.get(route.id);
        if (existing?.state !== RouteState.DRAINING) throw err;
        // Refused rather than resumed: the old consumer holds the old route's events, and they must not flow into a
        // new route (another target, another filter) under the same name.
        const draining = await settleDrain(bus, existing);
        if (draining)
          throw new ConnectError(
            `route "${route.id}" is draining: its sink still delivers ${draining.drain?.pending ?? 0n} pending message(s) of its ` +
              "backlog; create it again once the drain is over, or end the drain with DeleteRoute and purge",
            Code.FailedPrecondition,
          );
        // The drain ended just now and the route is gone.
        await routes.create(route.id, route);
      }
      requestLogger(ctx).info({ routeId: route.id, startTime: startOf(route) }, "route created");
      return { route };
    },
    async getRoute(req) {
      requireId(req.id);
      const stored = await routes.get(req.id);
      const route = stored && (await settleDrain(bus, stored));
      if (!route) throw new ConnectError(`route "${req.id}" not found`, Code.NotFound);
      return { route };
    },
    async listRoutes() {
      const entries = await routes.entries();
      const settled = await Promise.all(entries.map(([, r]) => settleDrain(bus, r)));
      return { routes: settled.filter((r): r is Route => r !== undefined) };
    },
    async updateRoute(req, ctx) {
      validateRoute(req.route);
      const id = req.route.id;
      if (req.revision === 0n) invalidArgument([{ path: "revision", reason: "required: the route's revision as read (Route.revision)" }]);
      const entry = await routes.entry(id);
      if (!entry) throw new ConnectError(`route "${id}" not found`, Code.NotFound);
      const stored = entry.value;
      if (stored.state === RouteState.DRAINING)
        throw new ConnectError(`route "${id}" is draining (deleted): it cannot be changed`, Code.FailedPrecondition);
      const at = revisionOf(stored);
      if (req.revision !== at)
        throw new ConnectError(
          `route "${id}" was changed since revision ${req.revision} (it is at revision ${at}): read it again and reapply your change`,
          Code.Aborted,
        );
      const fixed: FieldViolation[] = [];
      if (!equals(SinkTargetSchema, req.route.sink!, stored.sink ?? create(SinkTargetSchema)))
        fixed.push({
          path: "route.sink",
          reason: `cannot change (${Platform[stored.sink?.platform ?? 0]} "${stored.sink?.target ?? ""}"): delete the route and create another to send its events elsewhere`,
        });
      const start = req.route.startTime;
      if (start && !(stored.startTime && start.seconds === stored.startTime.seconds && start.nanos === stored.startTime.nanos))
        fixed.push({ path: "route.start_time", reason: "cannot change: a route's start is read once, when its consumer is made" });
      if (fixed.length > 0) invalidArgument(fixed);
      const route = await replaceRoute(bus, entry, req.route, requestLogger(ctx));
      return { route };
    },
    async deleteRoute(req, ctx) {
      requireId(req.id);
      const log = requestLogger(ctx);
      const route = await routes.get(req.id);
      if (!route) throw new ConnectError(`route "${req.id}" not found`, Code.NotFound);
      const consumer = consumerOf(route);
      if (req.purge) {
        // The consumer first: if the gateway may not delete it, nothing has changed yet. A pipeline that has not seen
        // the route go may declare it again, empty, in between; its sink deletes that one when the route is gone.
        const held = await deleteConsumer(bus, consumer);
        await routes.delete(req.id);
        const dropped = held ? held.pending + held.ackPending : 0;
        log.warn(
          { audit: "route.purge", routeId: req.id, consumer, dropped, target: route.sink?.target, state: RouteState[route.state] },
          "route purged: its undelivered backlog is dropped",
        );
        return { dropped: BigInt(dropped) };
      }
      if (route.state === RouteState.DRAINING) {
        const draining = await settleDrain(bus, route);
        return draining ? { route: draining } : {};
      }
      const backlog = await consumerBacklog(bus, consumer);
      if (!backlog) {
        // No sink ever made a consumer for it: nothing was held back for this route.
        await routes.delete(req.id);
        log.info({ routeId: req.id }, "route deleted");
        return {};
      }
      // Everything stored up to now is the route's backlog; what comes later is skipped by its sink.
      const lastSequence = (await bus.jsm().streams.info(STREAMS.telemetry)).state.last_seq;
      const draining = create(RouteSchema, {
        ...route,
        state: RouteState.DRAINING,
        drain: create(RouteDrainSchema, { deleteTime: timestampNow(), lastSequence: BigInt(lastSequence) }),
      });
      await routes.put(req.id, draining);
      log.info(
        { routeId: req.id, consumer, pending: backlog.pending + backlog.ackPending, lastSequence },
        "route deleted: draining, its sink delivers its backlog and then drops its consumer",
      );
      return { route: withPending(draining, backlog) };
    },
  };
}

/**
 * Removes draining routes whose sink has finished (their consumer is gone), every DRAIN_SWEEP_INTERVAL_MS until the
 * signal aborts. Only the gateway writes routes; the sink says it is done by deleting the consumer.
 */
export async function sweepDrains(bus: Bus, logger: Logger, signal: AbortSignal, intervalMs = DRAIN_SWEEP_INTERVAL_MS): Promise<void> {
  const routes = routeBucket(bus);
  const log = logger.child({ component: "route-drains" });
  while (!signal.aborted) {
    await sleep(intervalMs, undefined, { signal }).catch(() => {});
    if (signal.aborted || !bus.connected) continue;
    try {
      for (const [id, route] of await routes.entries()) {
        if (route.state === RouteState.DRAINING) {
          if (!(await settleDrain(bus, route))) log.info({ routeId: id }, "route drained and removed");
        } else if (route.sourceChange && !(await settleSourceChange(bus, route)).sourceChange)
          log.info({ routeId: id }, "route's source change done: its sink delivers the new source");
      }
    } catch (err) {
      log.warn({ err }, "looking for drained routes failed; trying again");
    }
  }
}

/** Routes stored before revisions read as revision 1. */
function revisionOf(route: Route): bigint {
  return route.revision || 1n;
}

/**
 * Replaces what an update may change (display_name, source, options, disabled) in the stored route, at the entry's
 * revision (aborted when it was written since). A changed source is a RouteSourceChange at the telemetry stream's last
 * sequence: the sink delivers the backlog up to it by the previous source on the consumer it has, then makes the
 * consumer again on the new source from the next sequence (nats-server 2.9.10 cannot change the filter of a consumer
 * made at a start time).
 */
async function replaceRoute(bus: Bus, entry: { value: Route; revision: number }, changes: Route, logger: Logger): Promise<Route> {
  const routes = routeBucket(bus);
  const stored = entry.value;
  const sourceChanged = !equals(
    SourceFilterSchema,
    stored.source ?? create(SourceFilterSchema),
    changes.source ?? create(SourceFilterSchema),
  );
  let sourceChange = stored.sourceChange;
  if (sourceChanged && sourceChange) {
    // Two changes pending at once would need three sources by sequence: the first one must be delivered.
    if (!(await sourceChangeDelivered(bus, stored, stored.sink?.platform ?? Platform.UNSPECIFIED)))
      throw new ConnectError(
        `route "${stored.id}": its previous source change is still being delivered (what the stream stored up to sequence ` +
          `${sourceChange.lastSequence} goes by the previous source); change the source again once its sink has caught up ` +
          "(source_change is cleared then; a disabled route's sink does not run)",
        Code.FailedPrecondition,
      );
    sourceChange = undefined;
  }
  const now = timestampNow();
  const next = create(RouteSchema, {
    ...stored,
    state: RouteState.ACTIVE,
    displayName: changes.displayName,
    source: changes.source,
    options: changes.options,
    disabled: changes.disabled,
    revision: revisionOf(stored) + 1n,
    updateTime: now,
    sourceChange,
  });
  const write = async () => {
    try {
      await routes.update(stored.id, next, entry.revision);
    } catch (err) {
      if (err instanceof KeyChangedError)
        throw new ConnectError(`route "${stored.id}" was changed meanwhile: read it again and reapply your change`, Code.Aborted);
      throw err;
    }
  };
  if (!sourceChanged) {
    await write();
    logger.info({ routeId: stored.id, revision: next.revision }, "route updated");
    return next;
  }
  // The consumer from before the change must exist to deliver the previous source's backlog: one no sink has made
  // yet (a route created disabled, a sink down since) is made now, at the route's start.
  await ensureRouteConsumer(bus, stored, stored.sink?.platform ?? Platform.UNSPECIFIED, logger);
  const lastSequence = (await bus.jsm().streams.info(STREAMS.telemetry)).state.last_seq;
  next.sourceChange = create(RouteSourceChangeSchema, {
    previousSource: stored.source,
    lastSequence: BigInt(lastSequence),
    changeTime: now,
  });
  await write();
  logger.info(
    { routeId: stored.id, revision: next.revision, lastSequence: next.sourceChange.lastSequence },
    "route updated: new source from the stream's next sequence; its sink delivers what was stored before by the previous source",
  );
  return next;
}

/**
 * A route with a source change whose sink is past it (its consumer made again on the new source), without it: cleared
 * in the bucket unless the route was written since (that writer's route stands). Other routes as they are.
 */
async function settleSourceChange(bus: Bus, route: Route): Promise<Route> {
  if (!route.sourceChange || route.state !== RouteState.ACTIVE) return route;
  if (!(await sourceChangeDelivered(bus, route, route.sink?.platform ?? Platform.UNSPECIFIED))) return route;
  const routes = routeBucket(bus);
  const entry = await routes.entry(route.id);
  if (!entry?.value.sourceChange || entry.value.sourceChange.lastSequence !== route.sourceChange.lastSequence) return route;
  const settled = create(RouteSchema, { ...entry.value, sourceChange: undefined });
  try {
    await routes.update(route.id, settled, entry.revision);
  } catch (err) {
    if (!(err instanceof KeyChangedError)) throw err;
    return route;
  }
  return settled;
}

/**
 * A route as answered: a draining one with its consumer's pending count, or undefined (and removed) when its consumer
 * is gone, which is how its sink says the drain is over. Routes stored before route states read as active.
 */
async function settleDrain(bus: Bus, route: Route): Promise<Route | undefined> {
  if (route.state !== RouteState.DRAINING) {
    const answered = await settleSourceChange(bus, route);
    return route.state === RouteState.UNSPECIFIED || !route.revision
      ? create(RouteSchema, { ...answered, state: RouteState.ACTIVE, revision: revisionOf(answered) })
      : answered;
  }
  const backlog = await consumerBacklog(bus, consumerOf(route));
  if (backlog) return withPending(route, backlog);
  await routeBucket(bus).delete(route.id);
  return undefined;
}

function withPending(route: Route, backlog: ConsumerBacklog): Route {
  const drain = route.drain ? clone(RouteDrainSchema, route.drain) : create(RouteDrainSchema);
  drain.pending = BigInt(backlog.pending + backlog.ackPending);
  return create(RouteSchema, { ...route, drain });
}

function consumerOf(route: Route): string {
  return routeConsumerName(route.id, route.sink?.platform ?? Platform.UNSPECIFIED);
}

function startOf(route: Route): string {
  return route.startTime ? timestampDate(route.startTime).toISOString() : "new events";
}

/**
 * A start_time must lie within what the telemetry stream keeps and not ahead of now: an older one would silently start
 * later than asked, a later one would wait for it.
 */
async function checkStartTime(bus: Bus, route: Route): Promise<void> {
  const t = route.startTime;
  if (!t) return;
  if (t.nanos < 0 || t.nanos > 999_999_999) invalidArgument([{ path: "route.start_time.nanos", reason: "out of range" }]);
  const at = timestampDate(t).getTime();
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString();
  if (at > now + START_TIME_SKEW_MS)
    invalidArgument([{ path: "route.start_time", reason: `${iso(at)} is in the future; leave it unset to start at new events` }]);
  const maxAgeMs = (await bus.jsm().streams.info(STREAMS.telemetry)).config.max_age / 1e6;
  if (maxAgeMs > 0 && at < now - maxAgeMs)
    invalidArgument([
      {
        path: "route.start_time",
        reason:
          `${iso(at)} is older than the telemetry stream keeps events (${Math.round((maxAgeMs / 3_600_000) * 10) / 10} h, ` +
          `TELEMETRY_MAX_AGE_HOURS); the earliest start is ${iso(now - maxAgeMs)}`,
      },
    ]);
}

/**
 * Applies a declarative set of routes (the routes file mounted into the gateway): each is created, or changed when its
 * definition changed; routes not in the file are left alone, and so are draining ones (re-created from the file at a
 * later start, once their drain is over). A change goes the way of UpdateRoute (a new source from the stream's next
 * sequence on, the old source's backlog still delivered), except that the file may also move a route to another sink
 * (then it is replaced as a whole); a source change while the previous one is still delivered is held (`held`: applied
 * at a later start). A route keeps the start_time it was created with: the start is read once, when its consumer is
 * made, and a file's start_time older than the stream's retention starts at the oldest event kept (the operator's
 * file is not refused at every restart for the time that passed).
 */
export async function applyRoutes(
  bus: Bus,
  declared: Route[],
  logger: Logger,
): Promise<{ created: string[]; updated: string[]; unchanged: string[]; draining: string[]; held: string[] }> {
  const routes = routeBucket(bus);
  const result = {
    created: [] as string[],
    updated: [] as string[],
    unchanged: [] as string[],
    draining: [] as string[],
    held: [] as string[],
  };
  for (const r of declared) validateRoute(r);
  for (const r of declared) {
    const entry = await routes.entry(r.id);
    const existing = entry?.value;
    if (existing?.state === RouteState.DRAINING) {
      result.draining.push(r.id);
      continue;
    }
    if (!entry || !existing) {
      const route = create(RouteSchema, { ...r, createTime: timestampNow(), state: RouteState.ACTIVE, revision: 1n });
      route.drain = undefined;
      route.updateTime = undefined;
      route.sourceChange = undefined;
      await routes.put(r.id, route);
      result.created.push(r.id);
      continue;
    }
    const sameSink = equals(SinkTargetSchema, r.sink!, existing.sink ?? create(SinkTargetSchema));
    if (sameSink && sameDefinition(existing, r)) {
      result.unchanged.push(r.id);
      continue;
    }
    if (!sameSink) {
      // Another sink: another consumer (or target), nothing of the old one's position to keep.
      const route = create(RouteSchema, {
        ...r,
        createTime: existing.createTime,
        startTime: existing.startTime,
        state: RouteState.ACTIVE,
        revision: revisionOf(existing) + 1n,
        updateTime: timestampNow(),
      });
      route.drain = undefined;
      route.sourceChange = undefined;
      await routes.put(r.id, route);
      result.updated.push(r.id);
      continue;
    }
    try {
      await replaceRoute(bus, entry, r, logger);
      result.updated.push(r.id);
    } catch (err) {
      if (!(err instanceof ConnectError && err.code === Code.FailedPrecondition)) throw err;
      logger.warn(
        { routeId: r.id, reason: err.rawMessage },
        "routes file: the route's source change is held until its previous one is delivered",
      );
      result.held.push(r.id);
    }
  }
  return result;
}

/** What an update may change is the same in both. */
function sameDefinition(a: Route, b: Route): boolean {
  return (
    a.displayName === b.displayName &&
    a.disabled === b.disabled &&
    equals(SourceFilterSchema, a.source ?? create(SourceFilterSchema), b.source ?? create(SourceFilterSchema)) &&
    JSON.stringify(Object.entries(a.options).sort()) === JSON.stringify(Object.entries(b.options).sort())
  );
}
