import { readFileSync } from "node:fs";
import { type DescService, fromJson } from "@bufbuild/protobuf";
import { type Bus, busFromConfig, startStatusReporter } from "@meridian/bus";
import type { Route } from "@meridian/contracts/meridian/route/v1/route_pb";
import { ListRoutesResponseSchema, RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Health, StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { ConfigError, type Logger, type RunningService, startService } from "@meridian/service-kit";
import { applyRoutes, routeService, statusService, telemetryService } from "./api/index.js";
import { backendTransport, registerProxy } from "./api/proxy.js";
import { validateRoute } from "./api/validation.js";
import type { GatewayConfig } from "./config.js";

export const SERVICE = "gateway";
export const VERSION = "0.1.0";

export interface Gateway {
  service: RunningService;
  bus: Bus;
  stop(): Promise<void>;
}

/** Reads and validates the routes file; a bad file stops the start, naming the route and field. */
export function readRoutesFile(path: string): Route[] {
  let routes: Route[];
  try {
    routes = fromJson(ListRoutesResponseSchema, JSON.parse(readFileSync(path, "utf8"))).routes;
  } catch (err) {
    throw new ConfigError(`ROUTES_FILE: ${path}: ${(err as Error).message}`, ["ROUTES_FILE"]);
  }
  routes.forEach((r, i) => {
    try {
      validateRoute(r);
    } catch (err) {
      throw new ConfigError(`ROUTES_FILE: ${path}: routes[${i}]: ${(err as Error).message}`, ["ROUTES_FILE"]);
    }
  });
  return routes;
}

/** A service the gateway serves by forwarding to the Meridian service that owns it. */
export interface Backend {
  services: DescService[];
  url: string;
}

export interface GatewayOptions {
  installSignalHandlers?: boolean;
  backends?: Backend[];
}

export async function startGateway(config: GatewayConfig, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  const declaredRoutes = config.ROUTES_FILE ? readRoutesFile(config.ROUTES_FILE) : [];
  const bus = busFromConfig(config, SERVICE, logger);

  const self = { service: SERVICE, instance: config.INSTANCE_ID, version: VERSION };
  const service = await startService({
    name: SERVICE,
    version: VERSION,
    port: config.PORT,
    logger,
    initialStatus: "NOT_SERVING",
    ...(options.installSignalHandlers === undefined ? {} : { installSignalHandlers: options.installSignalHandlers }),
    routes: (router) => {
      router.service(TelemetryService, telemetryService(bus));
      router.service(RouteService, routeService(bus));
      router.service(StatusService, statusService(bus, self));
      for (const backend of options.backends ?? []) {
        const transport = backendTransport(backend.url);
        for (const s of backend.services) registerProxy(router, s, transport);
      }
    },
  });

  // Ready means the bus is reachable: without it the gateway can answer nothing useful.
  bus.onStatus((connected) => service.health.set("", connected ? "SERVING" : "NOT_SERVING"));
  service.onShutdown(() => bus.close());

  void bus.ready.then(async () => {
    service.health.set("", bus.connected ? "SERVING" : "NOT_SERVING");
    if (declaredRoutes.length === 0) return;
    // The bus may drop again right after connecting; keep trying until the routes are in.
    for (let attempt = 1; !service.shutdownSignal.aborted; attempt++) {
      try {
        const applied = await applyRoutes(bus, declaredRoutes);
        logger.info({ file: config.ROUTES_FILE, ...applied }, "routes file applied");
        return;
      } catch (err) {
        logger.warn({ err, attempt }, "applying routes file failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * attempt)));
      }
    }
  });

  startStatusReporter(bus, {
    ...self,
    signal: service.shutdownSignal,
    collect: async () => ({ health: bus.connected ? Health.SERVING : Health.NOT_SERVING, pipelines: [] }),
    onError: (err) => logger.warn({ err }, "status report failed"),
  });

  return { service, bus, stop: () => service.stop() };
}
