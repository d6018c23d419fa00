/**
 * Abuse tests of the server's limits, against the real server over real sockets. Each one checks what happened to
 * the abusive connections and that the service kept answering normal calls, and prints its figures as one JSON line
 * (`{"limitsTest": …}`) for the issue notes. Nothing here asserts speed.
 */
import { spawn } from "node:child_process";
import * as http2 from "node:http2";
import * as net from "node:net";
import { createInterface } from "node:readline";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, type ConnectRouter, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Health } from "@meridian/contracts/grpc/health/v1/health_pb";
import { GetRouteRequestSchema, RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { codeOf, TEST_KEYS, testCredential, until } from "@meridian/testing";
import { afterEach, describe, expect, it } from "vitest";
import { routeRoutes, startTestService, type TestService } from "./harness.js";

const started: TestService[] = [];
async function start(...args: Parameters<typeof startTestService>): Promise<TestService> {
  const svc = await startTestService(...args);
  started.push(svc);
  return svc;
}
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

function figures(test: string, values: Record<string, unknown>): void {
  console.log(JSON.stringify({ limitsTest: test, node: process.version, ...values }));
}

/** A normal unary call on a fresh connection of the given protocol. */
async function normalCall(url: string, protocol: "grpc" | "connect-1.1" = "connect-1.1"): Promise<string | undefined> {
  const transport =
    protocol === "grpc"
      ? createGrpcTransport({ interceptors: [testCredential()], baseUrl: url })
      : createConnectTransport({ interceptors: [testCredential()], baseUrl: url, httpVersion: "1.1" });
  return (await createClient(RouteService, transport).getRoute({ id: "normal" })).route?.id;
}

/** Samples the process's resident set size until stopped; server and clients share the process. */
function rssSampler(): { before: number; peak: () => number; stop: () => number } {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  return {
    before,
    peak: () => peak,
    stop: () => {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      return peak;
    },
  };
}
const mib = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

/** A raw TCP connection that records what the server sent and when (ms after connecting) the server closed it. */
interface RawConnection {
  socket: net.Socket;
  received: () => string;
  /** Resolves with the time from connect to close; only the server closes these (or the test's cleanup). */
  closed: Promise<number>;
  isClosed: () => boolean;
}
function rawConnect(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    // Timed from before the connect: the server's deadlines start at its accept, no earlier, however late this
    // process gets to see its own connect event.
    const openedAt = Date.now();
    const socket = net.connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    let text = "";
    let done = false;
    socket.on("data", (d: Buffer) => {
      text += d.toString("latin1");
    });
    socket.on("error", () => {}); // a reset is one way the server closes it
    const closed = new Promise<number>((res) => socket.once("close", () => res(Date.now() - openedAt)));
    void closed.then(() => {
      done = true;
    });
    socket.once("connect", () => {
      resolve({ socket, received: () => text, closed, isClosed: () => done });
    });
    socket.once("error", reject);
  });
}

/** Writes `text` one byte every `everyMs` until it is all sent or the socket is closed; returns how many bytes went. */
async function trickle(conn: RawConnection, text: string, everyMs: number): Promise<number> {
  let sent = 0;
  while (sent < text.length && !conn.isClosed()) {
    conn.socket.write(text[sent]!);
    sent++;
    await Promise.race([new Promise((r) => setTimeout(r, everyMs)), conn.closed]);
  }
  return sent;
}

const GET_ROUTE_PATH = "/meridian.route.v1.RouteService/GetRoute";
const slowHead = (path: string) =>
  `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-request-id: slowloris-1\r\ncontent-length: 13\r\n\r\n`;

