import { readFileSync } from "node:fs";
import { fromJson } from "@bufbuild/protobuf";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { ListRoutesResponseSchema } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { ConfigError } from "@meridian/service-kit";
import { validateRoute } from "./api/validation.js";

/** Reads and validates ROUTES_FILE (`{"routes": [Route, ...]}` in proto JSON); a bad file stops the start, naming the route and field. */
export function readRoutesFile(path: string, maxRoutes: number): Route[] {
  let routes: Route[];
  try {
    routes = fromJson(ListRoutesResponseSchema, JSON.parse(readFileSync(path, "utf8"))).routes;
  } catch (err) {
    throw new ConfigError(`ROUTES_FILE: ${path}: ${(err as Error).message}`, ["ROUTES_FILE"]);
  }
  if (routes.length > maxRoutes)
    throw new ConfigError(`ROUTES_FILE: ${path}: ${routes.length} routes, more than MAX_ROUTES=${maxRoutes}`, [
      "ROUTES_FILE",
      "MAX_ROUTES",
    ]);
  routes.forEach((r, i) => {
    try {
      validateRoute(r);
    } catch (err) {
      throw new ConfigError(`ROUTES_FILE: ${path}: routes[${i}]: ${(err as Error).message}`, ["ROUTES_FILE"]);
    }
  });
  return routes;
}
