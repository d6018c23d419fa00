import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  type ConnectRouter,
  createMethodImplSpec,
  createServiceImplSpec,
  type Interceptor,
  type MethodImplSpec,
} from "@connectrpc/connect";
import { type UniversalHandlerOptions, validateUniversalHandlerOptions } from "@connectrpc/connect/protocol";
import { type ConnectNodeAdapterOptions, connectNodeAdapter } from "@connectrpc/connect-node";
import { collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { assertAccessRules, authInterceptor, type ServerAuth } from "./auth/index.js";
import { holds } from "./auth/roles.js";
import { type ErrorTable, errorMappingInterceptor } from "./errors.js";
import { createHealthRegistry, type HealthRegistry, OVERALL, registerHealthService, type ServingStatus } from "./health.js";
import { createRpcMetrics, loggingInterceptor, metricsInterceptor } from "./interceptors.js";
import { type JsonRequestReader, withJsonRequestReader } from "./json-request.js";
import { limitReporter, resolveLimits, type ServerLimits, streamingCallLimit } from "./limits.js";
import type { Logger } from "./logger.js";
import { registerReflectionServices } from "./reflection.js";
import {
  PLAINTEXT_REFUSED_RESPONSE,
  peerCertificateKey,
  peerCertificateOf,
  peerContextValues,
  type ServerTlsOptions,
  TLS_HANDSHAKE_RECORD,
  tlsTerminator,
} from "./tls.js";

export interface ServiceOptions {
  /** Service name, e.g. "gateway": in logs and in the startup line. */
  name: string;
  version?: string;
  /** Port to listen on; 0 picks a free one (tests). */
  port: number;
  /** Default "0.0.0.0". */
  host?: string;
  logger: Logger;
  /**
   * Who may call what (serverAuth(settings) from the AUTH_* settings). Every RPC's role comes from its contract;
   * the server refuses to start when a registered method declares none.
   */
  auth: ServerAuth;
  /** Registers the Connect service implementations: `(router) => router.service(Desc, impl)`. */
  routes: (router: ConnectRouter) => void;
  /**
   * The service's error tables: what its typed errors become at the API edge (see ErrorTable). Applied inside the
   * logging and metrics interceptors, so the log line and the `code` label show the mapped code.
   */
  errors?: ErrorTable[];
  /** Run inside the kit's logging, metrics and error-mapping interceptors, in order. */
  interceptors?: Interceptor[];
  /** Upper bound for stop(), default 10 000 ms. */
  shutdownTimeoutMs?: number;
  /** Default true: SIGTERM or SIGINT run stop() and then exit the process. */
  installSignalHandlers?: boolean;
  /** Overall health right after start, default SERVING. Start NOT_SERVING if the service must connect first. */
  initialStatus?: ServingStatus;
  /** Largest request message in bytes, default 4 MiB (as gRPC's default). */
  readMaxBytes?: number;
  /** Connection, timeout and stream limits; each unset one takes its default (see ServerLimits, README "Limits"). */
  limits?: Partial<ServerLimits>;
  /**
   * TLS on the port (README "TLS"): gRPC and HTTP/1.1 by ALPN, certificate files followed for rotation, optional
   * client certificates. Unset: plaintext. A bad file stops the start with a ConfigError naming its TLS_* setting.
   */
  tls?: ServerTlsOptions;
  /**
   * Plain HTTP routes beside /healthz, /readyz and /metrics, answered for GET and HEAD without authentication (what
   * they serve must hold no secret: e.g. the gateway's API document). By path; a key ending in "/" also takes every
   * path below it. A path of the kit's own or a key without a leading "/" stops the start.
   */
  httpRoutes?: Record<string, HttpRouteHandler>;
  /**
   * Faster readers of Connect JSON requests for registered unary methods (see JsonRequestReader): what they leave goes
   * to protobuf-es, and the answer is the same either way. A reader of a method that is not registered stops the start.
   */
  jsonRequestReaders?: JsonRequestReader[];
}

/** Writes the whole answer to one plain HTTP request; `path` is the request's path without its query. */
export type HttpRouteHandler = (req: HttpRouteRequest, res: HttpRouteResponse, path: string) => void | Promise<void>;
/** What a route reads of its request (HTTP/1.1 or HTTP/2 alike). */
export interface HttpRouteRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: http.IncomingHttpHeaders;
}
/** What a route writes (HTTP/1.1 or HTTP/2 alike). */
export interface HttpRouteResponse {
  readonly headersSent: boolean;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  writeHead(status: number, headers?: http.OutgoingHttpHeaders): unknown;
  end(body?: string | Uint8Array): unknown;
}