describe("slowloris on HTTP/1.1", () => {
  it("a request head sent one byte a second is answered 408 and closed at headersTimeoutMs; a long stream on HTTP/1.1 runs on", async () => {
    const headersTimeoutMs = 1500;
    const svc = await start({ limits: { headersTimeoutMs } });

    // A Connect server stream over HTTP/1.1, started first: it must outlive the head deadline by far.
    const stream = createClient(
      TelemetryService,
      createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
    );
    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    let streamed = 0;
    const streaming = (async () => {
      for await (const _ of stream.subscribe({}, { signal: abort.signal })) streamed++;
    })().catch(() => {});
    await until(() => streamed > 0, { what: "the stream's first message" });

    const head = slowHead(GET_ROUTE_PATH);
    const conn = await rawConnect(svc.port);
    const sending = trickle(conn, head, 1000);
    // The service answers others while the slow client is connected.
    expect(await normalCall(svc.url)).toBe("normal");
    expect(await normalCall(svc.url, "grpc")).toBe("normal");
    const closedAfterMs = await conn.closed;
    const bytesSent = await sending;

    expect(bytesSent).toBeLessThan(head.length); // cut before the head was complete
    expect(closedAfterMs).toBeGreaterThanOrEqual(headersTimeoutMs - 100); // the deadline did it, not something earlier
    expect(closedAfterMs).toBeLessThan(headersTimeoutMs + 2_000);
    expect(conn.received()).toMatch(/^HTTP\/1\.1 408 /);

    // The stream is older than the deadline and still delivers.
    const streamedAtCut = streamed;
    await until(() => streamed > streamedAtCut + 5, { what: "the stream going on after the cut" });
    expect(await normalCall(svc.url)).toBe("normal");
    const warned = svc.lines.filter((l) => l.limit === "headersTimeoutMs");
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, value: headersTimeoutMs, hits: 1 });
    abort.abort();
    await streaming;
    figures("slowloris", {
      headersTimeoutMs,
      bytesSent,
      headLength: head.length,
      closedAfterMs,
      response: conn.received().split("\r\n")[0],
    });
  }, 20_000);

  it("the second request on a kept-alive connection, trickled, is cut at keepAliveTimeoutMs + headersTimeoutMs", async () => {
    const headersTimeoutMs = 1500;
    const keepAliveTimeoutMs = 1000;
    const svc = await start({ limits: { headersTimeoutMs, keepAliveTimeoutMs } });
    const conn = await rawConnect(svc.port);
    conn.socket.write("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    await until(() => conn.received().endsWith("\r\n0\r\n\r\n"), { what: "the first (chunked) response", intervalMs: 10 });
    const firstDoneAt = Date.now();
    expect(conn.received()).toMatch(/^HTTP\/1\.1 200 /);

    // One byte a second restarts Node's keep-alive idle timer every time; only the head deadline ends this.
    const bytesSent = await trickle(conn, slowHead(GET_ROUTE_PATH), 1000);
    await conn.closed;
    const closedAfterResponseMs = Date.now() - firstDoneAt;
    expect(bytesSent).toBeGreaterThanOrEqual(3); // longer than the keep-alive timer alone would have allowed
    expect(closedAfterResponseMs).toBeGreaterThanOrEqual(keepAliveTimeoutMs + headersTimeoutMs - 100);
    expect(closedAfterResponseMs).toBeLessThan(keepAliveTimeoutMs + headersTimeoutMs + 2_000);
    expect(conn.received()).toContain("HTTP/1.1 408 ");
    expect(await normalCall(svc.url)).toBe("normal");
    figures("slowloris-keepalive", { keepAliveTimeoutMs, headersTimeoutMs, bytesSent, closedAfterResponseMs });
  }, 20_000);
});

/** GetRoute that holds every call with id "hold" until released, counting how many are inside at once. */
function holdingRoutes() {
  let inside = 0;
  let peak = 0;
  let completed = 0;
  let open = true;
  const waiting: Array<() => void> = [];
  const routes = (router: ConnectRouter) =>
    router.service(RouteService, {
      async getRoute(req) {
        if (req.id === "hold") {
          inside++;
          peak = Math.max(peak, inside);
          if (open) await new Promise<void>((r) => waiting.push(r));
          inside--;
          completed++;
        }
        return { route: { id: req.id, displayName: "held", sink: { platform: Platform.OMF, target: "t" } } };
      },
    });
  return {
    routes,
    inside: () => inside,
    peak: () => peak,
    completed: () => completed,
    release() {
      open = false;
      for (const r of waiting.splice(0)) r();
    },
  };
}

