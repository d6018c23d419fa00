import * as net from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import {
  Health,
  type HealthCheckRequest,
  HealthCheckRequestSchema,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "@meridian/contracts/grpc/health/v1/health_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { testCredential } from "@meridian/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startTestService, type TestService } from "./harness.js";

const started: TestService[] = [];
async function start(...args: Parameters<typeof startTestService>): Promise<TestService> {
  const svc = await startTestService(...args);
  started.push(svc);
  return svc;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

/** Health/Check through @grpc/grpc-js, a real gRPC client over h2c, with our generated codec. */
function grpcJsCheck(port: number, service: string): Promise<HealthCheckResponse> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise<HealthCheckResponse>((resolve, reject) => {
    client.makeUnaryRequest<HealthCheckRequest, HealthCheckResponse>(
      "/grpc.health.v1.Health/Check",
      (m) => Buffer.from(toBinary(HealthCheckRequestSchema, m)),
      (b) => fromBinary(HealthCheckResponseSchema, b),
      create(HealthCheckRequestSchema, { service }),
      (err, res) => (err ? reject(err) : resolve(res!)),
    );
  }).finally(() => client.close());
}

describe("one port, every protocol", () => {
  it("answers gRPC over h2c (grpc-js) on the same port", async () => {
    const svc = await start();
    const res = await grpcJsCheck(svc.port, "");
    expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    // Every registered service is a health key that mirrors the overall status.
    expect((await grpcJsCheck(svc.port, "meridian.route.v1.RouteService")).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    await expect(grpcJsCheck(svc.port, "no.such.Service")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("answers Connect JSON over HTTP/1.1 with plain fetch, echoing x-request-id", async () => {
    const svc = await start();
    const res = await fetch(`${svc.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-123" },
      body: JSON.stringify({ service: "" }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "SERVING" });
    expect(res.headers.get("x-request-id")).toBe("req-123");

    const missing = await fetch(`${svc.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service: "nope" }),
    });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: "not_found" });
    expect(missing.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers Connect (HTTP/1.1 and h2c) and gRPC-Web clients from connect-node", async () => {
    const svc = await start();
    const transports = {
      connect11: createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
      connect2: createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "2" }),
      grpcWeb11: createGrpcWebTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
      grpc: createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url }),
    };
    for (const [name, transport] of Object.entries(transports)) {
      const health = createClient(Health, transport);
      expect((await health.check({ service: "" })).status, name).toBe(HealthCheckResponse_ServingStatus.SERVING);
      const routes = createClient(RouteService, transport);
      expect((await routes.getRoute({ id: "r1" })).route?.id, name).toBe("r1");
    }
  });

  it("tells HTTP/2 from HTTP/1.1 when the first bytes arrive one at a time (POST starts like the preface)", async () => {
    const svc = await start();
    const proxy = await tricklingProxy(svc.port);
    try {
      const health = createClient(Health, createGrpcTransport({ interceptors: [testCredential()], baseUrl: proxy.url }));
      expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      const res = await fetch(`${proxy.url}/grpc.health.v1.Health/Check`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(await res.json()).toEqual({ status: "SERVING" });
      expect(proxy.trickled()).toBeGreaterThanOrEqual(2);
    } finally {
      await proxy.close();
    }
  });
});

/**
 * A TCP proxy that forwards the first 32 bytes of each client connection one byte per packet (with a
 * pause between them), the rest as it comes, so the server sees the start of the stream in pieces.
 */
