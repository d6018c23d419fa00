import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { type RunningService, requestId, startService } from "@meridian/service-kit";
import { testLogger } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backendTransport, registerProxy } from "../src/api/proxy.js";

const logger = testLogger();

describe("gateway proxy to a backend service", () => {
  let backend: RunningService;
  let front: RunningService;
  const seenRequestIds: string[] = [];

  beforeAll(async () => {
    backend = await startService({
      name: "backend",
      port: 0,
      logger,
      installSignalHandlers: false,
      routes: (router) => {
        router.service(RouteService, {
          async getRoute(req, ctx) {
            seenRequestIds.push(requestId(ctx));
            if (req.id !== "known") throw new ConnectError(`route "${req.id}" not found`, Code.NotFound);
            return { route: create(RouteSchema, { id: "known", displayName: "from backend" }) };
          },
        });
        router.service(TelemetryService, {
          async *subscribe() {
            for (let i = 0; i < 3; i++) yield { event: create(TelemetryEventSchema, { id: `e${i}` }) };
          },
        });
      },
    });
    front = await startService({
      name: "front",
      port: 0,
      logger,
      installSignalHandlers: false,
      routes: (router) => {
        registerProxy(router, RouteService, backendTransport(backend.url));
        registerProxy(router, TelemetryService, backendTransport(backend.url));
      },
    });
  });
  afterAll(async () => {
    await front?.stop();
    await backend?.stop();
  });

  it("forwards unary calls, keeps error codes and carries the request id", async () => {
    const client = createClient(RouteService, createConnectTransport({ baseUrl: front.url, httpVersion: "1.1" }));
    const res = await client.getRoute({ id: "known" }, { headers: { "x-request-id": "req-123" } });
    expect(res.route?.displayName).toBe("from backend");
    expect(seenRequestIds).toContain("req-123");
    await expect(client.getRoute({ id: "missing" })).rejects.toMatchObject({
      code: Code.NotFound,
      rawMessage: 'route "missing" not found',
    });
  });

  it("forwards server streams", async () => {
    const client = createClient(TelemetryService, createConnectTransport({ baseUrl: front.url, httpVersion: "1.1" }));
    const ids: string[] = [];
    for await (const r of client.subscribe({})) ids.push(r.event!.id);
    expect(ids).toEqual(["e0", "e1", "e2"]);
  });

  it("answers unavailable when the backend is down", async () => {
    const down = await startService({
      name: "front2",
      port: 0,
      logger,
      installSignalHandlers: false,
      routes: (router) => registerProxy(router, RouteService, backendTransport("http://127.0.0.1:1")),
    });
    try {
      const client = createClient(RouteService, createConnectTransport({ baseUrl: down.url, httpVersion: "1.1" }));
      await expect(client.getRoute({ id: "x" })).rejects.toMatchObject({ code: Code.Unavailable });
    } finally {
      await down.stop();
    }
  });
});