/** A gRPC request body: one length-prefixed message. */
function grpcFrame(id: string): Buffer {
  const msg = toBinary(GetRouteRequestSchema, create(GetRouteRequestSchema, { id }));
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(msg.length, 1);
  return Buffer.concat([prefix, msg]);
}

/**
 * node:http2 in a child process: one connection, `n` gRPC requests with `body` at once, opened once the server's
 * SETTINGS arrived (before that, node:http2 assumes 100 streams and the server refuses those beyond its limit). It
 * reports on stdout, one JSON line each: {"settings": {maxConcurrentStreams}}, then {"done": {ok, refused, other}}
 * when every stream has ended.
 */
function spawnH2Client(url: string, path: string, n: number, body: Buffer) {
  const script = `
    import * as http2 from "node:http2";
    const [url, path, n, bodyHex] = process.argv.slice(1);
    const body = Buffer.from(bodyHex, "hex");
    // 10 000 queued requests, each with its never-indexed authorization header, pass node's default 10 MB session
    // memory on the client side, which then resets its own streams with ENHANCE_YOUR_CALM.
    const client = http2.connect(url, { maxSessionMemory: 100 });
    client.on("error", () => {});
    await new Promise((resolve) => client.once("remoteSettings", resolve));
    console.log(JSON.stringify({ settings: { maxConcurrentStreams: client.remoteSettings.maxConcurrentStreams } }));
    const outcome = { ok: 0, refused: 0, other: 0 };
    let ended = 0;
    for (let i = 0; i < Number(n); i++) {
      const stream = client.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", authorization: process.env.TEST_AUTHORIZATION }, { endStream: false });
      let status;
      stream.on("trailers", (t) => { status = String(t["grpc-status"]); });
      stream.on("data", () => {});
      stream.on("error", () => {});
      stream.on("close", () => {
        if (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) outcome.refused++;
        else if (status === "0") outcome.ok++;
        else outcome.other++;
        if (++ended === Number(n)) { console.log(JSON.stringify({ done: outcome })); client.close(); }
      });
      stream.end(body);
    }`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script, url, path, String(n), body.toString("hex")], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, TEST_AUTHORIZATION: `Bearer ${TEST_KEYS.admin}` },
  });
  const reports = new Map<string, unknown>();
  createInterface({ input: child.stdout }).on("line", (line) => {
    for (const [key, value] of Object.entries(JSON.parse(line) as Record<string, unknown>)) reports.set(key, value);
  });
  return {
    kill: () => child.kill(),
    async report<K extends "settings" | "done">(
      key: K,
    ): Promise<K extends "settings" ? { maxConcurrentStreams: number } : { ok: number; refused: number; other: number }> {
      await until(() => reports.has(key) || child.exitCode !== null, { what: `the HTTP/2 client's ${key}`, timeoutMs: 30_000 });
      if (!reports.has(key)) throw new Error(`the HTTP/2 client exited (${child.exitCode}) before its ${key}`);
      return reports.get(key) as never;
    },
  };
}

// A minimal HTTP/2 client in raw frames, for a client that ignores the server's SETTINGS (node:http2 obeys them).
function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}
/** HPACK "literal header field without indexing, new name", no Huffman; names and values here are under 127 bytes. */
function hpackLiteral(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}
const H2 = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, END_STREAM: 1, END_HEADERS: 4, REFUSED_STREAM: 7 };