async function tricklingProxy(target: number): Promise<{ url: string; trickled: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(target, "127.0.0.1");
    upstream.setNoDelay(true);
    open.add(client).add(upstream);
    let sent = 0;
    let chain = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      chain = chain.then(async () => {
        for (let i = 0; i < chunk.length; ) {
          const n = sent < 32 ? 1 : chunk.length - i;
          upstream.write(chunk.subarray(i, i + n));
          i += n;
          sent += n;
          if (sent <= 32) await new Promise((r) => setTimeout(r, 2));
        }
      });
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    trickled: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("health", () => {
  it("Watch streams SERVICE_UNKNOWN, then updates", async () => {
    const svc = await start();
    const health = createClient(Health, createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }));
    const abort = new AbortController();
    const seen: HealthCheckResponse_ServingStatus[] = [];
    const it = health.watch({ service: "pipeline" }, { signal: abort.signal })[Symbol.asyncIterator]();
    seen.push((await it.next()).value.status);
    svc.health.set("pipeline", "SERVING");
    seen.push((await it.next()).value.status);
    svc.health.set("pipeline", "NOT_SERVING");
    seen.push((await it.next()).value.status);
    abort.abort();
    expect(seen).toEqual([
      HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN,
      HealthCheckResponse_ServingStatus.SERVING,
      HealthCheckResponse_ServingStatus.NOT_SERVING,
    ]);
  });

  it("registered services mirror the overall status unless set; List shows every key", async () => {
    const svc = await start();
    const health = createClient(Health, createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url }));
    svc.health.set("", "NOT_SERVING");
    expect((await health.check({ service: "meridian.route.v1.RouteService" })).status).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
    svc.health.set("meridian.route.v1.RouteService", "SERVING");
    expect((await health.check({ service: "meridian.route.v1.RouteService" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const list = await health.list({});
    expect(Object.keys(list.statuses)).toEqual(expect.arrayContaining(["", "meridian.route.v1.RouteService", "grpc.health.v1.Health"]));
    expect(list.statuses[""]?.status).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
  });
});

describe("plain HTTP routes", () => {
  it("/healthz is 200 while running; /readyz follows the overall health", async () => {
    const svc = await start();
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);
    svc.health.set("", "NOT_SERVING");
    const down = await fetch(`${svc.url}/readyz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ status: "NOT_SERVING", reason: expect.any(String) });
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    svc.health.set("", "SERVING");
    expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${svc.url}/nope`)).status).toBe(404);
  });

  it("serves the service's own httpRoutes without credentials: exact paths, a prefix ending in /, GET and HEAD only", async () => {
    const seen: string[] = [];
    const svc = await start({
      httpRoutes: {
        "/doc.json": (_req, res) => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end('{"ok":true}');
        },
        "/assets/": (req, res, path) => {
          seen.push(`${req.method} ${path}`);
          res.writeHead(200, { "content-type": "text/plain" });
          res.end(req.method === "HEAD" ? undefined : path);
        },
        "/assets/deep/": async (_req, res) => {
          await new Promise((resolve) => setImmediate(resolve));
          res.writeHead(200);
          res.end("deeper");
        },
      },
    });
    const doc = await fetch(`${svc.url}/doc.json?x=1`);
    expect(doc.status).toBe(200);
    expect(await doc.json()).toEqual({ ok: true });
    expect(await (await fetch(`${svc.url}/assets/app.css`)).text()).toBe("/assets/app.css");
    // The longest matching prefix wins.
    expect(await (await fetch(`${svc.url}/assets/deep/x.js`)).text()).toBe("deeper");
    expect((await fetch(`${svc.url}/assets/a.js`, { method: "HEAD" })).status).toBe(200);
    expect(seen).toEqual(["GET /assets/app.css", "HEAD /assets/a.js"]);
    // Not a route: /doc.json/x, /assets without its slash, a POST.
    expect((await fetch(`${svc.url}/doc.json/x`)).status).toBe(404);
    expect((await fetch(`${svc.url}/assets`)).status).toBe(404);
    expect((await fetch(`${svc.url}/doc.json`, { method: "POST", body: "{}" })).status).toBe(404);
    // The kit's own routes are still its own.
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
  });

  it("a handler that throws answers 500 and is logged; a kit path or a relative key stops the start", async () => {
    const svc = await start({
      httpRoutes: {
        "/broken": () => {
          throw new Error("boom");
        },
      },
    });
    const res = await fetch(`${svc.url}/broken`);
    expect(res.status).toBe(500);
    expect(svc.lines.some((l) => l.msg === "http route failed")).toBe(true);
    await expect(start({ httpRoutes: { "/metrics": () => {} } })).rejects.toThrow(/\/metrics" is a route of the kit's own/);
    await expect(start({ httpRoutes: { docs: () => {} } })).rejects.toThrow(/must start with \//);
  });

  it("/metrics has rpc counters by procedure and code after calls, and default metrics", async () => {
    const svc = await start();
    const routes = createClient(
      RouteService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
    );
    const before = await (await fetch(`${svc.url}/metrics`)).text();
    expect(before).not.toContain('procedure="/meridian.route.v1.RouteService/GetRoute"');
    await routes.getRoute({ id: "r1" });
    await expect(routes.getRoute({ id: "missing" })).rejects.toThrow();
    const res = await fetch(`${svc.url}/metrics`);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain('rpc_server_handled_total{procedure="/meridian.route.v1.RouteService/GetRoute",code="ok"} 1');
    expect(text).toContain('rpc_server_handled_total{procedure="/meridian.route.v1.RouteService/GetRoute",code="not_found"} 1');
    expect(text).toMatch(/rpc_server_duration_seconds_count\{procedure="\/meridian.route.v1.RouteService\/GetRoute",code="ok"\} 1/);
    expect(text).toContain("process_cpu_user_seconds_total");
  });
});

