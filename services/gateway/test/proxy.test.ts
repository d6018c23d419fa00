import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { RouteSchema } from "@meridian/contracts/meridian/route/v1/route_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { TelemetryEventSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { authSettings, callerOf, type RunningService, requestId, serverAuth, startService } from "@meridian/service-kit";
import { codeOf, TEST_KEYS, testCredential, testIdentities, testIdentitiesFile, testLogger } from "@meridian/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { backendTransport, registerProxy } from "../src/api/proxy.js";

const logger = testLogger();
const auth = (identitiesFile = testIdentitiesFile()) =>
  serverAuth(z.object(authSettings).parse({ AUTH_IDENTITIES_FILE: identitiesFile }), logger);

/** The backend knows the test keys except routes:read's, so that key passes the front and fails at the backend. */
function backendIdentities(): string {
  const file = join(tmpdir(), `backend-identities-${process.pid}.json`);
  const all = testIdentities();
  writeFileSync(file, JSON.stringify({ apiKeys: all.apiKeys.filter((k) => k.name !== "test-routes-read") }));
  return file;
}

describe("gateway proxy to a backend service", () => {
  let backend: RunningService;
  let front: RunningService;
  const seenRequestIds: string[] = [];
  const seenCallers: string[] = [];

  beforeAll(async () => {
    backend = await startService({
      name: "backend",
      port: 0,
      logger,
      auth: auth(backendIdentities()),
      installSignalHandlers: false,
      routes: (router) => {
        router.service(RouteService, {
          async getRoute(req, ctx) {
            seenRequestIds.push(requestId(ctx));
            seenCallers.push(callerOf(ctx).name);
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
      auth: auth(),
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
    const client = createClient(
      RouteService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: front.url, httpVersion: "1.1" }),
    );
    const res = await client.getRoute({ id: "known" }, { headers: { "x-request-id": "req-123" } });
    expect(res.route?.displayName).toBe("from backend");
    expect(seenRequestIds).toContain("req-123");
    await expect(client.getRoute({ id: "missing" })).rejects.toMatchObject({
      code: Code.NotFound,
      rawMessage: 'route "missing" not found',
    });
  });

  it("forwards the caller's credential, and the backend checks it again (no back door around the gateway)", async () => {
    const as = (key: string | null) =>
      createClient(
        RouteService,
        createConnectTransport({ interceptors: key ? [testCredential(key)] : [], baseUrl: front.url, httpVersion: "1.1" }),
      );
    await as(TEST_KEYS["routes:admin"]).getRoute({ id: "known" });
    expect(seenCallers.at(-1)).toBe("test-routes-admin");
    // The gateway itself refuses what the caller may not do, before any backend call.
    const before = seenCallers.length;
    expect((await codeOf(as(TEST_KEYS["telemetry:read"]).getRoute({ id: "known" }))).code).toBe(Code.PermissionDenied);
    expect((await codeOf(as(null).getRoute({ id: "known" }))).code).toBe(Code.Unauthenticated);
    // A key the gateway accepts but the backend does not know is refused by the backend.
    const atBackend = await codeOf(as(TEST_KEYS["routes:read"]).getRoute({ id: "known" }));
    expect(atBackend.code).toBe(Code.Unauthenticated);
    expect(atBackend.message).toContain("not recognised");
    expect(seenCallers.length).toBe(before);
  });

  it("forwards server streams", async () => {
    const client = createClient(
      TelemetryService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: front.url, httpVersion: "1.1" }),
    );
    const ids: string[] = [];
    for await (const r of client.subscribe({})) ids.push(r.event!.id);
    expect(ids).toEqual(["e0", "e1", "e2"]);
  });

  it("answers unavailable when the backend is down", async () => {
    const down = await startService({
      name: "front2",
      port: 0,
      logger,
      auth: auth(),
      installSignalHandlers: false,
      routes: (router) => registerProxy(router, RouteService, backendTransport("http://127.0.0.1:1")),
    });
    try {
      const client = createClient(
        RouteService,
        createConnectTransport({ interceptors: [testCredential()], baseUrl: down.url, httpVersion: "1.1" }),
      );
      await expect(client.getRoute({ id: "x" })).rejects.toMatchObject({ code: Code.Unavailable });
    } finally {
      await down.stop();
    }
  });
});