const KIT_ROUTES = new Set(["/healthz", "/readyz", "/metrics"]);

/** The handler for a path: an exact key first, else the longest key ending in "/" that the path starts with. */
function httpRouteFor(routes: Record<string, HttpRouteHandler>, path: string): HttpRouteHandler | undefined {
  const exact = routes[path];
  if (exact) return exact;
  let best: string | undefined;
  for (const key of Object.keys(routes)) {
    if (key.endsWith("/") && path.startsWith(key) && (best === undefined || key.length > best.length)) best = key;
  }
  return best === undefined ? undefined : routes[best];
}

export interface RunningService {
  /** The bound port (the real one when 0 was asked for). */
  port: number;
  /** http://127.0.0.1:<port>, https:// with TLS (or the host it listens on, when that is a specific address). */
  url: string;
  /** Serving status per service; "" is the overall status, which /readyz reports. */
  health: HealthRegistry;
  /** prom-client registry served at /metrics: default process metrics and rpc_server_*; add your own. */
  metrics: Registry;
  /** Aborted when shutdown begins; server streams end through it (it is the handlers' ctx.signal too). */
  shutdownSignal: AbortSignal;
  /** A hook run during stop(), after in-flight calls ended, in registration order (e.g. drain NATS). */
  onShutdown(hook: () => Promise<void> | void): void;
  /** Graceful stop, bounded by shutdownTimeoutMs; safe to call more than once. */
  stop(): Promise<void>;
}

type NodeHandler = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
type NodeRequest = Parameters<NodeHandler>[0];
type NodeResponse = Parameters<NodeHandler>[1];

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const REQUEST_TIMEOUT_RESPONSE = "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/** What the server knows of an HTTP/1.1 connection it owns: requests in flight, and the deadline of the next request head. */
interface H1Connection {
  inFlight: number;
  headDeadline: NodeJS.Timeout | undefined;
}

/**
 * Starts one plaintext port that serves gRPC (HTTP/2 with prior knowledge, "h2c"), gRPC-Web and
 * Connect (HTTP/1.1 and h2c), plus GET /healthz, /readyz and /metrics.
 *
 * Why one port: Node's http2 server speaks only h2c without TLS, which curl and browsers (HTTP/1.1)
 * cannot use, and an HTTP/1.1 server cannot carry gRPC. Rather than two ports (and two of everything
 * in compose files, Kubernetes Services and probes), a net.Server looks at the first bytes of each
 * connection: the HTTP/2 client preface `PRI * HTTP/2.0` goes to an http2 server, anything else to an
 * http server, both with the same Connect handler. So grpcurl, buf curl, Kubernetes gRPC probes,
 * curl and a browser all use the same address.
 *
 * Also registered: grpc.health.v1.Health and gRPC server reflection (v1 and v1alpha).
 */
