import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { GetRouteRequestSchema, GetRouteResponseSchema, RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { captureLogger, testIdentitiesFile } from "@meridian/testing";
import { z } from "zod";
import { authSettings, type ServerAuth, serverAuth } from "../src/auth/index.js";
import { requestLogger } from "../src/interceptors.js";
import type { Logger } from "../src/logger.js";
import { type RunningService, type ServiceOptions, startService } from "../src/server.js";
import { assertRequiredFields } from "../src/validation.js";

/**
 * A trivial RouteService: GetRoute answers for any id, with behaviour picked by the id:
 * "boom" throws a plain Error (a bug), "missing" throws not_found, "slow-<ms>" waits, "" fails validation.
 */
export function routeRoutes(router: ConnectRouter): void {
  router.service(RouteService, {
    async getRoute(req, ctx: HandlerContext) {
      assertRequiredFields(GetRouteRequestSchema, req);
      requestLogger(ctx).info({ routeId: req.id }, "getting route");
      if (req.id === "boom") throw new Error("database password is hunter2");
      if (req.id === "missing") throw new ConnectError("no such route", Code.NotFound);
      const slow = /^slow-(\d+)$/.exec(req.id);
      if (slow) await new Promise((r) => setTimeout(r, Number(slow[1])));
      return create(GetRouteResponseSchema, {
        route: { id: req.id, displayName: "test", sink: { platform: Platform.OMF, target: "t" } },
      });
    },
  });
  // Subscribe sends one event per 20 ms; filter.device "boom" throws a plain Error after the first one.
  router.service(TelemetryService, {
    async *subscribe(req, ctx) {
      for (let i = 0; !ctx.signal.aborted; i++) {
        if (i === 1 && req.filter?.device === "boom") throw new Error("stream broke: secret detail");
        yield { event: { id: `e${i}` } };
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  });
}

/** Server auth from AUTH_* settings as a service would read them; by default the test identities (TEST_KEYS). */
export function testAuth(logger: Logger, env: Record<string, string> = {}): ServerAuth {
  return serverAuth(z.object(authSettings).parse({ AUTH_IDENTITIES_FILE: testIdentitiesFile(), ...env }), logger);
}

export type TestService = RunningService & { lines: Record<string, unknown>[]; raw: string[] };

export async function startTestService(overrides: Partial<ServiceOptions> = {}): Promise<TestService> {
  const { logger, lines, raw } = captureLogger();
  const svc = await startService({
    name: "test",
    port: 0,
    host: "127.0.0.1",
    logger,
    // Per-caller limits out of the way: these tests load the server's own limits from one caller (auth tests set them).
    auth: overrides.auth ?? testAuth(logger, { CALLER_RATE_LIMIT: "1000000", CALLER_RATE_BURST: "1000000", CALLER_MAX_STREAMS: "10000" }),
    routes: routeRoutes,
    installSignalHandlers: false,
    ...overrides,
  });
  return Object.assign(svc, { lines, raw });
}