describe("errors and logs", () => {
  it("logs one line per call with requestId, procedure, code and durationMs; handlers log with the request id", async () => {
    const svc = await start();
    const routes = createClient(
      RouteService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
    );
    await routes.getRoute({ id: "r1" }, { headers: { "x-request-id": "abc-1", authorization: "Bearer topsecret" } });
    const handlerLine = svc.lines.find((l) => l.msg === "getting route");
    expect(handlerLine).toMatchObject({ requestId: "abc-1", procedure: "/meridian.route.v1.RouteService/GetRoute", routeId: "r1" });
    const rpc = svc.lines.filter((l) => l.msg === "rpc" && l.procedure === "/meridian.route.v1.RouteService/GetRoute");
    expect(rpc).toHaveLength(1);
    expect(rpc[0]).toMatchObject({ requestId: "abc-1", code: "ok", level: 30 });
    expect(typeof rpc[0]!.durationMs).toBe("number");
    expect(svc.raw.join("\n")).not.toContain("topsecret");
  });

  it("a bug becomes a bare internal error for the client and an error log line with the stack", async () => {
    const svc = await start();
    const routes = createClient(RouteService, createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url }));
    const err = await routes.getRoute({ id: "boom" }).then(
      () => expect.unreachable(),
      (e: unknown) => ConnectError.from(e),
    );
    expect(err.code).toBe(Code.Internal);
    expect(err.message).not.toContain("hunter2");
    expect(err.message).not.toContain("at ");
    const line = svc.lines.find((l) => l.level === 50);
    expect(line).toMatchObject({ code: "internal", procedure: "/meridian.route.v1.RouteService/GetRoute" });
    expect(JSON.stringify(line)).toContain("harness.ts"); // the stack
  });

  it("ConnectErrors are logged by code at info or warn; invalid requests name the field", async () => {
    const svc = await start();
    const routes = createClient(
      RouteService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
    );
    await expect(routes.getRoute({ id: "missing" })).rejects.toMatchObject({ code: Code.NotFound });
    await expect(routes.getRoute({ id: "" })).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: expect.stringContaining("id: required"),
    });
    const codes = svc.lines.filter((l) => l.msg === "rpc").map((l) => [l.code, l.level]);
    expect(codes).toEqual([
      ["not_found", 30],
      ["invalid_argument", 30],
    ]);
    await expect(
      createClient(RouteService, createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url })).listRoutes({}),
    ).rejects.toMatchObject({
      code: Code.Unimplemented,
    });
    expect(svc.lines.at(-1)).toMatchObject({ code: "unimplemented", level: 40 });
  });
});

describe("streams through the interceptors", () => {
  const SUBSCRIBE = "/meridian.telemetry.v1.TelemetryService/Subscribe";

  it("a bug in a server stream reaches the client as a bare internal error, logged once at error level", async () => {
    const svc = await start();
    const telemetry = createClient(TelemetryService, createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url }));
    const got: string[] = [];
    const err = await (async () => {
      for await (const res of telemetry.subscribe({ filter: { device: "boom" } })) got.push(res.event!.id);
    })().then(
      () => expect.unreachable(),
      (e: unknown) => ConnectError.from(e),
    );
    expect(got).toEqual(["e0"]);
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("internal error");
    const lines = svc.lines.filter((l) => l.procedure === SUBSCRIBE && (l.msg as string).startsWith("rpc"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, code: "internal" });
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toContain(`rpc_server_handled_total{procedure="${SUBSCRIBE}",code="internal"} 1`);
  });

  it("a stream the client gives up on is logged and counted as canceled, with x-request-id in the response headers", async () => {
    const svc = await start();
    const telemetry = createClient(
      TelemetryService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
    );
    const abort = new AbortController();
    let requestIdHeader: string | null = null;
    let n = 0;
    await (async () => {
      for await (const _ of telemetry.subscribe(
        {},
        { signal: abort.signal, headers: { "x-request-id": "sub-1" }, onHeader: (h) => (requestIdHeader = h.get("x-request-id")) },
      )) {
        if (++n === 2) abort.abort();
      }
    })().catch((e: unknown) => expect(ConnectError.from(e).code).toBe(Code.Canceled));
    expect(requestIdHeader).toBe("sub-1");
    await vi.waitFor(() => expect(svc.lines.some((l) => l.procedure === SUBSCRIBE && l.msg === "rpc")).toBe(true));
    expect(svc.lines.find((l) => l.procedure === SUBSCRIBE && l.msg === "rpc")).toMatchObject({
      requestId: "sub-1",
      code: "canceled",
      level: 30,
    });
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toContain(`rpc_server_handled_total{procedure="${SUBSCRIBE}",code="canceled"} 1`);
  });
});