describe("many HTTP/2 streams on one connection", () => {
  it("advertises http2MaxConcurrentStreams, never runs more at once, and refuses the streams of a client that ignores it", async () => {
    const max = 50;
    const hold = holdingRoutes();
    const svc = await start({ routes: hold.routes, limits: { http2MaxConcurrentStreams: max } });
    const rss = rssSampler();

    // 1. node:http2 opens 10 000 streams on one connection; it obeys the server's setting and queues the rest.
    //    It runs in its own process, so that this process's RSS is the server's (and the test runner's).
    const requested = 10_000;
    const body = grpcFrame("hold");
    const client = spawnH2Client(svc.url, GET_ROUTE_PATH, requested, body);
    cleanups.push(() => client.kill());
    expect((await client.report("settings")).maxConcurrentStreams).toBe(max);
    await until(() => hold.inside() === max, { what: `${max} calls inside the handler` });
    // Give the queued streams every chance to get in: none may.
    await new Promise((r) => setTimeout(r, 500));
    expect(hold.inside()).toBe(max);
    // Meanwhile another connection is served.
    expect(await normalCall(svc.url, "grpc")).toBe("normal");
    expect(await normalCall(svc.url)).toBe("normal");
    const rssHeld = rss.peak();

    // 2. A client that ignores the setting: 500 complete requests written at once on a fresh connection.
    const raw = await rawConnect(svc.port);
    const rawStreams = 500;
    const headers = Buffer.concat([
      hpackLiteral(":method", "POST"),
      hpackLiteral(":scheme", "http"),
      hpackLiteral(":path", GET_ROUTE_PATH),
      hpackLiteral(":authority", "127.0.0.1"),
      hpackLiteral("content-type", "application/grpc"),
      hpackLiteral("te", "trailers"),
      hpackLiteral("authorization", `Bearer ${TEST_KEYS.admin}`),
    ]);
    const frames = [Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), h2Frame(H2.SETTINGS, 0, 0, Buffer.alloc(0))];
    for (let i = 0; i < rawStreams; i++) {
      const id = 1 + 2 * i;
      frames.push(h2Frame(H2.HEADERS, H2.END_HEADERS, id, headers), h2Frame(H2.DATA, H2.END_STREAM, id, body));
    }
    raw.socket.write(Buffer.concat(frames));
    const resets = new Map<number, number>();
    let goaway: number | undefined;
    let advertised: number | undefined;
    const readFrames = () => {
      const buf = Buffer.from(raw.received(), "latin1");
      resets.clear();
      for (let at = 0; at + 9 <= buf.length; ) {
        const len = buf.readUIntBE(at, 3);
        if (at + 9 + len > buf.length) break;
        const type = buf[at + 3];
        const payload = buf.subarray(at + 9, at + 9 + len);
        if (type === H2.RST_STREAM) resets.set(payload.readUInt32BE(0), (resets.get(payload.readUInt32BE(0)) ?? 0) + 1);
        if (type === H2.GOAWAY) goaway = payload.readUInt32BE(4);
        if (type === H2.SETTINGS && !((buf[at + 4] ?? 0) & 1)) {
          for (let p = 0; p + 6 <= len; p += 6) if (payload.readUInt16BE(p) === 3) advertised = payload.readUInt32BE(p + 2);
        }
        at += 9 + len;
      }
    };
    await until(
      () => {
        readFrames();
        return (resets.get(H2.REFUSED_STREAM) ?? 0) >= rawStreams - max || raw.isClosed();
      },
      { what: "the raw client's extra streams refused" },
    );
    await new Promise((r) => setTimeout(r, 300));
    readFrames();
    expect(advertised).toBe(max);
    // Its first `max` streams took this connection's slots; the handler still never holds more than 2 × max
    // (the other connection's 50 are held too), and every one beyond was refused.
    expect(resets.get(H2.REFUSED_STREAM)).toBe(rawStreams - max);
    expect(hold.inside()).toBe(2 * max);
    expect(hold.peak()).toBe(2 * max);
    const rawConnectionOpen = !raw.isClosed();
    expect(await normalCall(svc.url, "grpc")).toBe("normal");

    // 3. Released, every queued stream of the obeying client completes.
    hold.release();
    const outcome = await client.report("done");
    expect(outcome).toEqual({ ok: requested, refused: 0, other: 0 });
    const rssPeak = rss.stop();
    const rssAfter = process.memoryUsage().rss;
    expect(await normalCall(svc.url)).toBe("normal");
    expect(svc.lines.filter((l) => l.limit === "http2MaxConcurrentStreams")).toHaveLength(1); // two connections were full: one line
    figures("http2-streams", {
      http2MaxConcurrentStreams: max,
      nodeClient: { requested, advertised: max, peakInHandler: max, ...outcome },
      rawClient: {
        requested: rawStreams,
        refusedStream: resets.get(H2.REFUSED_STREAM) ?? 0,
        goaway: goaway ?? null,
        connectionOpenAfter: rawConnectionOpen,
      },
      // The peak comes after the release, while the 10 000 calls are served in a burst (garbage not yet collected).
      rssMiB: { before: mib(rss.before), whileFlooded: mib(rssHeld), peakServingTheBurst: mib(rssPeak), after: mib(rssAfter) },
      heapUsedMiBAfter: mib(process.memoryUsage().heapUsed),
      logLinesKeptByTheTestLogger: svc.raw.length,
    });
  }, 60_000);
});

