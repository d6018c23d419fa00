import { DeadLetterService } from "@meridian/contracts/meridian/deadletter/v1/dead_letter_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { type Logger, serviceIdentity } from "@meridian/service-kit";
import { type BusService, type BusServiceOptions, startBusService } from "@meridian/service-kit/bus";
import { consoleRoutes, consoleSignInFromConfig } from "./api/console.js";
import { apiDocumentRoutes } from "./api/docs.js";
import { applyRoutes, deadLetterService, gatewayErrors, routeService, statusService, sweepDrains, telemetryService } from "./api/index.js";
import { backendTransport, registerProxy } from "./api/proxy.js";
import { publishRequestJsonReader } from "./api/publish-json.js";
import { type Backend, backendsFromConfig, backendTlsFromConfig } from "./backends.js";
import type { GatewayConfig } from "./config.js";
import { readRoutesFile } from "./declared.js";

const SERVICE = serviceIdentity("gateway", import.meta.url);

export interface GatewayOptions extends BusServiceOptions {
  /** The platform services fronted; default from the *_URL settings. */
  backends?: Backend[];
}

export type Gateway = BusService;

/** The gateway: TelemetryService, RouteService and StatusService on the bus, and the platform services by proxy. */
export async function startGateway(config: GatewayConfig, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  const declaredRoutes = config.ROUTES_FILE ? readRoutesFile(config.ROUTES_FILE, config.MAX_ROUTES) : [];
  const backends = options.backends ?? backendsFromConfig(config);
  const signIn = consoleSignInFromConfig(config);
  const backendTls = backendTlsFromConfig(config, backends, logger);
  return startBusService(
    SERVICE,
    config,
    logger,
    (bus) => ({
      routes(router) {
        router.service(TelemetryService, telemetryService(bus));
        router.service(RouteService, routeService(bus, { maxRoutes: config.MAX_ROUTES }));
        router.service(DeadLetterService, deadLetterService(bus));
        router.service(
          StatusService,
          statusService(bus, { service: SERVICE.name, instance: config.INSTANCE_ID, version: SERVICE.version }),
        );
        for (const backend of backends) {
          const transport = backendTransport(backend.url, backendTls);
          for (const s of backend.services) registerProxy(router, s, transport);
        }
      },
      errors: [gatewayErrors],
      // Publish in Connect JSON is the gateway's busiest path: read by hand in its usual shape (src/api/publish-json.ts).
      jsonRequestReaders: [publishRequestJsonReader],
      // GET /openapi.json and /docs/, and the console at every other path, without authentication (src/api/docs.ts,
      // src/api/console.ts): the console's API calls carry the caller's key.
      httpRoutes: {
        ...consoleRoutes(
          config.CONSOLE_DIR,
          signIn,
          backends.flatMap((b) => b.services.map((s) => s.typeName)),
        ),
        ...apiDocumentRoutes(),
      },
      stop: async () => backendTls?.stop(),
      declared: { setting: "ROUTES_FILE", entries: declaredRoutes.length, apply: () => applyRoutes(bus, declaredRoutes, logger) },
      // Draining routes whose sink has finished are removed here: only the gateway writes routes.
      run: (signal) => sweepDrains(bus, logger, signal),
    }),
    options,
  );
}