describe("shutdown", () => {
  it("ends a Watch stream, waits for a unary call in flight, runs hooks in order, closes the port — well under the timeout", async () => {
    const svc = await start({ shutdownTimeoutMs: 10_000 });
    const events: string[] = [];
    svc.onShutdown(async () => {
      expect(svc.shutdownSignal.aborted).toBe(true);
      await new Promise((r) => setTimeout(r, 20));
      events.push("hook 1");
    });
    svc.onShutdown(() => {
      events.push("hook 2");
    });

    const health = createClient(Health, createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url }));
    const watched: HealthCheckResponse_ServingStatus[] = [];
    const watching = (async () => {
      for await (const res of health.watch({ service: "" })) watched.push(res.status);
      events.push("watch ended");
    })();
    await vi.waitFor(() => expect(watched).toHaveLength(1));

    const routes = createClient(
      RouteService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
    );
    const slow = routes.getRoute({ id: "slow-300" }).then((r) => {
      events.push("unary done");
      return r;
    });
    await new Promise((r) => setTimeout(r, 50));

    const t0 = Date.now();
    const stopping = svc.stop();
    expect(svc.stop()).toBe(stopping); // twice is safe: the same stop
    await stopping;
    const took = Date.now() - t0;

    expect((await slow).route?.id).toBe("slow-300");
    await watching;
    expect(watched[0]).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect(events.indexOf("unary done")).toBeLessThan(events.indexOf("hook 1"));
    expect(events.indexOf("watch ended")).toBeGreaterThanOrEqual(0);
    expect(events.slice(-2)).toEqual(["hook 1", "hook 2"]);
    expect(took).toBeLessThan(3_000); // the budget is 10 s; the work itself takes a few hundred ms
    await expect(connectOnce(svc.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("is bounded by shutdownTimeoutMs even when a hook hangs", async () => {
    const svc = await start({ shutdownTimeoutMs: 300 });
    const calls: string[] = [];
    svc.onShutdown(() => new Promise<void>(() => calls.push("hanging hook")));
    svc.onShutdown(() => {
      calls.push("never");
    });
    const t0 = Date.now();
    await svc.stop();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2_500);
    expect(calls).toEqual(["hanging hook"]);
    await expect(connectOnce(svc.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("still runs the hooks when a call ignores the shutdown signal", async () => {
    const svc = await start({ shutdownTimeoutMs: 600 });
    const routes = createClient(
      RouteService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
    );
    const stuck = routes.getRoute({ id: "slow-60000" }).catch((e: unknown) => ConnectError.from(e));
    await vi.waitFor(() => expect(svc.lines.some((l) => l.msg === "getting route")).toBe(true));
    let hookRan = false;
    svc.onShutdown(() => {
      hookRan = true;
    });
    const t0 = Date.now();
    await svc.stop();
    const took = Date.now() - t0;
    expect(hookRan).toBe(true);
    expect(took).toBeGreaterThanOrEqual(350); // waited for the call, up to two thirds of the budget
    expect(took).toBeLessThan(2_500);
    expect(await stuck).toBeInstanceOf(ConnectError); // its connection was cut
  });

  it("closes an idle kept-alive HTTP/1.1 connection when it begins, before the hooks run", async () => {
    const svc = await start({ limits: { keepAliveTimeoutMs: 60_000 } });
    const socket = net.connect(svc.port, "127.0.0.1");
    let response = "";
    socket.on("data", (d: Buffer) => {
      response += d.toString();
    });
    socket.on("error", () => {});
    await new Promise((r) => socket.once("connect", r));
    socket.write("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    await vi.waitFor(() => expect(response).toContain("\r\n0\r\n\r\n"));
    let closedBeforeHook: boolean | undefined;
    svc.onShutdown(async () => {
      await new Promise((r) => setTimeout(r, 50));
      closedBeforeHook = socket.destroyed || socket.readableEnded;
    });
    await svc.stop();
    expect(closedBeforeHook).toBe(true);
  });

  it("turns health NOT_SERVING first", async () => {
    const svc = await start();
    svc.onShutdown(() => {
      expect(svc.health.get("")).toBe("NOT_SERVING");
      expect(svc.health.get("meridian.route.v1.RouteService")).toBe("NOT_SERVING");
    });
    await svc.stop();
    svc.health.set("", "SERVING"); // ignored after shutdown
    expect(svc.health.get("")).toBe("NOT_SERVING");
  });
});

function connectOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve();
    });
    s.once("error", reject);
  });
}
