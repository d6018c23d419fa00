import { create, equals } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type Bus, routeBucket } from "@meridian/bus";
import { type Route, RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import type { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { invalidArgument, requestLogger } from "@meridian/service-kit";
import { validateRoute } from "./validation.js";

export interface RouteLimits {
  /** Routes the mesh may hold (MAX_ROUTES): each is a durable consumer and a pipeline in a sink service. */
  maxRoutes: number;
}

export function routeService(bus: Bus, limits: RouteLimits): ServiceImpl<typeof RouteService> {
  const routes = routeBucket(bus);
  const requireId = (id: string) => {
    if (!id) invalidArgument([{ path: "id", reason: "required" }]);
  };
  return {
    async createRoute(req, ctx) {
      validateRoute(req.route);
      const route = create(RouteSchema, { ...req.route, createTime: timestampNow() });
      // Checked before the create: two creates at the same moment may both pass, so the bound can be exceeded by the
      // number of concurrent callers, never by a loop of one.
      const count = (await routes.keys()).length;
      if (count >= limits.maxRoutes)
        throw new ConnectError(
          `route quota reached: ${count} of MAX_ROUTES=${limits.maxRoutes}; delete a route first`,
          Code.ResourceExhausted,
        );
      await routes.create(route.id, route);
      requestLogger(ctx).info({ routeId: route.id }, "route created");
      return { route };
    },
    async getRoute(req) {
      requireId(req.id);
      const route = await routes.get(req.id);
      if (!route) throw new ConnectError(`route "${req.id}" not found`, Code.NotFound);
      return { route };
    },
    async listRoutes() {
      const entries = await routes.entries();
      return { routes: entries.map(([, r]) => r) };
    },
    async deleteRoute(req, ctx) {
      requireId(req.id);
      const deleted = await routes.delete(req.id);
      if (!deleted) throw new ConnectError(`route "${req.id}" not found`, Code.NotFound);
      requestLogger(ctx).info({ routeId: req.id }, "route deleted");
      return {};
    },
  };
}

/**
 * Applies a declarative set of routes (the routes file mounted into the gateway): each is created,
 * or replaced when its definition changed; routes not in the file are left alone.
 */
export async function applyRoutes(bus: Bus, declared: Route[]): Promise<{ created: string[]; updated: string[]; unchanged: string[] }> {
  const routes = routeBucket(bus);
  const result = { created: [] as string[], updated: [] as string[], unchanged: [] as string[] };
  for (const r of declared) validateRoute(r);
  for (const r of declared) {
    const existing = await routes.get(r.id);
    const next = create(RouteSchema, { ...r, createTime: existing?.createTime ?? timestampNow() });
    if (!existing) {
      await routes.put(r.id, next);
      result.created.push(r.id);
    } else if (!equals(RouteSchema, existing, next)) {
      await routes.put(r.id, next);
      result.updated.push(r.id);
    } else result.unchanged.push(r.id);
  }
  return result;
}