export async function startService(options: ServiceOptions): Promise<RunningService> {
  const { logger } = options;
  const host = options.host ?? "0.0.0.0";
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
  const limits = resolveLimits(options.limits);
  const extraRoutes = options.httpRoutes ?? {};
  for (const key of Object.keys(extraRoutes)) {
    if (!key.startsWith("/") || KIT_ROUTES.has(key)) {
      throw new Error(`httpRoutes: "${key}" ${key.startsWith("/") ? "is a route of the kit's own" : "must start with /"}`);
    }
  }

  const health = createHealthRegistry(options.initialStatus ?? "SERVING");
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const rpcMetrics = createRpcMetrics(metrics);
  const reportLimit = limitReporter(logger, limits, metrics);
  const streamingCalls = streamingCallLimit(limits.maxStreamingCalls, reportLimit, metrics);
  const shutdown = new AbortController();
  const hooks: Array<() => Promise<void> | void> = [];

  let captured: ConnectRouter | undefined;
  const adapterOptions: ConnectNodeAdapterOptions = {
    // No prefix: gRPC clients only call /pkg.Service/Method.
    requestPathPrefix: "",
    shutdownSignal: shutdown.signal,
    readMaxBytes: options.readMaxBytes ?? 4 * 1024 * 1024,
    // The verified client certificate, for handlers and interceptors: ctx.values.get(peerCertificateKey).
    contextValues: peerContextValues,
    interceptors: [
      streamingCalls.interceptor,
      loggingInterceptor(logger, { shutdownSignal: shutdown.signal }),
      metricsInterceptor(rpcMetrics, { shutdownSignal: shutdown.signal }),
      authInterceptor({
        authenticator: options.auth.authenticator,
        reflection: options.auth.reflection,
        limits: options.auth.limits,
        peer: (values) => values.get(peerCertificateKey),
        onLimit: (limit, caller) =>
          reportLimit(limit, `caller "${caller.name}" reached its ${limit === "callerRate" ? "rate" : "stream"} limit`),
      }),
      errorMappingInterceptor(options.errors ?? []),
      ...(options.interceptors ?? []),
    ],
    routes(router) {
      captured = router;
      const implemented = recordImplementations(router);
      options.routes(implemented.router);
      registerHealthService(router, health);
      registerReflectionServices(router, () => registeredServices(router));
      for (const reader of options.jsonRequestReaders ?? []) {
        const at = router.handlers.findIndex((h) => h.method === reader.method);
        const found = implemented.specs.get(reader.method);
        if (at < 0 || found === undefined || found.spec.kind !== "unary") {
          throw new Error(`jsonRequestReaders: ${reader.method.parent.typeName}.${reader.method.name} is not a registered unary method`);
        }
        // The options the router gave this method's handlers: the adapter's (acceptCompression is filled in by now), then the service's own.
        const opt = { ...validateUniversalHandlerOptions(adapterOptions), ...found.options } as UniversalHandlerOptions;
        router.handlers[at] = withJsonRequestReader(router.handlers[at]!, found.spec, reader, opt);
      }
    },
    fallback: (req, res) => void httpRoutes(req, res),
  };
  const connectHandler = connectNodeAdapter(adapterOptions);
  assertAccessRules(registeredServices(captured!));
  for (const s of registeredServices(captured!)) health.register(s.typeName);

  async function httpRoutes(req: NodeRequest, res: NodeResponse) {
    const path = (req.url ?? "").split("?", 1)[0];
    const send = (status: number, contentType: string, body: string) => {
      res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
      if (req.method === "HEAD") res.end();
      else res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(404, "text/plain; charset=utf-8", "not found\n");
      return;
    }
    try {
      switch (path) {
        case "/healthz":
          send(200, "application/json", `${JSON.stringify({ status: "ok", service: options.name })}\n`);
          return;
        case "/readyz": {
          const overall = health.get(OVERALL);
          if (overall === "SERVING") send(200, "application/json", `${JSON.stringify({ status: "SERVING" })}\n`);
          else {
            const reason = health.isShutdown ? "shutting down" : "overall health is NOT_SERVING";
            send(503, "application/json", `${JSON.stringify({ status: "NOT_SERVING", reason, services: health.list() })}\n`);
          }
          return;
        }
        case "/metrics":
          if (options.auth.metrics === "required" && !(await mayReadMetrics(req))) {
            res.setHeader("www-authenticate", 'Bearer realm="meridian"');
            send(401, "text/plain; charset=utf-8", "metrics:read role required\n");
            return;
          }
          send(200, metrics.contentType, await metrics.metrics());
          return;
        default: {
          const route = httpRouteFor(extraRoutes, path ?? "");
          if (route) await route(req, res, path ?? "");
          else send(404, "text/plain; charset=utf-8", "not found\n");
        }
      }
    } catch (err) {
      logger.error({ err, path }, "http route failed");
      if (!res.headersSent) send(500, "text/plain; charset=utf-8", "internal error\n");
      else res.end();
    }
  }

  async function mayReadMetrics(req: NodeRequest): Promise<boolean> {
    const header = req.headers.authorization;
    try {
      const caller = await options.auth.authenticator.authenticate(
        typeof header === "string" ? header : null,
        peerCertificateOf(req.socket),
      );
      return holds(caller.roles, "metrics:read");
    } catch {
      return false;
    }
  }

  // In-flight requests (unary calls, streams, plain HTTP routes), so stop() can wait for them.
  let active = 0;
  let idle: (() => void) | undefined;
  const handler = (req: NodeRequest, res: NodeResponse) => {
    active++;
    res.once("close", () => {
      active--;
      if (active === 0) idle?.();
    });
    // During shutdown an HTTP/1.1 keep-alive connection is closed after its current response.
    if (shutdown.signal.aborted && res instanceof http.ServerResponse) res.setHeader("connection", "close");
    connectHandler(req, res);
  };

  // requestTimeout 0: server streams may run for hours. Node's own headersTimeout cannot bound the request head
  // here: its default follows requestTimeout down to 0, and even when set it is enforced by a timer the http server
  // starts on 'listening', which this one never emits (the front listener owns the port and hands sockets over), so
  // it never applied (nor did closeIdleConnections). The head deadline below is ours, per connection.
  const h1 = http.createServer({ requestTimeout: 0, keepAliveTimeout: limits.keepAliveTimeoutMs }, handler);
  const h1Connections = new Map<net.Socket, H1Connection>();
  h1.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const conn = h1Connections.get(req.socket as net.Socket);
    if (!conn) return;
    conn.inFlight++;
    clearTimeout(conn.headDeadline);
    conn.headDeadline = undefined;
    res.once("close", () => {
      conn.inFlight--;
      // The next request may start after the keep-alive time at the latest; its head then gets the same time as
      // the first one. Node's keep-alive timer alone would not do: any byte restarts it.
      if (conn.inFlight === 0 && !req.socket.destroyed) {
        armHeadDeadline(req.socket as net.Socket, conn, limits.keepAliveTimeoutMs + limits.headersTimeoutMs);
      }
    });
  });
  function armHeadDeadline(socket: net.Socket, conn: H1Connection, inMs: number) {
    clearTimeout(conn.headDeadline);
    conn.headDeadline = setTimeout(
      () => {
        reportLimit("headersTimeoutMs", `HTTP/1.1 request head not complete within ${limits.headersTimeoutMs} ms: connection closed`);
        socket.end(REQUEST_TIMEOUT_RESPONSE, () => socket.destroy());
      },
      Math.max(0, inMs),
    );
    conn.headDeadline.unref();
  }
  /** The first request's head is timed from the connection's accept: the bytes that chose HTTP/1.1 are part of it. */
  function handToH1(socket: net.Socket, acceptedAt: number) {
    const conn: H1Connection = { inFlight: 0, headDeadline: undefined };
    h1Connections.set(socket, conn);
    socket.once("close", () => {
      clearTimeout(conn.headDeadline);
      h1Connections.delete(socket);
    });
    armHeadDeadline(socket, conn, acceptedAt + limits.headersTimeoutMs - Date.now());
    h1.emit("connection", socket);
    socket.resume();
  }

  const h2 = http2.createServer({ settings: { maxConcurrentStreams: limits.http2MaxConcurrentStreams } }, handler);
  const sessions = new Set<http2.Http2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    // Idle means no stream open: a session carrying one Subscribe for hours is busy, and PINGs do not count
    // as activity (http2's own session timeout would count them, and would also cut long streams).
    let open = 0;
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = () => {
      idleTimer = setTimeout(() => {
        logger.debug({ idleMs: limits.http2IdleTimeoutMs }, "http2 session idle: closing (GOAWAY)");
        session.close();
      }, limits.http2IdleTimeoutMs);
      idleTimer.unref();
    };
    armIdle();
    session.on("stream", (stream) => {
      clearTimeout(idleTimer);
      if (++open >= limits.http2MaxConcurrentStreams) {
        reportLimit(
          "http2MaxConcurrentStreams",
          `an HTTP/2 connection has ${open} streams open, its most: further streams on it are refused until one ends`,
        );
      }
      stream.once("close", () => {
        if (--open === 0 && !session.closed && !session.destroyed) armIdle();
      });
    });
    session.once("close", () => {
      clearTimeout(idleTimer);
      sessions.delete(session);
    });
  });
  h2.on("sessionError", (err) => logger.debug({ err }, "http2 session error"));
  h1.on("clientError", (err, socket) => {
    logger.debug({ err }, "http/1.1 client error");
    socket.destroy();
  });

  // Before the port opens: a TLS file that cannot be used stops the start (ConfigError naming its setting).
  const tlsFront = options.tls
    ? tlsTerminator(options.tls, { logger, registry: metrics, handshakeTimeoutMs: limits.firstBytesTimeoutMs })
    : undefined;

  const sockets = new Set<net.Socket>();
  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    sniff(socket, Date.now());
  });
  // Node closes a connection beyond the cap right after accepting it and tells only through 'drop'.
  front.maxConnections = limits.maxConnections;
  front.on("drop", () => {
    reportLimit("maxConnections", `connection limit reached (${limits.maxConnections} open): new connections are closed at once`);
  });
  new Gauge({
    name: "server_connections",
    help: "Connections open on the server's port (limited by maxConnections).",
    registers: [metrics],
    collect() {
      this.set(sockets.size);
    },
  });

  // Reads until the bytes either are the whole HTTP/2 preface or stop matching it, then puts them back
  // and hands the socket over; the chosen server reads them again as if nothing happened. The deadline is
  // absolute: a client sending the preface one byte at a time must not hold the socket 24 times as long.
  // With TLS the first byte decides, and the deadline runs on until the handshake is done.
  function sniff(socket: net.Socket, acceptedAt: number) {
    let buffered = Buffer.alloc(0);
    const fail = () => socket.destroy();
    const deadline = setTimeout(fail, limits.firstBytesTimeoutMs);
    deadline.unref();
    socket.once("close", () => clearTimeout(deadline));
    socket.on("error", fail);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (tlsFront) {
        socket.off("data", onData);
        socket.pause();
        if (buffered[0] !== TLS_HANDSHAKE_RECORD) {
          clearTimeout(deadline);
          refusePlaintext(socket, buffered);
          return;
        }
        socket.unshift(buffered);
        tlsFront.handshake(socket, (secure) => {
          clearTimeout(deadline);
          socket.off("error", fail);
          // ALPN chose: "h2" is gRPC's HTTP/2; "http/1.1", or a client that offered no ALPN, gets HTTP/1.1.
          if (secure.alpnProtocol === "h2") h2.emit("connection", secure);
          else handToH1(secure, acceptedAt);
        });
        return;
      }
      const n = Math.min(buffered.length, HTTP2_PREFACE.length);
      const matches = buffered.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
      if (matches && n < HTTP2_PREFACE.length) return; // need more bytes to decide
      socket.off("data", onData);
      socket.off("error", fail);
      clearTimeout(deadline);
      socket.pause();
      socket.unshift(buffered);
      // http2 reads the socket natively once it owns it; resuming here would hand the bytes to
      // nobody (checked on Node 20 and 24). The http/1.1 server reads through JS and needs the resume.
      if (matches) h2.emit("connection", socket);
      else handToH1(socket, acceptedAt);
    };
    socket.on("data", onData);
  }

  /**
   * Plaintext on the TLS port: an HTTP/1.x client reads why in a 400, an HTTP/2 one (gRPC without TLS) is closed,
   * as it cannot be told anything before its preface is complete. Either way the connection ends here.
   */
  function refusePlaintext(socket: net.Socket, first: Buffer) {
    logger.debug({ remoteAddress: socket.remoteAddress }, "plaintext connection on the TLS port: refused");
    const n = Math.min(first.length, HTTP2_PREFACE.length);
    if (first.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n))) socket.destroy();
    else socket.end(PLAINTEXT_REFUSED_RESPONSE, () => socket.destroy());
  }

  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(options.port, host, () => {
      front.off("error", reject);
      resolve();
    });
  });
  front.on("error", (err) => logger.error({ err }, "listener error"));
  const port = (front.address() as net.AddressInfo).port;
  const urlHost = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  const url = `${tlsFront ? "https" : "http"}://${urlHost}:${port}`;

  let stopping: Promise<void> | undefined;
  const signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT"];
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal during shutdown: exiting now");
      process.exit(1);
    }
    logger.info({ signal }, "signal received: shutting down");
    void stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  if (options.installSignalHandlers ?? true) for (const s of signals) process.on(s, onSignal);

  async function runShutdown(): Promise<void> {
    const started = Date.now();
    const deadline = started + shutdownTimeoutMs;
    // Calls that ignore the shutdown signal may use at most two thirds of the time, so the hooks
    // (draining the bus, flushing sinks) still get a chance to run.
    const drainDeadline = started + Math.floor((shutdownTimeoutMs * 2) / 3);
    let timedOut = false;
    /** Waits for p, or until the given time; returns false when the time came first. */
    const within = async (p: Promise<unknown>, until = deadline): Promise<boolean> => {
      let timer: NodeJS.Timeout | undefined;
      const ok = await Promise.race([
        p.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), Math.max(0, until - Date.now()));
        }),
      ]);
      clearTimeout(timer);
      return ok;
    };

    logger.info({ shutdownTimeoutMs }, "shutting down");
    // 1. Tell probes and health watchers first, and let the watchers see it.
    health.shutdown();
    await new Promise((resolve) => setImmediate(resolve));
    // 2. Accept no new connections; idle HTTP/1.1 connections go now, HTTP/2 clients get GOAWAY.
    const listenerClosed = new Promise<void>((resolve) => front.close(() => resolve()));
    for (const [socket, conn] of h1Connections) if (conn.inFlight === 0) socket.destroy();
    for (const session of sessions) session.close();
    // 3. End server streams (and tell unary handlers through ctx.signal).
    shutdown.abort(new Error("server shutting down"));
    // 4. Wait for the calls in flight.
    if (active > 0) {
      const drained = new Promise<void>((resolve) => {
        idle = resolve;
      });
      if (!(await within(drained, drainDeadline))) {
        timedOut = true;
        logger.warn({ inFlight: active }, "shutdown: requests still in flight, going on without them");
      }
    }
    // 5. The service's own hooks, in order: one failing does not stop the next; once the time is
    //    up, the rest are skipped.
    for (const [i, hook] of hooks.entries()) {
      const run = Promise.resolve()
        .then(hook)
        .catch((err: unknown) => logger.error({ err, hook: i }, "shutdown hook failed"));
      if (!(await within(run))) {
        timedOut = true;
        logger.warn({ hook: i, skipped: hooks.length - i - 1 }, "shutdown timeout: a shutdown hook did not finish");
        break;
      }
    }
    // 6. Whatever is still connected is cut.
    for (const session of sessions) session.destroy();
    for (const socket of sockets) socket.destroy();
    tlsFront?.stop();
    await within(listenerClosed);
    for (const s of signals) process.off(s, onSignal);
    options.auth.authenticator.close();
    logger.info({ durationMs: Date.now() - started, timedOut }, "stopped");
  }

  function stop(): Promise<void> {
    stopping ??= runShutdown();
    return stopping;
  }

  if (tlsFront) logger.info({ version: options.version, port, host, tls: tlsFront.summary() }, "listening (TLS)");
  else logger.info({ version: options.version, port, host, tls: false }, "listening in plaintext: no TLS certificate is set");
  return {
    port,
    url,
    health,
    metrics,
    shutdownSignal: shutdown.signal,
    onShutdown(hook) {
      hooks.push(hook);
    },
    stop,
  };
}

/**
 * A router that registers on `router` and keeps what each method was registered with: a JSON request reader needs the
 * implementation and the options, which the router's handlers do not expose.
 */
function recordImplementations(router: ConnectRouter): {
  router: ConnectRouter;
  specs: Map<DescMethod, { spec: MethodImplSpec; options: Partial<UniversalHandlerOptions> | undefined }>;
} {
  const specs = new Map<DescMethod, { spec: MethodImplSpec; options: Partial<UniversalHandlerOptions> | undefined }>();
  const recording: ConnectRouter = {
    handlers: router.handlers,
    service(service, implementation, options) {
      router.service(service, implementation, options);
      const spec = createServiceImplSpec(service, implementation);
      for (const method of service.methods) specs.set(method, { spec: spec.methods[method.localName]!, options });
      return recording;
    },
    rpc(method, implementation, options) {
      router.rpc(method, implementation, options);
      specs.set(method, { spec: createMethodImplSpec(method, implementation), options });
      return recording;
    },
  };
  return { router: recording, specs };
}

function registeredServices(router: ConnectRouter): DescService[] {
  const byName = new Map<string, DescService>();
  for (const h of router.handlers) byName.set(h.service.typeName, h.service);
  return [...byName.values()];
}
