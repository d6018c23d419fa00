/**
 * TLS on the one port, against the real server over real sockets: ALPN picks gRPC (h2) or HTTP/1.1, plaintext is
 * refused without harm, client certificates are verified and reach handlers through peerCertificateKey, rotated files
 * are picked up, and the limits hold for TLS connections as for plaintext ones. Certificates come from a throwaway CA.
 */
import { spawn } from "node:child_process";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import { join } from "node:path";
import * as tls from "node:tls";
import { type ConnectRouter, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { createTestCa, type TestCa, type TestCertificate, testCredential, until } from "@meridian/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../src/config.js";
import type { ServiceOptions } from "../src/server.js";
import { type ClientAuth, type PeerCertificate, peerCertificateKey } from "../src/tls.js";
import { startTestService, type TestService } from "./harness.js";

let ca: TestCa;
let otherCa: TestCa;
let server: TestCertificate;
let client: TestCertificate;
let strangerClient: TestCertificate;
beforeAll(() => {
  ca = createTestCa("TLS Test CA");
  otherCa = createTestCa("Another CA");
  server = ca.issue({ commonName: "localhost", usage: "server" });
  client = ca.issue({ commonName: "reader", usage: "client", hosts: ["reader.meridian.test"], uris: ["spiffe://meridian/reader"] });
  strangerClient = otherCa.issue({ commonName: "reader", usage: "client", hosts: ["reader.meridian.test"] });
});
afterAll(() => {
  ca?.remove();
  otherCa?.remove();
});

const started: TestService[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

/**
 * GetRoute answers with the peer certificate its handler saw (as JSON in displayName); every call's peer, as the
 * interceptor saw it, is recorded too.
 */
function peerRoutes() {
  const seenByHandler: Array<PeerCertificate | undefined> = [];
  const seenByInterceptor: Array<PeerCertificate | undefined> = [];
  const interceptor: Interceptor = (next) => (req) => {
    seenByInterceptor.push(req.contextValues.get(peerCertificateKey));
    return next(req);
  };
  const routes = (router: ConnectRouter) =>
    router.service(RouteService, {
      async getRoute(req, ctx) {
        const peer = ctx.values.get(peerCertificateKey);
        seenByHandler.push(peer);
        return { route: { id: req.id, displayName: JSON.stringify(peer ?? null), sink: { platform: Platform.OMF, target: "t" } } };
      },
    });
  return { routes, interceptor, seenByHandler, seenByInterceptor };
}

async function startTls(
  opts: { clientAuth?: ClientAuth; cert?: TestCertificate; reloadIntervalMs?: number } = {},
  overrides: Partial<ServiceOptions> = {},
) {
  const peers = peerRoutes();
  const cert = opts.cert ?? server;
  const clientAuth = opts.clientAuth ?? "none";
  const svc = await startTestService({
    routes: peers.routes,
    interceptors: [peers.interceptor],
    tls: {
      certFile: cert.certFile,
      keyFile: cert.keyFile,
      clientAuth,
      ...(clientAuth === "none" ? {} : { clientCaFile: ca.caFile }),
      ...(opts.reloadIntervalMs ? { reloadIntervalMs: opts.reloadIntervalMs } : {}),
    },
    ...overrides,
  });
  started.push(svc);
  return Object.assign(svc, { peers });
}

/** What a TLS client is given: the CA to trust and, for mTLS, its certificate. */
function nodeTls(identity?: TestCertificate) {
  return { ca: ca.caPem, ...(identity ? { cert: identity.certPem, key: identity.keyPem } : {}) };
}

function transports(url: string, identity?: TestCertificate): Record<"grpc" | "connect11" | "grpcWeb11" | "connect2", Transport> {
  const interceptors = [testCredential()];
  return {
    grpc: createGrpcTransport({ baseUrl: url, interceptors, nodeOptions: nodeTls(identity) }),
    connect11: createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors, nodeOptions: nodeTls(identity) }),
    grpcWeb11: createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1", interceptors, nodeOptions: nodeTls(identity) }),
    connect2: createConnectTransport({ baseUrl: url, httpVersion: "2", interceptors, nodeOptions: nodeTls(identity) }),
  };
}

async function peerVia(transport: Transport, id = "peer"): Promise<PeerCertificate | null> {
  const res = await createClient(RouteService, transport).getRoute({ id });
  return JSON.parse(res.route!.displayName) as PeerCertificate | null;
}

/** A TLS connection offering the given ALPN protocols (none: no ALPN extension at all). */
function tlsConnect(port: number, alpn?: string[], identity?: TestCertificate): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      port,
      host: "127.0.0.1",
      servername: "localhost",
      ...nodeTls(identity),
      ...(alpn ? { ALPNProtocols: alpn } : {}),
    });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
}

