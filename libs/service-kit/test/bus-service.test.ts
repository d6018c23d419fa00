import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { type Bus, BusUnavailableError, serviceStatusBucket } from "@meridian/bus";
import { Health } from "@meridian/contracts/grpc/health/v1/health_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { PipelineCountersSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import {
  captureLogger,
  codeOf,
  type NatsServerHandle,
  startNatsServer,
  testCredential,
  testIdentitiesFile,
  until,
} from "@meridian/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type BusService, type BusServiceParts, serviceSettings, startBusService } from "../src/bus-service.js";

class LineDownError extends Error {}

let nats: NatsServerHandle;
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats.stop();
});

const running: BusService[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

const settings = z.object(serviceSettings(9999));

async function start(parts: (bus: Bus) => Partial<BusServiceParts>, instance = "i-1") {
  const { logger, lines } = captureLogger();
  const config = settings.parse({ PORT: "0", NATS_URL: nats.url, INSTANCE_ID: instance, AUTH_IDENTITIES_FILE: testIdentitiesFile() });
  const svc = await startBusService(
    { name: "kit-test", version: "1.2.3" },
    config,
    logger,
    (bus) => ({ routes: () => {}, ...parts(bus) }),
    { installSignalHandlers: false, statusIntervalMs: 200 },
  );
  running.push(svc);
  return Object.assign(svc, { lines });
}

describe("the bus-service starter", () => {
  it("reads PORT, the NATS settings, INSTANCE_ID and the server limits with bounds", () => {
    expect(settings.parse({}).PORT).toBe(9999);
    expect(settings.parse({}).SERVER_MAX_CONNECTIONS).toBe(1000);
    expect(settings.parse({ SERVER_MAX_STREAMING_CALLS: "5" }).SERVER_MAX_STREAMING_CALLS).toBe(5);
    expect(() => settings.parse({ SERVER_HTTP2_MAX_CONCURRENT_STREAMS: "0" })).toThrow();
    expect(() => settings.parse({ SERVER_HEADERS_TIMEOUT_MS: "10" })).toThrow();
    expect(() => settings.parse({ PORT: "70000" })).toThrow();
    expect(() => settings.parse({ INSTANCE_ID: "x".repeat(129) })).toThrow();
  });

  it("applies the declared file through retry() until it goes in, then runs the service", async () => {
    const order: string[] = [];
    let attempts = 0;
    const svc = await start(() => ({
      declared: {
        setting: "THINGS_FILE",
        entries: 2,
        runAfterApply: true,
        async apply() {
          attempts++;
          order.push(`apply-${attempts}`);
          if (attempts < 3) throw new Error("platform not up yet");
          return { created: 2 };
        },
      },
      run: () => {
        order.push("run");
      },
    }));
    await until(() => order.includes("run"), { what: "run started" });
    expect(order).toEqual(["apply-1", "apply-2", "apply-3", "run"]);
    expect(svc.lines.filter((l) => l.msg === "applying the declared file failed; retrying")).toHaveLength(2);
    expect(svc.lines.find((l) => l.msg === "declared file applied")).toMatchObject({ setting: "THINGS_FILE", created: 2 });
    expect((await fetch(`${svc.service.url}/readyz`)).status).toBe(200);
  });

  it("a run that fails is logged and makes the service not ready, instead of an unhandled rejection", async () => {
    const svc = await start(() => ({
      run: () => Promise.reject(new Error("pipelines could not start")),
    }));
    await until(() => svc.lines.some((l) => l.msg === "the service's run failed"), { what: "the failure logged" });
    expect((await fetch(`${svc.service.url}/readyz`)).status).toBe(503);
  });

  it("runs beside a declared file that keeps failing when the service says so", async () => {
    let ran = false;
    await start(() => ({
      declared: {
        setting: "THINGS_FILE",
        entries: 1,
        apply: () => Promise.reject(new Error("refused")),
      },
      run: () => {
        ran = true;
      },
    }));
    await until(() => ran, { what: "run started although the file is not applied" });
  });

  it("maps the service's errors first, then the bus's; unknown errors stay internal", async () => {
    const svc = await start(() => ({
      routes: (router) =>
        router.service(RouteService, {
          async getRoute(req) {
            if (req.id === "down") throw new LineDownError();
            if (req.id === "bus") throw new BusUnavailableError("no servers");
            throw new Error("bug");
          },
        }),
      errors: [(err) => (err instanceof LineDownError ? new ConnectError("line down", Code.FailedPrecondition) : undefined)],
    }));
    const client = createClient(
      RouteService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.service.url, httpVersion: "1.1" }),
    );
    expect(await codeOf(client.getRoute({ id: "down" }))).toEqual({ code: Code.FailedPrecondition, message: "line down" });
    expect(await codeOf(client.getRoute({ id: "bus" }))).toEqual({ code: Code.Unavailable, message: "event bus unavailable: no servers" });
    expect((await codeOf(client.getRoute({ id: "x" }))).code).toBe(Code.Internal);
  });

  it("reports the pipeline counters to the status bucket and as Prometheus series", async () => {
    const counters = [
      create(PipelineCountersSchema, {
        name: "route-a",
        received: 7n,
        delivered: 5n,
        skipped: 1n,
        failed: 1n,
        pending: 3n,
        lag: durationFromMs(42_500),
      }),
      create(PipelineCountersSchema, { name: "reader-b", received: 2n, delivered: 2n }),
    ];
    const svc = await start(() => ({ counters: () => counters }), "i-metrics");
    await svc.bus.ready;
    const metrics = await (await fetch(`${svc.service.url}/metrics`)).text();
    expect(metrics).toContain('meridian_pipeline_events_total{pipeline="route-a",outcome="delivered"} 5');
    expect(metrics).toContain('meridian_pipeline_events_total{pipeline="route-a",outcome="skipped"} 1');
    expect(metrics).toContain('meridian_pipeline_pending{pipeline="route-a"} 3');
    expect(metrics).toContain('meridian_pipeline_lag_seconds{pipeline="route-a"} 42.5');
    // A pipeline without a lag (a source) has no lag series, not a 0.
    expect(metrics).not.toContain('meridian_pipeline_lag_seconds{pipeline="reader-b"}');
    const statuses = serviceStatusBucket(svc.bus);
    await until(async () => (await statuses.get("kit-test.i-metrics"))?.pipelines[0]?.delivered === 5n, { what: "status report" });
    expect((await statuses.get("kit-test.i-metrics"))?.pipelines[0]?.lag).toEqual(durationFromMs(42_500));
    expect((await statuses.get("kit-test.i-metrics"))?.version).toBe("1.2.3");
  });

  it("passes the server limit settings to the server: SERVER_MAX_STREAMING_CALLS=1 refuses a second stream", async () => {
    const { logger } = captureLogger();
    const config = settings.parse({
      PORT: "0",
      NATS_URL: nats.url,
      INSTANCE_ID: "i-limits",
      SERVER_MAX_STREAMING_CALLS: "1",
      AUTH_IDENTITIES_FILE: testIdentitiesFile(),
    });
    const svc = await startBusService({ name: "kit-test", version: "1" }, config, logger, () => ({ routes: () => {} }), {
      installSignalHandlers: false,
    });
    running.push(svc);
    const health = createClient(Health, createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.service.url }));
    const ac = new AbortController();
    const first = health.watch({ service: "" }, { signal: ac.signal })[Symbol.asyncIterator]();
    await first.next();
    const second = await codeOf(health.watch({ service: "" })[Symbol.asyncIterator]().next());
    expect(second.code).toBe(Code.ResourceExhausted);
    ac.abort();
    await first.return?.();
  });

  it("a start that fails once the bus exists (the port is taken) stops the service's work and closes the bus", async () => {
    const taken = await start(() => ({}));
    running.push(taken);
    let opened: Bus | undefined;
    let stopped = false;
    const { logger } = captureLogger();
    const config = settings.parse({ PORT: String(taken.service.port), NATS_URL: nats.url, AUTH_IDENTITIES_FILE: testIdentitiesFile() });
    const failed = startBusService(
      { name: "kit-test", version: "1" },
      config,
      logger,
      (bus) => {
        opened = bus;
        return {
          routes: () => {},
          stop: async () => {
            stopped = true;
          },
        };
      },
      { installSignalHandlers: false },
    );
    await expect(failed).rejects.toMatchObject({ code: "EADDRINUSE" });
    expect(stopped).toBe(true);
    await opened!.ready.catch(() => {});
    expect(opened!.connected).toBe(false);
  });

  it("a status report cut off by the shutdown (the bus drains under it) is logged at debug, not as a failure", async () => {
    let release: (() => void) | undefined;
    let collecting = false;
    const svc = await start(
      () => ({
        // Holds the first report that finds it waiting until the test lets it go: after the shutdown has begun.
        counters: () => {
          if (release) return [];
          collecting = true;
          return new Promise((resolve) => {
            release = () => resolve([]);
          });
        },
      }),
      "i-cut",
    );
    await svc.bus.ready;
    await until(() => collecting, { what: "a status report in progress" });
    const stopping = svc.stop();
    release?.();
    await stopping;
    await until(() => svc.lines.some((l) => l.msg === "status report cut off by the shutdown"), { what: "the cut-off report's line" });
    expect(svc.lines.filter((l) => l.level === 40 && l.msg === "status report failed")).toEqual([]);
  });

  it("stops the service's work while the bus is still up, then drains the bus", async () => {
    let busUpDuringStop: boolean | undefined;
    let bus: Bus | undefined;
    const svc = await start((b) => {
      bus = b;
      return {
        async stop() {
          busUpDuringStop = b.connected;
        },
      };
    });
    await svc.bus.ready;
    await svc.stop();
    expect(busUpDuringStop).toBe(true);
    expect(bus?.connected).toBe(false);
  });
});