describe("idle connections", () => {
  it("1 000 idle TCP connections against a cap of 200: the rest are closed at once, the held ones at firstBytesTimeoutMs", async () => {
    const maxConnections = 200;
    // 4 s: opening the flood and seeing the rest closed must fit well inside it on a loaded machine, or held ones go
    // at their deadline before they are counted.
    const firstBytesTimeoutMs = 4_000;
    const http2IdleTimeoutMs = 1_500;
    const svc = await start({ limits: { maxConnections, firstBytesTimeoutMs, http2IdleTimeoutMs } });

    // A connect-node client whose connection goes idle; its next call, much later, must just work.
    const reused = createClient(RouteService, createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url }));
    expect((await reused.getRoute({ id: "first" })).route?.id).toBe("first");

    // An HTTP/2 session with no stream is closed with GOAWAY after the idle time.
    const idle = http2.connect(svc.url);
    cleanups.push(() => idle.destroy());
    const idleOpenedAt = Date.now();
    let goawayCode: number | undefined;
    idle.on("goaway", (code) => {
      goawayCode = code;
    });
    idle.on("error", () => {});
    await new Promise((r) => idle.once("close", r));
    const idleClosedAfterMs = Date.now() - idleOpenedAt;
    expect(goawayCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(idleClosedAfterMs).toBeGreaterThanOrEqual(http2IdleTimeoutMs - 100);
    expect(idleClosedAfterMs).toBeLessThan(http2IdleTimeoutMs + 2_000);

    // A connection opened before the flood, with a Subscribe stream on it for longer than the idle time: it is
    // busy, so neither cut nor counted idle, and unary calls ride on it while the port is full.
    const before = createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url });
    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    let streamed = 0;
    const streaming = (async () => {
      for await (const _ of createClient(TelemetryService, before).subscribe({}, { signal: abort.signal })) streamed++;
    })().catch(() => {});
    await until(() => streamed > 0, { what: "the stream's first message" });
    const streamStartedAt = Date.now();

    const rss = rssSampler();
    const flood = 1_000;
    const conns = await Promise.all(Array.from({ length: flood }, () => rawConnect(svc.port)));
    cleanups.push(() => {
      for (const c of conns) c.socket.destroy();
    });
    // Those beyond the cap go at once; the one pre-flood connection holds a slot.
    await until(() => conns.filter((c) => c.isClosed()).length >= flood - (maxConnections - 1), {
      what: "connections beyond the cap closed",
    });
    await new Promise((r) => setTimeout(r, 300));
    const held = conns.filter((c) => !c.isClosed()).length;
    expect(held).toBe(maxConnections - 1);
    // The port is full: a new connection is closed at once, unanswered, while the old one still carries calls.
    const extra = await rawConnect(svc.port);
    const extraClosedAfterMs = await extra.closed;
    expect(extra.received()).toBe("");
    expect(extraClosedAfterMs).toBeLessThan(firstBytesTimeoutMs - 100);
    expect((await createClient(RouteService, before).getRoute({ id: "during" })).route?.id).toBe("during");

    // The held ones never said a word: the server drops them at the first-bytes deadline.
    const closedAfter = await Promise.all(conns.map((c) => c.closed));
    const heldClosedAfterMs = closedAfter.filter((ms) => ms >= firstBytesTimeoutMs - 100);
    expect(heldClosedAfterMs).toHaveLength(held);
    expect(Math.max(...closedAfter)).toBeLessThan(firstBytesTimeoutMs + 3_000);
    const rssPeak = rss.stop();

    // Once they are gone, new connections are served again, and the old stream never stopped.
    expect(await normalCall(svc.url)).toBe("normal");
    expect(await normalCall(svc.url, "grpc")).toBe("normal");
    expect((await reused.getRoute({ id: "after-goaway" })).route?.id).toBe("after-goaway");
    const streamedBefore = streamed;
    await until(() => streamed > streamedBefore, { what: "the pre-flood stream still delivering" });
    expect(Date.now() - streamStartedAt).toBeGreaterThan(http2IdleTimeoutMs); // it outlived the idle time
    const warned = svc.lines.filter((l) => l.limit === "maxConnections");
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, value: maxConnections, hits: 1 });
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    const dropped = flood - held + 1; // the extra one too
    expect(metrics).toContain(`server_limit_hits_total{limit="maxConnections"} ${dropped}`);
    abort.abort();
    await streaming;
    figures("idle-connections", {
      maxConnections,
      opened: flood,
      held,
      closedAtOnce: flood - held,
      newConnectionWhileFull: { closedAfterMs: extraClosedAfterMs, bytesReceived: extra.received().length },
      heldClosedAfterMs: { min: Math.min(...heldClosedAfterMs), max: Math.max(...heldClosedAfterMs) },
      firstBytesTimeoutMs,
      idleHttp2: { http2IdleTimeoutMs, closedAfterMs: idleClosedAfterMs, goaway: "NO_ERROR" },
      rssMiB: { before: mib(rss.before), peak: mib(rssPeak) },
    });
  }, 30_000);
});

