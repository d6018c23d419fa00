import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { codeOf, testCredential } from "@meridian/testing";
import { afterEach, describe, expect, it } from "vitest";
import type { ErrorTable } from "../src/errors.js";
import { startTestService, type TestService } from "./harness.js";

/** A domain error as a platform client would throw it: the service's table knows it, handlers do nothing special. */
class PlantOfflineError extends Error {}
class QuotaError extends Error {}

const plantTable: ErrorTable = (err) =>
  err instanceof PlantOfflineError ? new ConnectError(`plant offline: ${err.message}`, Code.Unavailable) : undefined;
const quotaTable: ErrorTable = (err) => (err instanceof QuotaError ? new ConnectError("quota", Code.ResourceExhausted) : undefined);

const started: TestService[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

async function start(errors: ErrorTable[]): Promise<TestService> {
  const svc = await startTestService({
    errors,
    routes(router) {
      router.service(RouteService, {
        async getRoute(req) {
          if (req.id === "offline") throw new PlantOfflineError("line-1");
          if (req.id === "quota") throw new QuotaError("x");
          if (req.id === "connect") throw new ConnectError("no such route", Code.NotFound);
          throw new Error("a bug with a secret: hunter2");
        },
      });
      router.service(TelemetryService, {
        async *subscribe(req) {
          yield { event: { id: "e0" } };
          if (req.filter?.device === "offline") throw new PlantOfflineError("line-2");
          throw new Error("stream bug");
        },
      });
    },
  });
  started.push(svc);
  return svc;
}

describe("error tables at the API edge", () => {
  it("maps a typed error thrown by a unary handler through the first table that knows it", async () => {
    const svc = await start([plantTable, quotaTable]);
    const client = createClient(
      RouteService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
    );
    expect(await codeOf(client.getRoute({ id: "offline" }))).toEqual({ code: Code.Unavailable, message: "plant offline: line-1" });
    expect((await codeOf(client.getRoute({ id: "quota" }))).code).toBe(Code.ResourceExhausted);
    expect((await codeOf(client.getRoute({ id: "connect" }))).code).toBe(Code.NotFound);
    // The log line carries the mapped code, so an outage is not reported as a bug.
    expect(svc.lines.find((l) => l.msg === "rpc" && l.error === "plant offline: line-1")).toMatchObject({ code: "unavailable" });
  });

  it("leaves an error no table knows as internal, without its message", async () => {
    const svc = await start([plantTable]);
    const client = createClient(
      RouteService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
    );
    const got = await codeOf(client.getRoute({ id: "bug" }));
    expect(got.code).toBe(Code.Internal);
    expect(got.message).not.toContain("hunter2");
  });

  it("maps an error a server stream throws after it started", async () => {
    const svc = await start([plantTable]);
    const client = createClient(TelemetryService, createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url }));
    const seen: string[] = [];
    const read = async (device: string) => {
      for await (const m of client.subscribe({ filter: { device } })) seen.push(m.event?.id ?? "");
    };
    expect(await codeOf(read("offline"))).toEqual({ code: Code.Unavailable, message: "plant offline: line-2" });
    expect((await codeOf(read("other"))).code).toBe(Code.Internal);
    expect(seen).toEqual(["e0", "e0"]);
  });
});