const HEALTHCHECK = new URL("../../../scripts/healthcheck.mjs", import.meta.url).pathname;

/** Runs the container healthcheck script with the given environment (nothing inherited); its exit code. */
function healthcheck(env: Record<string, string>, args: string[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HEALTHCHECK, ...args], { env, stdio: "ignore" });
    child.once("error", reject);
    child.once("exit", (code) => resolve(code ?? -1));
  });
}

/** Sends one HTTP/1.1 request on a socket and reads until the server closes it. */
function http1Exchange(socket: net.Socket, request: string): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    socket.on("data", (d: Buffer) => {
      text += d.toString("latin1");
    });
    socket.on("error", () => {});
    socket.once("close", () => resolve(text));
    socket.write(request);
  });
}

describe("TLS on the one port", () => {
  it("serves gRPC (h2 by ALPN), Connect JSON and gRPC-Web over HTTP/1.1, and Connect over h2 on the same port", async () => {
    const svc = await startTls();
    // connect11 and grpcWeb11 go through node:https, which offers no ALPN: the server gives them HTTP/1.1.
    expect(svc.url).toBe(`https://127.0.0.1:${svc.port}`);
    for (const [name, transport] of Object.entries(transports(svc.url))) {
      expect(await peerVia(transport, name), name).toBeNull(); // no client certificate asked for
    }
    expect(svc.peers.seenByHandler).toHaveLength(4);

    // ALPN: the server prefers h2, takes http/1.1, and a client that offers nothing gets HTTP/1.1.
    const h2 = await tlsConnect(svc.port, ["h2", "http/1.1"]);
    expect(h2.alpnProtocol).toBe("h2");
    h2.destroy();
    const h1 = await tlsConnect(svc.port, ["http/1.1"]);
    expect(h1.alpnProtocol).toBe("http/1.1");
    expect(await http1Exchange(h1, "GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")).toMatch(/^HTTP\/1\.1 200 /);
    const none = await tlsConnect(svc.port);
    expect(none.alpnProtocol).toBe(false);
    expect(await http1Exchange(none, "GET /readyz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")).toMatch(/^HTTP\/1\.1 200 /);

    // The HTTP/2 limits are announced over TLS as over h2c.
    const session = http2.connect(svc.url, { ca: ca.caPem });
    cleanups.push(() => session.destroy());
    await new Promise((r) => session.once("remoteSettings", r));
    expect(session.remoteSettings.maxConcurrentStreams).toBe(1000);
    expect(session.alpnProtocol).toBe("h2");

    expect(svc.lines.find((l) => l.msg === "listening (TLS)")).toMatchObject({
      tls: { clientAuth: "none", alpn: ["h2", "http/1.1"], certificate: { subject: "CN=localhost" } },
    });
  });

  it("refuses plaintext cleanly: HTTP/1.1 gets a 400 saying why, gRPC without TLS fails, and the server keeps serving", async () => {
    const svc = await startTls();
    const plain = net.connect(svc.port, "127.0.0.1");
    const answer = await http1Exchange(plain, "GET /readyz HTTP/1.1\r\nhost: localhost\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toContain("this port serves TLS only");

    const h2c = createClient(
      RouteService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${svc.port}`, interceptors: [testCredential()] }),
    );
    await expect(h2c.getRoute({ id: "plain" })).rejects.toThrow();

    // Bytes that are no protocol at all.
    const junk = net.connect(svc.port, "127.0.0.1");
    expect(await http1Exchange(junk, "\x00\x01\x02hello")).toMatch(/^HTTP\/1\.1 400 /);

    expect(svc.peers.seenByHandler).toHaveLength(0);
    expect(await peerVia(transports(svc.url).grpc)).toBeNull();
    expect(svc.lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
  });

  it("client auth require: no certificate and another CA's certificate are refused; a good one's identity reaches handlers and interceptors", async () => {
    const svc = await startTls({ clientAuth: "require" });

    for (const [name, transport] of Object.entries(transports(svc.url))) {
      await expect(peerVia(transport, name), `${name} without a certificate`).rejects.toThrow();
    }
    for (const [name, transport] of Object.entries(transports(svc.url, strangerClient))) {
      await expect(peerVia(transport, name), `${name} with another CA's certificate`).rejects.toThrow();
    }
    expect(svc.peers.seenByHandler).toHaveLength(0); // refused before any handler ran

    // At the TLS level: without a certificate the connection never carries a byte of HTTP.
    const bare = await tlsConnect(svc.port, ["http/1.1"]).catch(() => undefined);
    if (bare) expect(await http1Exchange(bare, "GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")).toBe("");

    const expected = {
      commonName: "reader",
      dnsNames: ["reader.meridian.test"],
      uris: ["spiffe://meridian/reader"],
      ipAddresses: [],
      emails: [],
      fingerprint256: new (await import("node:crypto")).X509Certificate(client.certPem).fingerprint256,
      issuerCommonName: "TLS Test CA",
    };
    for (const [name, transport] of Object.entries(transports(svc.url, client))) {
      expect(await peerVia(transport, name), name).toMatchObject(expected);
    }
    expect(svc.peers.seenByHandler).toHaveLength(4);
    expect(svc.peers.seenByInterceptor.every((p) => p?.commonName === "reader")).toBe(true);
    expect(svc.peers.seenByInterceptor).toHaveLength(4);
  });

  it("client auth request: a verified certificate is in the context; none, or an unverified one, is undefined", async () => {
    const svc = await startTls({ clientAuth: "request" });
    expect(await peerVia(transports(svc.url).grpc)).toBeNull();
    expect(await peerVia(transports(svc.url, strangerClient).grpc)).toBeNull();
    expect(await peerVia(transports(svc.url, strangerClient).connect11)).toBeNull();
    expect(await peerVia(transports(svc.url, client).grpc)).toMatchObject({ commonName: "reader" });
    expect(await peerVia(transports(svc.url, client).connect11)).toMatchObject({ commonName: "reader" });
  });

  it("picks up a rotated certificate (a Kubernetes Secret volume swap) for new connections; a broken rotation keeps the old one", async () => {
    // The layout kubelet writes: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>, swapped by one rename.
    const dir = join(ca.dir, `secret-${Date.now()}`);
    mkdirSync(dir);
    const version = (name: string, cert: TestCertificate) => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, "tls.crt"), cert.certPem);
      writeFileSync(join(dir, name, "tls.key"), cert.keyPem);
    };
    const swapTo = (name: string) => {
      symlinkSync(name, join(dir, "..data_tmp"));
      renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    };
    const first = ca.issue({ commonName: "localhost", usage: "server" });
    const second = ca.issue({ commonName: "localhost", usage: "server", hosts: ["second.meridian.test"] });
    version("..v1", first);
    swapTo("..v1");
    symlinkSync("..data/tls.crt", join(dir, "tls.crt"));
    symlinkSync("..data/tls.key", join(dir, "tls.key"));
    const files = { certPem: "", keyPem: "", certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") };
    const svc = await startTls({ cert: files, reloadIntervalMs: 100 });

    const served = async () => {
      const s = await tlsConnect(svc.port, ["h2"]);
      const fingerprint = s.getPeerCertificate().fingerprint256;
      s.destroy();
      return fingerprint;
    };
    const { X509Certificate } = await import("node:crypto");
    const fp = (c: TestCertificate) => new X509Certificate(c.certPem).fingerprint256;
    expect(await served()).toBe(fp(first));
    // A connection made before the rotation keeps working after it.
    const before = transports(svc.url).grpc;
    expect(await peerVia(before)).toBeNull();

    version("..v2", second);
    swapTo("..v2");
    await until(async () => (await served()) === fp(second), { what: "the second certificate served" });
    expect(await peerVia(before)).toBeNull();
    expect(svc.lines.find((l) => l.msg === "TLS files changed: new handshakes use them")).toBeDefined();

    // A rotation whose key belongs to another certificate: refused, logged once, the second one stays.
    const third = ca.issue({ commonName: "localhost", usage: "server" });
    mkdirSync(join(dir, "..v3"));
    writeFileSync(join(dir, "..v3", "tls.crt"), third.certPem);
    writeFileSync(join(dir, "..v3", "tls.key"), second.keyPem);
    swapTo("..v3");
    await until(() => svc.lines.some((l) => l.msg === "TLS files changed but cannot be used: keeping the ones in use"), {
      what: "the refused rotation's warning",
    });
    expect(await served()).toBe(fp(second));
    const metrics = await svc.metrics.metrics();
    expect(metrics).toMatch(/^server_tls_reload_failures_total 1$/m);
    expect(metrics).toMatch(/^server_tls_certificate_not_after_seconds \d+$/m);
  });

  it("limits hold over TLS: a trickled handshake is cut at firstBytesTimeoutMs, a trickled HTTP/1.1 head gets 408 at headersTimeoutMs", async () => {
    const firstBytesTimeoutMs = 1000;
    const headersTimeoutMs = 1500;
    const svc = await startTls({}, { limits: { firstBytesTimeoutMs, headersTimeoutMs } });

    // A ClientHello record header, then one byte every 200 ms: the deadline is absolute, so bytes do not extend it.
    const raw = net.connect(svc.port, "127.0.0.1");
    cleanups.push(() => raw.destroy());
    raw.on("error", () => {});
    const openedAt = Date.now();
    const rawClosed = new Promise<number>((r) => raw.once("close", () => r(Date.now() - openedAt)));
    raw.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
    const trickler = setInterval(() => raw.writable && raw.write(Buffer.from([0x01])), 200);
    cleanups.push(() => clearInterval(trickler));

    // Over a finished TLS handshake, an HTTP/1.1 head sent one byte every 300 ms.
    const slowOpenedAt = Date.now();
    const slow = await tlsConnect(svc.port, ["http/1.1"]);
    let answer = "";
    slow.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
    });
    slow.on("error", () => {});
    const slowClosed = new Promise<number>((r) => slow.once("close", () => r(Date.now() - slowOpenedAt)));
    const head = "POST /meridian.route.v1.RouteService/GetRoute HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\r\n";
    let sent = 0;
    const slowTrickler = setInterval(() => {
      if (sent < head.length && slow.writable) slow.write(head[sent++]!);
    }, 300);
    cleanups.push(() => clearInterval(slowTrickler));

    // Others are served meanwhile.
    expect(await peerVia(transports(svc.url).grpc)).toBeNull();
    expect(await peerVia(transports(svc.url).connect11)).toBeNull();

    const rawClosedAfterMs = await rawClosed;
    expect(rawClosedAfterMs).toBeGreaterThanOrEqual(firstBytesTimeoutMs - 100);
    expect(rawClosedAfterMs).toBeLessThan(firstBytesTimeoutMs + 1500);

    const slowClosedAfterMs = await slowClosed;
    expect(sent).toBeLessThan(head.length);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    // Timed from before the connect, so from no later than the server's accept.
    expect(slowClosedAfterMs).toBeGreaterThanOrEqual(headersTimeoutMs - 100);
    expect(slowClosedAfterMs).toBeLessThan(headersTimeoutMs + 1500);
    expect(svc.lines.filter((l) => l.limit === "headersTimeoutMs")).toHaveLength(1);
    console.log(
      JSON.stringify({ limitsTest: "tls", firstBytesTimeoutMs, rawClosedAfterMs, headersTimeoutMs, slowClosedAfterMs, bytesSent: sent }),
    );
  }, 20_000);

  it("stops promptly with TLS connections open (an HTTP/2 session and an idle HTTP/1.1 connection)", async () => {
    const svc = await startTls();
    const session = http2.connect(svc.url, { ca: ca.caPem });
    session.on("error", () => {});
    await new Promise((r) => session.once("remoteSettings", r));
    const idle = await tlsConnect(svc.port, ["http/1.1"]);
    idle.on("error", () => {});
    const idleClosed = new Promise<void>((r) => idle.once("close", () => r()));
    const t = Date.now();
    await svc.stop();
    started.splice(started.indexOf(svc), 1);
    expect(Date.now() - t).toBeLessThan(2000);
    await idleClosed;
    await until(() => session.closed || session.destroyed, { what: "the HTTP/2 session closed" });
  });

  it("the container healthcheck asks /readyz over TLS, presenting the service's certificate when the port requires one", async () => {
    const both = ca.issue({ commonName: "localhost", usage: "both" });
    const svc = await startTls({ clientAuth: "require", cert: both });
    const env = { PORT: String(svc.port), TLS_CERT_FILE: both.certFile, TLS_KEY_FILE: both.keyFile, TLS_CLIENT_CA_FILE: ca.caFile };
    expect(await healthcheck(env)).toBe(0);
    svc.health.set("", "NOT_SERVING");
    expect(await healthcheck(env)).toBe(1);
    expect(await healthcheck(env, ["/healthz"])).toBe(0); // the liveness path answers while not ready
    svc.health.set("", "SERVING");
    // Without a certificate to present the port refuses the probe.
    expect(await healthcheck({ PORT: String(svc.port), TLS_CERT_FILE: both.certFile, TLS_KEY_FILE: both.keyFile })).toBe(1);
    // Plaintext, as before.
    const plain = await startTestService();
    started.push(plain);
    expect(await healthcheck({ PORT: String(plain.port) })).toBe(0);
  });

  it("a missing certificate file stops the start with a ConfigError naming TLS_CERT_FILE; no port is opened", async () => {
    const attempt = startTestService({ tls: { certFile: join(ca.dir, "absent.pem"), keyFile: server.keyFile } });
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toMatchObject({ settings: ["TLS_CERT_FILE"] });
  });

  it("says at start that the port is plaintext when TLS is not set", async () => {
    const svc = await startTestService();
    started.push(svc);
    expect(svc.url).toMatch(/^http:\/\//);
    expect(svc.lines.find((l) => l.msg === "listening in plaintext: no TLS certificate is set")).toMatchObject({ level: 30, tls: false });
  });
});