describe("streaming-call cap", () => {
  /** Opens Subscribe on a transport and resolves once its first message arrived; `stop` aborts it. */
  async function subscribe(transport: Transport, device = "") {
    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    const it = createClient(TelemetryService, transport)
      .subscribe({ filter: { device } }, { signal: abort.signal })
      [Symbol.asyncIterator]();
    await it.next();
    return {
      stop: () => abort.abort(),
      drain: async () => {
        try {
          for (let r = await it.next(); !r.done; r = await it.next());
        } catch {}
      },
    };
  }

  it("the stream beyond maxStreamingCalls gets resource_exhausted at once; closing one lets a new one in; slots never leak", async () => {
    const max = 3;
    const svc = await start({ routes: routeRoutes, limits: { maxStreamingCalls: max } });
    const transports = {
      grpc: createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url }),
      connect11: createConnectTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
      grpcWeb11: createGrpcWebTransport({ interceptors: [testCredential()], baseUrl: svc.url, httpVersion: "1.1" }),
    };
    const open = [await subscribe(transports.grpc), await subscribe(transports.connect11), await subscribe(transports.grpcWeb11)];

    const t0 = Date.now();
    const refused = await codeOf(subscribe(transports.grpc));
    const refusedInMs = Date.now() - t0;
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.message).toContain(`${max} streaming calls are open`);
    // Any streaming call counts, Health/Watch too; unary calls do not.
    const watch = createClient(Health, transports.connect11).watch({ service: "" });
    expect((await codeOf(watch[Symbol.asyncIterator]().next())).code).toBe(Code.ResourceExhausted);
    expect(await normalCall(svc.url, "grpc")).toBe("normal");
    expect(await normalCall(svc.url)).toBe("normal");

    // Closing one frees its slot (once the server has seen the close).
    open.shift()!.stop();
    await until(
      async () => {
        try {
          open.push(await subscribe(transports.connect11));
          return true;
        } catch {
          return false;
        }
      },
      { what: "a new stream getting the freed slot", intervalMs: 20 },
    );
    expect((await codeOf(subscribe(transports.grpc))).code).toBe(Code.ResourceExhausted);

    // Streams that end in every other way give their slot back too: a client gone before reading, a server
    // error, a deadline. Then all `max` slots are free again.
    for (const s of open.splice(0)) s.stop();
    const ways: Array<() => Promise<unknown>> = [
      async () => {
        const abort = new AbortController();
        const it = createClient(TelemetryService, transports.grpc).subscribe({}, { signal: abort.signal })[Symbol.asyncIterator]();
        const first = it.next().catch(() => {});
        abort.abort();
        await first;
      },
      async () => (await subscribe(transports.grpc, "boom")).drain(),
      async () => {
        const it = createClient(TelemetryService, transports.connect11).subscribe({}, { timeoutMs: 100 })[Symbol.asyncIterator]();
        await codeOf(
          (async () => {
            for (let r = await it.next(); !r.done; r = await it.next());
          })(),
        );
      },
    ];
    await until(
      async () => {
        try {
          for (let round = 0; round < 5; round++) for (const way of ways) await way();
          return true;
        } catch {
          return false; // a slot not yet given back by the previous round
        }
      },
      { what: "the ways of ending a stream", intervalMs: 20 },
    );
    await until(
      async () => {
        try {
          const again = [];
          for (let i = 0; i < max; i++) again.push(await subscribe(transports.grpc));
          for (const s of again) s.stop();
          return true;
        } catch {
          return false;
        }
      },
      { what: `${max} streams fitting again` },
    );

    const warned = svc.lines.filter((l) => l.limit === "maxStreamingCalls");
    expect(warned).toHaveLength(1); // three refusals, one line
    expect(warned[0]).toMatchObject({ level: 40, value: max, hits: 1 });
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    const hits = Number(/server_limit_hits_total\{limit="maxStreamingCalls"\} (\d+)/.exec(metrics)?.[1]);
    expect(hits).toBeGreaterThanOrEqual(3);
    // No rpc line for a refused call: a flood of them must not cost a log line each.
    expect(svc.lines.filter((l) => l.msg === "rpc" && l.code === "resource_exhausted")).toHaveLength(0);
    figures("streaming-calls", {
      maxStreamingCalls: max,
      refusedCode: "resource_exhausted",
      refusedInMs,
      refusals: hits,
      message: refused.message,
    });
  }, 30_000);
});

describe("limit settings", () => {
  it("refuses a limit outside its bounds, naming it", async () => {
    await expect(start({ limits: { maxConnections: 0 } })).rejects.toThrow(/limits\.maxConnections: must be an integer from 1 to 100000/);
    await expect(start({ limits: { headersTimeoutMs: 1.5 } })).rejects.toThrow(/limits\.headersTimeoutMs/);
    await expect(start({ limits: { http2MaxConcurrentStreams: 10_001 } })).rejects.toThrow(/limits\.http2MaxConcurrentStreams/);
  });

  it("shows the open connections and streaming calls on /metrics", async () => {
    const svc = await start();
    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    const it = createClient(TelemetryService, createGrpcTransport({ interceptors: [testCredential()], baseUrl: svc.url }))
      .subscribe({}, { signal: abort.signal })
      [Symbol.asyncIterator]();
    await it.next();
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toMatch(/^server_streaming_calls 1$/m);
    expect(Number(/^server_connections (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
  });
});
